// symphony-perf's JSON writer: schema_version 2 exactly as the report tool (scripts/perf-report.py)
// reads it. Every field of the header, the run, the transports and each kind of result row
// (ping-pong, throughput, fan-out, open loop, skipped) is parsed back with simdjson and its type
// and value checked.

#include <gtest/gtest.h>
#include <unistd.h>

#include <simdjson.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "report.hpp"

namespace symphony::perf {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

MachineInfo machine() {
  MachineInfo m;
  m.cpu = "AMD EPYC \"quoted\"";
  m.cores = 2;
  m.kernel = "Linux 6.1";
  m.compiler = "g++ 12.2.0";
  m.hostname = "vm";
  m.date = "2026-11-25T17:00:00Z";
  m.build_type = "Release";
  m.git_commit = "abc1234+dirty";
  m.placement = "ping on cpu 0, pong on cpu 1";
  return m;
}

RunInfo run() {
  RunInfo r;
  r.command = "symphony-perf --quick --json out.json";
  r.matrix = "quick";
  r.repeats = 3;
  r.seconds_per_repeat = 0.05;
  return r;
}

std::vector<ResultRow> rows() {
  std::vector<ResultRow> rows;
  ResultRow pingpong;
  pingpong.transport = "ring-spsc";
  pingpong.pattern = pingpong.label = "pingpong";
  pingpong.mode = "busy";
  pingpong.payload = 64;
  pingpong.repeats = 5;
  pingpong.p50 = 85;
  pingpong.p90 = 110;
  pingpong.p99 = 150;
  pingpong.p999 = 270;
  pingpong.p9999 = 900;
  pingpong.max = 190842;
  pingpong.mean = 90.6;
  pingpong.touch = 24;
  pingpong.samples = 12345;
  pingpong.ratio_to_floor = 1.42;
  pingpong.spread_min = 75;
  pingpong.spread_max = 85;
  pingpong.hgrm = "hgrm/ring-spsc-pingpong-busy-64B.hgrm";
  rows.push_back(pingpong);

  ResultRow throughput;
  throughput.transport = "uds";
  throughput.pattern = throughput.label = "throughput";
  throughput.mode = "blocking";
  throughput.payload = 64;
  throughput.repeats = 5;
  throughput.msgs_per_s = 190600;
  throughput.bytes_per_s = 190600.0 * 64;
  throughput.samples = 99999;
  throughput.spread_min = 180000;
  throughput.spread_max = 200000;
  rows.push_back(throughput);

  ResultRow fanout = pingpong;
  fanout.transport = "topic-native";
  fanout.pattern = "fanout";
  fanout.label = "fanout(1->8)";
  fanout.fanout = 8;
  fanout.ratio_to_floor.reset();
  fanout.msgs_per_s = 245000;
  fanout.bytes_per_s = 245000.0 * 64;
  fanout.hgrm.clear();
  rows.push_back(fanout);

  ResultRow openloop = pingpong;
  openloop.transport = "zmq-ipc";
  openloop.pattern = "openloop";
  openloop.label = "openloop(20000/s)";
  openloop.rate_per_s = 20000;
  openloop.msgs_per_s = 19990;
  openloop.bytes_per_s = 19990.0 * 64;
  openloop.ratio_to_floor.reset();
  rows.push_back(openloop);

  ResultRow skipped;
  skipped.transport = "boost-spsc";
  skipped.pattern = skipped.label = "pingpong";
  skipped.mode = "blocking";
  skipped.payload = 64;
  skipped.skipped = "boost::lockfree::spsc_queue has no wake-up of its own";
  rows.push_back(skipped);
  return rows;
}

std::vector<TransportInfo> transports() {
  return {{"floor", "the machine's floor"}, {"ring-spsc", "ours: an SPSC ring\nin shm"}};
}

// Every key of `o`, to compare with the schema's list.
std::set<std::string> keys(object o) {
  std::set<std::string> out;
  for (auto field : o) out.emplace(field.key);
  return out;
}

double number(element e) {
  if (e.is_int64()) return static_cast<double>(e.get_int64().value());
  if (e.is_uint64()) return static_cast<double>(e.get_uint64().value());
  return e.get_double().value();
}

class PerfJson : public ::testing::Test {
 protected:
  void SetUp() override {
    text_ = json_document(machine(), run(), transports(), rows());
    auto parsed = parser_.parse(text_);
    ASSERT_EQ(parsed.error(), simdjson::SUCCESS) << text_;
    root_ = parsed.value();
  }
  std::string text_;
  simdjson::dom::parser parser_;
  element root_;
};

TEST_F(PerfJson, HeaderRunAndTransportsHaveEveryFieldWithItsType) {
  ASSERT_TRUE(root_.is_object());
  EXPECT_EQ(keys(root_.get_object()),
            (std::set<std::string>{"schema_version", "machine", "run", "transports", "results"}));
  EXPECT_EQ(root_["schema_version"].get_int64().value(), 2);

  const object m = root_["machine"].get_object();
  EXPECT_EQ(keys(m), (std::set<std::string>{"cpu", "cores", "kernel", "compiler", "hostname",
                                            "date", "build_type", "git_commit", "placement"}));
  EXPECT_EQ(std::string(m["cpu"].get_string().value()), "AMD EPYC \"quoted\"");
  EXPECT_EQ(m["cores"].get_int64().value(), 2);
  EXPECT_EQ(std::string(m["kernel"].get_string().value()), "Linux 6.1");
  EXPECT_EQ(std::string(m["compiler"].get_string().value()), "g++ 12.2.0");
  EXPECT_EQ(std::string(m["hostname"].get_string().value()), "vm");
  EXPECT_EQ(std::string(m["date"].get_string().value()), "2026-11-25T17:00:00Z");
  EXPECT_EQ(std::string(m["build_type"].get_string().value()), "Release");
  EXPECT_EQ(std::string(m["git_commit"].get_string().value()), "abc1234+dirty");
  EXPECT_EQ(std::string(m["placement"].get_string().value()), "ping on cpu 0, pong on cpu 1");

  const object r = root_["run"].get_object();
  EXPECT_EQ(keys(r), (std::set<std::string>{"command", "matrix", "repeats", "seconds_per_repeat"}));
  EXPECT_EQ(std::string(r["command"].get_string().value()),
            "symphony-perf --quick --json out.json");
  EXPECT_EQ(std::string(r["matrix"].get_string().value()), "quick");
  EXPECT_EQ(r["repeats"].get_int64().value(), 3);
  EXPECT_DOUBLE_EQ(number(r["seconds_per_repeat"].value()), 0.05);

  const auto list = root_["transports"].get_array().value();
  ASSERT_EQ(list.size(), 2U);
  EXPECT_EQ(keys(list.at(1).get_object()), (std::set<std::string>{"name", "description"}));
  EXPECT_EQ(std::string(list.at(1)["name"].get_string().value()), "ring-spsc");
  EXPECT_EQ(std::string(list.at(1)["description"].get_string().value()),
            "ours: an SPSC ring\nin shm");
}

const std::set<std::string> kResultKeys{
    "transport",      "pattern",  "mode",       "payload_bytes", "fanout",     "repeats",
    "p50_ns",         "p90_ns",   "p99_ns",     "p999_ns",       "p9999_ns",   "max_ns",
    "mean_ns",        "touch_ns", "msgs_per_s", "bytes_per_s",   "rate_per_s", "samples",
    "ratio_to_floor", "spread",   "hgrm",       "skipped"};

TEST_F(PerfJson, EveryResultRowHasEverySchemaFieldWithItsType) {
  const auto results = root_["results"].get_array().value();
  ASSERT_EQ(results.size(), 5U);
  const std::set<std::string> patterns{"pingpong", "throughput", "fanout", "openloop"};
  for (element row : results) {
    const object o = row.get_object();
    EXPECT_EQ(keys(o), kResultKeys);
    EXPECT_TRUE(o["transport"].is_string());
    EXPECT_EQ(patterns.count(std::string(o["pattern"].get_string().value())), 1U);
    const std::string mode(o["mode"].get_string().value());
    EXPECT_TRUE(mode == "busy" || mode == "blocking") << mode;
    EXPECT_TRUE(o["payload_bytes"].is_int64());
    EXPECT_TRUE(o["fanout"].is_int64());
    EXPECT_TRUE(o["repeats"].is_int64());
    EXPECT_TRUE(o["samples"].is_int64());
    for (const char* field :
         {"p50_ns", "p90_ns", "p99_ns", "p999_ns", "p9999_ns", "max_ns", "mean_ns", "touch_ns",
          "msgs_per_s", "bytes_per_s", "rate_per_s", "ratio_to_floor"}) {
      const element e = o[field].value();
      EXPECT_TRUE(e.is_null() || e.is_number()) << field;
    }
    EXPECT_TRUE(o["hgrm"].is_null() || o["hgrm"].is_string());
    EXPECT_TRUE(o["skipped"].is_null() || o["skipped"].is_string());
    if (o["skipped"].is_null()) {
      const object spread = o["spread"].get_object();
      EXPECT_EQ(keys(spread), (std::set<std::string>{"min", "max"}));
      EXPECT_LE(number(spread["min"].value()), number(spread["max"].value()));
      EXPECT_GT(o["samples"].get_int64().value(), 0);
    } else {
      EXPECT_TRUE(o["spread"].is_null());
    }
  }
}

TEST_F(PerfJson, ValuesRoundTripAndInapplicableFieldsAreNull) {
  const auto results = root_["results"].get_array().value();
  const object pingpong = results.at(0).get_object();
  EXPECT_EQ(std::string(pingpong["transport"].get_string().value()), "ring-spsc");
  EXPECT_EQ(pingpong["payload_bytes"].get_int64().value(), 64);
  EXPECT_EQ(pingpong["fanout"].get_int64().value(), 1);
  EXPECT_EQ(pingpong["repeats"].get_int64().value(), 5);
  EXPECT_DOUBLE_EQ(number(pingpong["p50_ns"].value()), 85);
  EXPECT_DOUBLE_EQ(number(pingpong["p9999_ns"].value()), 900);
  EXPECT_DOUBLE_EQ(number(pingpong["mean_ns"].value()), 90.6);
  EXPECT_DOUBLE_EQ(number(pingpong["touch_ns"].value()), 24);
  EXPECT_NEAR(number(pingpong["ratio_to_floor"].value()), 1.42, 1e-9);
  EXPECT_TRUE(pingpong["msgs_per_s"].is_null());
  EXPECT_TRUE(pingpong["rate_per_s"].is_null());
  EXPECT_EQ(std::string(pingpong["hgrm"].get_string().value()),
            "hgrm/ring-spsc-pingpong-busy-64B.hgrm");
  EXPECT_DOUBLE_EQ(number(pingpong["spread"]["min"].value()), 75);

  const object throughput = results.at(1).get_object();
  EXPECT_TRUE(throughput["p50_ns"].is_null());
  EXPECT_TRUE(throughput["touch_ns"].is_null());
  EXPECT_TRUE(throughput["ratio_to_floor"].is_null());
  EXPECT_DOUBLE_EQ(number(throughput["msgs_per_s"].value()), 190600);
  EXPECT_DOUBLE_EQ(number(throughput["bytes_per_s"].value()), 190600.0 * 64);

  const object fanout = results.at(2).get_object();
  EXPECT_EQ(std::string(fanout["pattern"].get_string().value()), "fanout");
  EXPECT_EQ(fanout["fanout"].get_int64().value(), 8);
  EXPECT_TRUE(fanout["hgrm"].is_null());

  const object openloop = results.at(3).get_object();
  EXPECT_DOUBLE_EQ(number(openloop["rate_per_s"].value()), 20000);

  const object skipped = results.at(4).get_object();
  EXPECT_EQ(std::string(skipped["skipped"].get_string().value()),
            "boost::lockfree::spsc_queue has no wake-up of its own");
  for (const char* field :
       {"p50_ns", "max_ns", "mean_ns", "touch_ns", "msgs_per_s", "ratio_to_floor"}) {
    EXPECT_TRUE(skipped[field].is_null()) << field;
  }
  EXPECT_EQ(skipped["samples"].get_int64().value(), 0);
  EXPECT_EQ(skipped["repeats"].get_int64().value(), 0);
}

TEST(PerfJsonFile, WriteJsonReplacesTheFileWholeAndLeavesNoTemporary) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("perf-json-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "out.json").string();
  { std::ofstream(path) << "old"; }
  const auto error = write_json(path, machine(), run(), transports(), rows());
  ASSERT_FALSE(error) << *error;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), json_document(machine(), run(), transports(), rows()));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  // A directory that does not exist: an error naming the file, not a crash.
  const auto missing = write_json((dir / "no" / "such" / "out.json").string(), machine(), run(),
                                  transports(), rows());
  ASSERT_TRUE(missing);
  EXPECT_NE(missing->find("out.json.tmp"), std::string::npos) << *missing;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace symphony::perf
