// symphony-supervisor-bench: how fast a killed extension is noticed and back at work.
// Immediate restart policy, an idle bus, N kill -9 of the same extension (default 200):
//   kill -> CRASHED   (the pidfd wakes the supervisor thread; target p50 <= 5 ms)
//   kill -> HEALTHY   (fork, exec, hello, ready; target p50 <= 50 ms, p99 <= 150 ms)
// and where the recovery time goes (CRASHED -> RUNNING: fork + exec; RUNNING -> HEALTHY: the
// extension's start-up, its hello and its ready event).
//
//   symphony-supervisor-bench --extension <path> [--kills 200] [--heartbeat-ms 250]
//                             [-- <extension arguments>]

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "symphony/supervisor/supervisor.hpp"

namespace {

using namespace symphony::supervisor;
using Steady = std::chrono::steady_clock;

struct Percentiles {
  double p50 = 0, p99 = 0, max = 0;
};

Percentiles percentiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto at = [&](double p) {
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
  };
  return {at(0.5), at(0.99), v.back()};
}

int usage(const char* self) {
  std::fprintf(stderr, "usage: %s --extension <executable> [--kills N] [--heartbeat-ms M] [-- args]\n",
               self);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string extension;
  int kills = 200;
  int heartbeat_ms = 250;
  std::vector<std::string> extension_args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      extension_args.assign(argv + i + 1, argv + argc);
      break;
    }
    if (arg == "--extension" && i + 1 < argc) {
      extension = argv[++i];
    } else if (arg == "--kills" && i + 1 < argc) {
      kills = std::atoi(argv[++i]);
    } else if (arg == "--heartbeat-ms" && i + 1 < argc) {
      heartbeat_ms = std::atoi(argv[++i]);
    } else {
      return usage(argv[0]);
    }
  }
  if (extension.empty() || kills < 1 || heartbeat_ms < 10) return usage(argv[0]);

  std::mutex mutex;
  std::condition_variable changed;
  std::vector<LifecycleEvent> events;
  SupervisorOptions options;
  options.host.bus = "supbench-" + std::to_string(::getpid());
  options.host.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  options.host.unresponsive_after = std::chrono::milliseconds(heartbeat_ms * 6);
  options.log_dir = "/tmp/" + options.host.bus + "-logs";
  options.on_lifecycle = [&](const LifecycleEvent& e) {
    {
      std::lock_guard lock(mutex);
      events.push_back(e);
    }
    changed.notify_all();
  };
  auto supervisor = Supervisor::start(options);
  if (!supervisor) {
    std::fprintf(stderr, "supervisor: %s\n", supervisor.error().message.c_str());
    return 1;
  }
  Manifest m;
  m.id = "bench";
  m.version = "1";
  m.executable = extension;
  m.args = extension_args;
  // The test extension's --iceoryx-topic NAME: declared, so that the host brings RouDi up (in
  // its own process tree) before the extension starts, as for any extension with iceoryx topics.
  for (std::size_t i = 0; i + 1 < extension_args.size(); ++i) {
    if (extension_args[i] == "--iceoryx-topic") {
      TopicDeclaration topic;
      topic.name = extension_args[i + 1];
      topic.transport = symphony::engine::TopicTransport::iceoryx;
      m.subscribes.push_back(topic);
    }
  }
  m.intensity = {1'000'000, std::chrono::milliseconds(1000)};
  m.start_timeout = std::chrono::seconds(30);
  if (auto added = (*supervisor)->add(m); !added) {
    std::fprintf(stderr, "add: %s\n", added.error().message.c_str());
    return 1;
  }
  // Waits for a transition to `state` at index >= from; returns its index or -1.
  const auto wait_state = [&](LifecycleState state, std::size_t from) -> long {
    std::unique_lock lock(mutex);
    long found = -1;
    changed.wait_for(lock, std::chrono::seconds(30), [&] {
      for (std::size_t i = from; i < events.size(); ++i) {
        if (events[i].to == state) {
          found = static_cast<long>(i);
          return true;
        }
      }
      return false;
    });
    return found;
  };
  if (wait_state(LifecycleState::healthy, 0) < 0) {
    std::fprintf(stderr, "the extension never became HEALTHY\n");
    return 1;
  }
  const auto limits = (*supervisor)->limits();
  std::string args_text;
  for (const std::string& a : extension_args) args_text += " " + a;
  std::printf("symphony-supervisor-bench: %d kills, immediate policy, idle bus, heartbeat %d ms, "
              "limits via memory %s / cpu %s, extension args:%s\n",
              kills, heartbeat_ms, to_string(limits.memory), to_string(limits.cpu),
              args_text.empty() ? " (none)" : args_text.c_str());
  std::vector<double> detect, recover, spawn, start_up;
  for (int i = 0; i < kills; ++i) {
    const auto f = (*supervisor)->figures("bench");
    std::size_t mark;
    {
      std::lock_guard lock(mutex);
      mark = events.size();
    }
    const auto killed_at = Steady::now();
    ::kill(f->pid, SIGKILL);
    const long crashed = wait_state(LifecycleState::crashed, mark);
    const long healthy = wait_state(LifecycleState::healthy, mark);
    const long running = wait_state(LifecycleState::running, mark);
    if (crashed < 0 || healthy < 0 || running < 0) {
      std::fprintf(stderr, "kill %d: no recovery within 30 s\n", i);
      return 1;
    }
    std::lock_guard lock(mutex);
    const auto ms = [](Steady::duration d) {
      return std::chrono::duration<double, std::milli>(d).count();
    };
    detect.push_back(ms(events[crashed].at - killed_at));
    recover.push_back(ms(events[healthy].at - killed_at));
    spawn.push_back(ms(events[running].at - events[crashed].at));
    start_up.push_back(ms(events[healthy].at - events[running].at));
  }
  const auto row = [](const char* name, const std::vector<double>& v, const char* target) {
    const Percentiles p = percentiles(v);
    std::printf("  %-34s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  %s\n", name, p.p50, p.p99,
                p.max, target);
  };
  row("kill -> CRASHED (detected)", detect, "(target p50 <= 5 ms)");
  row("kill -> HEALTHY again", recover, "(target p50 <= 50 ms, p99 <= 150 ms)");
  row("  CRASHED -> RUNNING (fork+exec)", spawn, "");
  row("  RUNNING -> HEALTHY (hello+ready)", start_up, "");
  supervisor->reset();
  std::string logs = options.log_dir.string();
  std::filesystem::remove_all(logs);
  const Percentiles d = percentiles(detect);
  const Percentiles r = percentiles(recover);
  const bool met = d.p50 <= 5.0 && r.p50 <= 50.0 && r.p99 <= 150.0;
  std::printf("targets %s\n", met ? "met" : "NOT met");
  return 0;
}
