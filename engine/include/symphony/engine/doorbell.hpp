#pragma once
// The process-shared sleep/wake handshake over a layouts::Doorbell (a raw SYS_futex on a 32-bit
// word in shared memory, without FUTEX_PRIVATE_FLAG: std::atomic::wait in libstdc++ uses a
// private futex and would never wake another process).
//
// Ringer (after publishing its index with store_for_sleepers()):   bell.ring();
//   one load when nobody sleeps; a FUTEX_WAKE syscall only when someone does.
// Sleeper:
//   auto ticket = bell.prepare_wait();   // waiters++ (seq_cst), then reads the sequence
//   if (!ready_with_seq_cst_loads()) bell.wait(ticket, timeout);
//   bell.finish_wait();                  // waiters--
// Either the ringer sees waiters > 0 and bumps the sequence (so FUTEX_WAIT returns at once or
// is woken), or the sleeper's readiness check comes after the publish and sees it. That needs a
// StoreLoad barrier on both sides. The ringer publishes millions of times a second and the
// sleeper sleeps rarely, so where the kernel offers membarrier(GLOBAL_EXPEDITED) the sleeper pays
// for both: ringers register once and publish with plain release stores, and prepare_wait()
// issues the membarrier, which runs a full barrier on every CPU running a registered process.
// Elsewhere ringers publish with seq_cst stores (an xchg on x86, which waits for the stored
// cache line: measured at up to a third of SPSC throughput).

#include <atomic>
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

namespace detail {
extern std::atomic<bool> ringer_registered;  // this process may publish with release stores
}  // namespace detail

// Registers this process as a ringer for asymmetric fences (once; later calls are free).
// Every handle that publishes or releases calls it on attach.
void register_ringer() noexcept;

// Stores an index that a sleeper's readiness check reads (see above).
inline void store_for_sleepers(std::atomic_ref<std::uint64_t> index,
                               std::uint64_t value) noexcept {
  if (detail::ringer_registered.load(std::memory_order_relaxed)) {
    index.store(value, std::memory_order_release);
  } else {
    index.store(value, std::memory_order_seq_cst);
  }
}

class DoorbellRef {
 public:
  explicit DoorbellRef(layouts::Doorbell* bell) noexcept : bell_(bell) {}

  // Returns true if a wake-up syscall was made. Inline: it runs after every publish.
  bool ring() noexcept {
    // Keeps the compiler from hoisting this load above the index store; the CPU's StoreLoad
    // order comes from the sleeper's membarrier or from the seq_cst store.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (std::atomic_ref<std::uint32_t>(bell_->waiters).load(std::memory_order_seq_cst) == 0) {
      return false;
    }
    wake();
    return true;
  }

  [[nodiscard]] std::uint32_t prepare_wait() noexcept;
  // Sleeps until rung, the sequence differs from `ticket`, or `timeout` passes.
  WakeReason wait(std::uint32_t ticket, std::chrono::nanoseconds timeout) noexcept;
  void finish_wait() noexcept;

  std::uint32_t waiters() const noexcept;

 private:
  void wake() noexcept;
  layouts::Doorbell* bell_;
};

}  // namespace symphony::engine
