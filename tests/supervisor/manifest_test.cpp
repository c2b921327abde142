// Manifests: a complete one parses into every field; each invalid field is refused with its path
// and a reason (one case per field and kind of mistake).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "symphony/supervisor/manifest.hpp"

namespace {

using namespace symphony::supervisor;
using namespace std::chrono_literals;

// /bin/sh exists and is executable everywhere the tests run.
const std::string kMinimal = R"("id": "thermo", "version": "1.0.0", "executable": "/bin/sh")";

std::string with(const std::string& extra) { return "{" + kMinimal + ", " + extra + "}"; }

TEST(Manifest, CompleteManifestParsesEveryField) {
  const std::string json = R"({
    "id": "thermo_2", "version": "1.4.0-rc1", "executable": "/bin/sh", "args": ["-c", "true"],
    "instances": 3, "start": "on-demand", "idle_stop_s": 2.5,
    "limits": {"memory_mib": 256, "cpu_cores": 0.5}, "checkpoint_bytes": 65536,
    "hang_timeout_ms": 1500, "start_timeout_ms": 7000,
    "restart": {"policy": "backoff", "initial_ms": 50, "factor": 3, "cap_ms": 4000,
                "reset_after_s": 10},
    "intensity": {"max_restarts": 7, "period_s": 30},
    "topics": {
      "publish": [{"name": "sensors/temp", "type": "plant.Reading", "transport": "iceoryx"}],
      "subscribe": [{"name": "commands", "qos": {"depth": 8, "overflow": "discard_oldest",
                                                "history": 2}}]
    }
  })";
  auto m = parse_manifest(json);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->id, "thermo_2");
  EXPECT_EQ(m->version, "1.4.0-rc1");
  EXPECT_EQ(m->executable, "/bin/sh");
  EXPECT_EQ(m->args, (std::vector<std::string>{"-c", "true"}));
  EXPECT_EQ(m->instances, 3);
  EXPECT_EQ(m->start, StartMode::on_demand);
  EXPECT_EQ(m->idle_stop, 2500ms);
  EXPECT_EQ(m->limits.memory_bytes, 256u << 20);
  EXPECT_DOUBLE_EQ(m->limits.cpu_cores, 0.5);
  EXPECT_EQ(m->checkpoint_bytes, 65536u);
  EXPECT_EQ(m->hang_timeout, 1500ms);
  EXPECT_EQ(m->start_timeout, 7000ms);
  EXPECT_EQ(m->restart.kind, RestartKind::backoff);
  EXPECT_EQ(m->restart.backoff.initial, 50ms);
  EXPECT_DOUBLE_EQ(m->restart.backoff.factor, 3.0);
  EXPECT_EQ(m->restart.backoff.cap, 4000ms);
  EXPECT_EQ(m->restart.backoff.reset_after, 10s);
  EXPECT_EQ(m->intensity.max_restarts, 7u);
  EXPECT_EQ(m->intensity.period, 30s);
  ASSERT_EQ(m->publishes.size(), 1u);
  EXPECT_EQ(m->publishes[0].name, "sensors/temp");
  EXPECT_EQ(m->publishes[0].type, "plant.Reading");
  EXPECT_EQ(m->publishes[0].transport, symphony::engine::TopicTransport::iceoryx);
  ASSERT_EQ(m->subscribes.size(), 1u);
  EXPECT_EQ(m->subscribes[0].depth, 8u);
  EXPECT_EQ(m->subscribes[0].overflow, symphony::engine::Overflow::discard_oldest);
  EXPECT_EQ(m->subscribes[0].history, 2u);
  EXPECT_EQ(declared_topics_json(*m),
            R"({"publish":[{"name":"sensors/temp","type":"plant.Reading","transport":"iceoryx",)"
            R"("qos":{"depth":64,"overflow":"block","history":0}}],)"
            R"("subscribe":[{"name":"commands","type":"bytes","transport":"native",)"
            R"("qos":{"depth":8,"overflow":"discard-oldest","history":2}}]})");
}

TEST(Manifest, MinimalManifestGetsTheDefaults) {
  auto m = parse_manifest("{" + kMinimal + "}");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->instances, 1);
  EXPECT_EQ(m->start, StartMode::eager);
  EXPECT_EQ(m->restart.kind, RestartKind::immediate);
  EXPECT_EQ(m->limits.memory_bytes, 0u);
  EXPECT_EQ(m->intensity.max_restarts, 5u);
  EXPECT_TRUE(m->publishes.empty());
  EXPECT_EQ(m->checkpoint_bytes, 0u);
  EXPECT_EQ(declared_topics_json(*m), R"({"publish":[],"subscribe":[]})");
}

