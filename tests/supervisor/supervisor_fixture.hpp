#pragma once
// Shared by the supervisor tests: a supervisor on a bus of its own with fast heartbeats, every
// lifecycle event recorded, and manifests for the test extension.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "symphony/supervisor/supervisor.hpp"
#include "test_scale.hpp"

#ifndef SYMPHONY_TEST_EXTENSION
#error "SYMPHONY_TEST_EXTENSION must name the test extension's executable"
#endif

namespace symphony::test {

using namespace std::chrono_literals;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
// Silence that counts as a hang: sanitized processes on a busy machine stall longer.
inline constexpr std::chrono::milliseconds kUnresponsiveAfter = kSanitized ? 2000ms : 600ms;
using supervisor::LifecycleEvent;
using supervisor::LifecycleState;

// Every lifecycle event, waitable.
class EventLog {
 public:
  void record(const LifecycleEvent& event) {
    {
      std::lock_guard lock(mutex_);
      events_.push_back(event);
    }
    changed_.notify_all();
  }

  // Waits until some event from index `from` on satisfies `match`; returns its index or -1.
  long wait_for(const std::function<bool(const LifecycleEvent&)>& match,
                std::chrono::milliseconds timeout, std::size_t from = 0) {
    std::unique_lock lock(mutex_);
    long found = -1;
    changed_.wait_for(lock, timeout, [&] {
      for (std::size_t i = from; i < events_.size(); ++i) {
        if (match(events_[i])) {
          found = static_cast<long>(i);
          return true;
        }
      }
      return false;
    });
    return found;
  }

  // The first event of `extension` reaching `state` from index `from` on (-1: none in time).
  long wait_state(const std::string& extension, LifecycleState state,
                  std::chrono::milliseconds timeout = 20s, std::size_t from = 0) {
    return wait_for(
        [&](const LifecycleEvent& e) { return e.extension == extension && e.to == state; },
        timeout, from);
  }

  LifecycleEvent at(long index) const {
    std::lock_guard lock(mutex_);
    return events_.at(static_cast<std::size_t>(index));
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return events_.size();
  }

  int count(const std::string& extension, LifecycleState state) const {
    std::lock_guard lock(mutex_);
    return static_cast<int>(std::count_if(events_.begin(), events_.end(), [&](const auto& e) {
      return e.extension == extension && e.to == state;
    }));
  }

  std::string dump() const {
    std::lock_guard lock(mutex_);
    std::string text;
    for (const auto& e : events_) {
      text += e.extension + "/" + std::to_string(e.instance) + " " + to_string(e.from) + " -> " +
              to_string(e.to) + " (pid " + std::to_string(e.pid) + "): " + e.reason + "\n";
    }
    return text;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<LifecycleEvent> events_;
};

class SupervisorFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    bus_ = "supt-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    log_dir_ = std::filesystem::temp_directory_path() / ("symphony-supervisor-test-" + bus_);
  }

  void TearDown() override {
    supervisor_.reset();
    std::error_code ec;
    std::filesystem::remove_all(log_dir_, ec);
    if (!runtime_dir_.empty()) std::filesystem::remove_all(runtime_dir_, ec);
    if (HasFailure()) std::fprintf(stderr, "lifecycle events:\n%s", events_.dump().c_str());
  }

  supervisor::SupervisorOptions options() {
    supervisor::SupervisorOptions o;
    o.host.bus = bus_;
    o.host.heartbeat_interval = 50ms;
    o.host.unresponsive_after = kUnresponsiveAfter;
    o.log_dir = log_dir_;
    o.stop_grace = 2s;
    o.kill_grace = 300ms;
    o.on_lifecycle = [this](const LifecycleEvent& e) { events_.record(e); };
    return o;
  }

  void start(supervisor::SupervisorOptions o) {
    auto s = supervisor::Supervisor::start(std::move(o));
    ASSERT_TRUE(s) << s.error().message;
    supervisor_ = std::move(*s);
    const std::string endpoint = supervisor_->control().control_endpoint();
    // ipc://<runtime dir>/control
    runtime_dir_ = std::filesystem::path(endpoint.substr(6)).parent_path();
  }

  void start() { start(options()); }

  static supervisor::Manifest manifest(const std::string& id, std::vector<std::string> args = {}) {
    supervisor::Manifest m;
    m.id = id;
    m.version = "1.0.0";
    m.executable = SYMPHONY_TEST_EXTENSION;
    m.args = std::move(args);
    m.hang_timeout = kUnresponsiveAfter * 3;
    // Sanitizer builds start slowly on a busy machine.
    m.start_timeout = 30s;
    m.intensity = {1'000'000, 1s};
    return m;
  }

  void add(supervisor::Manifest m) {
    auto added = supervisor_->add(std::move(m));
    ASSERT_TRUE(added) << added.error().message;
  }

  supervisor::ExtensionFigures figures(const std::string& id, int instance = 0) {
    auto f = supervisor_->figures(id, instance);
    EXPECT_TRUE(f.has_value());
    return f.value_or(supervisor::ExtensionFigures{});
  }

  // Waits for `id` to be HEALTHY from event `from` on; returns the event's index.
  long healthy(const std::string& id, std::size_t from = 0) {
    const long index = events_.wait_state(id, LifecycleState::healthy, 30s, from);
    EXPECT_GE(index, 0) << id << " did not become HEALTHY";
    return index;
  }

  std::string bus_;
  std::filesystem::path log_dir_;
  std::filesystem::path runtime_dir_;
  EventLog events_;
  std::unique_ptr<supervisor::Supervisor> supervisor_;
};

inline bool process_exists(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0) return errno != ESRCH;
  // A zombie runs no code: it counts as gone.
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return false;
  char line[512] = {};
  const bool read = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  const char* close = read ? std::strrchr(line, ')') : nullptr;
  return close == nullptr || close[2] != 'Z';
}

}  // namespace symphony::test
