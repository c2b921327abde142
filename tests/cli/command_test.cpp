// The `symphony` binary against a running `symphony up` child process: every verb, its --json
// output parsed and checked, an error exit with a one-line reason for each error case, the
// topic tools against a publisher in this process, and a clean shutdown on SIGTERM.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "symphony/cli/text.hpp"
#include "symphony/controlplane/envelope.hpp"
#include "symphony/engine/bus.hpp"
#include "symphony/engine/runtime_dir.hpp"

#ifndef SYMPHONY_CLI
#error "SYMPHONY_CLI must name the symphony binary"
#endif

namespace symphony::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using controlplane::JsonReader;
using Clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__)
constexpr auto kSlow = 3;  // sanitized processes start and stop slower
#else
constexpr auto kSlow = 1;
#endif

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// A child running the symphony binary, stdout and stderr into files.
class Command {
 public:
  Command(const std::vector<std::string>& args, const fs::path& out_dir) {
    static std::atomic<int> counter{0};
    const std::string tag = std::to_string(counter++);
    out_ = out_dir / ("out." + tag);
    err_ = out_dir / ("err." + tag);
    std::vector<std::string> argv_text = {SYMPHONY_CLI};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      const int out = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char*> argv;
      for (auto& a : argv_text) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  Command(const Command&) = delete;
  ~Command() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }

  // The exit code (-signal if killed); SIGKILL after `timeout` (then -SIGKILL).
  int wait(Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    int status = 0;
    for (;;) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (Clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  bool running() {
    int status = 0;
    return pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == 0;
  }
  std::string out() const { return read_file(out_); }
  std::string err() const { return read_file(err_); }

 private:
  pid_t pid_ = -1;
  fs::path out_, err_;
};

struct Result {
  int code;
  std::string out;
  std::string err;
};

class CliCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    bus_ = "clit-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    dir_ = fs::temp_directory_path() / ("symphony-cli-test-" + bus_);
    fs::create_directories(dir_);
    runtime_ = *engine::ensure_runtime_dir(bus_);
  }
  void TearDown() override {
    if (up_) {
      up_->signal(SIGTERM);
      up_->wait(20s * kSlow);
      if (HasFailure()) std::fprintf(stderr, "symphony up said:\n%s\n", up_->err().c_str());
      up_.reset();
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::remove_all(runtime_, ec);
  }

  Result run(std::vector<std::string> args, Clock::duration timeout = 60s) {
    Command command(args, dir_);
    const int code = command.wait(timeout * kSlow);
    return {code, command.out(), command.err()};
  }
  Result verb(std::vector<std::string> args) {
    args.push_back("--bus");
    args.push_back(bus_);
    return run(std::move(args));
  }

  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }

  // A config with a manifest file ("filed") and an inline extension ("inline").
  fs::path config() {
    write("filed.json", std::string(R"({"id":"filed","version":"3.1.4","executable":")") +
                            SYMPHONY_TEST_EXTENSION + R"(","args":["--print-lines","5"]})");
    return write("symphony.toml", "bus = \"" + bus_ +
                                      "\"\nmanifests = [\"filed.json\"]\n"
                                      "[supervisor]\nstop_grace_ms = 3000\n"
                                      "[[extension]]\nid = \"inline\"\nversion = \"0.9\"\n"
                                      "executable = \"" SYMPHONY_TEST_EXTENSION "\"\n");
  }

  // `symphony up` with `config`, once `ext list` shows every extension HEALTHY.
  void up(const fs::path& config_file) {
    up_.emplace(std::vector<std::string>{"up", "--config", config_file.string()}, dir_);
    const auto deadline = Clock::now() + 20s * kSlow;
    while (Clock::now() < deadline) {
      ASSERT_TRUE(up_->running()) << "symphony up exited:\n" << up_->err();
      const Result r = verb({"ext", "list", "--json"});
      if (r.code == 0) {
        bool all = true;
        auto items = cli::json_array_items(r.out);
        for (const auto& item : items.value_or(std::vector<std::string>{})) {
          all = all && JsonReader::parse(item)->string("state") == "HEALTHY";
        }
        if (all && items && !items->empty()) return;
      }
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "symphony up not ready:\n" << up_->err();
  }

  // The instances of `list --json` by id.
  std::optional<JsonReader> instance(const std::string& list_json, const std::string& id) {
    auto items = cli::json_array_items(list_json);
    EXPECT_TRUE(items) << list_json;
    for (const auto& item : items.value_or(std::vector<std::string>{})) {
      auto f = JsonReader::parse(item);
      if (f && f->string("id") == id) return *f;
    }
    return std::nullopt;
  }

  std::string bus_;
  fs::path dir_;
  fs::path runtime_;
  std::optional<Command> up_;
};

