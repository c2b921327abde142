#pragma once
// The stopwatch for round trips: the x86 time-stamp counter when it is invariant (ticks at a
// constant rate in every power state), else steady_clock. Both stamps of a round trip are taken
// by the same process on the same core, so cross-core TSC skew never enters a measurement.
//
// rdtsc costs a few nanoseconds and cannot be slowed by a clocksource change; clock_gettime
// costs ~20 ns through the vDSO, of which about half lands inside every measured interval.
// calibrate() runs once in the parent, before any fork, so every child converts ticks with the
// same factor.

#include <chrono>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define SYMPHONY_PERF_HAVE_TSC 1
#else
#define SYMPHONY_PERF_HAVE_TSC 0
#endif

namespace symphony::perf {

class TickClock {
 public:
  // Measures the TSC against steady_clock for ~50 ms; falls back to steady_clock when the CPU
  // does not advertise constant_tsc and nonstop_tsc, or the calibration looks wrong.
  static TickClock calibrate();

  std::uint64_t now() const noexcept {
#if SYMPHONY_PERF_HAVE_TSC
    if (use_tsc_) return __rdtsc();
#endif
    return steady_ns();
  }
  std::uint64_t to_ns(std::uint64_t ticks) const noexcept {
    return static_cast<std::uint64_t>(static_cast<double>(ticks) * ns_per_tick_);
  }
  std::uint64_t from_ns(std::uint64_t ns) const noexcept {
    return static_cast<std::uint64_t>(static_cast<double>(ns) / ns_per_tick_);
  }
  bool uses_tsc() const noexcept {
    return use_tsc_;
  }
  double ticks_per_ns() const noexcept {
    return 1.0 / ns_per_tick_;
  }

  static std::uint64_t steady_ns() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
  }

 private:
  bool use_tsc_ = false;
  double ns_per_tick_ = 1.0;
};

}  // namespace symphony::perf
