#include "symphony/engine/doorbell.hpp"

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <ctime>

namespace symphony::engine {
namespace {

std::atomic_ref<std::uint32_t> waiters_of(layouts::Doorbell* bell) {
  return std::atomic_ref<std::uint32_t>(bell->waiters);
}
std::atomic_ref<std::uint32_t> sequence_of(layouts::Doorbell* bell) {
  return std::atomic_ref<std::uint32_t>(bell->sequence);
}

// Shared (not FUTEX_PRIVATE_FLAG): the sleeper and the ringer are different processes.
long futex(std::uint32_t* word, int op, std::uint32_t value, const timespec* timeout) {
  return ::syscall(SYS_futex, word, op, value, timeout, nullptr, 0);
}

long membarrier(int command) { return ::syscall(SYS_membarrier, command, 0, 0); }

bool membarrier_available() noexcept {
  static const bool available = [] {
    const long commands = membarrier(MEMBARRIER_CMD_QUERY);
    return commands > 0 && (commands & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 &&
           (commands & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0;
  }();
  return available;
}

}  // namespace

namespace detail {
std::atomic<bool> ringer_registered{false};
}  // namespace detail

void register_ringer() noexcept {
  if (detail::ringer_registered.load(std::memory_order_acquire)) return;
  if (membarrier_available() && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0) {
    detail::ringer_registered.store(true, std::memory_order_release);
  }
}

void DoorbellRef::wake() noexcept {
  sequence_of(bell_).fetch_add(1, std::memory_order_seq_cst);
  futex(&bell_->sequence, FUTEX_WAKE, INT_MAX, nullptr);
}

std::uint32_t DoorbellRef::prepare_wait() noexcept {
  waiters_of(bell_).fetch_add(1, std::memory_order_seq_cst);
  // The heavy half of the asymmetric fence (doorbell.hpp): after it, every registered ringer
  // has either seen waiters > 0 or made its index store visible to our readiness check.
  if (membarrier_available()) membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
  return sequence_of(bell_).load(std::memory_order_seq_cst);
}

WakeReason DoorbellRef::wait(std::uint32_t ticket, std::chrono::nanoseconds timeout) noexcept {
  if (timeout <= std::chrono::nanoseconds(0)) return WakeReason::timed_out;
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(seconds.count());
  ts.tv_nsec = static_cast<long>((timeout - seconds).count());
  if (futex(&bell_->sequence, FUTEX_WAIT, ticket, &ts) == 0) return WakeReason::woken;
  switch (errno) {
    case EAGAIN: return WakeReason::changed;
    case ETIMEDOUT: return WakeReason::timed_out;
    default: return WakeReason::interrupted;
  }
}

void DoorbellRef::finish_wait() noexcept {
  waiters_of(bell_).fetch_sub(1, std::memory_order_seq_cst);
}

std::uint32_t DoorbellRef::waiters() const noexcept {
  return waiters_of(bell_).load(std::memory_order_seq_cst);
}

}  // namespace symphony::engine
