#pragma once
// The control plane's message: a versioned JSON envelope, checked on arrival.
//
//   {"v":2,"type":"request","id":17,"from":"host","to":"explorer/0","body":{...}}
//
// `v` is the protocol version (the host accepts kProtocolVersion and the one before), `id` the
// correlation id (a reply carries its request's), `from`/`to` routing names ("host", or
// "<extension>/<instance>"), `body` an object whose schema depends on `type` (envelope.cpp lists
// them). Parsed with simdjson from a padded copy (ZeroMQ frames have no padding), with the
// nesting depth and the size capped; anything else is an Error naming what is wrong.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "symphony/engine/error.hpp"

namespace symphony::controlplane {

inline constexpr int kProtocolVersion = 2;
inline constexpr int kOldestProtocolVersion = 1;  // v1: no "deadline_ms" in requests
inline constexpr const char* kSdkVersion = "0.3.0";

enum class MessageType : std::uint8_t {
  hello,             // extension -> host: {token, extension, instance, generation, sdk, layout}
  welcome,           // host -> extension: {heartbeat_ms, events}
  heartbeat,         // both ways: {} (from the host: {seq}, its broadcast sequence; from an
                     // extension: {busy_ms}, the age of its oldest running callback, if any)
  request,           // {method, payload[, deadline_ms]}
  reply,             // {payload}
  error,             // {code, message}
  command,           // host -> extension: {command: stop|pause|resume|update[, args]}
  topic,             // extension -> host: {name, role, transport, type}
  event,             // PUB, or extension -> host: {seq, kind, payload}
  snapshot_request,  // extension -> host: {}
  snapshot,          // host -> extension: {seq, state}
};

const char* to_string(MessageType type) noexcept;
std::optional<MessageType> message_type_from(std::string_view name) noexcept;

struct Envelope {
  int version = kProtocolVersion;
  MessageType type = MessageType::heartbeat;
  std::uint64_t id = 0;
  std::string from;
  std::string to;
  std::string body = "{}";  // a JSON object, as text
};

struct ParseLimits {
  std::size_t max_bytes = 1 << 20;
  std::size_t max_depth = 32;
};

// Serialises (body is inserted as is: it must be a JSON object, as produced by JsonObject or
// by decode()).
std::string encode(const Envelope& envelope);

// Parses and checks version, type, fields and the body's schema for that type.
engine::Result<Envelope> decode(std::span<const std::byte> frame, const ParseLimits& limits = {});
engine::Result<Envelope> decode(std::string_view frame, const ParseLimits& limits = {});

// A small builder for JSON objects: strings escaped, numbers and raw JSON values inserted.
class JsonObject {
 public:
  JsonObject& add(std::string_view key, std::string_view value);
  JsonObject& add(std::string_view key, const char* value) {
    return add(key, std::string_view(value));
  }
  JsonObject& add(std::string_view key, std::int64_t value);
  JsonObject& add(std::string_view key, std::uint64_t value);
  JsonObject& add(std::string_view key, int value) { return add(key, std::int64_t{value}); }
  JsonObject& add(std::string_view key, bool value);
  JsonObject& add_raw(std::string_view key, std::string_view json);  // already valid JSON
  std::string str() const { return text_ + "}"; }

 private:
  void key(std::string_view k);
  std::string text_ = "{";
};

// `value` as a JSON string literal, quotes included.
std::string json_quote(std::string_view value);

// Reads fields of a JSON object (a body). Each getter returns nullopt if the field is missing or
// has another type. Checked against the limits like an envelope.
class JsonReader {
 public:
  static engine::Result<JsonReader> parse(std::string_view json, const ParseLimits& limits = {});
  std::optional<std::string> string(std::string_view key) const;
  std::optional<std::int64_t> integer(std::string_view key) const;
  std::optional<bool> boolean(std::string_view key) const;
  // The field's JSON text (object, array, any value) as the sender wrote it (validated).
  std::optional<std::string> raw(std::string_view key) const;

  struct Document;  // the parsed document (simdjson), parsed once

 private:
  explicit JsonReader(std::shared_ptr<const Document> document) : document_(std::move(document)) {}
  std::shared_ptr<const Document> document_;
};

}  // namespace symphony::controlplane
