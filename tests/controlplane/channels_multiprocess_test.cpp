// Host and extension channels across processes: 1,000 requests, fail-fast, heartbeat loss
// (SIGSTOP), host restart.

#include "channels_fixture.hpp"

namespace symphony::controlplane {
namespace {

using namespace test_support;
using engine::Errc;
using test::ChildProcess;
using test::eventually;
using test::SharedArray;
using namespace std::chrono_literals;

TEST_F(ChannelsTest, ThousandConcurrentRequestsAcrossProcesses) {
  SharedArray<std::uint64_t> stop(1);
  const Registration r = registration("echo");
  ChildProcess child = spawn_echo(r, stop);
  auto host = start_host();
  host->register_extension(r);
  ASSERT_TRUE(wait_connected(*host, "echo/0"));

  constexpr int kRequests = 1000;
  std::atomic<int> ok{0}, wrong{0}, done{0};
  for (int i = 0; i < kRequests; ++i) {
    host->request("echo", "echo", "{\"n\":" + std::to_string(i) + "}", 20s,
                  [&, i](engine::Result<std::string> reply) {
                    if (reply && *reply == "{\"n\":" + std::to_string(i) + "}") {
                      ++ok;
                    } else {
                      if (wrong.fetch_add(1) == 0) {
                        std::fprintf(stderr, "request %d: %s\n", i,
                                     reply ? reply->c_str() : reply.error().message.c_str());
                      }
                    }
                    ++done;
                  });
  }
  ASSERT_TRUE(eventually([&] { return done.load() == kRequests; }, 30s)) << done.load();
  EXPECT_EQ(ok.load(), kRequests);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(host->counters().replies, static_cast<std::uint64_t>(kRequests));

  // An error reply, a timeout, a cancellation.
  auto failed = host->request("echo", "fail", "{}", 5s).get();
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("no"), std::string::npos);
  auto timed_out = host->request("echo", "slow", "{}", 100ms).get();
  ASSERT_FALSE(timed_out);
  EXPECT_NE(timed_out.error().message.find("timed out"), std::string::npos);
  std::promise<engine::Result<std::string>> cancelled;
  const auto id = host->request("echo", "slow", "{}", 5s, [&](engine::Result<std::string> r2) {
    cancelled.set_value(std::move(r2));
  });
  host->cancel(id);
  auto result = cancelled.get_future().get();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message, "cancelled");
  // The late replies to the timed-out and cancelled requests are dropped and counted.
  EXPECT_TRUE(eventually([&] { return host->counters().late_replies == 2; }, 5s))
      << host->counters().late_replies;
  EXPECT_EQ(host->counters().timeouts, 1u);
  EXPECT_EQ(host->counters().cancelled, 1u);
  stop.at(0).store(1);
  EXPECT_TRUE(child.wait(10s).ok()) << child.status();
}

TEST_F(ChannelsTest, RequestToADownExtensionFailsFast) {
  auto host = start_host();
  host->register_extension(registration("sleepy"));
  const auto start = test::Clock::now();
  auto result = host->request("sleepy", "echo", "{}", 10s).get();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Errc::unavailable);
  EXPECT_LT(test::Clock::now() - start, 1s) << "fails fast, not by timeout";
  auto unknown = host->request("nobody", "echo", "{}", 10s).get();
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("not registered"), std::string::npos);
  EXPECT_EQ(host->counters().failed_fast, 2u);
}