TEST_F(CliCommandTest, UpRunsTheConfigsExtensionsAndListShowsThemHealthy) {
  ASSERT_NO_FATAL_FAILURE(up(config()));
  const std::string banner = up_->out();
  EXPECT_NE(banner.find("symphony host on bus '" + bus_ + "'"), std::string::npos) << banner;
  EXPECT_NE(banner.find("symphony ext list --bus " + bus_), std::string::npos) << banner;

  const Result list = verb({"ext", "list", "--json"});
  ASSERT_EQ(list.code, 0) << list.err;
  for (const char* id : {"filed", "inline"}) {
    auto f = instance(list.out, id);
    ASSERT_TRUE(f) << list.out;
    EXPECT_EQ(f->string("state"), "HEALTHY");
    EXPECT_GT(f->integer("pid").value_or(0), 0);
    EXPECT_EQ(f->integer("restarts"), 0);
    EXPECT_GT(f->integer("rss_bytes").value_or(0), 0);
    EXPECT_GE(f->integer("uptime_ns").value_or(-1), 0);
    EXPECT_TRUE(f->integer("cpu_ns"));
  }
  EXPECT_EQ(instance(list.out, "filed")->string("version"), "3.1.4");
  EXPECT_EQ(instance(list.out, "inline")->string("version"), "0.9");

  const Result table = verb({"ext", "list"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("ID ", 0), 0u) << table.out;
  for (const char* column : {"VERSION", "PID", "STATE", "RESTARTS", "CPU", "RSS", "UPTIME"}) {
    EXPECT_NE(table.out.find(column), std::string::npos) << table.out;
  }
  EXPECT_NE(table.out.find("filed"), std::string::npos);
}

TEST_F(CliCommandTest, StopShowsTerminatedStartAndRestartBringItBack) {
  ASSERT_NO_FATAL_FAILURE(up(config()));
  const auto before = instance(verb({"ext", "list", "--json"}).out, "filed");
  ASSERT_TRUE(before);
  const auto old_pid = before->integer("pid").value_or(0);

  Result stop = verb({"ext", "stop", "filed", "--json"});
  ASSERT_EQ(stop.code, 0) << stop.err;
  auto list = verb({"ext", "list", "--json"});
  auto f = instance(list.out, "filed");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->string("state"), "TERMINATED") << list.out;
  EXPECT_EQ(f->integer("pid"), 0);
  EXPECT_EQ(::kill(static_cast<pid_t>(old_pid), 0), -1) << "the process is gone";
  EXPECT_EQ(instance(list.out, "inline")->string("state"), "HEALTHY") << "the other runs on";

  Result start = verb({"ext", "start", "filed", "--json"});
  ASSERT_EQ(start.code, 0) << start.err;
  auto body = JsonReader::parse(start.out);
  ASSERT_TRUE(body) << start.out;
  EXPECT_EQ(body->string("extension"), "filed");
  auto started = instance(body->raw("instances").value_or("[]"), "filed");
  ASSERT_TRUE(started);
  EXPECT_EQ(started->string("state"), "HEALTHY");
  const auto started_pid = started->integer("pid").value_or(0);
  EXPECT_GT(started_pid, 0);

  Result restart = verb({"ext", "restart", "filed"});
  ASSERT_EQ(restart.code, 0) << restart.err;
  EXPECT_NE(restart.out.find("restarted filed"), std::string::npos) << restart.out;
  f = instance(verb({"ext", "list", "--json"}).out, "filed");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->string("state"), "HEALTHY");
  EXPECT_NE(f->integer("pid").value_or(0), started_pid);
}

