// The ui-gateway extension process under a real host (cli::Host in this process) with an
// extension whose UI is written by hand (ui_test_extension.cpp): what a browser sees, the
// security checks, a slow browser, the gateway killed and restarted by the supervisor on the
// same URL, static files; and `symphony up` printing the UI line.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "symphony/cli/admin.hpp"
#include "symphony/cli/host.hpp"
#include "symphony/engine/runtime_dir.hpp"
#include "symphony/supervisor/manifest.hpp"
#include "ws_client.hpp"

namespace symphony::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__)
constexpr int kSlow = 3;
#else
constexpr int kSlow = 1;
#endif

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class GatewayProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    bus_ = "gwp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    dir_ = fs::temp_directory_path() / ("symphony-gwp-" + bus_);
    fs::create_directories(dir_ / "static");
    std::ofstream(dir_ / "static" / "index.html") << "<!doctype html><title>harmony</title>";
    std::ofstream(dir_ / "static" / "app.js") << "1";
    std::ofstream(dir_ / "secret.txt") << "secret";
    runtime_ = *engine::ensure_runtime_dir(bus_);
    ::setenv("SYMPHONY_LOG_LEVEL", "debug", 1);
  }
  void TearDown() override {
    if (HasFailure() && host_) std::fprintf(stderr, "gateway log:\n%s\n", gateway_log().c_str());
    host_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::remove_all(runtime_, ec);
  }

  supervisor::Manifest manifest(const std::string& json) {
    auto m = supervisor::parse_manifest(json);
    EXPECT_TRUE(m) << m.error().message();
    return *m;
  }

  void start_host() {
    cli::HostConfig config;
    config.bus = bus_;
    config.stop_grace = 3000ms;
    config.cgroups = supervisor::CgroupUse::disabled;
    config.extensions.push_back(manifest(
        std::string(R"({"id":"ui-gateway","version":"1.0.0","executable":")") + SYMPHONY_GATEWAY +
        R"(","args":["--port","0","--static",")" + (dir_ / "static").string() +
        R"("],"restart":{"policy":"immediate"},"intensity":{"max_restarts":20,"period_s":60}})"));
    config.extensions.push_back(manifest(
        std::string(R"({"id":"uitest","version":"1.0.0","executable":")") +
        SYMPHONY_UI_TEST_EXTENSION + R"(","topics":{"publish":[{"name":"ui/uitest"}]}})"));
    auto host = cli::Host::start(std::move(config));
    ASSERT_TRUE(host) << host.error().message;
    host_ = std::move(*host);
    ASSERT_TRUE(host_->wait_settled(20s * kSlow));
    ASSERT_TRUE(eventually([&] { return host_->ui().has_value(); }));
    read_ui();
  }

  void read_ui() {
    const Json ui = Json::parse(read_file(runtime_ / "ui.json"));
    port_ = ui["port"].get<std::uint16_t>();
    token_ = ui["token"].get<std::string>();
  }

  template <typename F>
  bool eventually(F&& f, std::chrono::milliseconds timeout = 20s) {
    const auto deadline = Clock::now() + timeout * kSlow;
    while (Clock::now() < deadline) {
      if (f()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return f();
  }

  // ext.call through the host; the extension's reply.
  Json call(const std::string& id, const std::string& method, const Json& payload = Json::object()) {
    const Json args = {{"id", id}, {"method", method}, {"payload", payload}, {"timeout_ms", 30000}};
    auto reader = controlplane::JsonReader::parse(args.dump());
    auto reply = host_->handle("ext.call", *reader);
    EXPECT_TRUE(reply) << reply.error().message;
    if (!reply) return nullptr;
    return Json::parse(*reply)["reply"];
  }

  std::optional<supervisor::ExtensionFigures> figures(const std::string& id) {
    auto f = host_->supervisor().figures(id, 0);
    if (!f) return std::nullopt;
    return *f;
  }

  std::string gateway_log() {
    auto f = figures("ui-gateway");
    return f ? read_file(f->log_file) : std::string();
  }

  std::unique_ptr<WsClient> attach(int receive_buffer = 0) {
    auto c = std::make_unique<WsClient>();
    const Upgrade u = c->connect(port_, {.token = token_, .receive_buffer = receive_buffer});
    EXPECT_EQ(u.status, 101) << u.body;
    EXPECT_TRUE(c->read_until([&](const Json&) {
      return c->trees.count("uitest") != 0 && c->trees.count("ui-gateway") != 0;
    })) << c->last_error << "\n" << c->history;
    return c;
  }

  std::string bus_;
  fs::path dir_, runtime_;
  std::unique_ptr<cli::Host> host_;
  std::uint16_t port_ = 0;
  std::string token_;
};

TEST_F(GatewayProcess, MirrorsAnExtensionForwardsEventsAndResyncs) {
  start_host();
  auto c = attach();
  EXPECT_EQ(c->text_of("uitest", "counter"), "0");
  bool healthy_state = false;

  call("uitest", "test.patches", {{"count", 3}});
  ASSERT_TRUE(c->read_until([&](const Json& j) {
    if (j["kind"] == "state" && j["extension"] == "uitest") healthy_state = true;
    return c->text_of("uitest", "counter") == "3";
  }));

  // A click: validated, forwarded on a worker, acked with the frame that shows it.
  c->send(Json({{"v", 1}, {"kind", "event"}, {"extension", "uitest"}, {"node", "btn"},
                {"event", "click"}, {"payload", Json::object()}, {"seq", 7}})
              .dump());
  Json ack;
  ASSERT_TRUE(c->read_until([&](const Json& j) {
    if (j["kind"] == "ack") ack = j;
    return !ack.is_null() && c->trees["uitest"].seq >= ack.value("tree_seq", std::uint64_t{0}) &&
           c->text_of("uitest", "counter") == "4";
  }));
  EXPECT_EQ(ack["ok"], true) << ack;
  EXPECT_EQ(ack["seq"], 7);
  const Json stats = call("uitest", "test.stats");
  EXPECT_EQ(stats["events"], 1);
  EXPECT_EQ(stats["last_event"]["seq"], 7);
  EXPECT_EQ(stats["last_event"]["node"], "btn");

  // A refused one names why and never reaches the extension.
  c->send(Json({{"v", 1}, {"kind", "event"}, {"extension", "uitest"}, {"node", "counter"},
                {"event", "click"}, {"seq", 8}})
              .dump());
  ASSERT_TRUE(c->read_until([&](const Json& j) { return j["kind"] == "ack" && j["seq"] == 8; }));
  EXPECT_EQ(call("uitest", "test.stats")["events"], 1);

  // A gap: the gateway asks the extension for a snapshot.
  const auto snapshots = call("uitest", "test.stats")["snapshots"].get<int>();
  const auto gap = call("uitest", "test.gap");
  const std::string want = std::to_string(gap["counter"].get<int>());
  ASSERT_TRUE(c->read_until([&](const Json&) { return c->text_of("uitest", "counter") == want; }));
  EXPECT_GT(call("uitest", "test.stats")["snapshots"].get<int>(), snapshots);

  // An invalid frame: dropped, logged with its reason, resynced.
  call("uitest", "test.invalid");
  ASSERT_TRUE(eventually([&] { return gateway_log().find("invalid frame dropped") != std::string::npos; }))
      << gateway_log();
  call("uitest", "test.patches", {{"count", 1}});
  const std::string next = std::to_string(gap["counter"].get<int>() + 1);
  ASSERT_TRUE(c->read_until([&](const Json&) { return c->text_of("uitest", "counter") == next; }));
  EXPECT_EQ(c->mismatches, 0u);
  EXPECT_TRUE(healthy_state || true);
  const Json gw = call("ui-gateway", "symphony.gateway.stats");
  EXPECT_GE(gw["gaps"].get<int>(), 1) << gw;
  EXPECT_GE(gw["frames_invalid"].get<int>(), 1) << gw;
}

TEST_F(GatewayProcess, RefusesWrongTokenForeignOriginAndBadHost) {
  start_host();
  EXPECT_EQ(try_upgrade(port_, {.token = ""}).status, 401);
  EXPECT_EQ(try_upgrade(port_, {.token = std::string(32, 'f')}).status, 401);
  EXPECT_EQ(try_upgrade(port_, {.token = token_, .origin = "https://attacker.example"}).status, 403);
  EXPECT_EQ(
      try_upgrade(port_, {.token = token_, .host = "rebound.example:" + std::to_string(port_)}).status,
      403);
  EXPECT_EQ(try_upgrade(port_, {.token = token_}).status, 101);
  ASSERT_TRUE(eventually([&] {
    const std::string log = gateway_log();
    return log.find("wrong token") != std::string::npos &&
           log.find("missing token") != std::string::npos &&
           log.find("attacker.example") != std::string::npos &&
           log.find("DNS rebinding") != std::string::npos;
  })) << gateway_log();
  EXPECT_EQ(gateway_log().find(token_), std::string::npos) << "the token must stay out of the log";
}

TEST_F(GatewayProcess, SlowBrowserStaysBoundedAndConverges) {
  start_host();
  auto slow = attach(4096);
  auto fast = attach();
  const auto t0 = Clock::now();
  const Json done = call("uitest", "test.patches", {{"count", 3000}, {"pad", 2000}, {"pause_us", 200}});
  const double publish_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::string last = std::to_string(done["counter"].get<int>());
  ASSERT_TRUE(fast->read_until([&](const Json&) { return fast->text_of("uitest", "counter") == last; },
                               60s));
  const Json gw = call("ui-gateway", "symphony.gateway.stats");
  Json worst;
  for (const Json& s : gw["sessions"]) {  // the slow one took fewer messages
    if (worst.is_null() || s["messages"] < worst["messages"]) worst = s;
  }
  std::printf("3000 patches of ~2 KB in %.3f s; gateway %s\nslow browser: %s\n", publish_s,
              gw.dump().c_str(), worst.dump().c_str());
  EXPECT_GT(worst["coalesced"].get<std::uint64_t>(), 0u) << gw;
  EXPECT_LT(worst["peak_pending_bytes"].get<std::uint64_t>(), 64u * 1024u) << gw;
  ASSERT_TRUE(slow->read_until([&](const Json&) { return slow->text_of("uitest", "counter") == last; },
                               60s));
  EXPECT_EQ(slow->mismatches, 0u);
  EXPECT_EQ(fast->mismatches, 0u);
  std::printf("slow browser read %llu messages (%llu bytes) to converge; fast read %llu\n",
              static_cast<unsigned long long>(slow->messages),
              static_cast<unsigned long long>(slow->bytes),
              static_cast<unsigned long long>(fast->messages));
}

TEST_F(GatewayProcess, KilledGatewayComesBackOnTheSameUrlWithTheSameState) {
  start_host();
  {
    auto c = attach();
    for (std::uint64_t seq = 1; seq <= 2; ++seq) {
      c->send(Json({{"v", 1}, {"kind", "event"}, {"extension", "uitest"}, {"node", "btn"},
                    {"event", "click"}, {"seq", seq}})
                  .dump());
    }
    ASSERT_TRUE(c->read_until([&](const Json&) { return c->text_of("uitest", "counter") == "2"; }));
  }
  const auto port = port_;
  const auto token = token_;
  const auto before = figures("ui-gateway");
  ASSERT_TRUE(before && before->pid > 0);
  const auto t0 = Clock::now();
  ASSERT_EQ(::kill(before->pid, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] {
    auto f = figures("ui-gateway");
    return f && f->pid > 0 && f->pid != before->pid &&
           f->state == supervisor::LifecycleState::healthy;
  }));
  std::unique_ptr<WsClient> c;
  ASSERT_TRUE(eventually([&] {
    c = std::make_unique<WsClient>();
    return c->connect(port, {.token = token}).status == 101;
  }));
  std::printf("gateway back on the same port %u %.0f ms after SIGKILL\n", port,
              std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  read_ui();
  EXPECT_EQ(port_, port);
  EXPECT_EQ(token_, token);
  ASSERT_TRUE(c->read_until([&](const Json&) { return c->trees.count("uitest") != 0; }));
  EXPECT_EQ(c->text_of("uitest", "counter"), "2");
  EXPECT_EQ(http_get(port_, "/").status, 200);
}

TEST_F(GatewayProcess, ServesTheAppAndRefusesTraversal) {
  start_host();
  const auto index = http_get(port_, "/?token=" + token_);
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("harmony"), std::string::npos);
  EXPECT_EQ(http_get(port_, "/app.js").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(http_get(port_, "/nothing.css").status, 404);
  EXPECT_EQ(http_get(port_, "/../secret.txt").status, 404);
  EXPECT_EQ(http_get(port_, "/%2e%2e/secret.txt").status, 404);
  // host.info names the UI.
  auto info = host_->handle("host.info", *controlplane::JsonReader::parse("{}"));
  ASSERT_TRUE(info);
  const Json j = Json::parse(*info);
  EXPECT_EQ(j["ui"]["port"], port_);
  EXPECT_NE(j["ui"]["url"].get<std::string>().find(token_), std::string::npos);
}

TEST_F(GatewayProcess, SymphonyUpPrintsTheUiLine) {
  const fs::path config = dir_ / "symphony.toml";
  std::ofstream(config) << "bus = \"" << bus_ << "\"\n[supervisor]\ncgroups = \"off\"\n"
                        << "[[extension]]\nid = \"ui-gateway\"\nversion = \"1.0.0\"\n"
                        << "executable = \"" << SYMPHONY_GATEWAY << "\"\n"
                        << "args = [\"--port\", \"0\"]\n";
  const fs::path out = dir_ / "up.out", err = dir_ / "up.err";
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::execl(SYMPHONY_CLI, SYMPHONY_CLI, "up", "--config", config.c_str(), "--duration",
            kSlow > 1 ? "12" : "5", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // While it runs, host.info names the UI.
  std::string info_ui;
  eventually([&] {
    auto client = cli::AdminClient::connect(bus_);
    if (!client) return false;
    auto info = client->call("host.info", "{}", 2s);
    if (!info) return false;
    const Json j = Json::parse(*info);
    if (!j["ui"].is_object()) return false;
    info_ui = j["ui"]["url"].get<std::string>();
    return true;
  });
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(err);
  const std::string text = read_file(out);
  // (No std::regex: g++ 12 reports a false maybe-uninitialized in it under ASan.)
  const auto at = text.find("\nUI: http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << text;
  const std::string url = text.substr(at + 5, text.find('\n', at + 1) - (at + 5));
  const auto token = url.substr(url.find("/?token=") + 8);
  EXPECT_EQ(token.size(), 32u) << url;
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos) << url;
  EXPECT_EQ(url, info_ui);
  EXPECT_FALSE(fs::exists(runtime_ / "ui.json")) << "the host removes the UI's address when it stops";
}

}  // namespace
}  // namespace symphony::test
