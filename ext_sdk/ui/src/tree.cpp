// symphony::ui: validation against the protocol's bounds, the strict JSON readers and writers,
// frames. The differ is in diff.cpp, the applier in apply.cpp.

#include "symphony/ui/tree.hpp"

#include <chrono>
#include <unordered_set>

#include "detail.hpp"

namespace symphony::ui {

using engine::Errc;
using engine::Error;

namespace detail {

tl::unexpected<Error> refuse(std::string message) {
  return tl::unexpected(Error{Errc::invalid_argument, std::move(message)});
}

std::string shown(std::string_view text) {
  // Ids come from anywhere (a browser, a bad extension): cut and escape them for messages.
  std::string out = "'";
  const std::size_t n = std::min<std::size_t>(text.size(), 64);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += "0123456789abcdef"[c >> 4];
      out += "0123456789abcdef"[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > n) out += "...";
  return out + "'";
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    // Overlong forms, surrogates and code points beyond U+10FFFF are not UTF-8.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

std::optional<std::string> id_problem(std::string_view id) {
  if (id.empty()) return "the id is empty";
  if (id.size() > kMaxIdBytes) {
    return "the id is " + std::to_string(id.size()) + " bytes (at most " +
           std::to_string(kMaxIdBytes) + ")";
  }
  for (const char ch : id) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return "the id contains a control character";
  }
  if (!valid_utf8(id)) return "the id is not valid UTF-8";
  return std::nullopt;
}

// [a-z][a-z0-9-]{0,max-1}
bool matches_name(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  if (s[0] < 'a' || s[0] > 'z') return false;
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

std::optional<std::string> type_problem(std::string_view type) {
  if (!matches_name(type, kMaxTypeBytes)) {
    return "type " + shown(type) + " does not match [a-z][a-z0-9-]{0,63}";
  }
  return std::nullopt;
}

std::optional<std::string> events_problem(const std::vector<std::string>& events,
                                          const Limits& limits) {
  if (events.size() > limits.max_events_per_node) {
    return std::to_string(events.size()) + " events (at most " +
           std::to_string(limits.max_events_per_node) + " per node)";
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (!matches_name(events[i], kMaxEventBytes)) {
      return "event name " + shown(events[i]) + " does not match [a-z][a-z0-9-]{0,31}";
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (events[j] == events[i]) return "event " + shown(events[i]) + " is listed twice";
    }
  }
  return std::nullopt;
}

// One node's own rules (not its children's): id, type, props, events.
std::optional<std::string> own_problem(const Node& node, const Limits& limits) {
  if (auto p = id_problem(node.id)) return p;
  if (auto p = type_problem(node.type)) return p;
  if (!node.props.is_object()) return std::string("props is not an object");
  if (auto p = events_problem(node.events, limits)) return p;
  return std::nullopt;
}

std::string describe(const Node& node, std::string_view parent, std::size_t index) {
  if (!id_problem(node.id)) return "node " + shown(node.id);
  if (parent.empty()) return "the root node";
  return "child #" + std::to_string(index) + " of node " + shown(parent);
}

namespace {

struct Validator {
  const Limits& limits;
  std::unordered_set<std::string_view> ids;
  std::size_t count = 0;

  Result<void> visit(const Node& node, std::size_t depth, std::string_view parent,
                     std::size_t index) {
    if (depth > limits.max_depth) {
      return refuse(describe(node, parent, index) + ": depth " + std::to_string(depth) +
                    " exceeds the limit of " + std::to_string(limits.max_depth));
    }
    if (++count > limits.max_nodes) {
      return refuse(describe(node, parent, index) + ": the tree has more than " +
                    std::to_string(limits.max_nodes) + " nodes");
    }
    if (auto p = own_problem(node, limits))
      return refuse(describe(node, parent, index) + ": " + *p);
    if (!ids.insert(node.id).second) {
      return refuse("node " + shown(node.id) + ": the id is not unique in the tree");
    }
    for (std::size_t i = 0; i < node.children.size(); ++i) {
      if (auto ok = visit(node.children[i], depth + 1, node.id, i); !ok) return ok;
    }
    return {};
  }
};

}  // namespace

Result<void> validate_subtree(const Node& root, const Limits& limits, std::size_t root_depth) {
  Validator v{limits, {}, 0};
  return v.visit(root, root_depth, {}, 0);
}

}  // namespace detail

using detail::dump;
using detail::refuse;
using detail::shown;

std::string_view to_string(Op::Kind kind) noexcept {
  switch (kind) {
    case Op::Kind::props:
      return "props";
    case Op::Kind::events:
      return "events";
    case Op::Kind::insert:
      return "insert";
    case Op::Kind::remove:
      return "remove";
    case Op::Kind::move:
      return "move";
    case Op::Kind::replace:
      return "replace";
  }
  return "?";
}

Result<void> validate(const Node& root, const Limits& limits) {
  return detail::validate_subtree(root, limits, 1);
}

// ---- JSON writers ----

Value to_json(const Node& node) {
  // Empty props, events and children are left out (the protocol's defaults): frames stay small.
  Value out = Value::object();
  out["id"] = node.id;
  out["type"] = node.type;
  if (!node.props.is_object() || !node.props.empty()) out["props"] = node.props;
  if (!node.events.empty()) out["events"] = node.events;
  if (!node.children.empty()) {
    Value children = Value::array();
    for (const auto& child : node.children) children.push_back(to_json(child));
    out["children"] = std::move(children);
  }
  return out;
}

Value to_json(const Op& op) {
  Value out = Value::object();
  out["op"] = std::string(to_string(op.kind));
  switch (op.kind) {
    case Op::Kind::props:
      out["id"] = op.id;
      if (!op.set.is_object() || !op.set.empty()) out["set"] = op.set;
      if (!op.unset.empty()) out["unset"] = op.unset;
      break;
    case Op::Kind::events:
      out["id"] = op.id;
      out["events"] = op.events;
      break;
    case Op::Kind::insert:
      out["parent"] = op.parent;
      out["index"] = op.index;
      out["node"] = op.node ? to_json(*op.node) : Value();
      break;
    case Op::Kind::remove:
      out["id"] = op.id;
      break;
    case Op::Kind::move:
      out["id"] = op.id;
      out["parent"] = op.parent;
      out["index"] = op.index;
      break;
    case Op::Kind::replace:
      out["id"] = op.id;
      out["node"] = op.node ? to_json(*op.node) : Value();
      break;
  }
  return out;
}

Value to_json(const Patch& patch) {
  Value out = Value::array();
  for (const auto& op : patch) out.push_back(to_json(op));
  return out;
}

// ---- strict JSON readers ----

namespace {

Result<std::string> string_field(const Value& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) return refuse(where + ": missing field '" + key + "'");
  if (!it->is_string()) return refuse(where + ": field '" + key + "' is not a string");
  return it->get<std::string>();
}

Result<std::vector<std::string>> string_array(const Value& v, const std::string& what) {
  if (!v.is_array()) return refuse(what + " is not an array");
  std::vector<std::string> out;
  out.reserve(v.size());
  for (const auto& e : v) {
    if (!e.is_string()) return refuse(what + " holds a non-string");
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<std::uint64_t> unsigned_field(const Value& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) return refuse(where + ": missing field '" + key + "'");
  if (!it->is_number_unsigned()) {
    // nlohmann reads non-negative integers as unsigned; anything else is refused.
    return refuse(where + ": field '" + key + "' is not a non-negative integer");
  }
  return it->get<std::uint64_t>();
}

Result<void> only_fields(const Value& obj, std::initializer_list<std::string_view> allowed,
                         const std::string& where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (auto a : allowed) known = known || it.key() == a;
    if (!known) return refuse(where + ": unknown field " + shown(it.key()));
  }
  return {};
}

// Structure only (field types, depth and count bounds as it goes, so that hostile input never
// costs more than the limits allow); the rules of ids, names and uniqueness are validate()'s.
struct NodeReader {
  const Limits& limits;
  std::size_t count = 0;

