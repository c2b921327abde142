#include "symphony/supervisor/restart_policy.hpp"

#include <algorithm>
#include <cmath>

namespace symphony::supervisor {
namespace {

class SteadyClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
};

std::string seconds_text(std::chrono::milliseconds ms) {
  const auto whole = ms.count() / 1000;
  const auto frac = ms.count() % 1000;
  return std::to_string(whole) + (frac ? "." + std::to_string(1000 + frac).substr(1) : "") + " s";
}

}  // namespace

void Clock::on_change(std::function<void()>) {}

std::shared_ptr<Clock> steady_clock() {
  static const std::shared_ptr<Clock> clock = std::make_shared<SteadyClock>();
  return clock;
}

TimePoint ManualClock::now() const {
  std::lock_guard lock(mutex_);
  return now_;
}

void ManualClock::on_change(std::function<void()> callback) {
  std::lock_guard lock(mutex_);
  callbacks_.push_back(std::move(callback));
}

void ManualClock::advance(std::chrono::nanoseconds by) {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mutex_);
    now_ += by;
    callbacks = callbacks_;
  }
  for (auto& callback : callbacks) callback();
}

RestartDecision RestartTracker::crashed(TimePoint now) {
  RestartDecision decision;
  const BackoffPolicy& backoff = policy_.backoff;
  // A long enough stable run forgives the earlier crashes of the series.
  if (now - last_start_ >= backoff.reset_after) consecutive_ = 0;
  if (policy_.kind == RestartKind::manual) {
    decision.action = RestartDecision::Action::wait;
    decision.reason = "manual restart policy: waiting for a restart by hand";
    return decision;
  }
  while (!window_.empty() && now - window_.front() >= intensity_.period) window_.pop_front();
  if (window_.size() >= intensity_.max_restarts) {
    decision.action = RestartDecision::Action::fail;
    decision.reason = "restart intensity exceeded: " + std::to_string(window_.size()) +
                      " restarts within " + seconds_text(intensity_.period) + " (at most " +
                      std::to_string(intensity_.max_restarts) + " allowed)";
    return decision;
  }
  if (policy_.kind == RestartKind::backoff) {
    const double scaled = static_cast<double>(backoff.initial.count()) *
                          std::pow(backoff.factor, static_cast<double>(consecutive_));
    const double capped = std::min(scaled, static_cast<double>(backoff.cap.count()));
    decision.delay = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(capped)));
  }
  ++consecutive_;
  window_.push_back(now);
  decision.action = RestartDecision::Action::restart;
  decision.at = now + decision.delay;
  decision.reason = policy_.kind == RestartKind::immediate
                        ? std::string("immediate restart")
                        : "restart in " + std::to_string(decision.delay.count()) +
                              " ms (backoff, crash " + std::to_string(consecutive_) +
                              " of the series)";
  return decision;
}

void RestartTracker::reset() {
  consecutive_ = 0;
  window_.clear();
}

}  // namespace symphony::supervisor
