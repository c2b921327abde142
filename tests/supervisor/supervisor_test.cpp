// The supervisor with real extension processes: a clean spawn, death by pidfd, the lifecycle and
// its events, restart policies (with a manual clock), hangs, limits, figures, logs, shutdown.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "supervisor_fixture.hpp"
#include "symphony/controlplane/extension.hpp"

namespace symphony::test {
namespace {

using controlplane::JsonReader;
using supervisor::LimitMechanism;
using supervisor::RestartKind;


std::string request(supervisor::Supervisor& s, const std::string& route,
                    const std::string& method) {
  auto reply = s.control().request(route, method, "{}", 10s).get();
  EXPECT_TRUE(reply) << (reply ? "" : reply.error().message);
  return reply.value_or("{}");
}

// The whole file (std::getline: g++ 12 sees a null dereference in istreambuf_iterator).
std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string text;
  std::string line;
  while (std::getline(in, line)) text += line + "\n";
  return text;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

using SupervisorTest = SupervisorFixture;

TEST_F(SupervisorTest, SpawnsACleanOwnedProcess) {
  // A host that ignores SIGPIPE and blocks SIGUSR1 in the thread that starts the supervisor
  // (the supervisor thread inherits the mask): neither may reach the extension.
  struct sigaction ignore {};
  struct sigaction previous {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &previous);
  sigset_t usr1;
  sigset_t old_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);
  // A descriptor the host leaves inheritable: it must not reach the extension either.
  const int leaked = ::open("/dev/zero", O_RDONLY);
  start();
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  add(manifest("clean"));
  healthy("clean");
  ::close(leaked);
  ::sigaction(SIGPIPE, &previous, nullptr);

