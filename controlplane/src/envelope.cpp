#include "symphony/controlplane/envelope.hpp"

#include <simdjson.h>

#include <array>
#include <cstdio>

namespace symphony::controlplane {
namespace {

using engine::Errc;
using engine::Error;

constexpr std::array kTypeNames{"hello",   "welcome", "heartbeat", "request",
                                "reply",   "error",   "command",   "topic",
                                "event",   "snapshot_request", "snapshot"};

Error bad(const std::string& what) { return Error{Errc::invalid_argument, what}; }

// Parses `json` into `parser` (which must outlive the returned element).
engine::Result<simdjson::dom::element> parse_limited(simdjson::dom::parser& parser,
                                                     std::string_view json,
                                                     const ParseLimits& limits) {
  if (json.size() > limits.max_bytes) {
    return tl::unexpected(bad("message of " + std::to_string(json.size()) +
                              " bytes exceeds the limit of " + std::to_string(limits.max_bytes)));
  }
  if (parser.capacity() < json.size() || parser.max_depth() != limits.max_depth) {
    if (auto error = parser.allocate(std::max<std::size_t>(json.size(), 4096), limits.max_depth);
        error) {
      return tl::unexpected(Error{Errc::system_error, simdjson::error_message(error)});
    }
  }
  // A padded copy: ZeroMQ frames end where the message ends, simdjson reads a little past it.
  const simdjson::padded_string padded(json);
  simdjson::dom::element root;
  if (auto error = parser.parse(padded).get(root); error) {
    if (error == simdjson::DEPTH_ERROR) {
      return tl::unexpected(bad("JSON nested deeper than " + std::to_string(limits.max_depth)));
    }
    return tl::unexpected(bad(std::string("not valid JSON: ") + simdjson::error_message(error)));
  }
  return root;
}

// Which body fields each type requires, and of which JSON type.
struct FieldRule {
  const char* name;
  simdjson::dom::element_type type;
  bool required;
};

using T = simdjson::dom::element_type;

std::span<const FieldRule> body_schema(MessageType type) {
  static constexpr FieldRule hello[] = {{"token", T::STRING, true},
                                        {"extension", T::STRING, true},
                                        {"instance", T::INT64, true},
                                        {"generation", T::INT64, true},
                                        {"sdk", T::STRING, true},
                                        {"layout", T::INT64, true}};
  static constexpr FieldRule welcome[] = {{"heartbeat_ms", T::INT64, true},
                                          {"events", T::STRING, true}};
  static constexpr FieldRule request[] = {{"method", T::STRING, true},
                                          {"deadline_ms", T::INT64, false}};
  static constexpr FieldRule error[] = {{"code", T::STRING, true}, {"message", T::STRING, true}};
  static constexpr FieldRule command[] = {{"command", T::STRING, true}};
  static constexpr FieldRule topic[] = {{"name", T::STRING, true},
                                        {"role", T::STRING, true},
                                        {"transport", T::STRING, true},
                                        {"type", T::STRING, true}};
  static constexpr FieldRule event[] = {{"seq", T::INT64, true}, {"kind", T::STRING, true}};
  static constexpr FieldRule snapshot[] = {{"seq", T::INT64, true}, {"state", T::OBJECT, true}};
  static constexpr FieldRule heartbeat[] = {{"seq", T::INT64, false}};
  switch (type) {
    case MessageType::hello: return hello;
    case MessageType::welcome: return welcome;
    case MessageType::request: return request;
    case MessageType::error: return error;
    case MessageType::command: return command;
    case MessageType::topic: return topic;
    case MessageType::event: return event;
    case MessageType::snapshot: return snapshot;
    case MessageType::heartbeat: return heartbeat;
    case MessageType::reply:
    case MessageType::snapshot_request: return {};
  }
  return {};
}

const char* type_name(simdjson::dom::element_type type) {
  switch (type) {
    case T::STRING: return "a string";
    case T::INT64:
    case T::UINT64: return "an integer";
    case T::OBJECT: return "an object";
    case T::ARRAY: return "an array";
    case T::BOOL: return "a boolean";
    case T::DOUBLE: return "a number";
    case T::NULL_VALUE: return "null";
  }
  return "a value";
}

bool has_type(simdjson::dom::element value, simdjson::dom::element_type wanted) {
  const auto actual = value.type();
  if (wanted == T::INT64) return actual == T::INT64 || actual == T::UINT64;
  return actual == wanted;
}

void append_escaped(std::string& out, std::string_view value) {
  out += '"';
  for (const char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace

const char* to_string(MessageType type) noexcept {
  return kTypeNames[static_cast<std::size_t>(type)];
}

std::optional<MessageType> message_type_from(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kTypeNames.size(); ++i) {
    if (name == kTypeNames[i]) return static_cast<MessageType>(i);
  }
  return std::nullopt;
}

std::string json_quote(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  append_escaped(out, value);
  return out;
}

std::string encode(const Envelope& e) {
  std::string out;
  out.reserve(96 + e.from.size() + e.to.size() + e.body.size());
  out += "{\"v\":";
  out += std::to_string(e.version);
  out += ",\"type\":\"";
  out += to_string(e.type);
  out += "\",\"id\":";
  out += std::to_string(e.id);
  out += ",\"from\":";
  append_escaped(out, e.from);
  out += ",\"to\":";
  append_escaped(out, e.to);
  out += ",\"body\":";
  out += e.body.empty() ? "{}" : e.body;
  out += '}';
  return out;
}

engine::Result<Envelope> decode(std::span<const std::byte> frame, const ParseLimits& limits) {
  return decode(std::string_view(reinterpret_cast<const char*>(frame.data()), frame.size()),
                limits);
}

engine::Result<Envelope> decode(std::string_view frame, const ParseLimits& limits) {
  // One parser per thread: its buffers are reused from message to message.
  thread_local simdjson::dom::parser parser;
  auto root = parse_limited(parser, frame, limits);
  if (!root) return tl::unexpected(std::move(root.error()));
  simdjson::dom::object object;
  if (root->get(object) != simdjson::SUCCESS) {
    return tl::unexpected(bad("an envelope must be a JSON object"));
  }
  Envelope e;
  std::int64_t version = 0;
  if (object["v"].get(version) != simdjson::SUCCESS) {
    return tl::unexpected(bad("envelope field 'v' (protocol version) missing or not an integer"));
  }
  if (version < kOldestProtocolVersion || version > kProtocolVersion) {
    return tl::unexpected(Error{Errc::qos_mismatch,
                                "protocol version " + std::to_string(version) +
                                    " is not supported (this side speaks " +
                                    std::to_string(kOldestProtocolVersion) + " to " +
                                    std::to_string(kProtocolVersion) + ")"});
  }
  e.version = static_cast<int>(version);
  std::string_view type;
  if (object["type"].get(type) != simdjson::SUCCESS) {
    return tl::unexpected(bad("envelope field 'type' missing or not a string"));
  }
  const auto parsed_type = message_type_from(type);
  if (!parsed_type) return tl::unexpected(bad("unknown message type '" + std::string(type) + "'"));
  e.type = *parsed_type;
  std::uint64_t id = 0;
  if (object["id"].get(id) != simdjson::SUCCESS) {
    return tl::unexpected(bad("envelope field 'id' missing or not a non-negative integer"));
  }
  e.id = id;
  std::string_view from;
  std::string_view to;
  if (object["from"].get(from) != simdjson::SUCCESS || object["to"].get(to) != simdjson::SUCCESS) {
    return tl::unexpected(bad("envelope fields 'from' and 'to' must be strings"));
  }
  e.from = from;
  e.to = to;
  simdjson::dom::object body;
  if (object["body"].get(body) != simdjson::SUCCESS) {
    return tl::unexpected(bad("envelope field 'body' missing or not an object"));
  }
  for (const FieldRule& rule : body_schema(e.type)) {
    simdjson::dom::element value;
    if (body[rule.name].get(value) != simdjson::SUCCESS) {
      if (!rule.required) continue;
      return tl::unexpected(bad(std::string(to_string(e.type)) + " body lacks '" + rule.name +
                                "'"));
    }
    if (!has_type(value, rule.type)) {
      return tl::unexpected(bad(std::string(to_string(e.type)) + " body field '" + rule.name +
                                "' must be " + type_name(rule.type)));
    }
  }
  if (e.type == MessageType::request && e.version < 2) {
    simdjson::dom::element ignored;
    if (body["deadline_ms"].get(ignored) == simdjson::SUCCESS) {
      return tl::unexpected(bad("'deadline_ms' needs protocol version 2"));
    }
  }
  e.body = simdjson::minify(body);
  return e;
}

// ---- JsonObject -------------------------------------------------------------------------------

void JsonObject::key(std::string_view k) {
  if (text_.size() > 1) text_ += ',';
  append_escaped(text_, k);
  text_ += ':';
}

JsonObject& JsonObject::add(std::string_view k, std::string_view value) {
  key(k);
  append_escaped(text_, value);
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, std::int64_t value) {
  key(k);
  text_ += std::to_string(value);
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, std::uint64_t value) {
  key(k);
  text_ += std::to_string(value);
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, bool value) {
  key(k);
  text_ += value ? "true" : "false";
  return *this;
}
JsonObject& JsonObject::add_raw(std::string_view k, std::string_view json) {
  key(k);
  text_ += json;
  return *this;
}

// ---- JsonReader -------------------------------------------------------------------------------

struct JsonReader::Document {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
};

engine::Result<JsonReader> JsonReader::parse(std::string_view json, const ParseLimits& limits) {
  auto document = std::make_shared<Document>();
  auto root = parse_limited(document->parser, json, limits);
  if (!root) return tl::unexpected(std::move(root.error()));
  if (!root->is_object()) return tl::unexpected(bad("expected a JSON object"));
  document->root = *root;
  return JsonReader(std::move(document));
}

std::optional<std::string> JsonReader::string(std::string_view key) const {
  std::string_view value;
  if (document_->root[key].get(value) != simdjson::SUCCESS) return std::nullopt;
  return std::string(value);
}

std::optional<std::int64_t> JsonReader::integer(std::string_view key) const {
  std::int64_t value = 0;
  if (document_->root[key].get(value) != simdjson::SUCCESS) return std::nullopt;
  return value;
}

std::optional<bool> JsonReader::boolean(std::string_view key) const {
  bool value = false;
  if (document_->root[key].get(value) != simdjson::SUCCESS) return std::nullopt;
  return value;
}

std::optional<std::string> JsonReader::raw(std::string_view key) const {
  simdjson::dom::element value;
  if (document_->root[key].get(value) != simdjson::SUCCESS) return std::nullopt;
  return simdjson::minify(value);
}

}  // namespace symphony::controlplane
