#include "symphony/supervisor/manifest.hpp"

#include <unistd.h>

#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include "symphony/controlplane/envelope.hpp"
#include "symphony/layouts/topic.hpp"

namespace symphony::supervisor {
namespace {

namespace fs = std::filesystem;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

constexpr std::size_t kMaxManifestBytes = 1 << 20;
constexpr int kMaxInstances = 64;

const char* type_name(element_type type) {
  switch (type) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "unknown";
}

std::string number_text(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// Reads the fields of one JSON object, remembering its path for errors and which keys were
// read, so that whatever is left over is refused as unknown.
class Fields {
 public:
  Fields(object obj, std::string path, ManifestError& error)
      : object_(obj), path_(std::move(path)), error_(error) {}

  std::string path_of(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  bool fail(std::string_view key, std::string reason) {
    if (error_.reason.empty()) {
      error_.field = path_of(key);
      error_.reason = std::move(reason);
    }
    return false;
  }

  // The element, if present; marks the key as known.
  std::optional<element> find(std::string_view key) {
    known_.emplace_back(key);
    element value;
    if (object_[key].get(value) != simdjson::SUCCESS) return std::nullopt;
    return value;
  }

  bool has(std::string_view key) {
    element value;
    return object_[key].get(value) == simdjson::SUCCESS;
  }

  // Each getter: true if the field is absent (out unchanged) or valid (out set); false (and
  // the error recorded) if it is present but wrong.
  bool string(std::string_view key, std::string& out, bool required = false) {
    auto value = find(key);
    if (!value) return required ? fail(key, "is required") : true;
    std::string_view text;
    if (value->get(text) != simdjson::SUCCESS) {
      return fail(key, std::string("must be a string, not ") + type_name(value->type()));
    }
    out = std::string(text);
    return true;
  }

  bool integer(std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max,
               bool required = false) {
    auto value = find(key);
    if (!value) return required ? fail(key, "is required") : true;
    std::int64_t number = 0;
    if (value->type() == element_type::DOUBLE) {
      double d = 0;
      if (value->get(d) != simdjson::SUCCESS) d = 0;
      return fail(key, "must be a whole number (got " + number_text(d) + ")");
    }
    if (value->get(number) != simdjson::SUCCESS) {
      if (value->type() == element_type::UINT64) {
        return fail(key, "must be at most " + std::to_string(max));
      }
      return fail(key, std::string("must be a number, not ") + type_name(value->type()));
    }
    if (number < min || number > max) {
      return fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                           " (got " + std::to_string(number) + ")");
    }
    out = number;
    return true;
  }

  // A number (integer or not) with min < value (exclusive_min) or min <= value, value <= max.
  bool number(std::string_view key, double& out, double min, double max, bool exclusive_min,
              bool required = false) {
    auto value = find(key);
    if (!value) return required ? fail(key, "is required") : true;
    double number = 0;
    if (value->get(number) != simdjson::SUCCESS) {
      return fail(key, std::string("must be a number, not ") + type_name(value->type()));
    }
    const bool low = exclusive_min ? !(number > min) : !(number >= min);
    if (low || !(number <= max) || !std::isfinite(number)) {
      return fail(key, std::string("must be ") + (exclusive_min ? "greater than " : "at least ") +
                           number_text(min) + " and at most " + number_text(max) + " (got " +
                           number_text(number) + ")");
    }
    out = number;
    return true;
  }

  bool milliseconds(std::string_view key, std::chrono::milliseconds& out, std::int64_t min,
                    std::int64_t max) {
    std::int64_t ms = out.count();
    if (!integer(key, ms, min, max)) return false;
    out = std::chrono::milliseconds(ms);
    return true;
  }

  // A number of seconds (fractions allowed), stored as milliseconds.
  bool seconds(std::string_view key, std::chrono::milliseconds& out, double min_s, double max_s) {
    double s = static_cast<double>(out.count()) / 1000.0;
    if (!number(key, s, min_s, max_s, true)) return false;
    out = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(s * 1000.0)));
    if (out.count() == 0) return fail(key, "must be at least 1 ms");
    return true;
  }

  std::optional<object> child_object(std::string_view key) {
    auto value = find(key);
    if (!value) return std::nullopt;
    object obj;
    if (value->get(obj) != simdjson::SUCCESS) {
      fail(key, std::string("must be an object, not ") + type_name(value->type()));
      return std::nullopt;
    }
    return obj;
  }