TEST_F(CliCommandTest, LogsShowWhatTheExtensionPrintedAndFollowShowsMore) {
  ASSERT_NO_FATAL_FAILURE(up(config()));
  const Result logs = verb({"ext", "logs", "filed", "--lines", "100", "--json"});
  ASSERT_EQ(logs.code, 0) << logs.err;
  auto body = JsonReader::parse(logs.out);
  ASSERT_TRUE(body) << logs.out;
  const std::string text = body->string("text").value_or("");
  for (int i = 0; i < 5; ++i) {
    EXPECT_NE(text.find("line 0000000" + std::to_string(i)), std::string::npos) << text;
  }
  EXPECT_TRUE(fs::exists(body->string("file").value_or("")));
  // --lines counts from the end.
  const Result two = verb({"ext", "logs", "filed", "--lines", "2"});
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_EQ(lines_of(two.out).size(), 2u) << two.out;

  // --follow prints what a restarted instance writes, until SIGTERM.
  Command follow({"ext", "logs", "filed", "--lines", "0", "--follow", "--bus", bus_}, dir_);
  std::this_thread::sleep_for(500ms * kSlow);
  ASSERT_EQ(verb({"ext", "restart", "filed"}).code, 0);
  const auto deadline = Clock::now() + 10s * kSlow;
  while (Clock::now() < deadline && follow.out().find("line 00000004") == std::string::npos) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_NE(follow.out().find("line 00000004"), std::string::npos) << follow.out();
  follow.signal(SIGTERM);
  EXPECT_EQ(follow.wait(10s * kSlow), 0) << follow.err();
}

TEST_F(CliCommandTest, UpdateReplacesTheExtensionByItsNextVersion) {
  ASSERT_NO_FATAL_FAILURE(up(config()));
  const auto before = instance(verb({"ext", "list", "--json"}).out, "filed");
  ASSERT_TRUE(before);
  const fs::path next =
      write("filed-next.json", std::string(R"({"id":"filed","version":"3.2.0","executable":")") +
                                   SYMPHONY_TEST_EXTENSION + "\"}");
  Result updated = verb({"ext", "update", "filed", "--manifest", next.string(), "--json"});
  ASSERT_EQ(updated.code, 0) << updated.err;
  auto body = JsonReader::parse(updated.out);
  ASSERT_TRUE(body) << updated.out;
  auto items = cli::json_array_items(body->raw("instances").value_or("[]"));
  ASSERT_TRUE(items);
  int healthy_new = 0;
  for (const auto& item : *items) {
    auto f = JsonReader::parse(item);
    if (f->string("state") == "HEALTHY") {
      EXPECT_EQ(f->string("version"), "3.2.0") << updated.out;
      EXPECT_NE(f->integer("pid"), before->integer("pid"));
      ++healthy_new;
    }
  }
  EXPECT_EQ(healthy_new, 1) << updated.out;
  // A manifest of another extension is refused, and nothing changes.
  const fs::path other =
      write("other.json", std::string(R"({"id":"other","version":"1","executable":")") +
                              SYMPHONY_TEST_EXTENSION + "\"}");
  Result refused = verb({"ext", "update", "filed", "--manifest", other.string()});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("is for extension 'other', not 'filed'"), std::string::npos)
      << refused.err;
}