  const auto f = figures("clean");
  const std::string inspect = request(*supervisor_, "clean/0", "inspect");
  auto reply = JsonReader::parse(inspect);
  ASSERT_TRUE(reply) << inspect;
  auto at_start = JsonReader::parse(reply->raw("start").value_or("{}"));
  ASSERT_TRUE(at_start);
  EXPECT_EQ(at_start->integer("pid"), f.pid);
  EXPECT_EQ(at_start->integer("pgid"), f.pid) << "its own process group";
  EXPECT_EQ(at_start->integer("ppid"), ::getpid());
  EXPECT_EQ(at_start->integer("pdeathsig"), SIGKILL);
  EXPECT_EQ(at_start->integer("blocked_signals"), 0) << "a clean signal mask";
  EXPECT_EQ(at_start->integer("ignored_signals"), 0) << "default dispositions";
  const std::string fds = at_start->raw("fds").value_or("");
  EXPECT_EQ(occurrences(fds, "\"fd\":"), 3u) << "only stdin, stdout, stderr: " << fds;
  EXPECT_NE(fds.find(R"({"fd":0,"target":"/dev/null"})"), std::string::npos) << fds;
  EXPECT_NE(fds.find(R"({"fd":1,"target":"pipe:)"), std::string::npos) << fds;
  EXPECT_NE(fds.find(R"({"fd":2,"target":"pipe:)"), std::string::npos) << fds;
  EXPECT_EQ(reply->integer("generation"), static_cast<std::int64_t>(f.generation));
  EXPECT_EQ(reply->string("bus"), bus_);

  const auto& limits = supervisor_->limits();
  std::printf("limit mechanism: memory %s, cpu %s (%s)\n", to_string(limits.memory),
              to_string(limits.cpu), limits.why.c_str());
  if (limits.memory == LimitMechanism::cgroup_v1) {
    auto groups = JsonReader::parse(at_start->raw("cgroups").value_or("{}"));
    ASSERT_TRUE(groups);
    const std::string memory = groups->string("memory").value_or("");
    EXPECT_NE(memory.find(limits.memory_group.filename().string() + "/clean.0"),
              std::string::npos)
        << "joined its memory cgroup before exec: " << memory;
    const std::string cpu = groups->string("cpu").value_or("");
    EXPECT_NE(cpu.find(limits.cpu_group.filename().string() + "/clean.0"), std::string::npos)
        << cpu;
  }
  // Its stdout went to its log.
  EXPECT_TRUE(eventually(
      [&] {
        return read_file(f.log_file).find("test-extension clean/0 generation") != std::string::npos;
      },
      5s));
}

TEST_F(SupervisorTest, KillNineIsCrashedThenRestartedToHealthy) {
  start();
  add(manifest("victim"));
  healthy("victim");
  const auto before = figures("victim");
  ASSERT_GT(before.pid, 0);
  const std::size_t mark = events_.size();
  ASSERT_EQ(::kill(before.pid, SIGKILL), 0);

  const long crashed = events_.wait_state("victim", LifecycleState::crashed, 10s, mark);
  ASSERT_GE(crashed, 0);
  const LifecycleEvent e = events_.at(crashed);
  EXPECT_NE(e.reason.find("killed by signal 9 (SIGKILL)"), std::string::npos) << e.reason;
  EXPECT_NE(e.reason.find("immediate restart"), std::string::npos) << e.reason;
  EXPECT_EQ(e.pid, before.pid);
  EXPECT_EQ(e.from, LifecycleState::healthy);
  const long back = healthy("victim", static_cast<std::size_t>(crashed));
  ASSERT_GE(back, 0);
  // CRASHED -> STARTING -> RUNNING -> HEALTHY, in that order.
  EXPECT_GE(events_.wait_state("victim", LifecycleState::starting, 0ms, crashed), crashed);
  EXPECT_GT(events_.wait_state("victim", LifecycleState::running, 0ms, crashed),
            events_.wait_state("victim", LifecycleState::starting, 0ms, crashed));

  const auto after = figures("victim");
  EXPECT_NE(after.pid, before.pid);
  EXPECT_EQ(after.restarts, 1u);
  // The next generation is registered at the death; the dead one's token is refused from then.
  EXPECT_EQ(after.generation, before.generation + 1);
  EXPECT_FALSE(process_exists(before.pid));
  // The new generation answers on the same route.
  EXPECT_NE(request(*supervisor_, "victim/0", "inspect").find("\"generation\":"),
            std::string::npos);
}

TEST_F(SupervisorTest, ExitCodeAndLastOutputInTheReasonAndManualWaits) {
  start();
  auto m = manifest("quitter", {"--exit-after-ms", "50", "--exit-code", "7"});
  m.restart.kind = RestartKind::manual;
  add(m);
  const long crashed = events_.wait_state("quitter", LifecycleState::crashed);
  ASSERT_GE(crashed, 0);
  const std::string reason = events_.at(crashed).reason;
  EXPECT_NE(reason.find("exited with code 7"), std::string::npos) << reason;
  EXPECT_NE(reason.find("last output: test-extension: exiting as asked"), std::string::npos)
      << reason;
  EXPECT_NE(reason.find("manual"), std::string::npos) << reason;
  // Manual: it stays down.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(events_.count("quitter", LifecycleState::starting), 1);
  EXPECT_EQ(figures("quitter").state, LifecycleState::crashed);
  EXPECT_EQ(figures("quitter").pid, 0);
  // Until started by hand.
  const std::size_t mark = events_.size();
  ASSERT_TRUE(supervisor_->start("quitter"));
  EXPECT_GE(events_.wait_state("quitter", LifecycleState::healthy, 20s, mark), 0);
}

TEST_F(SupervisorTest, SigstopIsAHangKilledAndRestarted) {
  start();
  add(manifest("sleeper"));
  healthy("sleeper");
  const pid_t pid = figures("sleeper").pid;
  const std::size_t mark = events_.size();
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);

  const long stopping = events_.wait_state("sleeper", LifecycleState::stopping, 20s, mark);
  ASSERT_GE(stopping, 0);
  EXPECT_NE(events_.at(stopping).reason.find("hang"), std::string::npos)
      << events_.at(stopping).reason;
  const long crashed = events_.wait_state("sleeper", LifecycleState::crashed, 10s, mark);
  ASSERT_GE(crashed, 0);
  const std::string reason = events_.at(crashed).reason;
  EXPECT_NE(reason.find("hang"), std::string::npos) << reason;
  // SIGTERM went with SIGCONT, so the stopped process died of it.
  EXPECT_NE(reason.find("killed by signal 15 (SIGTERM)"), std::string::npos) << reason;
  EXPECT_GE(healthy("sleeper", static_cast<std::size_t>(crashed)), 0);
  EXPECT_NE(figures("sleeper").pid, pid);
}

TEST_F(SupervisorTest, AHangThatIgnoresSigtermIsKilledWithSigkill) {
  start();
  add(manifest("stubborn", {"--ignore-term"}));
  healthy("stubborn");
  const pid_t pid = figures("stubborn").pid;
  const std::size_t mark = events_.size();
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  const long crashed = events_.wait_state("stubborn", LifecycleState::crashed, 20s, mark);
  ASSERT_GE(crashed, 0);
  const std::string reason = events_.at(crashed).reason;
  EXPECT_NE(reason.find("hang"), std::string::npos) << reason;
  EXPECT_NE(reason.find("killed by signal 9 (SIGKILL)"), std::string::npos) << reason;
  EXPECT_GE(healthy("stubborn", static_cast<std::size_t>(crashed)), 0);
}

TEST_F(SupervisorTest, ADeadlockedCallbackIsAHang) {
  start();
  auto m = manifest("stuck");
  m.hang_timeout = kSanitized ? 1500ms : 500ms;
  add(m);
  healthy("stuck");
  const pid_t pid = figures("stuck").pid;
  const std::size_t mark = events_.size();
  // Its request callback never returns; its heartbeats say how long it has been running.
  supervisor_->control().request("stuck/0", "deadlock", "{}", 60s,
                                 [](engine::Result<std::string>) {});
  const long crashed = events_.wait_state("stuck", LifecycleState::crashed, 30s, mark);
  ASSERT_GE(crashed, 0);
  EXPECT_NE(events_.at(crashed).reason.find("hang"), std::string::npos)
      << events_.at(crashed).reason;
  EXPECT_GE(healthy("stuck", static_cast<std::size_t>(crashed)), 0);
  EXPECT_NE(figures("stuck").pid, pid);
}

TEST_F(SupervisorTest, NoReadySignalIsAStartTimeout) {
  start();
  auto m = manifest("mute", {"--no-ready"});
  m.start_timeout = kSanitized ? 3s : 1s;
  m.restart.kind = RestartKind::manual;
  add(m);
  const long crashed = events_.wait_state("mute", LifecycleState::crashed, 30s);
  ASSERT_GE(crashed, 0);
  EXPECT_NE(events_.at(crashed).reason.find("start timeout"), std::string::npos)
      << events_.at(crashed).reason;
  EXPECT_NE(events_.at(crashed).reason.find("hello seen"), std::string::npos)
      << events_.at(crashed).reason;
  EXPECT_EQ(events_.count("mute", LifecycleState::healthy), 0);
}

TEST_F(SupervisorTest, AGrandchildThatLeftTheProcessGroupDiesWithItsCgroup) {
  start();
  if (supervisor_->limits().memory != LimitMechanism::cgroup_v1 &&
      supervisor_->limits().memory != LimitMechanism::cgroup_v2) {
    GTEST_SKIP() << "no cgroups here: " << supervisor_->limits().why;
  }
  add(manifest("parent", {"--grandchild"}));
  healthy("parent");
  auto reply = JsonReader::parse(request(*supervisor_, "parent/0", "inspect"));
  ASSERT_TRUE(reply);
  const auto grandchild = static_cast<pid_t>(reply->integer("grandchild").value_or(0));
  ASSERT_GT(grandchild, 0);
  ASSERT_TRUE(process_exists(grandchild));
  ASSERT_NE(::getpgid(grandchild), figures("parent").pid) << "it left the process group";
  const std::size_t mark = events_.size();
  ::kill(figures("parent").pid, SIGKILL);
  ASSERT_GE(events_.wait_state("parent", LifecycleState::crashed, 10s, mark), 0);
  EXPECT_TRUE(eventually([&] { return !process_exists(grandchild); }, 5s))
      << "the setsid grandchild " << grandchild << " survived";
}

TEST_F(SupervisorTest, MemoryLimitBreachKillsOnlyThatExtension) {
  start();
  const auto& limits = supervisor_->limits();
  if (limits.memory != LimitMechanism::cgroup_v1 && limits.memory != LimitMechanism::cgroup_v2) {
    GTEST_SKIP() << "no memory cgroup here: " << limits.why;
  }
  add(manifest("bystander"));
  healthy("bystander");
  const pid_t bystander = figures("bystander").pid;
  auto hog = manifest("hog", {"--hog-mib", "1024"});
  hog.limits.memory_bytes = (kSanitized ? 192u : 64u) << 20;
  hog.restart.kind = RestartKind::manual;
  add(hog);

  const long crashed = events_.wait_state("hog", LifecycleState::crashed, 60s);
  ASSERT_GE(crashed, 0);
  const std::string reason = events_.at(crashed).reason;
  std::printf("hog: %s\n", reason.c_str());
  EXPECT_NE(reason.find("OOM killer"), std::string::npos) << reason;
  EXPECT_NE(reason.find(std::string(to_string(limits.memory))), std::string::npos) << reason;
  EXPECT_NE(reason.find(limits.memory == LimitMechanism::cgroup_v1 ? "memory.oom_control"
                                                                    : "memory.events"),
            std::string::npos)
      << reason;
  EXPECT_NE(reason.find("killed by signal 9"), std::string::npos) << reason;
  EXPECT_GE(figures("hog").oom_kills, 1u);
  // The bystander did not notice.
  const auto b = figures("bystander");
  EXPECT_EQ(b.state, LifecycleState::healthy);
  EXPECT_EQ(b.pid, bystander);
  EXPECT_EQ(b.restarts, 0u);
  EXPECT_EQ(b.oom_kills, 0u);
}

TEST_F(SupervisorTest, RlimitFallbackWhenCgroupsAreDisabled) {
  if (kSanitized) {
    GTEST_SKIP() << "RLIMIT_DATA counts a sanitizer's shadow reservation: no such process fits";
  }
  auto o = options();
  o.cgroups = supervisor::CgroupUse::disabled;
  start(o);
  const auto& limits = supervisor_->limits();
  EXPECT_EQ(limits.memory, LimitMechanism::rlimit);
  EXPECT_EQ(limits.cpu, LimitMechanism::none);
  EXPECT_NE(limits.why.find("disabled"), std::string::npos) << limits.why;
  EXPECT_NE(limits.why.find("not RLIMIT_AS"), std::string::npos) << limits.why;
  // A CPU limit cannot be enforced: refused, not silently ignored.
  auto cpu = manifest("cpu");
  cpu.limits.cpu_cores = 0.5;
  auto refused = supervisor_->add(cpu);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, engine::Errc::unsupported);
  EXPECT_NE(refused.error().message.find("cpu_cores"), std::string::npos);
  // The memory limit holds: its allocation fails and it exits.
  auto hog = manifest("hog", {"--hog-mib", "1024"});
  hog.limits.memory_bytes = 256u << 20;
  hog.restart.kind = RestartKind::manual;
  add(hog);
  const long crashed = events_.wait_state("hog", LifecycleState::crashed, 30s);
  ASSERT_GE(crashed, 0);
  EXPECT_NE(events_.at(crashed).reason.find("malloc failed"), std::string::npos)
      << events_.at(crashed).reason;
}

TEST_F(SupervisorTest, CpuLimitThrottles) {
  start();
  const auto& limits = supervisor_->limits();
  if (limits.cpu != LimitMechanism::cgroup_v1 && limits.cpu != LimitMechanism::cgroup_v2) {
    GTEST_SKIP() << "no cpu cgroup here: " << limits.why;
  }
  // Side by side: the same burner with and without a tenth of a CPU.
  auto limited = manifest("limited", {"--burn-cpu"});
  limited.limits.cpu_cores = 0.1;
  add(limited);
  add(manifest("free", {"--burn-cpu"}));
  healthy("limited");
  healthy("free");
  const auto limited_start = figures("limited").cpu_time;
  const auto free_start = figures("free").cpu_time;
  std::this_thread::sleep_for(2s);
  const auto l = figures("limited");
  const auto f = figures("free");
  const auto limited_used = l.cpu_time - limited_start;
  const auto free_used = f.cpu_time - free_start;
  std::printf("2 s: limited (0.1 CPU) used %.3f s, throttled %llu times; unlimited used %.3f s\n",
              std::chrono::duration<double>(limited_used).count(),
              static_cast<unsigned long long>(l.cpu_throttled),
              std::chrono::duration<double>(free_used).count());
  EXPECT_GT(l.cpu_throttled, 0u);
  EXPECT_EQ(f.cpu_throttled, 0u);
  EXPECT_LT(limited_used * 2, free_used);
}

TEST_F(SupervisorTest, BackoffAndIntensityFollowTheManualClock) {
  auto clock = std::make_shared<supervisor::ManualClock>();
  auto o = options();
  o.clock = clock;
  start(o);
  auto m = manifest("flaky", {"--exit-after-ms", "20"});
  m.restart.kind = RestartKind::backoff;
  m.restart.backoff = {1000ms, 2.0, 3000ms, 3600s};
  m.intensity = {3, 3600s};
  add(m);

  // Crash 1: restart due in 1000 ms of the test's clock.
  long crashed = events_.wait_state("flaky", LifecycleState::crashed);
  ASSERT_GE(crashed, 0);
  EXPECT_NE(events_.at(crashed).reason.find("restart in 1000 ms"), std::string::npos)
      << events_.at(crashed).reason;
  std::this_thread::sleep_for(300ms);  // real time passing changes nothing
  EXPECT_EQ(events_.count("flaky", LifecycleState::starting), 1);
  clock->advance(999ms);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(events_.count("flaky", LifecycleState::starting), 1);
  clock->advance(1ms);
  ASSERT_GE(events_.wait_state("flaky", LifecycleState::starting, 10s, crashed), 0);

  // Crash 2: 2000 ms; crash 3: capped at 3000 ms.
  for (const int delay : {2000, 3000}) {
    crashed = events_.wait_state("flaky", LifecycleState::crashed, 20s, crashed + 1);
    ASSERT_GE(crashed, 0);
    EXPECT_NE(events_.at(crashed).reason.find("restart in " + std::to_string(delay) + " ms"),
              std::string::npos)
        << events_.at(crashed).reason;
    clock->advance(std::chrono::milliseconds(delay));
    ASSERT_GE(events_.wait_state("flaky", LifecycleState::starting, 10s, crashed), 0);
  }
  // Crash 4: three restarts already within the period: FAILED, with an event.
  const long failed = events_.wait_state("flaky", LifecycleState::failed, 20s, crashed + 1);
  ASSERT_GE(failed, 0);
  EXPECT_NE(events_.at(failed).reason.find("restart intensity exceeded"), std::string::npos)
      << events_.at(failed).reason;
  clock->advance(1h);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(figures("flaky").state, LifecycleState::failed);
  EXPECT_EQ(figures("flaky").restarts, 3u);
}

TEST_F(SupervisorTest, AnExecutableThatCannotBeExecutedIsFailed) {
  start();
  const auto bad = log_dir_ / "not-an-elf";
  std::filesystem::create_directories(log_dir_);
  {
    std::ofstream out(bad);
    out << "\x7f" << "garbage";
  }
  ::chmod(bad.c_str(), 0755);
  auto m = manifest("broken");
  m.executable = bad;
  add(m);
  const long failed = events_.wait_state("broken", LifecycleState::failed);
  ASSERT_GE(failed, 0);
  EXPECT_NE(events_.at(failed).reason.find("exec: Exec format error"), std::string::npos)
      << events_.at(failed).reason;
  EXPECT_EQ(events_.count("broken", LifecycleState::running), 0);
}

TEST_F(SupervisorTest, FiguresDescribeARunningInstance) {
  start();
  auto m = manifest("measured");
  m.limits.memory_bytes = 512u << 20;
  add(m);
  healthy("measured");
  std::this_thread::sleep_for(200ms);
  const auto f = figures("measured");
  EXPECT_EQ(f.extension, "measured");
  EXPECT_EQ(f.version, "1.0.0");
  EXPECT_EQ(f.state, LifecycleState::healthy);
  EXPECT_GT(f.pid, 0);
  EXPECT_GT(f.rss_bytes, 1u << 20);
  EXPECT_GT(f.uptime, 100ms);
  ASSERT_TRUE(f.last_heartbeat_age.has_value());
  EXPECT_LT(*f.last_heartbeat_age, 2s);
  EXPECT_EQ(f.restarts, 0u);
  EXPECT_EQ(f.memory_limit_bytes, 512u << 20);
  EXPECT_TRUE(std::filesystem::exists(f.log_file));
  if (supervisor_->limits().memory == LimitMechanism::cgroup_v1) {
    EXPECT_GT(f.memory_usage_bytes, 0u);
  }
  const auto all = supervisor_->figures();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].pid, f.pid);
  EXPECT_FALSE(supervisor_->figures("nobody").has_value());
}