TEST(Manifest, RelativeExecutableIsResolvedAgainstTheManifestsFolder) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sym-manifest-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "bin");
  std::filesystem::copy_file("/bin/true", dir / "bin" / "ext",
                             std::filesystem::copy_options::overwrite_existing);
  {
    std::ofstream out(dir / "ext.json");
    out << R"({"id": "x", "version": "1", "executable": "bin/ext"})";
  }
  auto m = load_manifest(dir / "ext.json");
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->executable, dir / "bin" / "ext");
  EXPECT_EQ(m->source, dir / "ext.json");
}

TEST(Manifest, UnreadableFileIsRefusedWithItsName) {
  auto m = load_manifest("/nonexistent/ext.json");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message().find("/nonexistent/ext.json"), std::string::npos);
}

struct InvalidCase {
  const char* name;
  std::string json;
  std::string field;   // the path the refusal must name
  std::string reason;  // a piece of the reason
};

std::ostream& operator<<(std::ostream& os, const InvalidCase& c) { return os << c.name; }

class InvalidManifest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidManifest, IsRefusedWithFieldAndReason) {
  const InvalidCase& c = GetParam();
  auto m = parse_manifest(c.json);
  ASSERT_FALSE(m) << c.name << " was accepted";
  EXPECT_EQ(m.error().field, c.field) << m.error().message();
  EXPECT_NE(m.error().reason.find(c.reason), std::string::npos) << m.error().message();
  // The message names both.
  EXPECT_NE(m.error().message().find(c.field), std::string::npos);
  EXPECT_EQ(m.error().to_error().code, symphony::engine::Errc::invalid_argument);
}

