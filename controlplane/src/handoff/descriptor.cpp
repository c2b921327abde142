// HandoffDescriptor: validation and its JSON form (plain string building out, simdjson in).

#include <xxhash.h>

#include <charconv>
#include <cstdio>
#include <limits>
#include <string>

#include <simdjson.h>

#include "handoff_io.hpp"
#include "symphony/controlplane/handoff.hpp"

namespace symphony::controlplane {
namespace {

using engine::Errc;
using engine::Error;

tl::unexpected<Error> invalid(std::string message) {
  return tl::unexpected(Error{Errc::invalid_argument, "handoff descriptor: " + std::move(message)});
}

template <typename T>
bool parse_decimal(std::string_view text, T& value) {
  if (text.empty() || text.size() > 20) return false;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
  }
  if (text.size() > 1 && text.front() == '0') return false;  // one spelling per number
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc{} && end == text.data() + text.size();
}

std::string hex64(std::uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return std::string(buf, 16);
}

std::optional<std::uint64_t> parse_hex64(std::string_view text) {
  if (text.size() != 16) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    std::uint64_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<std::uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<std::uint64_t>(c - 'a' + 10);
    } else {
      return std::nullopt;  // lowercase only: one spelling per value
    }
    value = (value << 4) | digit;
  }
  return value;
}

void append_json_string(std::string& out, std::string_view text) {
  out.push_back('"');
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(u));
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// Printable form of untrusted text for an error message: at most 64 bytes, controls escaped.
std::string printable(std::string_view text) {
  std::string out;
  const std::size_t limit = 64;
  append_json_string(out, text.substr(0, limit));
  if (text.size() > limit) out += "...";
  return out;
}

}  // namespace

// ---- PayloadId ----------------------------------------------------------------------------------

std::string PayloadId::to_string() const {
  return std::to_string(pid) + "-" + std::to_string(start_time) + "-" + std::to_string(serial);
}

std::optional<PayloadId> PayloadId::parse(std::string_view text) {
  const auto first = text.find('-');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = text.find('-', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  PayloadId id;
  if (!parse_decimal(text.substr(0, first), id.pid) ||
      !parse_decimal(text.substr(first + 1, second - first - 1), id.start_time) ||
      !parse_decimal(text.substr(second + 1), id.serial)) {
    return std::nullopt;
  }
  return id;
}

// ---- HandoffDescriptor --------------------------------------------------------------------------

engine::Result<void> HandoffDescriptor::validate() const {
  if (id.pid == 0 || id.serial == 0) {
    return invalid("id '" + id.to_string() + "' names no payload (pid and serial must be > 0)");
  }
  if (owner.empty() || owner.front() != '/') {
    return invalid("owner " + printable(owner) + " is not an absolute socket path");
  }
  if (owner.size() > handoff_io::kMaxSocketPath) {
    return invalid("owner path is " + std::to_string(owner.size()) + " bytes; a Unix socket path " +
                   "holds at most " + std::to_string(handoff_io::kMaxSocketPath));
  }
  if (owner.find('\0') != std::string::npos) return invalid("owner path contains a NUL byte");
  if (length == 0) return invalid("length is 0 (an empty payload is not handed off)");
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (offset > kMax || length > kMax - offset) {
    return invalid("offset " + std::to_string(offset) + " + length " + std::to_string(length) +
                   " overflows (the end must be below 2^63)");
  }
  return {};
}

std::string HandoffDescriptor::to_json() const {
  std::string out;
  out.reserve(96 + owner.size());
  out += "{\"id\":\"";
  out += id.to_string();
  out += "\",\"owner\":";
  append_json_string(out, owner);
  out += ",\"offset\":";
  out += std::to_string(offset);
  out += ",\"length\":";
  out += std::to_string(length);
  if (xxh3) {
    out += ",\"xxh3\":\"";
    out += hex64(*xxh3);
    out += '"';
  }
  out += '}';
  return out;
}

engine::Result<HandoffDescriptor> HandoffDescriptor::from_json(std::string_view json) {
  if (json.size() > kMaxJson) {
    return invalid("JSON is " + std::to_string(json.size()) + " bytes, more than " +
                   std::to_string(kMaxJson));
  }
  // A flat object (simdjson counts the document, the object and a nested value: anything deeper
  // is refused before the schema is even looked at).
  constexpr std::size_t kMaxDepth = 3;
  simdjson::dom::parser parser(kMaxJson);
  if (const auto error = parser.allocate(kMaxJson, kMaxDepth); error != simdjson::SUCCESS) {
    return tl::unexpected(Error{Errc::system_error, std::string("simdjson: cannot allocate: ") +
                                                        simdjson::error_message(error)});
  }
  const simdjson::padded_string padded(json);  // input from the wire lacks SIMDJSON_PADDING
  simdjson::dom::element root;
  if (const auto error = parser.parse(padded).get(root); error != simdjson::SUCCESS) {
    return invalid(std::string("not JSON: ") + simdjson::error_message(error));
  }
  simdjson::dom::object object;
  if (root.get(object) != simdjson::SUCCESS) return invalid("not a JSON object");

  HandoffDescriptor d;
  bool have_id = false, have_owner = false, have_offset = false, have_length = false;
  for (const simdjson::dom::key_value_pair field : object) {
    const std::string_view key = field.key;
    const auto duplicate = [&](bool& seen) {
      if (seen) return true;
      seen = true;
      return false;
    };
    if (key == "id") {
      if (duplicate(have_id)) return invalid("key \"id\" appears twice");
      std::string_view text;
      if (field.value.get(text) != simdjson::SUCCESS) return invalid("\"id\" is not a string");
      const auto id = PayloadId::parse(text);
      if (!id) return invalid("\"id\" " + printable(text) + " is not <pid>-<start time>-<serial>");
      d.id = *id;
    } else if (key == "owner") {
      if (duplicate(have_owner)) return invalid("key \"owner\" appears twice");
      std::string_view text;
      if (field.value.get(text) != simdjson::SUCCESS) return invalid("\"owner\" is not a string");
      d.owner = std::string(text);
    } else if (key == "offset" || key == "length") {
      const bool is_offset = key == "offset";
      if (duplicate(is_offset ? have_offset : have_length)) {
        return invalid("key \"" + std::string(key) + "\" appears twice");
      }
      std::uint64_t value = 0;
      if (field.value.get(value) != simdjson::SUCCESS) {
        return invalid("\"" + std::string(key) + "\" is not an unsigned 64-bit integer");
      }
      (is_offset ? d.offset : d.length) = value;
    } else if (key == "xxh3") {
      if (d.xxh3) return invalid("key \"xxh3\" appears twice");
      std::string_view text;
      if (field.value.get(text) != simdjson::SUCCESS) return invalid("\"xxh3\" is not a string");
      const auto value = parse_hex64(text);
      if (!value) return invalid("\"xxh3\" " + printable(text) + " is not 16 lowercase hex digits");
      d.xxh3 = *value;
    } else {
      return invalid("unknown key " + printable(key));
    }
  }
  if (!have_id) return invalid("key \"id\" is missing");
  if (!have_owner) return invalid("key \"owner\" is missing");
  if (!have_offset) return invalid("key \"offset\" is missing");
  if (!have_length) return invalid("key \"length\" is missing");
  if (auto valid = d.validate(); !valid) return tl::unexpected(valid.error());
  return d;
}

std::uint64_t handoff_checksum(std::span<const std::byte> bytes) noexcept {
  return XXH3_64bits(bytes.data(), bytes.size());
}

}  // namespace symphony::controlplane