TEST_F(SupervisorTest, LateJoinersGetTheLifecycleSnapshot) {
  start();
  add(manifest("watched"));
  healthy("watched");
  // An observer connects after the fact: the state snapshot carries the last transition.
  auto registration = supervisor_->control().register_extension("observer");
  controlplane::ExtensionOptions o;
  o.bus = bus_;
  o.extension = registration.extension;
  o.instance = registration.instance;
  o.generation = registration.generation;
  o.token = registration.token;
  o.control_endpoint = supervisor_->control().control_endpoint();
  auto observer = controlplane::ExtensionChannel::connect(o, {});
  ASSERT_TRUE(observer) << observer.error().message;
  ASSERT_TRUE((*observer)->wait_ready(10s));
  const auto state = (*observer)->state();
  auto it = state.find("supervisor/watched/0");
  ASSERT_NE(it, state.end());
  auto value = JsonReader::parse(it->second);
  ASSERT_TRUE(value);
  EXPECT_EQ(value->string("state"), "HEALTHY");
  EXPECT_EQ(value->integer("pid"), figures("watched").pid);
  EXPECT_TRUE(value->string("reason").has_value());
}

TEST_F(SupervisorTest, LogsAreBounded) {
  auto o = options();
  o.log_max_bytes = 64 << 10;
  start(o);
  add(manifest("chatty", {"--print-lines", "5000"}));  // 500 KB
  healthy("chatty");
  const auto log = figures("chatty").log_file;
  auto rotated = log;
  rotated += ".1";
  ASSERT_TRUE(eventually(
      [&] {
        const std::string text = read_file(log);
        return text.find("generation") != std::string::npos &&
               text.find("line 00004999") != std::string::npos;
      },
      10s));
  EXPECT_TRUE(std::filesystem::exists(rotated));
  EXPECT_LE(std::filesystem::file_size(log) + std::filesystem::file_size(rotated), 64u << 10);
}