const InvalidCase kInvalid[] = {
    {"not_json", "{\"id\": ", "", "not valid JSON"},
    {"not_object", "[1, 2]", "", "must be a JSON object"},
    {"id_missing", R"({"version": "1", "executable": "/bin/sh"})", "id", "is required"},
    {"id_not_string", R"({"id": 7, "version": "1", "executable": "/bin/sh"})", "id",
     "must be a string"},
    {"id_bad_chars", R"({"id": "a/b", "version": "1", "executable": "/bin/sh"})", "id",
     "letters, digits"},
    {"id_too_long",
     R"({"id": ")" + std::string(41, 'a') + R"(", "version": "1", "executable": "/bin/sh"})", "id",
     "1-40"},
    {"version_missing", R"({"id": "x", "executable": "/bin/sh"})", "version", "is required"},
    {"version_with_space", R"({"id": "x", "version": "1 0", "executable": "/bin/sh"})", "version",
     "without spaces"},
    {"executable_missing", R"({"id": "x", "version": "1"})", "executable", "is required"},
    {"executable_empty", R"({"id": "x", "version": "1", "executable": ""})", "executable",
     "must not be empty"},
    {"executable_not_found", R"({"id": "x", "version": "1", "executable": "/no/such/ext"})",
     "executable", "cannot be executed"},
    {"executable_not_executable", R"({"id": "x", "version": "1", "executable": "/etc/passwd"})",
     "executable", "cannot be executed"},
    {"executable_is_directory", R"({"id": "x", "version": "1", "executable": "/tmp"})",
     "executable", "not a regular file"},
    {"args_not_array", with(R"("args": "-v")"), "args", "must be an array"},
    {"args_item_not_string", with(R"("args": ["-v", 3])"), "args[1]", "must be a string"},
    {"instances_zero", with(R"("instances": 0)"), "instances", "between 1 and 64"},
    {"instances_too_many", with(R"("instances": 65)"), "instances", "between 1 and 64"},
    {"instances_fraction", with(R"("instances": 1.5)"), "instances", "whole number"},
    {"start_unknown", with(R"("start": "lazy")"), "start", "\"eager\" or \"on-demand\""},
    {"idle_stop_with_eager", with(R"("idle_stop_s": 5)"), "idle_stop_s", "only to"},
    {"idle_stop_zero", with(R"("start": "on-demand", "idle_stop_s": 0)"), "idle_stop_s",
     "greater than 0"},
    {"checkpoint_too_big", with(R"("checkpoint_bytes": 1073741825)"), "checkpoint_bytes",
     "between 0 and 1073741824"},
    {"checkpoint_negative", with(R"("checkpoint_bytes": -1)"), "checkpoint_bytes", "between 0 and"},
    {"checkpoint_not_number", with(R"("checkpoint_bytes": "1M")"), "checkpoint_bytes",
     "must be a number"},
    {"limits_not_object", with(R"("limits": 5)"), "limits", "must be an object"},
    {"memory_too_small", with(R"("limits": {"memory_mib": 1})"), "limits.memory_mib",
     "between 4 and"},
    {"memory_not_number", with(R"("limits": {"memory_mib": "1G"})"), "limits.memory_mib",
     "must be a number"},
    {"cpu_zero", with(R"("limits": {"cpu_cores": 0})"), "limits.cpu_cores", "at least 0.01"},
    {"cpu_negative", with(R"("limits": {"cpu_cores": -1})"), "limits.cpu_cores", "at least"},
    {"limits_unknown_field", with(R"("limits": {"disk_mib": 5})"), "limits.disk_mib",
     "not a known field"},
    {"hang_timeout_too_small", with(R"("hang_timeout_ms": 10)"), "hang_timeout_ms",
     "between 50 and"},
    {"start_timeout_not_number", with(R"("start_timeout_ms": true)"), "start_timeout_ms",
     "must be a number"},
    {"restart_not_object", with(R"("restart": "immediate")"), "restart", "must be an object"},
    {"restart_policy_missing", with(R"("restart": {})"), "restart.policy", "is required"},
    {"restart_policy_unknown", with(R"("restart": {"policy": "always"})"), "restart.policy",
     "\"immediate\", \"backoff\" or \"manual\""},
    {"backoff_field_on_immediate", with(R"("restart": {"policy": "immediate", "factor": 2})"),
     "restart.factor", "only to the \"backoff\" policy"},
    {"backoff_initial_zero", with(R"("restart": {"policy": "backoff", "initial_ms": 0})"),
     "restart.initial_ms", "between 1 and"},
    {"backoff_factor_below_one", with(R"("restart": {"policy": "backoff", "factor": 0.5})"),
     "restart.factor", "at least 1"},
    {"backoff_cap_below_initial",
     with(R"("restart": {"policy": "backoff", "initial_ms": 500, "cap_ms": 100})"),
     "restart.cap_ms", "at least initial_ms"},
    {"backoff_reset_negative", with(R"("restart": {"policy": "backoff", "reset_after_s": -1})"),
     "restart.reset_after_s", "greater than 0"},
    {"restart_unknown_field", with(R"("restart": {"policy": "manual", "retries": 3})"),
     "restart.retries", "not a known field"},
    {"intensity_max_missing", with(R"("intensity": {"period_s": 5})"), "intensity.max_restarts",
     "is required"},
    {"intensity_max_zero", with(R"("intensity": {"max_restarts": 0, "period_s": 5})"),
     "intensity.max_restarts", "between 1 and"},
    {"intensity_period_missing", with(R"("intensity": {"max_restarts": 3})"), "intensity.period_s",
     "is required"},
    {"intensity_period_zero", with(R"("intensity": {"max_restarts": 3, "period_s": 0})"),
     "intensity.period_s", "greater than 0"},
    {"topics_not_object", with(R"("topics": [])"), "topics", "must be an object"},
    {"topics_publish_not_array", with(R"("topics": {"publish": {}})"), "topics.publish",
     "must be an array"},
    {"topic_not_object", with(R"("topics": {"publish": ["x"]})"), "topics.publish[0]",
     "must be an object"},
    {"topic_name_missing", with(R"("topics": {"subscribe": [{"type": "t"}]})"),
     "topics.subscribe[0].name", "is required"},
    {"topic_name_bad", with(R"("topics": {"publish": [{"name": ".hidden"}]})"),
     "topics.publish[0].name", "not starting with '.'"},
    {"topic_name_twice", with(R"("topics": {"publish": [{"name": "a"}, {"name": "a"}]})"),
     "topics.publish[1].name", "declared twice"},
    {"topic_type_too_long",
     with(R"("topics": {"publish": [{"name": "a", "type": ")" + std::string(64, 't') + R"("}]})"),
     "topics.publish[0].type", "1-63"},
    {"topic_transport_unknown",
     with(R"("topics": {"publish": [{"name": "a", "transport": "tcp"}]})"),
     "topics.publish[0].transport", "\"native\" or \"iceoryx\""},
    {"topic_qos_depth_zero",
     with(R"("topics": {"subscribe": [{"name": "a", "qos": {"depth": 0}}]})"),
     "topics.subscribe[0].qos.depth", "between 1 and"},
    {"topic_qos_overflow_unknown",
     with(R"("topics": {"subscribe": [{"name": "a", "qos": {"overflow": "drop"}}]})"),
     "topics.subscribe[0].qos.overflow", "\"block\" or \"discard_oldest\""},
    {"topic_qos_history_negative",
     with(R"("topics": {"subscribe": [{"name": "a", "qos": {"history": -1}}]})"),
     "topics.subscribe[0].qos.history", "between 0 and"},
    {"topic_unknown_field", with(R"("topics": {"publish": [{"name": "a", "rate": 5}]})"),
     "topics.publish[0].rate", "not a known field"},
    {"topics_unknown_role", with(R"("topics": {"serve": []})"), "topics.serve",
     "not a known field"},
    {"unknown_top_level_field", with(R"("restrat": {"policy": "manual"})"), "restrat",
     "not a known field"},
};

INSTANTIATE_TEST_SUITE_P(EachField, InvalidManifest, ::testing::ValuesIn(kInvalid),
                         [](const ::testing::TestParamInfo<InvalidCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

}  // namespace