  Result<Node> read(const Value& json, std::size_t depth, const std::string& where) {
    if (depth > limits.max_depth) {
      return refuse(where + ": depth " + std::to_string(depth) + " exceeds the limit of " +
                    std::to_string(limits.max_depth));
    }
    if (++count > limits.max_nodes) {
      return refuse(where + ": more than " + std::to_string(limits.max_nodes) + " nodes");
    }
    if (!json.is_object()) return refuse(where + ": a node must be a JSON object");
    Node node;
    auto id = string_field(json, "id", where);
    if (!id) return tl::unexpected(id.error());
    node.id = std::move(*id);
    const std::string self = detail::id_problem(node.id) ? where : "node " + shown(node.id);
    auto type = string_field(json, "type", self);
    if (!type) return tl::unexpected(type.error());
    node.type = std::move(*type);
    if (auto ok = only_fields(json, {"id", "type", "props", "events", "children"}, self); !ok) {
      return tl::unexpected(ok.error());
    }
    if (auto it = json.find("props"); it != json.end()) {
      if (!it->is_object()) return refuse(self + ": props is not an object");
      node.props = *it;
    }
    if (auto it = json.find("events"); it != json.end()) {
      auto events = string_array(*it, self + ": events");
      if (!events) return tl::unexpected(events.error());
      node.events = std::move(*events);
    }
    if (auto it = json.find("children"); it != json.end()) {
      if (!it->is_array()) return refuse(self + ": children is not an array");
      node.children.reserve(it->size());
      for (std::size_t i = 0; i < it->size(); ++i) {
        auto child =
            read((*it)[i], depth + 1, "child #" + std::to_string(i) + " of node " + shown(node.id));
        if (!child) return child;
        node.children.push_back(std::move(*child));
      }
    }
    return node;
  }
};

Result<Node> read_subtree(const Value& json, const Limits& limits, const std::string& where) {
  NodeReader reader{limits};
  auto node = reader.read(json, 1, where);
  if (!node) return node;
  if (auto ok = validate(*node, limits); !ok) return tl::unexpected(ok.error());
  return node;
}

Result<Op> op_from_json(const Value& json, const Limits& limits, std::size_t index) {
  const std::string where = "op #" + std::to_string(index);
  if (!json.is_object()) return refuse(where + ": an operation must be a JSON object");
  auto name = string_field(json, "op", where);
  if (!name) return tl::unexpected(name.error());
  Op op;
  const std::string what = where + " (" + *name + ")";
  auto need_id = [&]() -> Result<void> {
    auto id = string_field(json, "id", what);
    if (!id) return tl::unexpected(id.error());
    op.id = std::move(*id);
    return {};
  };
  auto need_parent_index = [&]() -> Result<void> {
    auto parent = string_field(json, "parent", what);
    if (!parent) return tl::unexpected(parent.error());
    op.parent = std::move(*parent);
    auto at = unsigned_field(json, "index", what);
    if (!at) return tl::unexpected(at.error());
    if (*at > limits.max_nodes)
      return refuse(what + ": index " + std::to_string(*at) + " is beyond any tree's size");
    op.index = static_cast<std::size_t>(*at);
    return {};
  };
  auto need_node = [&]() -> Result<void> {
    auto it = json.find("node");
    if (it == json.end()) return refuse(what + ": missing field 'node'");
    auto node = read_subtree(*it, limits, what + ": node");
    if (!node) return refuse(what + ": " + node.error().message);
    op.node = std::move(*node);
    return {};
  };
  Result<void> ok;
  if (*name == "props") {
    op.kind = Op::Kind::props;
    ok = only_fields(json, {"op", "id", "set", "unset"}, what);
    if (ok) ok = need_id();
    if (ok) {
      if (auto it = json.find("set"); it != json.end()) {
        if (!it->is_object()) return refuse(what + ": 'set' is not an object");
        op.set = *it;
      }
      if (auto it = json.find("unset"); it != json.end()) {
        auto keys = string_array(*it, what + ": 'unset'");
        if (!keys) return tl::unexpected(keys.error());
        op.unset = std::move(*keys);
      }
    }
  } else if (*name == "events") {
    op.kind = Op::Kind::events;
    ok = only_fields(json, {"op", "id", "events"}, what);
    if (ok) ok = need_id();
    if (ok) {
      auto it = json.find("events");
      if (it == json.end()) return refuse(what + ": missing field 'events'");
      auto events = string_array(*it, what + ": 'events'");
      if (!events) return tl::unexpected(events.error());
      op.events = std::move(*events);
      if (auto p = detail::events_problem(op.events, limits)) return refuse(what + ": " + *p);
    }
  } else if (*name == "insert") {
    op.kind = Op::Kind::insert;
    ok = only_fields(json, {"op", "parent", "index", "node"}, what);
    if (ok) ok = need_parent_index();
    if (ok) ok = need_node();
  } else if (*name == "remove") {
    op.kind = Op::Kind::remove;
    ok = only_fields(json, {"op", "id"}, what);
    if (ok) ok = need_id();
  } else if (*name == "move") {
    op.kind = Op::Kind::move;
    ok = only_fields(json, {"op", "id", "parent", "index"}, what);
    if (ok) ok = need_id();
    if (ok) ok = need_parent_index();
  } else if (*name == "replace") {
    op.kind = Op::Kind::replace;
    ok = only_fields(json, {"op", "id", "node"}, what);
    if (ok) ok = need_id();
    if (ok) ok = need_node();
  } else {
    return refuse(where + ": unknown op " + shown(*name) +
                  " (known: props, events, insert, remove, move, replace)");
  }
  if (!ok) return tl::unexpected(ok.error());
  return op;
}

}  // namespace

Result<Node> node_from_json(const Value& json, const Limits& limits) {
  return read_subtree(json, limits, "the root node");
}

Result<Patch> patch_from_json(const Value& json, const Limits& limits) {
  if (!json.is_array()) return refuse("a patch must be a JSON array of operations");
  Patch patch;
  patch.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    auto op = op_from_json(json[i], limits, i);
    if (!op) return tl::unexpected(op.error());
    patch.push_back(std::move(*op));
  }
  return patch;
}

