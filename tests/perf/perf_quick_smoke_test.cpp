// symphony-perf --quick --json: every transport at 64 B in both modes, ping-pong and throughput,
// end to end (forked sides, the harness's own RouDi for the iceoryx transports). Correctness
// only, never timing: the run succeeds, the JSON is schema 2, and every row either measured
// something (samples > 0, its numbers present, its .hgrm file written) or says why it was
// skipped. Message counts shrink with SYMPHONY_TEST_SCALE.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <simdjson.h>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "test_scale.hpp"

namespace {

namespace fs = std::filesystem;
using simdjson::dom::element;
using simdjson::dom::object;

// The transports every build has; the iceoryx ones come with SYMPHONY_WITH_ICEORYX.
const std::set<std::string> kAlwaysBuilt{"floor",      "floor-buffer", "ring-spsc", "ring-mpmc",
                                         "topic-native", "control-rr", "handoff",  "zmq-ipc",
                                         "uds",        "boost-mq",     "boost-spsc"};
const std::set<std::string> kIceoryx{"topic-iceoryx", "iceoryx-raw"};

// Runs the binary with `args`, stdout and stderr into `log`; its exit status (-1: killed) and pid.
int run(const std::vector<std::string>& args, const fs::path& log, pid_t& child) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (out == nullptr || ::dup2(STDOUT_FILENO, STDERR_FILENO) < 0) ::_exit(126);
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  child = pid;
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_file(const fs::path& path) {
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return {};
  std::string text;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  std::fclose(file);
  return text;
}

TEST(PerfQuickSmoke, EveryTransportRunsOrSaysWhyNot) {
  const fs::path dir = fs::temp_directory_path() / ("perf-smoke-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path json = dir / "quick.json";
  const fs::path log = dir / "run.log";
  std::vector<std::string> args{SYMPHONY_PERF_BINARY, "--quick", "--json",
                                json.string(),        "--hgrm",  (dir / "hgrm").string()};
  if (symphony::test::test_scale() < 1.0) {
    // Sanitizers: a fixed, small number of messages per repeat instead of 50 ms.
    args.push_back("--messages");
    args.push_back(std::to_string(symphony::test::scaled(2000)));
  }
  pid_t pid = -1;
  const int status = run(args, log, pid);
  const std::string output = read_file(log);
  ASSERT_EQ(status, 0) << output;

  simdjson::dom::parser parser;
  const std::string text = read_file(json);
  auto parsed = parser.parse(text);
  ASSERT_EQ(parsed.error(), simdjson::SUCCESS) << text;
  const element root = parsed.value();
  EXPECT_EQ(root["schema_version"].get_int64().value(), 2);
  EXPECT_EQ(std::string(root["run"]["matrix"].get_string().value()), "quick");

  std::set<std::string> described;
  const simdjson::dom::array transports = root["transports"].get_array().value();
  for (element transport : transports) {
    described.emplace(transport["name"].get_string().value());
    EXPECT_FALSE(std::string(transport["description"].get_string().value()).empty());
  }
  for (const std::string& name : kAlwaysBuilt) EXPECT_EQ(described.count(name), 1U) << name;

  // transport -> "pattern/mode" seen, measured or skipped.
  std::map<std::string, std::set<std::string>> seen;
  std::size_t measured = 0;
  const simdjson::dom::array results = root["results"].get_array().value();
  for (element row : results) {
    const object o = row.get_object();
    const std::string transport(o["transport"].get_string().value());
    const std::string pattern(o["pattern"].get_string().value());
    const std::string mode(o["mode"].get_string().value());
    const std::string where = transport + " " + pattern + " " + mode;
    EXPECT_EQ(described.count(transport), 1U) << where << " is not in \"transports\"";
    seen[transport].insert(pattern + "/" + mode);
    if (!o["skipped"].is_null()) {
      EXPECT_FALSE(std::string(o["skipped"].get_string().value()).empty()) << where;
      EXPECT_TRUE(o["p50_ns"].is_null() && o["msgs_per_s"].is_null()) << where;
      continue;
    }
    ++measured;
    EXPECT_GT(o["samples"].get_int64().value(), 0) << where;
    if (pattern == "pingpong") {
      EXPECT_TRUE(o["p50_ns"].is_number()) << where;
      EXPECT_TRUE(o["p9999_ns"].is_number()) << where;
      EXPECT_TRUE(o["touch_ns"].is_number()) << where;
      EXPECT_TRUE(o["ratio_to_floor"].is_number()) << where;
      ASSERT_TRUE(o["hgrm"].is_string()) << where;
      const fs::path hgrm = json.parent_path() / std::string(o["hgrm"].get_string().value());
      const std::string distribution = read_file(hgrm);
      EXPECT_EQ(distribution.rfind("       Value     Percentile TotalCount", 0), 0U) << hgrm;
      EXPECT_NE(distribution.find("#[Max     = "), std::string::npos) << hgrm;
    } else {
      EXPECT_EQ(pattern, "throughput") << where;
      EXPECT_TRUE(o["msgs_per_s"].is_number()) << where;
      EXPECT_GT(o["msgs_per_s"].get_double().value(), 0) << where;
    }
  }
  // Every transport (but the floor, which is the reference) in both patterns and both modes.
  // floor-buffer, the floor for a payload size, is a busy ping-pong only: the matrix has no
  // skipped rows for it.
  for (const std::string& name : described) {
    if (name == "floor") continue;
    if (name == "floor-buffer") {
      EXPECT_EQ(seen[name], (std::set<std::string>{"pingpong/busy"})) << name;
      continue;
    }
    EXPECT_EQ(seen[name], (std::set<std::string>{"pingpong/busy", "pingpong/blocking",
                                                 "throughput/busy", "throughput/blocking"}))
        << name;
  }
  // Most of them run here: only a mode a transport lacks is skipped.
  EXPECT_GE(measured, 2 * (kAlwaysBuilt.size() - 1)) << output;
  // Nothing left behind: the run's shm segments ("symphony-perf.<pid>.<n>.*") are gone.
  const std::string ours = "symphony-perf." + std::to_string(pid) + ".";
  for (const auto& entry : fs::directory_iterator("/dev/shm")) {
    EXPECT_NE(entry.path().filename().string().rfind(ours, 0), 0U)
        << entry.path() << " was left behind";
  }
  fs::remove_all(dir);
}

}  // namespace
