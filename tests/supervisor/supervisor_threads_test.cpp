// The supervisor's threads under ThreadSanitizer: the supervisor thread, the control plane's I/O
// thread and several caller threads (figures, restart, stop/start) at once, while extensions
// are killed under them. Every call must return, and the figures stay consistent.

#include <signal.h>

#include <atomic>
#include <thread>
#include <vector>

#include "supervisor_fixture.hpp"

namespace symphony::test {
namespace {

using SupervisorThreads = SupervisorFixture;

TEST_F(SupervisorThreads, CallsFromManyThreadsWhileExtensionsDie) {
  start();
  auto m = manifest("busy");
  m.instances = 2;
  add(m);
  add(manifest("other"));
  ASSERT_GE(healthy("other"), 0);
  ASSERT_GE(healthy("busy"), 0);

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        for (const auto& f : supervisor_->figures()) {
          EXPECT_TRUE(f.extension == "busy" || f.extension == "other");
          if (f.state == LifecycleState::healthy) {
            EXPECT_GT(f.pid, 0);
          }
        }
        calls.fetch_add(1);
        std::this_thread::sleep_for(1ms);
      }
    });
  }
  threads.emplace_back([&] {
    const int rounds = static_cast<int>(scaled(20));
    for (int i = 0; i < rounds && !stop.load(); ++i) {
      const auto f = supervisor_->figures("busy", i % 2);
      if (f && f->pid > 0) ::kill(f->pid, SIGKILL);
      std::this_thread::sleep_for(20ms);
    }
  });
  threads.emplace_back([&] {
    for (int i = 0; i < 3 && !stop.load(); ++i) {
      EXPECT_TRUE(supervisor_->restart("other"));
      std::this_thread::sleep_for(50ms);
    }
  });
  // The killers finish on their own; the readers run until everything is HEALTHY again.
  threads[3].join();
  threads[4].join();
  EXPECT_TRUE(eventually(
      [&] {
        for (const auto& f : supervisor_->figures()) {
          if (f.state != LifecycleState::healthy) return false;
        }
        return true;
      },
      60s, 10ms));
  stop.store(true);
  for (std::size_t i = 0; i < 3; ++i) threads[i].join();
  EXPECT_GT(calls.load(), 0u);
  supervisor_.reset();  // shutdown with callers gone
  EXPECT_EQ(events_.count("busy", LifecycleState::failed), 0);
}

// Supervisor::request() from several threads to an on-demand extension that is killed and
// stopped as idle under them: every call returns, with the echo or with a reason.
TEST_F(SupervisorThreads, RequestsFromManyThreadsWhileOnDemandInstancesComeAndGo) {
  start();
  auto m = manifest("lazy");
  m.instances = 2;
  m.start = supervisor::StartMode::on_demand;
  m.idle_stop = 50ms;
  add(m);

  std::atomic<std::uint64_t> answered{0};
  std::atomic<std::uint64_t> failed{0};
  std::vector<std::thread> threads;
  const int rounds = static_cast<int>(scaled(40));
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        const std::string payload =
            "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}";
        auto reply = supervisor_->request("lazy", "echo", payload, 30s);
        if (reply) {
          EXPECT_EQ(*reply, payload);
          answered.fetch_add(1);
        } else {
          EXPECT_FALSE(reply.error().message.empty());
          failed.fetch_add(1);
        }
        // Now and then long enough apart for an idle stop.
        if (i % 8 == 7) std::this_thread::sleep_for(100ms);
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < rounds / 4; ++i) {
      const auto f = supervisor_->figures("lazy", i % 2);
      if (f && f->pid > 0) ::kill(f->pid, SIGKILL);
      std::this_thread::sleep_for(30ms);
    }
  });
  for (auto& thread : threads) thread.join();
  EXPECT_GT(answered.load(), 0u);
  EXPECT_EQ(answered.load() + failed.load(), static_cast<std::uint64_t>(3 * rounds));
  supervisor_.reset();
}

// Updates and A/B tests driven from one thread while others send requests and read figures and
// counters: every update returns (done or rolled back), every request is answered.
TEST_F(SupervisorThreads, UpdatesAndABWhileOtherThreadsCallIn) {
  start();
  add(manifest("svc", {"--label", "v0"}));
  std::atomic<bool> running{true};
  std::atomic<std::uint64_t> answered{0};
  std::atomic<std::uint64_t> failed{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 2; ++t) {
    callers.emplace_back([&] {
      while (running.load()) {
        auto reply = supervisor_->request("svc", "whoami", "{}", 30s);
        (reply ? answered : failed).fetch_add(1);
      }
    });
  }
  callers.emplace_back([&] {
    while (running.load()) {
      (void)supervisor_->figures();
      (void)supervisor_->version_counters("svc");
      std::this_thread::sleep_for(2ms);
    }
  });
  const int rounds = static_cast<int>(std::max<std::uint64_t>(scaled(4), 2));
  for (int i = 1; i <= rounds; ++i) {
    auto next = manifest("svc", {"--label", "v" + std::to_string(i)});
    next.version = std::to_string(i) + ".0.0";
    auto updated = supervisor_->update(next, 30s);
    EXPECT_TRUE(updated) << updated.error().message;
    auto candidate = manifest("svc", {"--label", "candidate"});
    candidate.version = std::to_string(i) + ".1.0";
    ASSERT_TRUE(supervisor_->start_ab(candidate, 0.5));
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(supervisor_->end_ab("svc", i % 2 ? supervisor::AbOutcome::keep_baseline
                                                 : supervisor::AbOutcome::keep_candidate));
  }
  running = false;
  for (auto& thread : callers) thread.join();
  EXPECT_GT(answered.load(), 0u);
  EXPECT_EQ(failed.load(), 0u);
  supervisor_.reset();
}

}  // namespace
}  // namespace symphony::test
