#pragma once
// symphony::ui — the UI protocol's tree, patches and frames (docs/ui-protocol.md, version 1) in
// C++: the model, its JSON, validation against the protocol's bounds, the keyed differ and the
// patch applier. Used by the SDK (Extension::ui renders, diffs and publishes) and by the gateway
// (which re-validates every frame an extension publishes and keeps each extension's tree to
// give browsers snapshots). No threads, no I/O: plain values.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// g++ 12 at -O2 reports a "potential null pointer dereference" inside nlohmann::json's inlined
// type checks (a false positive in the library's header); silenced for its lines only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#endif
#include <nlohmann/json.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include "symphony/engine/error.hpp"
#include "symphony/engine/topic.hpp"

namespace symphony::ui {

inline constexpr int kProtocolVersion = 1;

using Value = nlohmann::json;  // a prop's value: any JSON

struct Limits {
  std::size_t max_depth = 32;  // the root is depth 1
  std::size_t max_nodes = 10'000;
  std::size_t max_message_bytes = 256 * 1024;
  std::size_t max_events_per_node = 16;
  // Arrays and objects nested in one message, the message itself included: a tree level costs
  // two (a node and its children array), prop values nest on their own. parse_json refuses
  // deeper input before it builds it, so hostile nesting costs nothing.
  std::size_t max_json_nesting = 2 * 32 + 64;
};

struct Node {
  std::string id;    // unique in the tree, 1-128 bytes, no control characters
  std::string type;  // [a-z][a-z0-9-]{0,63}
  Value props = Value::object();
  std::vector<std::string> events;  // event names this node's owner handles
  std::vector<Node> children;

  bool operator==(const Node& other) const = default;
};

// One keyed node operation (docs/ui-protocol.md, section 2). Fields unused by a kind are empty.
struct Op {
  enum class Kind : std::uint8_t { props, events, insert, remove, move, replace };
  Kind kind = Kind::props;
  std::string id;      // props, events, remove, move, replace
  std::string parent;  // insert, move
  std::size_t index = 0;  // insert, move
  Value set = Value::object();      // props
  std::vector<std::string> unset;   // props
  std::vector<std::string> events;  // events
  std::optional<Node> node;         // insert, replace

  bool operator==(const Op& other) const = default;
};
using Patch = std::vector<Op>;

std::string_view to_string(Op::Kind kind) noexcept;

// The whole tree against the protocol's rules and `limits`; the error names the node and rule.
engine::Result<void> validate(const Node& root, const Limits& limits = {});

// The minimal keyed patch that turns `before` into `after` (both valid): apply(before, diff)
// == after. Empty when equal.
Patch diff(const Node& before, const Node& after);

// Applies `patch` to `root`, all or nothing: on error `root` is unchanged and the error names
// the operation (its index) and why. The result is validated against `limits`.
engine::Result<void> apply(Node& root, const Patch& patch, const Limits& limits = {});

// JSON. The readers refuse anything the protocol does not allow, with the reason.
Value to_json(const Node& node);
Value to_json(const Op& op);
Value to_json(const Patch& patch);
engine::Result<Node> node_from_json(const Value& json, const Limits& limits = {});
engine::Result<Patch> patch_from_json(const Value& json, const Limits& limits = {});
// Parses text of at most limits.max_message_bytes, nested at most a bounded depth.
engine::Result<Value> parse_json(std::string_view text, const Limits& limits = {});

// A frame on topic ui/<extension id>, and the snapshot/patch messages the gateway forwards.
struct Frame {
  enum class Kind : std::uint8_t { snapshot, patch };
  Kind kind = Kind::snapshot;
  std::string extension;
  std::uint64_t seq = 0;
  std::uint64_t base = 0;  // patch: the seq it applies to (seq - 1)
  double t_ms = 0;         // publisher's wall clock, ms since the Unix epoch
  std::optional<Node> tree;  // snapshot
  Patch ops;                 // patch
  std::vector<std::uint64_t> events_done;
};

std::string encode(const Frame& frame);
engine::Result<Frame> decode_frame(std::string_view text, const Limits& limits = {});

// Wall clock in ms since the Unix epoch, fractional (the frames' `t`).
double wall_clock_ms() noexcept;

// The topic an extension's UI frames travel on: "ui/<extension id>".
std::string ui_topic(std::string_view extension_id);

// Its options, for everyone who opens it (the SDK publishes, the gateway subscribes; the first
// to open a topic fixes them, the others must agree): native, raw bytes up to one frame
// (256 KiB), history 1 (a late subscriber sees the last frame; it resyncs unless that is a
// snapshot), kTopicCapacity slots. A subscriber's depth + history must fit the capacity, so
// subscribe with depth <= kTopicCapacity - 1, and with Overflow::discard_oldest: the SDK never
// waits for a reader (a `block` subscriber that falls behind would make frames be refused).
inline constexpr std::uint32_t kTopicCapacity = 16;
engine::TopicOptions topic_options();

}  // namespace symphony::ui
