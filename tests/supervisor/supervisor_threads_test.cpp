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

}  // namespace
}  // namespace symphony::test