TEST_F(CliCommandTest, CallSendsARequestAndPrintsTheReply) {
  ASSERT_NO_FATAL_FAILURE(up(config()));
  // The test extension echoes methods it does not know.
  Result echoed = verb({"ext", "call", "filed", "anything", R"({"x": 1})"});
  ASSERT_EQ(echoed.code, 0) << echoed.err;
  EXPECT_EQ(echoed.out, "{\"x\": 1}\n");
  Result json = verb({"ext", "call", "filed", "whoami", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  auto body = JsonReader::parse(json.out);
  ASSERT_TRUE(body) << json.out;
  EXPECT_EQ(body->string("extension"), "filed");
  EXPECT_EQ(body->string("method"), "whoami");
  auto reply = JsonReader::parse(body->raw("reply").value_or("{}"));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->integer("pid"), instance(verb({"ext", "list", "--json"}).out, "filed")
                                        ->integer("pid"));
  // Errors: not JSON (usage), unknown extension, an extension that fails the request.
  EXPECT_EQ(verb({"ext", "call", "filed", "anything", "{not json"}).code, 2);
  Result unknown = verb({"ext", "call", "nope", "anything"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("'nope'"), std::string::npos) << unknown.err;
  Result failed = verb({"ext", "call", "filed", "commit", R"({"counter": 1})"});
  EXPECT_EQ(failed.code, 1);
  EXPECT_NE(failed.err.find("started without --checkpoint"), std::string::npos) << failed.err;
  EXPECT_EQ(lines_of(failed.err).size(), 1u) << failed.err;
}

// The summary `up` prints when it stops: what ran and what the topics carried (scripts check it).
TEST_F(CliCommandTest, UpEndsWithASummaryOfInstancesAndTopics) {
  Result r = run({"up", "--config", config().string(), "--duration", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\nup: ran "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 instance(s): 2 HEALTHY, 0 restart(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("samples/s\n"), std::string::npos) << r.out;
}

TEST_F(CliCommandTest, ErrorsExitNonZeroWithOneLineReasons) {
  // No host running.
  Result none = verb({"ext", "list"});
  EXPECT_EQ(none.code, 3);
  EXPECT_EQ(lines_of(none.err).size(), 1u) << none.err;
  EXPECT_NE(none.err.find("no host is running on bus '" + bus_ + "'"), std::string::npos)
      << none.err;
  // A bad config: refused by up and by validate, naming the key.
  const fs::path bad =
      write("bad.toml", "bus = \"" + bus_ + "\"\n[supervisor]\nkill_grace_ms = -1\n");
  Result refused = run({"up", "--config", bad.string()});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("key 'supervisor.kill_grace_ms'"), std::string::npos) << refused.err;
  EXPECT_EQ(lines_of(refused.err).size(), 1u) << refused.err;
  Result missing = run({"up", "--config", (dir_ / "none.toml").string()});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("no such file"), std::string::npos) << missing.err;
  // A bad command line.
  EXPECT_EQ(run({"ext", "frobnicate"}).code, 2);

  ASSERT_NO_FATAL_FAILURE(up(config()));
  // Unknown extension.
  for (const char* v : {"stop", "start", "restart", "logs"}) {
    Result unknown = verb({"ext", v, "nope"});
    EXPECT_EQ(unknown.code, 1) << v;
    EXPECT_EQ(lines_of(unknown.err).size(), 1u) << unknown.err;
    EXPECT_NE(unknown.err.find("unknown extension 'nope'"), std::string::npos) << unknown.err;
  }
  // A second host on the same bus.
  Result second = run({"up", "--config", config().string(), "--duration", "1"});
  EXPECT_EQ(second.code, 1);
  EXPECT_NE(second.err.find("already running on bus '" + bus_ + "'"), std::string::npos)
      << second.err;
  // A wrong token (as if the file held a stale one): refused, nothing done.
  const fs::path token_file = runtime_ / "admin.token";
  const std::string token = read_file(token_file);
  ASSERT_FALSE(token.empty());
  std::ofstream(token_file, std::ios::trunc) << std::string(32, 'f') << "\n";
  Result wrong = verb({"ext", "stop", "filed"});
  EXPECT_EQ(wrong.code, 1);
  EXPECT_NE(wrong.err.find("wrong admin token"), std::string::npos) << wrong.err;
  std::ofstream(token_file, std::ios::trunc) << token;
  auto f = instance(verb({"ext", "list", "--json"}).out, "filed");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->string("state"), "HEALTHY") << "the refused stop did nothing";
}

TEST_F(CliCommandTest, SigtermStopsUpCleanlyAndLeavesNoSocketOrToken) {
  ASSERT_NO_FATAL_FAILURE(up(config()));
  EXPECT_TRUE(fs::exists(runtime_ / "admin"));
  struct stat st {};
  ASSERT_EQ(::stat((runtime_ / "admin.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(runtime_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  const auto pid =
      instance(verb({"ext", "list", "--json"}).out, "filed")->integer("pid").value_or(0);
  ASSERT_GT(pid, 0);

  up_->signal(SIGTERM);
  EXPECT_EQ(up_->wait(20s * kSlow), 0) << up_->err();
  EXPECT_NE(up_->err().find("stopping (SIGTERM)"), std::string::npos) << up_->err();
  up_.reset();
  EXPECT_FALSE(fs::exists(runtime_ / "admin"));
  EXPECT_FALSE(fs::exists(runtime_ / "admin.token"));
  EXPECT_FALSE(fs::exists(runtime_ / "control"));
  EXPECT_EQ(::kill(static_cast<pid_t>(pid), 0), -1) << "its extensions are gone";
  EXPECT_EQ(verb({"ext", "list"}).code, 3);
}

TEST_F(CliCommandTest, UpStopsAfterItsDuration) {
  Result r = run({"up", "--config", config().string(), "--duration", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("HEALTHY"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("stopping (duration)"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(runtime_ / "admin.token"));
}

TEST_F(CliCommandTest, ConfigGenThenValidateRoundTrip) {
  const fs::path file = dir_ / "gen.toml";
  Result gen = run({"config", "gen", "--bus", bus_, "--output", file.string()});
  ASSERT_EQ(gen.code, 0) << gen.err;
  EXPECT_NE(read_file(file).find("# "), std::string::npos) << "commented";
  EXPECT_EQ(run({"config", "gen", "--output", file.string()}).code, 1) << "no overwrite";
  Result valid = run({"config", "validate", file.string(), "--json"});
  ASSERT_EQ(valid.code, 0) << valid.err;
  auto body = JsonReader::parse(valid.out);
  ASSERT_TRUE(body) << valid.out;
  EXPECT_EQ(body->boolean("valid"), true);
  EXPECT_EQ(body->string("bus"), bus_);
  // gen to stdout is the same text; validate finds a config through $SYMPHONY_CONFIG too.
  Result to_stdout = run({"config", "gen", "--bus", bus_});
  EXPECT_EQ(to_stdout.out, read_file(file));

  // Broken: the first problem, with its key.
  std::ofstream(file, std::ios::app) << "\n[[extension]]\nid = \"x\"\nversion = \"1\"\n"
                                        "executable = \"" SYMPHONY_TEST_EXTENSION
                                        "\"\n"
                                        "restart = { policy = \"sometimes\" }\n";
  Result invalid = run({"config", "validate", file.string(), "--json"});
  EXPECT_EQ(invalid.code, 1);
  body = JsonReader::parse(lines_of(invalid.out).at(0));
  ASSERT_TRUE(body) << invalid.out;
  EXPECT_EQ(body->boolean("valid"), false);
  EXPECT_EQ(body->string("key"), "extension[0].restart.policy") << invalid.out;
  EXPECT_NE(invalid.err.find("key 'extension[0].restart.policy'"), std::string::npos)
      << invalid.err;
}

// A publisher in this process: `rate_hz` samples a second ("sample <n>"), on a thread.
class Publisher {
 public:
  Publisher(const std::string& bus_name, const std::string& topic, double rate_hz,
            engine::TopicOptions options = {})
      : bus_(*Bus::open({.name = bus_name, .runtime_dir = {}})) {
    auto pub = bus_.advertise(topic, {}, options);
    if (!pub) throw std::runtime_error(pub.error().message);
    pub_.emplace(std::move(*pub));
    if (rate_hz > 0) {
      thread_ = std::thread([this, rate_hz] {
        const auto period = std::chrono::duration<double>(1.0 / rate_hz);
        auto next = Clock::now();
        while (!stop_.load()) {
          publish_one();
          next += std::chrono::duration_cast<Clock::duration>(period);
          std::this_thread::sleep_until(next);
        }
      });
    }
  }
  ~Publisher() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  engine::RingStatus publish_one() {
    const std::string text = "sample " + std::to_string(++sent_);
    return pub_->try_publish(std::as_bytes(std::span(text.data(), text.size())));
  }
  engine::PublisherCounters counters() const { return pub_->counters(); }
  Bus& bus() { return bus_; }

 private:
  Bus bus_;
  std::optional<engine::RawPublisher> pub_;
  std::atomic<bool> stop_{false};
  std::uint64_t sent_ = 0;
  std::thread thread_;
};

TEST_F(CliCommandTest, TopicListSeesATopicWithItsPublisherSubscribersAndRates) {
  Publisher pub(bus_, "cli/list", 200);
  auto sub = pub.bus().subscribe("cli/list");
  ASSERT_TRUE(sub);
  Result r = verb({"topic", "list", "--json", "--window", "0.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto body = JsonReader::parse(r.out);
  ASSERT_TRUE(body) << r.out;
  EXPECT_EQ(body->string("bus"), bus_);
  auto topics = cli::json_array_items(body->raw("topics").value_or("[]"));
  ASSERT_TRUE(topics);
  ASSERT_EQ(topics->size(), 1u) << r.out;
  auto t = JsonReader::parse((*topics)[0]);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->string("name"), "cli/list");
  EXPECT_EQ(t->string("transport"), "native");
  EXPECT_EQ(t->string("type"), "bytes");
  auto publishers = cli::json_array_items(t->raw("publishers").value_or("[]"));
  ASSERT_EQ(publishers->size(), 1u);
  EXPECT_EQ(JsonReader::parse((*publishers)[0])->integer("pid"), ::getpid());
  auto subscribers = cli::json_array_items(t->raw("subscribers").value_or("[]"));
  ASSERT_EQ(subscribers->size(), 1u);
  EXPECT_EQ(JsonReader::parse((*subscribers)[0])->string("overflow"), "block");
  auto qos = JsonReader::parse(t->raw("qos").value_or("{}"));
  EXPECT_EQ(qos->integer("max_payload"), 4096);
  // The rate is the counters' difference over the window: > 0, no tight bound.
  const std::string rate = t->raw("published_per_s").value_or("null");
  EXPECT_GT(std::strtod(rate.c_str(), nullptr), 10.0) << r.out;
  EXPECT_TRUE(t->integer("dropped"));

  Result table = verb({"topic", "list", "--window", "0"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("cli/list"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("TRANSPORT"), std::string::npos) << table.out;
}

TEST_F(CliCommandTest, TopicHzReportsAPositiveRate) {
  Publisher pub(bus_, "cli/rate", 200);
  Result r = verb({"topic", "hz", "cli/rate", "--json", "--duration", "2.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto reports = lines_of(r.out);
  ASSERT_GE(reports.size(), 1u) << r.out;
  auto last = JsonReader::parse(reports.back());
  ASSERT_TRUE(last) << reports.back();
  const double rate = std::strtod(last->raw("rate").value_or("0").c_str(), nullptr);
  EXPECT_GT(rate, 20.0) << r.out;  // 200 Hz published; a loaded machine may be far off
  EXPECT_LT(rate, 20000.0) << r.out;
  EXPECT_GT(last->integer("samples").value_or(0), 10) << r.out;
  EXPECT_GT(last->integer("window").value_or(0), 0) << r.out;

  Result text = verb({"topic", "hz", "cli/rate", "--duration", "1.5"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("average rate:"), std::string::npos) << text.out;
}

TEST_F(CliCommandTest, TopicEchoPrintsSamples) {
  Publisher pub(bus_, "cli/echo", 100);
  Result r = verb({"topic", "echo", "cli/echo", "--json", "--text", "--count", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto samples = lines_of(r.out);
  ASSERT_EQ(samples.size(), 3u) << r.out;
  for (const auto& line : samples) {
    auto s = JsonReader::parse(line);
    ASSERT_TRUE(s) << line;
    EXPECT_EQ(s->string("text").value_or("").rfind("sample ", 0), 0u) << line;
  }
  Result hex = verb({"topic", "echo", "cli/echo", "--count", "1"});
  ASSERT_EQ(hex.code, 0) << hex.err;
  EXPECT_NE(hex.out.find("73 61 6d 70 6c 65"), std::string::npos) << hex.out;  // "sample"
  EXPECT_NE(hex.out.find("|sample "), std::string::npos) << hex.out;
  // No such topic, not waiting: an error.
  Result none = verb({"topic", "echo", "cli/none", "--wait", "0"});
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("no topic 'cli/none'"), std::string::npos) << none.err;
}

TEST_F(CliCommandTest, AStoppedEchoNeverBackPressuresABlockTopic) {
  engine::TopicOptions options;
  options.capacity = 64;
  Publisher pub(bus_, "cli/block", 0, options);
  Command echo({"topic", "echo", "cli/block", "--json", "--bus", bus_}, dir_);
  // Wait until echo is attached.
  ASSERT_TRUE([&] {
    const auto deadline = Clock::now() + 10s * kSlow;
    while (Clock::now() < deadline) {
      auto topics = pub.bus().topics();
      if (topics && !topics->empty() && !(*topics)[0].subscribers.empty()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }());
  ::kill(echo.pid(), SIGSTOP);
  for (int i = 0; i < 64 * 10; ++i) ASSERT_EQ(pub.publish_one(), engine::RingStatus::ok) << i;
  EXPECT_EQ(pub.counters().full, 0u) << "echo never made the publisher wait";
  ::kill(echo.pid(), SIGCONT);
  // Once it runs again it finds it was overtaken: its dropped counter grows.
  bool dropped = false;
  const auto deadline = Clock::now() + 10s * kSlow;
  while (!dropped && Clock::now() < deadline) {
    pub.publish_one();
    auto topics = pub.bus().topics();
    if (topics && !topics->empty() && !(*topics)[0].subscribers.empty()) {
      const auto& s = (*topics)[0].subscribers[0];
      EXPECT_EQ(s.overflow, engine::Overflow::discard_oldest);
      dropped = s.dropped > 0;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(dropped);
  echo.signal(SIGTERM);
  EXPECT_EQ(echo.wait(10s * kSlow), 0) << echo.err();
  EXPECT_EQ(pub.counters().full, 0u);
}

TEST_F(CliCommandTest, PerfRunsTheHarnessWithItsArguments) {
  if (::access(SYMPHONY_PERF_BUILD_PATH, X_OK) != 0) {
    GTEST_SKIP() << "symphony-perf is not built here (SYMPHONY_BUILD_APPS=OFF)";
  }
  Result help = run({"perf", "--help"});
  EXPECT_EQ(help.code, 0) << help.err;
  EXPECT_NE((help.out + help.err).find("symphony-perf"), std::string::npos) << help.out;
  Result bad = run({"perf", "--no-such-option"});
  EXPECT_NE(bad.code, 0);
}

TEST_F(CliCommandTest, HelpEverywhere) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--help"},
                                               {"up", "--help"},
                                               {"ext", "--help"},
                                               {"ext", "list", "--help"},
                                               {"ext", "logs", "--help"},
                                               {"topic", "hz", "--help"},
                                               {"topic", "echo", "--help"},
                                               {"config", "validate", "--help"}}) {
    Result r = run(args);
    EXPECT_EQ(r.code, 0) << args[0];
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
  }
  EXPECT_NE(run({"--help"}).out.find("SYMPHONY_CONFIG"), std::string::npos);
}

}  // namespace
}  // namespace symphony::test