TEST_F(SupervisorTest, StopIsTerminatedAndShutdownLeavesNothingBehind) {
  start();
  auto m = manifest("pair");
  m.instances = 2;
  add(m);
  add(manifest("single"));
  healthy("single");
  ASSERT_TRUE(events_.wait_for(
      [](const LifecycleEvent& e) {
        return e.extension == "pair" && e.instance == 1 && e.to == LifecycleState::healthy;
      },
      30s) >= 0);
  ASSERT_TRUE(events_.wait_for(
      [](const LifecycleEvent& e) {
        return e.extension == "pair" && e.instance == 0 && e.to == LifecycleState::healthy;
      },
      30s) >= 0);
  // stop(): the stop command, and it exits 0.
  const pid_t single = figures("single").pid;
  ASSERT_TRUE(supervisor_->stop("single"));
  const long terminated = events_.wait_state("single", LifecycleState::terminated, 10s);
  ASSERT_GE(terminated, 0);
  EXPECT_NE(events_.at(terminated).reason.find("exited with code 0"), std::string::npos)
      << events_.at(terminated).reason;
  EXPECT_FALSE(process_exists(single));
  EXPECT_EQ(figures("single").restarts, 0u) << "a requested stop is no crash";

  const std::vector<pid_t> pids{figures("pair", 0).pid, figures("pair", 1).pid};
  const auto limits = supervisor_->limits();
  supervisor_.reset();
  for (const pid_t pid : pids) EXPECT_FALSE(process_exists(pid)) << pid;
  EXPECT_EQ(events_.count("pair", LifecycleState::terminated), 2);
  EXPECT_EQ(events_.count("pair", LifecycleState::crashed), 0);
  if (!limits.memory_group.empty()) {
    EXPECT_FALSE(std::filesystem::exists(limits.memory_group));
  }
  if (!limits.cpu_group.empty()) {
    EXPECT_FALSE(std::filesystem::exists(limits.cpu_group));
  }
  EXPECT_FALSE(std::filesystem::exists(runtime_dir_ / "control"));
}

TEST_F(SupervisorTest, RestartByHandAndRemove) {
  start();
  add(manifest("cycled"));
  healthy("cycled");
  const pid_t first = figures("cycled").pid;
  const std::size_t mark = events_.size();
  ASSERT_TRUE(supervisor_->restart("cycled"));
  ASSERT_GE(events_.wait_state("cycled", LifecycleState::terminated, 10s, mark), 0);
  ASSERT_GE(healthy("cycled", mark), 0);
  EXPECT_NE(figures("cycled").pid, first);
  const pid_t second = figures("cycled").pid;
  ASSERT_TRUE(supervisor_->remove("cycled"));
  EXPECT_FALSE(process_exists(second));
  EXPECT_FALSE(supervisor_->figures("cycled").has_value());
  EXPECT_FALSE(supervisor_->stop("cycled"));
  // Added again under the same id.
  add(manifest("cycled"));
  EXPECT_GE(healthy("cycled", mark), 0);
}

TEST_F(SupervisorTest, DuplicateIdIsRefused) {
  start();
  add(manifest("once"));
  auto again = supervisor_->add(manifest("once"));
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("already supervised"), std::string::npos);
}

}  // namespace
}  // namespace symphony::test
