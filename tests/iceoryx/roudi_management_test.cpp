// RouDi management: a host brings RouDi up through a keeper, a second host uses it, RouDi stays
// while any host lives (whichever exits first, even by SIGKILL) and is stopped when the last one
// is gone, leaving no process, shared memory or socket behind; hosts starting at once start one
// RouDi; a RouDi we did not start is used and left alone.

#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "iceoryx/iceoryx_internal.hpp"
#include "iceoryx/roudi_lease.hpp"
#include "iceoryx_test_support.hpp"

extern char** environ;

namespace symphony::test::ice {
namespace {

using engine::Frame;
using engine::Overflow;
using engine::RingStatus;

// Proves (in a child) that RouDi serves this process: a publisher and a subscriber of its own
// exchange a few samples.
void exchange_in_process(const std::shared_ptr<detail::IceoryxSession>& session,
                         const std::string& topic) {
  auto s = detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(64),
                                           sub_options(16, Overflow::block), nullptr);
  ICE_CHILD_OK(s);
  auto p = detail::make_iceoryx_publisher(session, kBus, topic, {}, iceoryx_options(64), nullptr);
  ICE_CHILD_OK(p);
  wait_subscribers(**p, 1);
  publish_range(**p, 0, 3);
  for (std::uint64_t seq = 0; seq < 3; ++seq) {
    const Frame f = (*s)->take(engine::WaitStrategy::sleeping(), deadline_in(5s));
    SYM_CHILD_CHECK_MSG(f.ok() && check(f.bytes(), seq), "sample " + std::to_string(seq));
  }
  (*s)->release();
}

// A host: opens a session, reports the RouDi pid it sees in flags[slot], checks RouDi works,
// then stays until flags[release] is set.
struct Host {
  SharedArray<std::uint64_t>& flags;
  std::size_t slot;
  std::size_t release;
  std::string topic;
  void operator()() const {
    auto session = child_session();
    SYM_CHILD_CHECK(session->roudi_ours());
    exchange_in_process(session, topic);
    set_flag(flags, slot, static_cast<std::uint64_t>(keeper_state().roudi));
    SYM_CHILD_CHECK(wait_flag(flags, release, 1, 120s));
    exchange_in_process(session, topic + ".again");  // RouDi still serves it
  }
};

using RoudiManagement = IceoryxTest;

TEST_F(RoudiManagement, SecondHostKeepsWorkingAfterFirstExitsAndTheLastStopsRoudi) {
  SharedArray<std::uint64_t> flags(8);  // 0,1,2: RouDi pid seen by A, B, C; 3,4,5: release A, B, C
  ChildProcess a(Host{flags, 0, 3, topic_name("a")});
  const pid_t pid_a = a.pid();
  ASSERT_TRUE(wait_flag(flags, 0, 1)) << keeper_log();
  const KeeperState state = keeper_state();
  ASSERT_GT(state.roudi, 0);
  ASSERT_GT(state.keeper, 0);
  EXPECT_EQ(static_cast<long>(flags[0]), state.roudi);
  // The keeper is detached from its host: not its child, in a session of its own.
  EXPECT_NE(::getsid(static_cast<pid_t>(state.keeper)), ::getsid(a.pid()));

  ChildProcess b(Host{flags, 1, 4, topic_name("b")});
  const pid_t pid_b = b.pid();
  ASSERT_TRUE(wait_flag(flags, 1, 1));
  EXPECT_EQ(static_cast<long>(flags[1]), state.roudi) << "the second host started another RouDi";

  // The first host leaves; the second keeps working on the same RouDi.
  set_flag(flags, 3, 1);
  const ChildStatus sa = a.wait(30s);
  ASSERT_TRUE(sa.ok()) << sa;
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(roudi::pid_alive(state.roudi)) << "RouDi stopped although host B still uses it";

  // A third host arriving now uses it too.
  ChildProcess c(Host{flags, 2, 5, topic_name("c")});
  const pid_t pid_c = c.pid();
  ASSERT_TRUE(wait_flag(flags, 2, 1));
  EXPECT_EQ(static_cast<long>(flags[2]), state.roudi);
  EXPECT_EQ(processes_named("iox-roudi").size(), 1u);

  set_flag(flags, 4, 1);
  const ChildStatus sb = b.wait(30s);
  EXPECT_TRUE(sb.ok()) << sb;
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(roudi::pid_alive(state.roudi)) << "RouDi stopped although host C still uses it";

  set_flag(flags, 5, 1);
  const ChildStatus sc = c.wait(30s);
  EXPECT_TRUE(sc.ok()) << sc;
  EXPECT_TRUE(eventually_roudi_gone(state)) << keeper_log();
  // The hosts' iceoryx sockets are gone too (the children _exit() without iceoryx's clean-up,
  // like killed processes: the keeper removes what they left).
  for (const pid_t pid : {pid_a, pid_b, pid_c}) {
    const std::string app = std::string("/tmp/") + roudi::kRuntimeNamePrefix + std::to_string(pid);
    EXPECT_FALSE(file_exists(app)) << app;
    EXPECT_FALSE(file_exists(app + ".lock")) << app << ".lock";
  }
}

TEST_F(RoudiManagement, HostKilledWithSigkillStillLetsRoudiStopAfterTheLast) {
  SharedArray<std::uint64_t> flags(8);
  ChildProcess a(Host{flags, 0, 3, topic_name("a")});
  ASSERT_TRUE(wait_flag(flags, 0, 1)) << keeper_log();
  ChildProcess b(Host{flags, 1, 4, topic_name("b")});
  ASSERT_TRUE(wait_flag(flags, 1, 1));
  const KeeperState state = keeper_state();
  const pid_t killed = a.pid();
  a.kill9();
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(roudi::pid_alive(state.roudi)) << "RouDi stopped although host B still uses it";
  set_flag(flags, 4, 1);  // B exchanges samples once more, then exits
  const ChildStatus sb = b.wait(30s);
  EXPECT_TRUE(sb.ok()) << sb;
  EXPECT_TRUE(eventually_roudi_gone(state)) << keeper_log();
  // The killed host's iceoryx socket and lock file were cleaned up by the keeper.
  const std::string app = std::string("/tmp/") + roudi::kRuntimeNamePrefix + std::to_string(killed);
  EXPECT_FALSE(file_exists(app)) << app;
  EXPECT_FALSE(file_exists(app + ".lock")) << app << ".lock";
}

TEST_F(RoudiManagement, HostsStartingAtOnceStartOneRoudi) {
  constexpr int kHosts = 4;
  SharedArray<std::uint64_t> flags(16);  // 0..3: RouDi pid seen; 8: go; 9: release all
  std::vector<std::unique_ptr<ChildProcess>> hosts;
  for (int i = 0; i < kHosts; ++i) {
    hosts.push_back(std::make_unique<ChildProcess>([&, i] {
      SYM_CHILD_CHECK(wait_flag(flags, 8, 1));
      Host{flags, static_cast<std::size_t>(i), 9, topic_name("h" + std::to_string(i))}();
    }));
  }
  set_flag(flags, 8, 1);
  for (int i = 0; i < kHosts; ++i) ASSERT_TRUE(wait_flag(flags, i, 1, 60s)) << keeper_log();
  const KeeperState state = keeper_state();
  for (int i = 0; i < kHosts; ++i) EXPECT_EQ(static_cast<long>(flags[i]), state.roudi) << "host " << i;
  EXPECT_EQ(processes_named("iox-roudi").size(), 1u);
  set_flag(flags, 9, 1);
  for (auto& h : hosts) {
    const ChildStatus s = h->wait(60s);
    EXPECT_TRUE(s.ok()) << s;
  }
  EXPECT_TRUE(eventually_roudi_gone(state)) << keeper_log();
}

// Hosts come and go in quick succession with no linger (SYMPHONY_ROUDI_LINGER_MS=0, inherited
// by the keeper): a host that arrives while the keeper tears the previous RouDi down waits for
// it and then starts a fresh one; none fails, and each round gets a RouDi of its own.
TEST_F(RoudiManagement, HostArrivingDuringTeardownGetsAFreshRoudi) {
  KeeperState last;
  std::vector<long> roudis;
  for (int round = 0; round < 6; ++round) {
    const std::string topic = topic_name("r" + std::to_string(round));
    SharedArray<std::uint64_t> seen(1);
    const ChildStatus s = run_in_child(
        [&] {
          ::setenv("SYMPHONY_ROUDI_LINGER_MS", "0", 1);
          auto session = child_session();
          set_flag(seen, 0, static_cast<std::uint64_t>(keeper_state().roudi));
          exchange_in_process(session, topic);
        },
        60s);
    ASSERT_TRUE(s.ok()) << "round " << round << ": " << s << "\n" << keeper_log();
    roudis.push_back(static_cast<long>(seen[0]));
    last = keeper_state();
  }
  EXPECT_TRUE(eventually_roudi_gone(last)) << keeper_log();
  // A fresh RouDi each round (different pids; a pid may come back only after wrapping).
  std::sort(roudis.begin(), roudis.end());
  EXPECT_EQ(std::unique(roudis.begin(), roudis.end()) - roudis.begin(), 6);
}

// Deterministic version: RouDi takes a second to stop (a wrapper delays its SIGTERM), and the
// second host arrives while the keeper holds start.lock tearing it down. It waits, then finds no
// keeper and starts a fresh one.
TEST_F(RoudiManagement, HostArrivingWhileTheKeeperStopsRoudiWaitsForAFreshOne) {
  const std::string wrapper = "/tmp/symtest-slow-roudi-" + std::to_string(::getpid()) + ".sh";
  {
    std::ofstream out(wrapper);
    out << "#!/bin/sh\n\"" << roudi::find_iox_roudi() << "\" \"$@\" &\nchild=$!\n"
        << "trap 'sleep 1; kill -TERM $child; wait $child; exit 0' TERM\nwait $child\n";
  }
  ASSERT_EQ(::chmod(wrapper.c_str(), 0700), 0);
  SharedArray<std::uint64_t> seen(4);  // 0, 1: the keeper pid each host saw
  const auto host = [&](std::size_t slot) {
    return [&, slot] {
      ::setenv("SYMPHONY_IOX_ROUDI", wrapper.c_str(), 1);
      ::setenv("SYMPHONY_ROUDI_LINGER_MS", "0", 1);
      auto session = child_session();
      exchange_in_process(session, topic_name("s" + std::to_string(slot)));
      set_flag(seen, slot, static_cast<std::uint64_t>(keeper_state().keeper));
    };
  };
  const ChildStatus first = run_in_child(host(0), 60s);
  ASSERT_TRUE(first.ok()) << first << "\n" << keeper_log();
  const KeeperState old_state = keeper_state();
  // The keeper is stopping RouDi now (it holds start.lock for about a second).
  ASSERT_TRUE(eventually([] { return start_lock_held(); }, 10s, 1ms)) << keeper_log();
  const auto t0 = Clock::now();
  const ChildStatus second = run_in_child(host(1), 60s);
  const auto took = Clock::now() - t0;
  EXPECT_TRUE(second.ok()) << second << "\n" << keeper_log();
  EXPECT_NE(seen[1], seen[0]) << "the second host used the keeper that was stopping";
  EXPECT_NE(seen[1], 0u);
  EXPECT_GE(took, 300ms) << "the second host did not wait for the teardown";
  EXPECT_TRUE(eventually_roudi_gone(old_state)) << keeper_log();
  EXPECT_TRUE(eventually_roudi_gone(keeper_state())) << keeper_log();
  std::remove(wrapper.c_str());
}

// No usable iox-roudi: the session is refused with Errc::unavailable naming the cause; nothing
// is left running.
TEST_F(RoudiManagement, MissingRoudiBinaryIsReportedNotHung) {
  const auto status = run_in_child([] {
    ::setenv("SYMPHONY_IOX_ROUDI", "/nonexistent/iox-roudi", 1);
    auto session = detail::open_iceoryx_session(kBus);
    SYM_CHILD_CHECK_MSG(!session, "a session without RouDi");
    SYM_CHILD_CHECK(session.error().code == engine::Errc::unavailable);
    SYM_CHILD_CHECK_MSG(session.error().message.find("/nonexistent/iox-roudi") != std::string::npos,
                        session.error().message);
  });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_TRUE(eventually_roudi_gone({})) << keeper_log();
}

// Someone runs iox-roudi by hand: hosts use it as it is (no keeper), and leave it running.
TEST_F(RoudiManagement, RoudiWeDidNotStartIsUsedAndLeftAlone) {
  const std::string config = "/tmp/symtest-roudi-" + std::to_string(::getpid()) + ".toml";
  {
    std::ofstream out(config);
    out << "[general]\nversion = 1\n[[segment]]\n[[segment.mempool]]\nsize = 1024\ncount = 256\n";
  }
  const std::string roudi = roudi::find_iox_roudi();
  std::string log = "/tmp/symtest-roudi-" + std::to_string(::getpid()) + ".log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> words = {roudi, "-c", config, "-l", "warning"};
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  pid_t manual = 0;
  ASSERT_EQ(::posix_spawn(&manual, roudi.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  const auto stop_manual = [&] {
    ::kill(manual, SIGTERM);
    int st = 0;
    for (int i = 0; i < 1000 && ::waitpid(manual, &st, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    ::kill(manual, SIGKILL);
    ::waitpid(manual, &st, 0);
    std::remove(config.c_str());
    std::remove(log.c_str());
    // That RouDi is not ours to clean up after; if it aborted while shutting down (iceoryx 2.0
    // does when a dead app is still registered), tidy up what it left for the next tests.
    for (const std::string& path : roudi_shm_paths()) ::shm_unlink(path.substr(8).c_str());
    for (const char* path : {roudi::kRoudiSocketPath, roudi::kRoudiSocketLockPath,
                             roudi::kRoudiUniqueLockPath}) {
      std::remove(path);
    }
  };
  ASSERT_TRUE(eventually([] { return roudi::probe_roudi() == roudi::RoudiProbe::running; }, 10s, 5ms));

  ChildProcess host([&] {
    auto session = child_session();
    SYM_CHILD_CHECK_MSG(!session->roudi_ours(), "took a hand-started RouDi for ours");
    SYM_CHILD_CHECK(!keeper_alive());
    exchange_in_process(session, topic_name());
  });
  const pid_t host_pid = host.pid();
  const ChildStatus status = host.wait(60s);
  EXPECT_TRUE(status.ok()) << status;
  const std::string app = std::string("/tmp/") + roudi::kRuntimeNamePrefix + std::to_string(host_pid);
  std::remove(app.c_str());  // no keeper cleans up after our _exit()ed child here
  std::remove((app + ".lock").c_str());
  // Long enough for any keeper (none should exist) to have stopped it, and for RouDi to drop
  // the _exit()ed child so that it shuts down cleanly.
  std::this_thread::sleep_for(2500ms);
  EXPECT_TRUE(roudi::pid_alive(manual)) << "the hand-started RouDi was stopped";
  EXPECT_FALSE(keeper_alive());
  stop_manual();
  EXPECT_TRUE(eventually_roudi_gone({})) << keeper_log();
}

}  // namespace
}  // namespace symphony::test::ice