Result<Value> parse_json(std::string_view text, const Limits& limits) {
  if (text.size() > limits.max_message_bytes) {
    return refuse("the message is " + std::to_string(text.size()) + " bytes (at most " +
                  std::to_string(limits.max_message_bytes) + ")");
  }
  struct TooDeep {};
  const auto max_nesting = static_cast<int>(limits.max_json_nesting);
  try {
    // The callback sees each array or object start with its nesting before anything inside it
    // is built, so hostile nesting is refused at the first level too many.
    Value value = Value::parse(
        text.begin(), text.end(),
        [max_nesting](int depth, Value::parse_event_t event, Value&) {
          if ((event == Value::parse_event_t::object_start ||
               event == Value::parse_event_t::array_start) &&
              depth >= max_nesting) {
            throw TooDeep{};
          }
          return true;
        },
        /*allow_exceptions=*/true, /*ignore_comments=*/false);
    return value;
  } catch (const TooDeep&) {
    return refuse("the JSON nests deeper than " + std::to_string(max_nesting) + " levels");
  } catch (const Value::exception& e) {
    return refuse(std::string("malformed JSON: ") + e.what());
  }
}

// ---- frames ----

std::string detail::dump(const Value& value) {
  // Invalid UTF-8 in a prop (an author's bytes) is replaced, not thrown at the publisher.
  return value.dump(-1, ' ', false, Value::error_handler_t::replace);
}