  // Refuses any key that no getter asked for.
  bool no_unknown_fields() {
    for (auto [key, value] : object_) {
      if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        std::string known_list;
        for (const std::string& k : known_) known_list += (known_list.empty() ? "" : ", ") + k;
        return fail(key, "is not a known field (known here: " + known_list + ")");
      }
    }
    return true;
  }

  bool failed() const { return !error_.reason.empty(); }

 private:
  object object_;
  std::string path_;
  ManifestError& error_;
  std::vector<std::string> known_;
};

bool valid_id(std::string_view id) {
  return !id.empty() && id.size() <= 40 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
  });
}

bool valid_version(std::string_view version) {
  return !version.empty() && version.size() <= 64 &&
         std::all_of(version.begin(), version.end(), [](char c) { return c > ' ' && c < 127; });
}

bool parse_topics(Fields& parent, std::string_view role, std::vector<TopicDeclaration>& out,
                  ManifestError& error) {
  auto value = parent.find(role);
  if (!value) return true;
  simdjson::dom::array array;
  if (value->get(array) != simdjson::SUCCESS) {
    return parent.fail(role, std::string("must be an array, not ") + type_name(value->type()));
  }
  std::size_t index = 0;
  for (element item : array) {
    const std::string path = parent.path_of(role) + "[" + std::to_string(index++) + "]";
    object obj;
    if (item.get(obj) != simdjson::SUCCESS) {
      error.field = path;
      error.reason = std::string("must be an object, not ") + type_name(item.type());
      return false;
    }
    Fields topic(obj, path, error);
    TopicDeclaration declaration;
    std::string transport = "native";
    if (!topic.string("name", declaration.name, true)) return false;
    if (auto valid = engine::check_topic_name(declaration.name); !valid) {
      return topic.fail("name", valid.error().message);
    }
    for (const TopicDeclaration& other : out) {
      if (other.name == declaration.name) {
        return topic.fail("name", "'" + declaration.name + "' is declared twice");
      }
    }
    if (!topic.string("type", declaration.type)) return false;
    if (declaration.type.empty() || declaration.type.size() >= layouts::kTopicTypeNameCapacity) {
      return topic.fail("type", "must be 1-63 characters");
    }
    if (!topic.string("transport", transport)) return false;
    if (transport == "native") {
      declaration.transport = engine::TopicTransport::native;
    } else if (transport == "iceoryx") {
      declaration.transport = engine::TopicTransport::iceoryx;
    } else {
      return topic.fail("transport", "must be \"native\" or \"iceoryx\" (got \"" + transport +
                                         "\")");
    }
    if (auto qos_object = topic.child_object("qos")) {
      Fields qos(*qos_object, topic.path_of("qos"), error);
      std::int64_t depth = declaration.depth;
      std::int64_t history = declaration.history;
      std::string overflow = "block";
      if (!qos.integer("depth", depth, 1, 1 << 20)) return false;
      if (!qos.integer("history", history, 0, 1 << 20)) return false;
      if (!qos.string("overflow", overflow)) return false;
      if (overflow == "block") {
        declaration.overflow = engine::Overflow::block;
      } else if (overflow == "discard_oldest") {
        declaration.overflow = engine::Overflow::discard_oldest;
      } else {
        return qos.fail("overflow", "must be \"block\" or \"discard_oldest\" (got \"" + overflow +
                                        "\")");
      }
      if (!qos.no_unknown_fields()) return false;
      declaration.depth = static_cast<std::uint32_t>(depth);
      declaration.history = static_cast<std::uint32_t>(history);
    } else if (topic.failed()) {
      return false;
    }
    if (!topic.no_unknown_fields()) return false;
    out.push_back(std::move(declaration));
  }
  return true;
}

