#pragma once
// When a crashed extension comes back: the restart policy (immediate, backoff, manual) and the
// restart intensity (at most N restarts in T, then FAILED), decided by a small pure class that
// takes the time as an argument, so tests drive it with any clock. The supervisor asks it on the
// supervisor thread with its policy clock (Clock below: the steady clock, or a ManualClock that
// a test advances by hand).

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "symphony/supervisor/manifest.hpp"

namespace symphony::supervisor {

using TimePoint = std::chrono::steady_clock::time_point;

// The supervisor's policy clock: restart delays, backoff series, intensity windows. Process
// timing (grace periods, hang detection) always uses the real steady clock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  // `callback` runs (on the thread that changed the time) whenever now() jumps; the steady
  // clock never calls it. The supervisor uses it to look at its timers again.
  virtual void on_change(std::function<void()> callback);
};

std::shared_ptr<Clock> steady_clock();

// A clock that moves only when told. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint{} + std::chrono::hours(1)) : now_(start) {}
  TimePoint now() const override;
  void on_change(std::function<void()> callback) override;
  void advance(std::chrono::nanoseconds by);

 private:
  mutable std::mutex mutex_;
  TimePoint now_;
  std::vector<std::function<void()>> callbacks_;
};

struct RestartDecision {
  enum class Action : std::uint8_t {
    restart,  // restart at `at` (now for immediate)
    wait,     // manual policy: stay CRASHED until restarted by hand
    fail,     // intensity exceeded: FAILED
  };
  Action action = Action::restart;
  TimePoint at{};
  std::chrono::milliseconds delay{0};
  std::string reason;  // for the lifecycle event: "restart in 400 ms (backoff, crash 3 in a row)"
};

class RestartTracker {
 public:
  RestartTracker(RestartPolicy policy, RestartIntensity intensity)
      : policy_(policy), intensity_(intensity) {}

  // An instance was started at `now` (a crash after reset_after from here starts a new series).
  void started(TimePoint now) { last_start_ = now; }
  // The instance crashed at `now`: what to do. A restart decision counts towards the intensity.
  RestartDecision crashed(TimePoint now);
  // A restart by hand (or after FAILED): a new series and an empty intensity window.
  void reset();

  std::uint32_t consecutive_crashes() const noexcept { return consecutive_; }
  const RestartPolicy& policy() const noexcept { return policy_; }

 private:
  RestartPolicy policy_;
  RestartIntensity intensity_;
  TimePoint last_start_{};
  std::uint32_t consecutive_ = 0;  // crashes since the series began (backoff exponent)
  std::deque<TimePoint> window_;   // restarts decided within the intensity period
};

}  // namespace symphony::supervisor
