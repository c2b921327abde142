#pragma once
// How a consumer waits for data (or a producer for space): spin, then yield, then sleep on the
// ring's doorbell. Each phase is bounded by its iteration count; `busy_spin` never sleeps.

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "symphony/engine/doorbell.hpp"

namespace symphony::engine {

enum class WaitKind : std::uint8_t {
  busy_spin,        // lowest latency, burns a core
  spin_then_yield,  // spins, then sched_yield()s: for more runnable threads than cores
  spin_then_sleep,  // spins, yields a little, then sleeps on a futex: an idle wait costs no CPU
};

struct WaitStrategy {
  WaitKind kind = WaitKind::spin_then_sleep;
  std::uint32_t spin_iterations = 4096;  // pause-instruction polls before yielding
  std::uint32_t yield_iterations = 16;   // sched_yield polls before sleeping

  static constexpr WaitStrategy busy() { return {WaitKind::busy_spin, 1u << 16, 0}; }
  static constexpr WaitStrategy yielding() { return {WaitKind::spin_then_yield, 256, 0}; }
  static constexpr WaitStrategy sleeping() { return {}; }
};

// Counts kept by a waiting side (local, not shared).
struct WaitStats {
  std::uint64_t sleeps = 0;     // FUTEX_WAIT calls made
  std::uint64_t timeouts = 0;   // of those, how many ended by timeout
};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls `attempt()` until it returns something whose `would_block()` is false, following
// `strategy`, sleeping on `bell` in the last phase. Returns the last attempt, still
// would_block() if `deadline` passed or a signal interrupted the sleep (so that a caller's stop
// flag is looked at promptly). Right before sleeping it calls `confirm()` instead, which must
// read the shared index with a seq_cst load (see doorbell.hpp); `attempt` may use cheaper loads
// that the fast path prefers. Spinning reads the clock only once per kPollsPerClockRead polls.
// `sleep_cap()` bounds each futex sleep, for waiters that must wake up without being rung;
// a sleep that ends at the cap, not the deadline, is not counted as a timeout.
template <typename Attempt, typename Confirm, typename SleepCap>
auto wait_until(Attempt&& attempt, Confirm&& confirm, SleepCap&& sleep_cap, DoorbellRef bell,
                const WaitStrategy& strategy, std::chrono::steady_clock::time_point deadline,
                WaitStats* stats = nullptr) {
  constexpr std::uint32_t kPollsPerClockRead = 1024;
  auto result = attempt();
  if (!result.would_block()) return result;
  for (std::uint32_t i = 1; i <= strategy.spin_iterations; ++i) {
    cpu_relax();
    result = attempt();
    if (!result.would_block()) return result;
    if (i % kPollsPerClockRead == 0 && std::chrono::steady_clock::now() >= deadline) {
      return result;
    }
  }
  std::uint32_t yields = 0;
  for (;;) {
    if (std::chrono::steady_clock::now() >= deadline) return result;
    if (strategy.kind == WaitKind::busy_spin) {
      for (std::uint32_t i = 0; i < kPollsPerClockRead; ++i) {
        cpu_relax();
        result = attempt();
        if (!result.would_block()) return result;
      }
      continue;
    }
    if (strategy.kind == WaitKind::spin_then_yield || yields < strategy.yield_iterations) {
      ++yields;
      sched_yield();
    } else {
      const std::uint32_t ticket = bell.prepare_wait();
      result = confirm();
      if (!result.would_block()) {
        bell.finish_wait();
        return result;
      }
      const auto now = std::chrono::steady_clock::now();
      const std::chrono::nanoseconds remaining =
          deadline > now ? deadline - now : std::chrono::nanoseconds(0);
      const std::chrono::nanoseconds cap = sleep_cap();
      const auto reason = bell.wait(ticket, std::min(remaining, cap));
      bell.finish_wait();
      if (stats != nullptr) {
        ++stats->sleeps;
        if (reason == WakeReason::timed_out && cap >= remaining) ++stats->timeouts;
      }
      if (reason == WakeReason::interrupted) return attempt();
    }
    result = attempt();
    if (!result.would_block()) return result;
  }
}

inline constexpr auto kUncappedSleep = [] { return std::chrono::nanoseconds::max(); };

template <typename Attempt, typename Confirm>
auto wait_until(Attempt&& attempt, Confirm&& confirm, DoorbellRef bell,
                const WaitStrategy& strategy, std::chrono::steady_clock::time_point deadline,
                WaitStats* stats = nullptr) {
  return wait_until(attempt, confirm, kUncappedSleep, bell, strategy, deadline, stats);
}

// For attempts that already read the shared index with seq_cst loads.
template <typename Attempt>
auto wait_until(Attempt&& attempt, DoorbellRef bell, const WaitStrategy& strategy,
                std::chrono::steady_clock::time_point deadline, WaitStats* stats = nullptr) {
  return wait_until(attempt, attempt, kUncappedSleep, bell, strategy, deadline, stats);
}

}  // namespace symphony::engine