bool parse_restart(Fields& root, Manifest& m, ManifestError& error) {
  auto restart_object = root.child_object("restart");
  if (!restart_object) return !root.failed();
  Fields restart(*restart_object, "restart", error);
  std::string policy;
  if (!restart.string("policy", policy, true)) return false;
  if (policy == "immediate") {
    m.restart.kind = RestartKind::immediate;
  } else if (policy == "backoff") {
    m.restart.kind = RestartKind::backoff;
  } else if (policy == "manual") {
    m.restart.kind = RestartKind::manual;
  } else {
    return restart.fail("policy", "must be \"immediate\", \"backoff\" or \"manual\" (got \"" +
                                      policy + "\")");
  }
  if (m.restart.kind == RestartKind::backoff) {
    BackoffPolicy& b = m.restart.backoff;
    if (!restart.milliseconds("initial_ms", b.initial, 1, 3'600'000)) return false;
    if (!restart.number("factor", b.factor, 1.0, 100.0, false)) return false;
    if (!restart.milliseconds("cap_ms", b.cap, 1, 86'400'000)) return false;
    if (b.cap < b.initial) {
      return restart.fail("cap_ms", "must be at least initial_ms (" +
                                        std::to_string(b.initial.count()) + ")");
    }
    if (!restart.seconds("reset_after_s", b.reset_after, 0.0, 86'400.0)) return false;
  } else {
    for (const char* key : {"initial_ms", "factor", "cap_ms", "reset_after_s"}) {
      if (restart.has(key)) {
        restart.find(key);
        return restart.fail(key, std::string("applies only to the \"backoff\" policy, not \"") +
                                     policy + "\"");
      }
    }
  }
  return restart.no_unknown_fields();
}

ManifestResult<Manifest> refuse(ManifestError error) { return tl::unexpected(std::move(error)); }

}  // namespace

const char* to_string(StartMode mode) noexcept {
  return mode == StartMode::eager ? "eager" : "on-demand";
}

const char* to_string(RestartKind kind) noexcept {
  switch (kind) {
    case RestartKind::immediate: return "immediate";
    case RestartKind::backoff: return "backoff";
    case RestartKind::manual: return "manual";
  }
  return "unknown";
}

std::string ManifestError::message() const {
  std::string text = "manifest '" + source + "': ";
  if (!field.empty()) text += "field '" + field + "': ";
  return text + reason;
}

engine::Error ManifestError::to_error() const {
  return engine::Error{engine::Errc::invalid_argument, message()};
}

ManifestResult<Manifest> parse_manifest(std::string_view json, const fs::path& base_dir,
                                        std::string_view source) {
  ManifestError error;
  error.source = std::string(source);
  if (json.size() > kMaxManifestBytes) {
    error.reason = "is " + std::to_string(json.size()) + " bytes, more than the 1 MiB allowed";
    return refuse(error);
  }
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(json);
  element root_element;
  if (auto e = parser.parse(padded).get(root_element); e) {
    error.reason = std::string("is not valid JSON: ") + simdjson::error_message(e);
    return refuse(error);
  }
  object root_object;
  if (root_element.get(root_object) != simdjson::SUCCESS) {
    error.reason = std::string("must be a JSON object, not ") + type_name(root_element.type());
    return refuse(error);
  }
  Fields root(root_object, "", error);
  Manifest m;
  std::string executable;
  std::string start = "eager";

  if (!root.string("id", m.id, true)) return refuse(error);
  if (!valid_id(m.id)) {
    root.fail("id", "'" + m.id + "' must be 1-40 of letters, digits, '-' and '_'");
    return refuse(error);
  }
  if (!root.string("version", m.version, true)) return refuse(error);
  if (!valid_version(m.version)) {
    root.fail("version", "must be 1-64 printable characters without spaces");
    return refuse(error);
  }
  if (!root.string("executable", executable, true)) return refuse(error);
  if (executable.empty()) {
    root.fail("executable", "must not be empty");
    return refuse(error);
  }
  m.executable = fs::path(executable);
  if (m.executable.is_relative()) {
    m.executable = (base_dir.empty() ? fs::current_path() : base_dir) / m.executable;
  }
  m.executable = m.executable.lexically_normal();
  if (::access(m.executable.c_str(), X_OK) != 0) {
    root.fail("executable", "'" + m.executable.string() + "' cannot be executed: " +
                                std::strerror(errno));
    return refuse(error);
  }
  if (std::error_code ec; !fs::is_regular_file(m.executable, ec)) {
    root.fail("executable", "'" + m.executable.string() + "' is not a regular file");
    return refuse(error);
  }
  if (auto args = root.find("args")) {
    simdjson::dom::array array;
    if (args->get(array) != simdjson::SUCCESS) {
      root.fail("args", std::string("must be an array of strings, not ") +
                            type_name(args->type()));
      return refuse(error);
    }
    std::size_t index = 0;
    for (element arg : array) {
      std::string_view text;
      if (arg.get(text) != simdjson::SUCCESS) {
        error.field = "args[" + std::to_string(index) + "]";
        error.reason = std::string("must be a string, not ") + type_name(arg.type());
        return refuse(error);
      }
      if (text.find('\0') != std::string_view::npos) {
        error.field = "args[" + std::to_string(index) + "]";
        error.reason = "must not contain a NUL character";
        return refuse(error);
      }
      m.args.emplace_back(text);
      ++index;
    }
  }
  std::int64_t instances = m.instances;
  if (!root.integer("instances", instances, 1, kMaxInstances)) return refuse(error);
  m.instances = static_cast<int>(instances);

  if (!root.string("start", start)) return refuse(error);
  if (start == "eager") {
    m.start = StartMode::eager;
  } else if (start == "on-demand") {
    m.start = StartMode::on_demand;
  } else {
    root.fail("start", "must be \"eager\" or \"on-demand\" (got \"" + start + "\")");
    return refuse(error);
  }
  if (root.has("idle_stop_s") && m.start != StartMode::on_demand) {
    root.find("idle_stop_s");
    root.fail("idle_stop_s", "applies only to \"start\": \"on-demand\"");
    return refuse(error);
  }
  if (!root.seconds("idle_stop_s", m.idle_stop, 0.0, 86'400.0)) return refuse(error);

  if (auto limits_object = root.child_object("limits")) {
    Fields limits(*limits_object, "limits", error);
    std::int64_t memory_mib = 0;
    // 4 MiB: below that not even the dynamic loader and libc fit.
    if (!limits.integer("memory_mib", memory_mib, 4, std::int64_t{1} << 30)) return refuse(error);
    m.limits.memory_bytes = static_cast<std::uint64_t>(memory_mib) << 20;
    // 0.01 CPU: the kernel's smallest CFS quota is 1 ms per 100 ms period.
    if (!limits.number("cpu_cores", m.limits.cpu_cores, 0.01, 1024.0, false)) return refuse(error);
    if (!limits.no_unknown_fields()) return refuse(error);
  } else if (root.failed()) {
    return refuse(error);
  }
  std::int64_t checkpoint_bytes = 0;
  if (!root.integer("checkpoint_bytes", checkpoint_bytes, 0, kMaxCheckpointBytes)) {
    return refuse(error);
  }
  m.checkpoint_bytes = static_cast<std::uint64_t>(checkpoint_bytes);
  if (!root.milliseconds("hang_timeout_ms", m.hang_timeout, 50, 3'600'000)) return refuse(error);
  if (!root.milliseconds("start_timeout_ms", m.start_timeout, 50, 3'600'000)) {
    return refuse(error);
  }
  if (!parse_restart(root, m, error)) return refuse(error);

  if (auto intensity_object = root.child_object("intensity")) {
    Fields intensity(*intensity_object, "intensity", error);
    std::int64_t max_restarts = m.intensity.max_restarts;
    if (!intensity.integer("max_restarts", max_restarts, 1, 1'000'000, true)) {
      return refuse(error);
    }
    m.intensity.max_restarts = static_cast<std::uint32_t>(max_restarts);
    if (!intensity.has("period_s")) {
      intensity.find("period_s");
      intensity.fail("period_s", "is required");
      return refuse(error);
    }
    if (!intensity.seconds("period_s", m.intensity.period, 0.0, 86'400.0)) return refuse(error);
    if (!intensity.no_unknown_fields()) return refuse(error);
  } else if (root.failed()) {
    return refuse(error);
  }

  if (auto topics_object = root.child_object("topics")) {
    Fields topics(*topics_object, "topics", error);
    if (!parse_topics(topics, "publish", m.publishes, error)) return refuse(error);
    if (!parse_topics(topics, "subscribe", m.subscribes, error)) return refuse(error);
    if (!topics.no_unknown_fields()) return refuse(error);
  } else if (root.failed()) {
    return refuse(error);
  }
  if (!root.no_unknown_fields()) return refuse(error);
  return m;
}

std::string declared_topics_json(const Manifest& manifest) {
  const auto list = [](const std::vector<TopicDeclaration>& topics) {
    std::string json = "[";
    for (const TopicDeclaration& topic : topics) {
      if (json.size() > 1) json += ",";
      json += controlplane::JsonObject()
                  .add("name", topic.name)
                  .add("type", topic.type)
                  .add("transport", engine::to_string(topic.transport))
                  .add_raw("qos", controlplane::JsonObject()
                                      .add("depth", std::uint64_t{topic.depth})
                                      .add("overflow", engine::to_string(topic.overflow))
                                      .add("history", std::uint64_t{topic.history})
                                      .str())
                  .str();
    }
    return json + "]";
  };
  return controlplane::JsonObject()
      .add_raw("publish", list(manifest.publishes))
      .add_raw("subscribe", list(manifest.subscribes))
      .str();
}

ManifestResult<Manifest> load_manifest(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    ManifestError error;
    error.source = file.string();
    error.reason = std::string("cannot be read: ") + std::strerror(errno);
    return refuse(error);
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto manifest = parse_manifest(text.str(), fs::absolute(file).parent_path(), file.string());
  if (manifest) manifest->source = file;
  return manifest;
}

}  // namespace symphony::supervisor
