// The gateway in-process (every one of its threads: io, bus, poll, workers) against a real bus
// topic published from this process and a fake host: the protocol's sections 3 and 4, the
// security checks, static files, and coalescing for a slow browser. Also run under
// ThreadSanitizer (label tsan).

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fake_ui.hpp"
#include "symphony/engine/runtime_dir.hpp"
#include "symphony/gateway/gateway.hpp"
#include "test_scale.hpp"
#include "ws_client.hpp"

namespace symphony::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using gateway::Gateway;
using gateway::GatewayOptions;
using gateway::LogLevel;

TEST(GatewayDetail, StaticPathsStayInsideTheRoot) {
  const fs::path root = fs::temp_directory_path() / ("gw-static-" + std::to_string(::getpid()));
  fs::create_directories(root / "assets");
  std::ofstream(root / "index.html") << "x";
  std::ofstream(root / "assets" / "a.js") << "x";
  using gateway::detail::resolve_static;
  const fs::path real = fs::canonical(root);
  EXPECT_EQ(resolve_static(root, "/"), real / "index.html");
  EXPECT_EQ(resolve_static(root, "/?token=abc"), real / "index.html");
  EXPECT_EQ(resolve_static(root, "/assets/a.js"), real / "assets" / "a.js");
  EXPECT_EQ(resolve_static(root, "/assets/"), real / "assets" / "index.html");
  for (const char* bad : {"/../etc/passwd", "/assets/../../x", "/%2e%2e/x", "/%2E%2E%2Fx", "/a/./b",
                          "//etc/passwd", "/a%00b", "/a\\..\\b", "relative", "", "/%zz"}) {
    EXPECT_FALSE(resolve_static(root, bad).has_value()) << bad;
  }
  fs::create_symlink("/etc", root / "escape");
  EXPECT_FALSE(resolve_static(root, "/escape/passwd").has_value());
  fs::remove_all(root);

  using gateway::detail::content_type;
  EXPECT_EQ(content_type("a.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type("a.CSS"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type("a.svg"), "image/svg+xml");
  EXPECT_EQ(content_type("a.png"), "image/png");
  EXPECT_EQ(content_type("a.json"), "application/json");
  EXPECT_EQ(content_type("a.woff2"), "font/woff2");
  EXPECT_EQ(content_type("a.bin"), "application/octet-stream");

  using gateway::detail::query_param;
  EXPECT_EQ(query_param("/ws?token=abc", "token"), "abc");
  EXPECT_EQ(query_param("/ws?x=1&token=abc&y", "token"), "abc");
  EXPECT_FALSE(query_param("/ws?tokens=abc", "token").has_value());
  EXPECT_FALSE(query_param("/ws", "token").has_value());

  using gateway::detail::equal_constant_time;
  EXPECT_TRUE(equal_constant_time("abcd", "abcd"));
  EXPECT_FALSE(equal_constant_time("abce", "abcd"));
  EXPECT_FALSE(equal_constant_time("abc", "abcd"));
  EXPECT_FALSE(equal_constant_time("abcde", "abcd"));
  EXPECT_FALSE(equal_constant_time("", "abcd"));
}

class GatewayInProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    bus_name_ = "gwi-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    dir_ = fs::temp_directory_path() / ("symphony-gw-" + bus_name_);
    fs::create_directories(dir_ / "static" / "assets");
    std::ofstream(dir_ / "static" / "index.html") << "<!doctype html><title>symphony</title>";
    std::ofstream(dir_ / "static" / "assets" / "app.js") << "console.log(1)";
    std::ofstream(dir_ / "static" / "assets" / "app.css") << "body{}";
    std::ofstream(dir_ / "static" / "logo.svg") << "<svg/>";
    std::ofstream(dir_ / "static" / "logo.png") << "png";
    std::ofstream(dir_ / "static" / "data.json") << "{}";
    std::ofstream(dir_ / "static" / "f.woff2") << "w";
    std::ofstream(dir_ / "secret.txt") << "secret";
    // The bus's default runtime dir, as the gateway's (the notify FIFOs live there).
    auto bus = Bus::open({.name = bus_name_, .runtime_dir = {}});
    ASSERT_TRUE(bus) << bus.error().message;
    bus_.emplace(std::move(*bus));
    ui_ = std::make_unique<FakeUi>(*bus_, "fake");
    ASSERT_TRUE(ui_->ok());
    ui_->publish_snapshot();
  }
  void TearDown() override {
    gw_.reset();
    ui_.reset();
    bus_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    if (auto run = engine::runtime_dir_path(bus_name_)) fs::remove_all(*run, ec);
  }

  void start(bool with_static = true, std::uint16_t port = 0,
             std::chrono::milliseconds poll_period = 50ms) {
    GatewayOptions o;
    o.bus = bus_name_;
    o.id = "ui-gateway";
    o.port = port;
    o.runtime_dir = dir_ / "run";
    if (with_static) o.static_dir = dir_ / "static";
    o.poll_period = poll_period;
    o.topic_period = 50ms;
    o.dashboard_period = 100ms;
    o.log = [this](LogLevel, const std::string& line) {
      std::lock_guard lock(log_mutex_);
      log_ += line + "\n";
    };
    auto link = std::make_unique<FakeLink>(*ui_);
    link_ = link.get();
    auto gw = Gateway::start(o, std::move(link));
    ASSERT_TRUE(gw) << gw.error().message;
    gw_ = std::move(*gw);
  }
  std::string log() {
    std::lock_guard lock(log_mutex_);
    return log_;
  }
  template <typename F>
  bool eventually(F&& f, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (f()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return f();
  }
  // A client attached with both trees (the fake's and the dashboard).
  std::unique_ptr<WsClient> attach(int receive_buffer = 0) {
    auto c = std::make_unique<WsClient>();
    WsClient::Options o;
    o.token = gw_->token();
    o.receive_buffer = receive_buffer;
    const Upgrade u = c->connect(gw_->port(), o);
    EXPECT_EQ(u.status, 101) << u.body;
    EXPECT_TRUE(c->read_until([&](const Json&) {
      return c->trees.count("fake") != 0 && c->trees.count("ui-gateway") != 0;
    }));
    return c;
  }

  std::string bus_name_;
  fs::path dir_;
  std::optional<Bus> bus_;
  std::unique_ptr<FakeUi> ui_;
  FakeLink* link_ = nullptr;
  std::unique_ptr<Gateway> gw_;
  std::mutex log_mutex_;
  std::string log_;
};

TEST_F(GatewayInProcess, AttachGetsHelloStatesAndSnapshotsThenPatches) {
  start();
  // ui.json: 0600, the URL with the token.
  struct stat st {};
  ASSERT_EQ(::stat(gw_->ui_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(gw_->token().size(), 32u);

  WsClient c;
  ASSERT_EQ(c.connect(gw_->port(), {.token = gw_->token()}).status, 101);
  auto hello = c.read();
  ASSERT_TRUE(hello);
  EXPECT_EQ((*hello)["kind"], "hello");
  EXPECT_EQ((*hello)["gateway"], "ui-gateway");
  EXPECT_EQ((*hello)["bus"], bus_name_);
  bool state = false;
  ASSERT_TRUE(c.read_until([&](const Json& j) {
    if (j["kind"] == "state" && j["extension"] == "fake") {
      state = j["state"] == "HEALTHY" && j["instance"] == 0;
    }
    return c.trees.count("fake") != 0 && c.trees.count("ui-gateway") != 0;
  }));
  EXPECT_TRUE(state);
  EXPECT_EQ(c.text_of("fake", "counter"), "0");

  for (int i = 0; i < 5; ++i) {
    ui_->bump();
    std::this_thread::sleep_for(20ms);  // one at a time: each is forwarded as a patch
  }
  ASSERT_TRUE(c.read_until([&](const Json&) { return c.text_of("fake", "counter") == "5"; }));
  EXPECT_GE(c.patches, 3u);  // a patch arriving during a write may become a snapshot
  EXPECT_EQ(c.mismatches, 0u);
  // The dashboard lists the fake extension with a restart button, refreshed by patches.
  ASSERT_TRUE(c.read_until([&](const Json&) { return !c.text_of("ui-gateway", "ext:fake/0:pid").empty(); }));
  EXPECT_EQ(c.text_of("ui-gateway", "ext:fake/0:pid"), "4242");
}

TEST_F(GatewayInProcess, LifecycleEventsReachBrowsersWithoutWaitingForThePoll) {
  start(true, 0, 60s);  // ext.list once at start, then not for a minute
  auto c = attach();
  gateway::InstanceStatus crashed;
  crashed.id = "fake";
  crashed.state = "CRASHED";
  crashed.reason = "killed by signal 9 (SIGKILL)";
  crashed.pid = 4242;
  gw_->lifecycle_changed(crashed);
  std::string reason;
  ASSERT_TRUE(c->read_until([&](const Json& j) {
    if (j["kind"] != "state" || j["extension"] != "fake" || j["state"] != "CRASHED") return false;
    reason = j["reason"];
    return true;
  }));
  EXPECT_EQ(reason, "killed by signal 9 (SIGKILL)");
}

TEST_F(GatewayInProcess, GapAndInvalidFramesResync) {
  start();
  auto c = attach();
  const auto before = ui_->snapshots.load();
  ui_->gap();  // seq jumps: the gateway must ask for a snapshot
  ASSERT_TRUE(c->read_until([&](const Json&) { return c->text_of("fake", "counter") == "1"; }));
  EXPECT_GT(ui_->snapshots.load(), before);
  EXPECT_GE(gw_->stats().gaps, 1u);
  EXPECT_NE(log().find("gap"), std::string::npos) << log();

  const auto invalid_before = gw_->stats().frames_invalid;
  ui_->publish_raw("{\"v\":1,\"kind\":\"patch\", nope");
  ASSERT_TRUE(eventually([&] { return gw_->stats().frames_invalid > invalid_before; }));
  EXPECT_NE(log().find("invalid frame dropped"), std::string::npos) << log();
  // A frame that parses but does not apply (unknown node) is refused whole, then resynced.
  ui_->publish_raw(Json({{"v", 1}, {"kind", "patch"}, {"extension", "fake"}, {"seq", ui_->seq() + 1},
                         {"base", ui_->seq()}, {"t", 1.0},
                         {"ops", {{{"op", "remove"}, {"id", "nope"}}}}})
                       .dump());
  ASSERT_TRUE(eventually([&] { return gw_->stats().frames_invalid > invalid_before + 1; }));
  ui_->bump();
  ASSERT_TRUE(c->read_until([&](const Json&) { return c->text_of("fake", "counter") == "2"; }));
  EXPECT_EQ(c->mismatches, 0u);
}

TEST_F(GatewayInProcess, RefusesBadTokenOriginAndHost) {
  start();
  const std::string port = std::to_string(gw_->port());
  struct Case {
    WsClient::Options o;
    int status;
  };
  const Case cases[] = {
      {{.token = ""}, 401},
      {{.token = std::string(32, '0')}, 401},
      {{.token = gw_->token() + "0"}, 401},
      {{.token = gw_->token(), .origin = "http://evil.example"}, 403},
      {{.token = gw_->token(), .origin = "http://127.0.0.1:1"}, 403},
      {{.token = gw_->token(), .host = "evil.example:" + port}, 403},
      {{.token = gw_->token(), .path = "/other"}, 404},
      {{.token = gw_->token(), .origin = "http://localhost:" + port, .host = "localhost:" + port},
       101},
  };
  for (const Case& c : cases) {
    const Upgrade u = try_upgrade(gw_->port(), c.o);
    EXPECT_EQ(u.status, c.status) << c.o.token << " " << c.o.origin << " " << c.o.host << ": " << u.body;
  }
  EXPECT_EQ(gw_->stats().upgrades_refused, 7u);
  EXPECT_NE(log().find("refused a WebSocket upgrade"), std::string::npos);
  EXPECT_NE(log().find("wrong token"), std::string::npos);
  EXPECT_EQ(log().find(gw_->token()), std::string::npos) << "the token must not be logged";
}

TEST_F(GatewayInProcess, EventsAreValidatedThenForwardedWithTheirTreeSeq) {
  start();
  auto c = attach();
  auto ack_for = [&](std::uint64_t seq) -> Json {
    Json ack;
    c->read_until([&](const Json& j) {
      if (j["kind"] == "ack" && j["seq"] == seq) {
        ack = j;
        return true;
      }
      return false;
    });
    return ack;
  };
  auto error_next = [&]() -> std::string {
    std::string message;
    c->read_until([&](const Json& j) {
      if (j["kind"] == "error") message = j["message"];
      return j["kind"] == "error";
    });
    return message;
  };
  const Json event = {{"v", 1}, {"kind", "event"}, {"extension", "fake"}, {"node", "btn"},
                      {"event", "click"}, {"payload", Json::object()}};
  struct Bad {
    Json message;
    std::string reason;
  };
  std::vector<Bad> bad;
  auto with = [&](std::uint64_t seq, auto change) {
    Json j = event;
    j["seq"] = seq;
    change(j);
    return j;
  };
  bad.push_back({with(1, [](Json& j) { j["extension"] = 5; }), "'extension' must be a string"});
  bad.push_back({with(2, [](Json& j) { j.erase("node"); }), "missing 'node'"});
  bad.push_back({with(3, [](Json& j) { j["payload"] = "x"; }), "'payload' must be an object"});
  bad.push_back({with(4, [](Json& j) { j["extension"] = "nobody"; }), "unknown extension 'nobody'"});
  bad.push_back({with(5, [](Json& j) { j["node"] = "ghost"; }), "has no node 'ghost'"});
  bad.push_back({with(6, [](Json& j) { j["node"] = "counter"; }), "node 'counter' has no event 'click'"});
  bad.push_back({with(7, [](Json& j) { j["event"] = "submit"; }), "node 'btn' has no event 'submit'"});
  bad.push_back({with(8, [](Json& j) { j["extra"] = 1; }), "unknown field 'extra'"});
  bad.push_back({with(9, [](Json& j) { j["payload"] = {{"big", std::string(300 * 1024, 'x')}}; }),
                 "exceeds the limit of 262144 bytes"});
  for (const Bad& b : bad) {
    ASSERT_TRUE(c->send(b.message.dump()));
    const Json ack = ack_for(b.message["seq"].get<std::uint64_t>());
    EXPECT_EQ(ack["ok"], false) << ack;
    EXPECT_NE(ack.value("error", "").find(b.reason), std::string::npos) << ack << " want " << b.reason;
  }
  ASSERT_TRUE(c->send("{not json"));
  EXPECT_NE(error_next().find("not valid JSON"), std::string::npos);
  ASSERT_TRUE(c->send(R"({"v":1,"kind":"event","seq":"x"})"));
  EXPECT_NE(error_next().find("'seq'"), std::string::npos);
  ASSERT_TRUE(c->send(R"({"v":1,"kind":"dance"})"));
  EXPECT_NE(error_next().find("unknown message kind 'dance'"), std::string::npos);
  EXPECT_EQ(ui_->events.load(), 0u) << "nothing refused may reach the extension";

  // A valid one: the ack carries the seq of the frame with its re-render, which follows.
  ASSERT_TRUE(c->send(with(41, [](Json&) {}).dump()));
  const Json ack = ack_for(41);
  EXPECT_EQ(ack["ok"], true) << ack;
  ASSERT_TRUE(ack.contains("tree_seq")) << ack;
  const auto tree_seq = ack["tree_seq"].get<std::uint64_t>();
  ASSERT_TRUE(c->read_until([&](const Json&) { return c->trees["fake"].seq >= tree_seq; }));
  EXPECT_EQ(c->text_of("fake", "counter"), "1");
  EXPECT_EQ(ui_->events.load(), 1u);

  // The dashboard's restart button goes to the host.
  ASSERT_TRUE(c->send(Json({{"v", 1}, {"kind", "event"}, {"extension", "ui-gateway"},
                            {"node", "restart:fake"}, {"event", "click"}, {"seq", 42}})
                          .dump()));
  EXPECT_EQ(ack_for(42)["ok"], true);
  EXPECT_EQ(link_->restarts.load(), 1u);

  // Resync answers with a snapshot; another version is an error and a close.
  const auto snapshots = c->snapshots;
  ASSERT_TRUE(c->send(R"({"v":1,"kind":"resync","extension":"fake"})"));
  ASSERT_TRUE(c->read_until([&](const Json& j) { return j["kind"] == "snapshot"; }));
  EXPECT_GT(c->snapshots, snapshots);
  ASSERT_TRUE(c->send(R"({"v":2,"kind":"event"})"));
  EXPECT_NE(error_next().find("unsupported protocol version"), std::string::npos);
  EXPECT_FALSE(c->read_until([](const Json&) { return false; }, 5s));
  EXPECT_FALSE(c->is_open());
}

TEST_F(GatewayInProcess, SlowBrowserIsCoalescedBoundedAndConverges) {
  start();
  auto slow = attach(4096);  // a browser that stops reading, with a small socket buffer
  auto fast = attach();
  constexpr int kPatches = 3000;
  constexpr std::size_t kPad = 2000;
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    for (int i = 0; i < kPatches; ++i) {
      ui_->bump(kPad);
      // A rate the gateway keeps up with (~5k/s), so that what piles up is the browser's.
      std::this_thread::sleep_for(200us);
    }
    // Like the SDK: after frames the topic refused (all slots busy, seen under TSan), a
    // snapshot, retried until it gets through, so that receivers catch up.
    while (ui_->publish_failures.load() > 0 && !ui_->publish_snapshot()) {
      std::this_thread::sleep_for(16ms);
    }
    done = true;
  });
  // The fast browser follows while the slow one reads nothing.
  const bool converged = fast->read_until(
      [&](const Json&) { return done.load() && fast->text_of("fake", "counter") == std::to_string(kPatches); },
      60s);
  publisher.join();
  ASSERT_TRUE(converged) << "the fast browser shows counter " << fast->text_of("fake", "counter")
                         << " of " << kPatches << "; frames the fake failed to publish: "
                         << ui_->publish_failures.load() << "; gateway: " << gw_->stats_json();
  const auto stats = gw_->stats();
  ASSERT_EQ(stats.sessions.size(), 2u);
  // The slow one: the one that took fewer messages.
  const gateway::SessionStats* s = &stats.sessions[0];
  if (stats.sessions[1].messages < s->messages) s = &stats.sessions[1];
  const gateway::SessionStats* f = s == &stats.sessions[0] ? &stats.sessions[1] : &stats.sessions[0];
  std::printf("fast browser: %llu messages, %llu patches, %llu snapshots, %llu coalesced\n",
              static_cast<unsigned long long>(f->messages), static_cast<unsigned long long>(f->patches),
              static_cast<unsigned long long>(f->snapshots), static_cast<unsigned long long>(f->coalesced));
  std::printf("slow browser: %llu messages written, %llu patches, %llu snapshots, %llu frames "
              "coalesced, peak pending %zu bytes; gateway: %llu frames, %llu applied, %llu gaps\n",
              static_cast<unsigned long long>(s->messages),
              static_cast<unsigned long long>(s->patches),
              static_cast<unsigned long long>(s->snapshots),
              static_cast<unsigned long long>(s->coalesced), s->peak_pending_bytes,
              static_cast<unsigned long long>(stats.frames),
              static_cast<unsigned long long>(stats.frames_applied),
              static_cast<unsigned long long>(stats.gaps));
  // The gateway keeps up at this rate in a plain build. Under sanitizers (a scaled-down run) it
  // falls behind and resyncs instead, which the convergence checks below still cover.
  if (symphony::test::test_scale() >= 1.0) {
    EXPECT_GT(stats.frames_applied, static_cast<std::uint64_t>(kPatches) / 2);
  }
  EXPECT_GT(s->coalesced, 0u) << "the slow browser's frames were not coalesced";
  EXPECT_LT(s->messages, static_cast<std::uint64_t>(kPatches) / 2);
  // Bounded: one message in flight (a snapshot of ~2 KB here) plus a few small ones, never a
  // queue of the 3000 patches (~6 MB).
  EXPECT_LT(s->peak_pending_bytes, 64u * 1024u);
  // Now it reads: it converges to the latest tree.
  ASSERT_TRUE(slow->read_until(
      [&](const Json&) { return slow->text_of("fake", "counter") == std::to_string(kPatches); }, 60s));
  EXPECT_EQ(slow->mismatches, 0u);
  EXPECT_EQ(fast->mismatches, 0u);
}

TEST_F(GatewayInProcess, ServesStaticFilesWithTypesAndRefusesTraversal) {
  start();
  const auto p = gw_->port();
  auto index = http_get(p, "/");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_NE(index.body.find("symphony"), std::string::npos);
  EXPECT_EQ(http_get(p, "/?token=" + gw_->token()).status, 200);
  EXPECT_EQ(http_get(p, "/assets/app.js").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(http_get(p, "/assets/app.css").content_type, "text/css; charset=utf-8");
  EXPECT_EQ(http_get(p, "/logo.svg").content_type, "image/svg+xml");
  EXPECT_EQ(http_get(p, "/logo.png").content_type, "image/png");
  EXPECT_EQ(http_get(p, "/data.json").content_type, "application/json");
  EXPECT_EQ(http_get(p, "/f.woff2").content_type, "font/woff2");
  EXPECT_EQ(http_get(p, "/missing.js").status, 404);
  for (const char* bad : {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
                          "/..%2fsecret.txt", "/assets/%2e%2e/%2e%2e/secret.txt"}) {
    const auto r = http_get(p, bad);
    EXPECT_EQ(r.status, 404) << bad;
    EXPECT_EQ(r.body.find("secret"), std::string::npos) << bad;
  }
  EXPECT_EQ(http_get(p, "/ws").status, 426);
}

TEST_F(GatewayInProcess, WithoutTheBuiltAppTheRootSays503AndHowToBuildIt) {
  start(false);
  const auto r = http_get(gw_->port(), "/");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("npm run build"), std::string::npos) << r.body;
  EXPECT_EQ(http_get(gw_->port(), "/app.js").status, 404);
}

TEST_F(GatewayInProcess, ARestartedGatewayKeepsTokenAndPort) {
  start();
  const auto port = gw_->port();
  const std::string token = gw_->token();
  {
    auto c = attach();
    c->send(Json({{"v", 1}, {"kind", "event"}, {"extension", "fake"}, {"node", "btn"},
                  {"event", "click"}, {"seq", 1}})
                .dump());
    ASSERT_TRUE(c->read_until([&](const Json&) { return c->text_of("fake", "counter") == "1"; }));
  }
  gw_.reset();
  start();  // port 0 again: the previous port is tried first
  EXPECT_EQ(gw_->port(), port);
  EXPECT_EQ(gw_->token(), token);
  auto c = attach();
  EXPECT_EQ(c->text_of("fake", "counter"), "1");
}

TEST_F(GatewayInProcess, StopsPromptlyWithIdleConnectionsOpen) {
  start();
  auto browser = attach();
  net::io_context ioc;
  tcp::socket idle(ioc);  // an HTTP keep-alive connection that sends nothing
  idle.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), gw_->port()));
  std::this_thread::sleep_for(50ms);
  const auto t0 = std::chrono::steady_clock::now();
  gw_.reset();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 2s) << "the supervisor's stop grace is 2 s";
  std::printf("gateway stopped in %.1f ms\n", std::chrono::duration<double, std::milli>(took).count());
}

TEST_F(GatewayInProcess, ManyBrowsersAndPublishersConcurrently) {
  start();
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    while (!stop.load()) {
      ui_->bump(100);
      std::this_thread::sleep_for(200us);
    }
  });
  std::vector<std::thread> browsers;
  std::atomic<int> converged{0};
  for (int b = 0; b < 4; ++b) {
    browsers.emplace_back([&, b] {
      for (int round = 0; round < 3; ++round) {
        WsClient c;
        if (c.connect(gw_->port(), {.token = gw_->token()}).status != 101) return;
        std::uint64_t seq = 100 + static_cast<std::uint64_t>(b * 10 + round);
        c.read_until([&](const Json&) { return c.trees.count("fake") != 0; });
        c.send(Json({{"v", 1}, {"kind", "event"}, {"extension", "fake"}, {"node", "btn"},
                     {"event", "click"}, {"seq", seq}})
                   .dump());
        c.read_until([&](const Json& j) { return j["kind"] == "ack" && j["seq"] == seq; });
        if (c.mismatches == 0) ++converged;
      }
    });
  }
  for (auto& t : browsers) t.join();
  stop = true;
  publisher.join();
  EXPECT_EQ(converged.load(), 12);
}

}  // namespace
}  // namespace symphony::test