TEST_F(ChannelsTest, StoppedExtensionIsReportedUnresponsiveAndComesBack) {
  SharedArray<std::uint64_t> stop(1);
  const Registration r = registration("frozen");
  ChildProcess child = spawn_echo(r, stop);
  std::mutex m;  // before the host: its I/O thread calls back into these until it is gone
  std::vector<PeerEvent> events;
  auto host = start_host();
  host->on_peer_event([&](const PeerEvent& e) {
    std::lock_guard lock(m);
    events.push_back(e);
  });
  host->register_extension(r);
  ASSERT_TRUE(wait_connected(*host, "frozen/0"));
  std::promise<engine::Result<std::string>> pending;
  ::kill(child.pid(), SIGSTOP);
  const auto stopped_at = test::Clock::now();
  std::this_thread::sleep_for(50ms);  // the signal has surely landed
  host->request("frozen", "echo", "{}", 30s,
                [&](engine::Result<std::string> r2) { pending.set_value(std::move(r2)); });
  auto unresponsive = [&] {
    std::lock_guard lock(m);
    for (const auto& e : events) {
      if (e.state == PeerState::unresponsive) return true;
    }
    return false;
  };
  ASSERT_TRUE(eventually(unresponsive, 5s));
  EXPECT_LT(test::Clock::now() - stopped_at, 2s) << "within unresponsive_after + a heartbeat";
  auto result = pending.get_future().get();
  ASSERT_FALSE(result) << "a request in flight fails, not lost";
  EXPECT_NE(result.error().message.find("unresponsive"), std::string::npos);
  ::kill(child.pid(), SIGCONT);
  ASSERT_TRUE(wait_connected(*host, "frozen/0"));
  EXPECT_TRUE(host->request("frozen", "echo", "1", 5s).get());
  stop.at(0).store(1);
  EXPECT_TRUE(child.wait(10s).ok()) << child.status();
}

TEST_F(ChannelsTest, ExtensionReconnectsToARestartedHost) {
  SharedArray<std::uint64_t> stop(1);
  const Registration r = registration("faithful");
  ChildProcess child = spawn_echo(r, stop);
  {
    auto host = start_host();
    host->register_extension(r);
    ASSERT_TRUE(wait_connected(*host, "faithful/0"));
    EXPECT_TRUE(host->request("faithful", "echo", "1", 5s).get());
  }
  // The host is gone; a new one (same endpoint) takes its extensions back.
  std::this_thread::sleep_for(600ms);
  auto host = start_host();
  host->register_extension(r);
  ASSERT_TRUE(wait_connected(*host, "faithful/0"));
  auto reply = host->request("faithful", "echo", "2", 5s).get();
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(*reply, "2");
  stop.at(0).store(1);
  EXPECT_TRUE(child.wait(10s).ok()) << child.status();
}

}  // namespace
}  // namespace symphony::controlplane

#include "symphony/controlplane/launcher.hpp"

namespace symphony::controlplane {
namespace {

using namespace test_support;
using namespace std::chrono_literals;

// The launcher starts a real executable with its registration in the environment; it says
// hello, serves a request, and exits on the stop command.
TEST_F(ChannelsTest, LauncherStartsARealExtensionThatStopsOnCommand) {
  auto host = start_host();
  const Registration r = host->register_extension("echo-ext", 3);
  auto launched = launch(SYMPHONY_ECHO_EXTENSION, {}, r, bus_, options_.control_endpoint);
  ASSERT_TRUE(launched) << launched.error().message;
  ASSERT_TRUE(wait_connected(*host, "echo-ext/3"));
  auto who = host->request("echo-ext/3", "whoami", "null", 5s).get();
  ASSERT_TRUE(who) << who.error().message;
  EXPECT_EQ(*who, R"({"extension":"echo-ext","instance":3})");
  auto ack = std::promise<engine::Result<std::string>>();
  host->command("echo-ext/3", "stop", "{}", 5s,
                [&](engine::Result<std::string> result) { ack.set_value(std::move(result)); });
  EXPECT_TRUE(ack.get_future().get());
  const auto status = launched->wait(5s);
  ASSERT_TRUE(status) << "the extension did not exit on stop";
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 0);
  auto missing = launch("/nonexistent/extension", {}, r, bus_, options_.control_endpoint);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/extension"), std::string::npos);
}

}  // namespace
}  // namespace symphony::controlplane
