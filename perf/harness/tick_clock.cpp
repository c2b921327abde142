#include "tick_clock.hpp"

#include <cmath>
#include <fstream>
#include <string>
#include <thread>

namespace symphony::perf {
namespace {

// Both flags, or TSC ticks may change rate with the core's frequency or stop in deep sleep.
bool cpu_has_invariant_tsc() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    const auto has = [&](const char* flag) {
      return line.find(std::string(" ") + flag + " ") != std::string::npos ||
             line.ends_with(std::string(" ") + flag);
    };
    return has("constant_tsc") && has("nonstop_tsc");
  }
  return false;
}

}  // namespace

TickClock TickClock::calibrate() {
  TickClock clock;
#if SYMPHONY_PERF_HAVE_TSC
  if (!cpu_has_invariant_tsc()) return clock;
  // Two readings of both clocks far apart; each pair taken back to back, so the error is a few
  // tens of nanoseconds over 50 ms (under 1e-6).
  const std::uint64_t steady0 = steady_ns();
  const std::uint64_t tsc0 = __rdtsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::uint64_t steady1 = steady_ns();
  const std::uint64_t tsc1 = __rdtsc();
  if (tsc1 <= tsc0 || steady1 <= steady0) return clock;
  const double ns_per_tick =
      static_cast<double>(steady1 - steady0) / static_cast<double>(tsc1 - tsc0);
  // Anything outside 0.1-10 GHz is not a TSC we understand.
  if (!std::isfinite(ns_per_tick) || ns_per_tick < 0.1 || ns_per_tick > 10.0) return clock;
  clock.use_tsc_ = true;
  clock.ns_per_tick_ = ns_per_tick;
#endif
  return clock;
}

}  // namespace symphony::perf
