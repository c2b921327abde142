#include "symphony/controlplane/envelope.hpp"

#include <simdjson.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

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
  // One buffer per thread, grown as needed: a fresh allocation per message cost more than the
  // parse itself.
  thread_local std::vector<char> padded;
  if (padded.size() < json.size() + simdjson::SIMDJSON_PADDING) {
    padded.resize(std::max(json.size() + simdjson::SIMDJSON_PADDING, std::size_t{4096}));
  }
  std::memcpy(padded.data(), json.data(), json.size());
  std::memset(padded.data() + json.size(), 0, simdjson::SIMDJSON_PADDING);
  simdjson::dom::element root;
  if (auto error = parser.parse(padded.data(), json.size(), false).get(root); error) {
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
  static constexpr FieldRule heartbeat[] = {{"seq", T::INT64, false},
                                            {"busy_ms", T::INT64, false}};
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

// The text of a top-level member's value in `object`, a JSON object that simdjson has already
// validated: a slice of the original bytes, so a large payload is neither minified again nor
// copied through simdjson's string buffer. Nothing when the key is not found as written here
// (e.g. spelled with escapes): the caller then asks simdjson.
std::optional<std::string_view> member_text(std::string_view object, std::string_view key) {
  const char* const begin = object.data();
  const char* const end = begin + object.size();
  // After a '"' that opens a string, the position just past its closing quote.
  const auto skip_string = [end](const char* p) -> const char* {
    while (true) {
      const auto* quote = static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
      if (quote == nullptr) return end;
      std::size_t backslashes = 0;
      for (const char* b = quote; b > p && b[-1] == '\\'; --b) ++backslashes;
      if (backslashes % 2 == 0) return quote + 1;
      p = quote + 1;
    }
  };
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  const char* p = begin;
  while (p < end && *p != '{') ++p;
  ++p;
  while (p < end) {
    while (p < end && (is_space(*p) || *p == ',')) ++p;
    if (p >= end || *p != '"') return std::nullopt;  // '}' (the end) or not what we expect
    const char* const key_end = skip_string(p + 1);
    const std::string_view name(p + 1, static_cast<std::size_t>(key_end - 1 - (p + 1)));
    // An escaped key before ours might spell the same key, which simdjson would pick first.
    if (name.find('\\') != std::string_view::npos) return std::nullopt;
    p = key_end;
    while (p < end && (is_space(*p) || *p == ':')) ++p;
    const char* const value_begin = p;
    int depth = 0;
    while (p < end) {
      const char c = *p;
      if (c == '"') {
        p = skip_string(p + 1);
        if (depth == 0) break;
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) break;  // the end of the enclosing object: a scalar value ended
        if (--depth == 0) {
          ++p;
          break;
        }
      } else if (c == ',' && depth == 0) {
        break;
      }
      ++p;
    }
    const char* value_end = p;
    while (value_end > value_begin && is_space(value_end[-1])) --value_end;
    if (name == key) return std::string_view(value_begin, static_cast<std::size_t>(value_end - value_begin));
  }
  return std::nullopt;
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
  const auto body_text = member_text(frame, "body");
  e.body = body_text ? std::string(*body_text) : simdjson::minify(body);
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
  std::string text;  // what was parsed: raw() slices it
};

namespace {

// Parsed documents are recycled per thread: a new simdjson parser allocates its buffers on first
// use, which cost several times the parse of a small body.
class DocumentPool {
 public:
  std::shared_ptr<JsonReader::Document> take() {
    std::unique_ptr<JsonReader::Document> document;
    if (free_.empty()) {
      document = std::make_unique<JsonReader::Document>();
    } else {
      document = std::move(free_.back());
      free_.pop_back();
    }
    // The deleter may run on another thread: it returns the document to that thread's pool.
    return std::shared_ptr<JsonReader::Document>(document.release(),
                                                 [](JsonReader::Document* d) { give_back(d); });
  }

  static void give_back(JsonReader::Document* document) {
    auto& pool = local();
    if (pool.free_.size() < kMaxFree) {
      pool.free_.emplace_back(document);
    } else {
      delete document;
    }
  }

  static DocumentPool& local() {
    thread_local DocumentPool pool;
    return pool;
  }

 private:
  static constexpr std::size_t kMaxFree = 8;
  std::vector<std::unique_ptr<JsonReader::Document>> free_;
};

}  // namespace

engine::Result<JsonReader> JsonReader::parse(std::string_view json, const ParseLimits& limits) {
  auto document = DocumentPool::local().take();
  auto root = parse_limited(document->parser, json, limits);
  if (!root) return tl::unexpected(std::move(root.error()));
  if (!root->is_object()) return tl::unexpected(bad("expected a JSON object"));
  document->root = *root;
  document->text.assign(json);
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
  if (const auto text = member_text(document_->text, key)) return std::string(*text);
  return simdjson::minify(value);
}

}  // namespace symphony::controlplane
