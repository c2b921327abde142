#pragma once
// The process-shared sleep/wake handshake over a layouts::Doorbell (a raw SYS_futex on a 32-bit
// word in shared memory, without FUTEX_PRIVATE_FLAG: std::atomic::wait in libstdc++ uses a
// private futex and would never wake another process).
//
// Ringer (after publishing with a seq_cst store or RMW):   bell.ring();
//   one seq_cst load when nobody sleeps; a FUTEX_WAKE syscall only when someone does.
// Sleeper:
//   auto ticket = bell.prepare_wait();   // waiters++ (seq_cst), then reads the sequence
//   if (!ready_with_seq_cst_loads()) bell.wait(ticket, timeout);
//   bell.finish_wait();                  // waiters--
// Either the ringer sees waiters > 0 and bumps the sequence (so FUTEX_WAIT returns at once or
// is woken), or the sleeper's readiness check comes after the publish in the seq_cst order and
// sees it. That is the whole no-lost-wake-up argument; it needs both sides seq_cst.

#include <chrono>
#include <cstdint>

#include "symphony/layouts/doorbell.hpp"

namespace symphony::engine {

enum class WakeReason : std::uint8_t {
  woken,      // FUTEX_WAIT returned after a wake (or a spurious wake-up)
  changed,    // the sequence had moved before we slept: no syscall wait
  timed_out,  // the timeout expired
  interrupted,  // a signal interrupted the wait
};

class DoorbellRef {
 public:
  explicit DoorbellRef(layouts::Doorbell* bell) noexcept : bell_(bell) {}

  // Returns true if a wake-up syscall was made.
  bool ring() noexcept;

  [[nodiscard]] std::uint32_t prepare_wait() noexcept;
  // Sleeps until rung, the sequence differs from `ticket`, or `timeout` passes.
  WakeReason wait(std::uint32_t ticket, std::chrono::nanoseconds timeout) noexcept;
  void finish_wait() noexcept;

  std::uint32_t waiters() const noexcept;

 private:
  layouts::Doorbell* bell_;
};

}  // namespace symphony::engine
