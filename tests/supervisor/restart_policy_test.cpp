// Restart policies and the restart intensity, decided with a clock the test moves by hand.

#include <gtest/gtest.h>

#include "symphony/supervisor/restart_policy.hpp"

namespace {

using namespace symphony::supervisor;
using namespace std::chrono_literals;
using Action = RestartDecision::Action;

RestartPolicy backoff(std::chrono::milliseconds initial, double factor,
                      std::chrono::milliseconds cap, std::chrono::milliseconds reset_after) {
  RestartPolicy p;
  p.kind = RestartKind::backoff;
  p.backoff = {initial, factor, cap, reset_after};
  return p;
}

RestartIntensity generous() { return {1000, 1h}; }

TEST(RestartPolicy, ImmediateRestartsAtOnceEveryTime) {
  ManualClock clock;
  RestartTracker tracker({RestartKind::immediate, {}}, generous());
  for (int i = 0; i < 50; ++i) {
    tracker.started(clock.now());
    clock.advance(10ms);
    const RestartDecision d = tracker.crashed(clock.now());
    ASSERT_EQ(d.action, Action::restart);
    EXPECT_EQ(d.delay, 0ms);
    EXPECT_EQ(d.at, clock.now());
  }
}

TEST(RestartPolicy, BackoffDoublesUpToTheCap) {
  ManualClock clock;
  RestartTracker tracker(backoff(100ms, 2.0, 1000ms, 60s), generous());
  const std::chrono::milliseconds expected[] = {100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms};
  for (const auto delay : expected) {
    tracker.started(clock.now());
    clock.advance(5ms);  // crashes soon after every start
    const RestartDecision d = tracker.crashed(clock.now());
    ASSERT_EQ(d.action, Action::restart);
    EXPECT_EQ(d.delay, delay);
    EXPECT_EQ(d.at, clock.now() + delay);
    EXPECT_NE(d.reason.find(std::to_string(delay.count()) + " ms"), std::string::npos) << d.reason;
    clock.advance(d.delay);  // the restart happens when it is due
  }
  EXPECT_EQ(tracker.consecutive_crashes(), 6u);
}

TEST(RestartPolicy, BackoffFactorThree) {
  ManualClock clock;
  RestartTracker tracker(backoff(10ms, 3.0, 10s, 60s), generous());
  std::chrono::milliseconds delays[4];
  for (auto& delay : delays) {
    tracker.started(clock.now());
    delay = tracker.crashed(clock.now()).delay;
  }
  EXPECT_EQ(delays[0], 10ms);
  EXPECT_EQ(delays[1], 30ms);
  EXPECT_EQ(delays[2], 90ms);
  EXPECT_EQ(delays[3], 270ms);
}

TEST(RestartPolicy, BackoffResetsAfterAStablePeriod) {
  ManualClock clock;
  RestartTracker tracker(backoff(100ms, 2.0, 10s, 5s), generous());
  for (int i = 0; i < 3; ++i) {  // 100, 200, 400
    tracker.started(clock.now());
    clock.advance(tracker.crashed(clock.now()).delay);
  }
  // Ran just short of the stable period: the series goes on.
  tracker.started(clock.now());
  clock.advance(4999ms);
  EXPECT_EQ(tracker.crashed(clock.now()).delay, 800ms);
  // Ran for the whole stable period: a new series.
  tracker.started(clock.now());
  clock.advance(5s);
  EXPECT_EQ(tracker.crashed(clock.now()).delay, 100ms);
  EXPECT_EQ(tracker.consecutive_crashes(), 1u);
}

TEST(RestartPolicy, IntensityLimitFails) {
  ManualClock clock;
  RestartTracker tracker({RestartKind::immediate, {}}, {3, 10s});
  for (int i = 0; i < 3; ++i) {
    tracker.started(clock.now());
    clock.advance(1s);
    ASSERT_EQ(tracker.crashed(clock.now()).action, Action::restart) << "restart " << i;
  }
  tracker.started(clock.now());
  clock.advance(1s);
  const RestartDecision d = tracker.crashed(clock.now());
  EXPECT_EQ(d.action, Action::fail);
  EXPECT_NE(d.reason.find("restart intensity exceeded: 3 restarts within 10 s"), std::string::npos)
      << d.reason;
}

TEST(RestartPolicy, IntensityWindowSlides) {
  ManualClock clock;
  RestartTracker tracker({RestartKind::immediate, {}}, {2, 10s});
  tracker.started(clock.now());
  ASSERT_EQ(tracker.crashed(clock.now()).action, Action::restart);  // t = 0
  clock.advance(6s);
  tracker.started(clock.now());
  ASSERT_EQ(tracker.crashed(clock.now()).action, Action::restart);  // t = 6
  clock.advance(3s);
  tracker.started(clock.now());
  EXPECT_EQ(tracker.crashed(clock.now()).action, Action::fail);  // t = 9: 2 within 10 s
  clock.advance(1s);
  tracker.started(clock.now());
  // t = 10: the restart at t = 0 has left the window.
  EXPECT_EQ(tracker.crashed(clock.now()).action, Action::restart);
}

TEST(RestartPolicy, IntensityCountsBackoffRestartsToo) {
  ManualClock clock;
  RestartTracker tracker(backoff(100ms, 2.0, 1s, 1h), {2, 1h});
  tracker.started(clock.now());
  ASSERT_EQ(tracker.crashed(clock.now()).action, Action::restart);
  tracker.started(clock.now());
  ASSERT_EQ(tracker.crashed(clock.now()).action, Action::restart);
  tracker.started(clock.now());
  EXPECT_EQ(tracker.crashed(clock.now()).action, Action::fail);
}

TEST(RestartPolicy, ManualNeverRestarts) {
  ManualClock clock;
  RestartTracker tracker({RestartKind::manual, {}}, {1, 1s});
  for (int i = 0; i < 10; ++i) {
    tracker.started(clock.now());
    clock.advance(1h);
    const RestartDecision d = tracker.crashed(clock.now());
    EXPECT_EQ(d.action, Action::wait);  // never restart, and never FAILED by intensity either
    EXPECT_NE(d.reason.find("manual"), std::string::npos);
  }
}

TEST(RestartPolicy, ResetByHandStartsAFreshSeriesAndWindow) {
  ManualClock clock;
  RestartTracker tracker(backoff(100ms, 2.0, 10s, 1h), {2, 1h});
  tracker.started(clock.now());
  tracker.crashed(clock.now());
  tracker.started(clock.now());
  tracker.crashed(clock.now());
  tracker.started(clock.now());
  ASSERT_EQ(tracker.crashed(clock.now()).action, Action::fail);
  tracker.reset();
  tracker.started(clock.now());
  const RestartDecision d = tracker.crashed(clock.now());
  EXPECT_EQ(d.action, Action::restart);
  EXPECT_EQ(d.delay, 100ms);
}

TEST(ManualClock, MovesOnlyWhenToldAndSaysSo) {
  ManualClock clock;
  const TimePoint start = clock.now();
  int changes = 0;
  clock.on_change([&] { ++changes; });
  EXPECT_EQ(clock.now(), start);
  clock.advance(250ms);
  EXPECT_EQ(clock.now() - start, 250ms);
  EXPECT_EQ(changes, 1);
}

}  // namespace