std::string encode(const Frame& frame) {
  // Written by hand so that the fields come in the order of docs/ui-protocol.md, section 3.
  std::string out = R"({"v":1,"kind":")";
  out += frame.kind == Frame::Kind::snapshot ? "snapshot" : "patch";
  out += R"(","extension":)";
  out += dump(Value(frame.extension));
  out += R"(,"seq":)";
  out += std::to_string(frame.seq);
  if (frame.kind == Frame::Kind::patch) {
    out += R"(,"base":)";
    out += std::to_string(frame.base);
  }
  out += R"(,"t":)";
  out += dump(Value(frame.t_ms));
  if (frame.kind == Frame::Kind::snapshot) {
    out += R"(,"tree":)";
    out += frame.tree ? dump(to_json(*frame.tree)) : std::string("null");
  } else {
    out += R"(,"ops":)";
    out += dump(to_json(frame.ops));
  }
  if (!frame.events_done.empty()) {
    out += R"(,"events_done":[)";
    for (std::size_t i = 0; i < frame.events_done.size(); ++i) {
      if (i > 0) out += ',';
      out += std::to_string(frame.events_done[i]);
    }
    out += ']';
  }
  out += '}';
  return out;
}

Result<Frame> decode_frame(std::string_view text, const Limits& limits) {
  auto parsed = parse_json(text, limits);
  if (!parsed) return tl::unexpected(parsed.error());
  const Value& json = *parsed;
  if (!json.is_object()) return refuse("a frame must be a JSON object");
  auto v = json.find("v");
  if (v == json.end()) return refuse("frame: missing field 'v'");
  if (!v->is_number_integer() || v->get<std::int64_t>() != kProtocolVersion) {
    return refuse("frame: protocol version " + dump(*v) + " is not " +
                  std::to_string(kProtocolVersion));
  }
  auto kind = string_field(json, "kind", "frame");
  if (!kind) return tl::unexpected(kind.error());
  Frame frame;
  if (*kind == "snapshot") {
    frame.kind = Frame::Kind::snapshot;
    if (auto ok = only_fields(json, {"v", "kind", "extension", "seq", "t", "tree", "events_done"},
                              "snapshot frame");
        !ok) {
      return tl::unexpected(ok.error());
    }
  } else if (*kind == "patch") {
    frame.kind = Frame::Kind::patch;
    if (auto ok =
            only_fields(json, {"v", "kind", "extension", "seq", "base", "t", "ops", "events_done"},
                        "patch frame");
        !ok) {
      return tl::unexpected(ok.error());
    }
  } else {
    return refuse("frame: unknown kind " + shown(*kind) + " (snapshot or patch)");
  }
  const std::string where = *kind + " frame";
  auto extension = string_field(json, "extension", where);
  if (!extension) return tl::unexpected(extension.error());
  if (extension->empty()) return refuse(where + ": 'extension' is empty");
  frame.extension = std::move(*extension);
  auto seq = unsigned_field(json, "seq", where);
  if (!seq) return tl::unexpected(seq.error());
  if (*seq == 0) return refuse(where + ": 'seq' counts from 1");
  frame.seq = *seq;
  auto t = json.find("t");
  if (t == json.end()) return refuse(where + ": missing field 't'");
  if (!t->is_number()) return refuse(where + ": field 't' is not a number");
  frame.t_ms = t->get<double>();
  if (auto done = json.find("events_done"); done != json.end()) {
    if (!done->is_array()) return refuse(where + ": 'events_done' is not an array");
    for (const auto& e : *done) {
      if (!e.is_number_unsigned()) {
        return refuse(where + ": 'events_done' holds something other than a non-negative integer");
      }
      frame.events_done.push_back(e.get<std::uint64_t>());
    }
  }
  if (frame.kind == Frame::Kind::snapshot) {
    auto tree = json.find("tree");
    if (tree == json.end()) return refuse(where + ": missing field 'tree'");
    auto node = node_from_json(*tree, limits);
    if (!node) return refuse(where + ": " + node.error().message);
    frame.tree = std::move(*node);
  } else {
    auto base = unsigned_field(json, "base", where);
    if (!base) return tl::unexpected(base.error());
    if (*base + 1 != frame.seq) {
      return refuse(where + ": 'base' " + std::to_string(*base) + " is not seq - 1 (seq " +
                    std::to_string(frame.seq) + ")");
    }
    frame.base = *base;
    auto ops = json.find("ops");
    if (ops == json.end()) return refuse(where + ": missing field 'ops'");
    auto patch = patch_from_json(*ops, limits);
    if (!patch) return refuse(where + ": " + patch.error().message);
    frame.ops = std::move(*patch);
  }
  return frame;
}

double wall_clock_ms() noexcept {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(now).count()) /
         1000.0;
}

std::string ui_topic(std::string_view extension_id) {
  return "ui/" + std::string(extension_id);
}

engine::TopicOptions topic_options() {
  engine::TopicOptions options;
  options.transport = engine::TopicTransport::native;
  options.max_payload = Limits{}.max_message_bytes;
  options.history = 1;
  options.capacity = kTopicCapacity;
  return options;
}

}  // namespace symphony::ui
