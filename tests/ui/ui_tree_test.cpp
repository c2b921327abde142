// symphony::ui: the keyed differ is minimal (one op per change of each kind) and correct
// (apply(old, diff(old, new)) == new over thousands of random tree pairs, also after the patch's
// JSON round trip); every bound of docs/ui-protocol.md is refused with a reason naming the node
// and the rule; apply is all or nothing; frames encode and decode exactly as the protocol says.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <unordered_set>

#include "symphony/ui/tree.hpp"
#include "test_scale.hpp"

namespace symphony::test {
namespace {

using ui::Node;
using ui::Op;
using ui::Patch;
using ui::Value;

Node make(std::string id, std::string type = "stack", std::vector<Node> children = {},
          Value props = Value::object()) {
  Node n;
  n.id = std::move(id);
  n.type = std::move(type);
  n.props = std::move(props);
  n.children = std::move(children);
  return n;
}

Node list_of(std::size_t n) {
  Node root = make("list", "list");
  for (std::size_t i = 0; i < n; ++i) {
    root.children.push_back(
        make("item" + std::to_string(i), "text", {}, Value{{"text", "item " + std::to_string(i)}}));
  }
  return root;
}

// diff, apply, compare; and the same after the patch's JSON round trip.
Patch check_diff(const Node& before, const Node& after) {
  Patch patch = ui::diff(before, after);
  Node applied = before;
  auto ok = ui::apply(applied, patch);
  EXPECT_TRUE(ok) << ok.error().message << "\npatch: " << ui::to_json(patch).dump();
  EXPECT_EQ(applied, after) << "patch: " << ui::to_json(patch).dump()
                            << "\nbefore: " << ui::to_json(before).dump()
                            << "\nafter: " << ui::to_json(after).dump()
                            << "\ngot: " << ui::to_json(applied).dump();
  auto text = ui::to_json(patch).dump();
  auto parsed = ui::parse_json(text);
  EXPECT_TRUE(parsed) << parsed.error().message;
  if (parsed) {
    auto read = ui::patch_from_json(*parsed);
    EXPECT_TRUE(read) << read.error().message;
    if (read) {
      EXPECT_EQ(*read, patch);
      Node again = before;
      EXPECT_TRUE(ui::apply(again, *read));
      EXPECT_EQ(again, after);
    }
  }
  return patch;
}

std::size_t count(const Patch& patch, Op::Kind kind) {
  return static_cast<std::size_t>(
      std::count_if(patch.begin(), patch.end(), [&](const Op& op) { return op.kind == kind; }));
}

// ---- minimality ----

TEST(UiDiff, EqualTreesGiveAnEmptyPatch) {
  const Node tree = make("root", "stack", {list_of(20), make("title", "heading")});
  EXPECT_TRUE(check_diff(tree, tree).empty());
}

TEST(UiDiff, OnePropChangedIsOnePropsOpWithOneKey) {
  const Node before = make("root", "stack", {list_of(10)}, Value{{"gap", 4}, {"direction", "row"}});
  Node after = before;
  after.children[0].children[5].props["text"] = "changed";
  const Patch patch = check_diff(before, after);
  ASSERT_EQ(patch.size(), 1u);
  EXPECT_EQ(patch[0].kind, Op::Kind::props);
  EXPECT_EQ(patch[0].id, "item5");
  EXPECT_EQ(patch[0].set, (Value{{"text", "changed"}}));
  EXPECT_TRUE(patch[0].unset.empty());

  Node removed = before;
  removed.props.erase("gap");
  const Patch unset = check_diff(before, removed);
  ASSERT_EQ(unset.size(), 1u);
  EXPECT_TRUE(unset[0].set.empty());
  EXPECT_EQ(unset[0].unset, std::vector<std::string>{"gap"});
}

TEST(UiDiff, ChangedEventsAreOneEventsOp) {
  const Node before = make("root", "stack", {make("b", "button")});
  Node after = before;
  after.children[0].events = {"click"};
  const Patch patch = check_diff(before, after);
  ASSERT_EQ(patch.size(), 1u);
  EXPECT_EQ(patch[0].kind, Op::Kind::events);
  EXPECT_EQ(patch[0].events, std::vector<std::string>{"click"});
}

TEST(UiDiff, AppendIsOneInsert) {
  const Node before = list_of(10);
  Node after = before;
  after.children.push_back(make("new", "text"));
  const Patch patch = check_diff(before, after);
  ASSERT_EQ(patch.size(), 1u);
  EXPECT_EQ(patch[0].kind, Op::Kind::insert);
  EXPECT_EQ(patch[0].parent, "list");
  EXPECT_EQ(patch[0].index, 10u);
}

TEST(UiDiff, RemoveIsOneRemove) {
  const Node before = list_of(10);
  Node after = before;
  after.children.erase(after.children.begin() + 3);
  const Patch patch = check_diff(before, after);
  ASSERT_EQ(patch.size(), 1u);
  EXPECT_EQ(patch[0].kind, Op::Kind::remove);
  EXPECT_EQ(patch[0].id, "item3");
}

TEST(UiDiff, OneItemMovedInAListOfAHundredIsOneMove) {
  const Node before = list_of(100);
  for (const auto& [from, to] : {std::pair{0, 99}, {99, 0}, {10, 60}, {70, 20}}) {
    Node after = before;
    Node item = after.children[static_cast<std::size_t>(from)];
    after.children.erase(after.children.begin() + from);
    after.children.insert(after.children.begin() + to, item);
    const Patch patch = check_diff(before, after);
    ASSERT_EQ(patch.size(), 1u) << from << " -> " << to << ": " << ui::to_json(patch).dump();
    EXPECT_EQ(patch[0].kind, Op::Kind::move);
    EXPECT_EQ(patch[0].id, "item" + std::to_string(from));
  }
}

TEST(UiDiff, ReversedListTakesNMinusOneMoves) {
  const Node before = list_of(50);
  Node after = before;
  std::reverse(after.children.begin(), after.children.end());
  const Patch patch = check_diff(before, after);
  EXPECT_EQ(patch.size(), 49u);
  EXPECT_EQ(count(patch, Op::Kind::move), 49u);
}

TEST(UiDiff, TypeChangeIsOneReplace) {
  const Node before = make("root", "stack", {make("a", "text"), make("w", "card", {list_of(3)})});
  Node after = before;
  after.children[1].type = "stack";
  const Patch patch = check_diff(before, after);
  ASSERT_EQ(patch.size(), 1u);
  EXPECT_EQ(patch[0].kind, Op::Kind::replace);
  EXPECT_EQ(patch[0].id, "w");
  ASSERT_TRUE(patch[0].node);
  EXPECT_EQ(*patch[0].node, after.children[1]);

  Node root_changed = before;
  root_changed.type = "card";
  const Patch root = check_diff(before, root_changed);
  ASSERT_EQ(root.size(), 1u);
  EXPECT_EQ(root[0].kind, Op::Kind::replace);
}

TEST(UiDiff, ReparentIsOneMove) {
  const Node before = make("root", "stack",
                           {make("left", "stack", {make("x", "text"), make("y", "text")}),
                            make("right", "stack", {make("z", "text")})});
  Node after = before;
  Node x = after.children[0].children[0];
  after.children[0].children.erase(after.children[0].children.begin());
  after.children[1].children.insert(after.children[1].children.begin() + 1, x);
  const Patch patch = check_diff(before, after);
  ASSERT_EQ(patch.size(), 1u);
  EXPECT_EQ(patch[0].kind, Op::Kind::move);
  EXPECT_EQ(patch[0].id, "x");
  EXPECT_EQ(patch[0].parent, "right");
  EXPECT_EQ(patch[0].index, 1u);
}

TEST(UiDiff, ParentAndChildSwapPlaces) {
  const Node before = make("root", "stack", {make("k", "card", {make("p", "list")})});
  const Node after = make("root", "stack", {make("p", "list", {make("k", "card")})});
  const Patch patch = check_diff(before, after);
  EXPECT_EQ(patch.size(), 2u);
}

TEST(UiDiff, IdReusedWithAnotherTypeElsewhereNeverHoldsTwoNodesOfOneId) {
  // "a" becomes a button under another parent; "w" (wrapper) goes away but its kept child stays.
  const Node before =
      make("root", "stack",
           {make("w", "card", {make("k", "text"), make("a", "text")}), make("p", "stack")});
  const Node after =
      make("root", "stack",
           {make("k", "text"), make("p", "stack", {make("a", "button")}), make("w", "list")});
  check_diff(before, after);
  // Two replaced siblings whose children swap ids: one of them falls back to remove + insert.
  const Node swap_before =
      make("root", "stack",
           {make("x", "card", {make("c1", "text")}), make("y", "card", {make("c2", "text")})});
  const Node swap_after =
      make("root", "stack",
           {make("x", "list", {make("c2", "text")}), make("y", "list", {make("c1", "text")})});
  check_diff(swap_before, swap_after);
}

TEST(UiDiff, ShuffledListOfTwoThousand) {
  // Moves are linear in the list's length each (ids to positions); a whole shuffle of a
  // 2,000-item list is the practical worst (its patch is near the 256 KiB frame bound).
  const Node before = list_of(2000);
  Node after = before;
  std::shuffle(after.children.begin(), after.children.end(), std::mt19937_64(7));
  const auto began = std::chrono::steady_clock::now();
  const Patch patch = ui::diff(before, after);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - began)
                      .count();
  Node applied = before;
  ASSERT_TRUE(ui::apply(applied, patch));
  EXPECT_EQ(applied, after);
  std::printf("diff of a shuffled list of 2000: %zu moves, %lld ms\n", patch.size(),
              static_cast<long long>(ms));
}

TEST(UiDiff, TenThousandNodesWithOneChangeCostMilliseconds) {
  // A table of 1,999 rows of 4 cells (9,996 nodes): what one render of a big panel costs.
  Node before = make("table", "table");
  for (int r = 0; r < 1999; ++r) {
    Node row = make("r" + std::to_string(r), "row");
    for (int c = 0; c < 4; ++c) {
      row.children.push_back(make("c" + std::to_string(r) + "." + std::to_string(c), "text", {},
                                  Value{{"text", "cell " + std::to_string(c)}}));
    }
    before.children.push_back(std::move(row));
  }
  ASSERT_TRUE(ui::validate(before));
  Node after = before;
  after.children[1234].children[2].props["text"] = "changed";
  using Ms = std::chrono::duration<double, std::milli>;
  Patch patch = ui::diff(before, after);  // warm up (the allocator's first growth)
  auto t0 = std::chrono::steady_clock::now();
  patch = ui::diff(before, after);
  auto t1 = std::chrono::steady_clock::now();
  Node applied = before;
  ASSERT_TRUE(ui::apply(applied, patch));
  auto t2 = std::chrono::steady_clock::now();
  const std::string snapshot = ui::to_json(after).dump();
  auto t3 = std::chrono::steady_clock::now();
  EXPECT_EQ(patch.size(), 1u);
  EXPECT_EQ(applied, after);
  std::printf(
      "9,996 nodes, one prop changed: diff %.2f ms, apply %.2f ms (copy + validate), "
      "snapshot JSON %.2f ms (%zu bytes)\n",
      Ms(t1 - t0).count(), Ms(t2 - t1).count(), Ms(t3 - t2).count(), snapshot.size());
}

// ---- the property test ----

class Mutator {
 public:
  explicit Mutator(std::uint64_t seed) : rng_(seed) {}

  Node tree(std::size_t max_nodes, std::size_t max_depth) {
    Node root = fresh(0);
    std::size_t n = 1;
    grow(root, 1, max_depth, n, max_nodes);
    return root;
  }

  void mutate(Node& root) {
    const int kind = pick(11);
    std::vector<std::pair<Node*, Node*>> all;  // node, parent
    collect(root, nullptr, all);
    auto [node, parent] = all[static_cast<std::size_t>(pick(static_cast<int>(all.size())))];
    switch (kind) {
      case 0:
      case 1:
        node->props["p" + std::to_string(pick(4))] =
            pick(3) == 0 ? Value::array({pick(5)}) : Value(pick(5));
        break;
      case 2:
        if (!node->props.empty()) node->props.erase(node->props.begin());
        break;
      case 3:
        node->events =
            pick(2) == 0 ? std::vector<std::string>{} : std::vector<std::string>{"click", "change"};
        break;
      case 4: {  // insert a small subtree (sometimes reusing a removed id with another type)
        Node child = fresh(depth_of(root, node->id));
        if (pick(2) == 0) child.children.push_back(fresh(0));
        node->children.insert(
            node->children.begin() + pick(static_cast<int>(node->children.size()) + 1),
            std::move(child));
        break;
      }
      case 5:
        if (parent != nullptr) {
          collect_ids(*node, removed_);
          erase_child(*parent, node->id);
        }
        break;
      case 6: {  // move somewhere outside its own subtree
        if (parent == nullptr) break;
        std::unordered_set<std::string> inside;
        std::vector<std::string> ids;
        collect_ids(*node, ids);
        inside.insert(ids.begin(), ids.end());
        std::vector<std::pair<Node*, Node*>> targets;
        for (auto& t : all) {
          if (!inside.contains(t.first->id)) targets.push_back(t);
        }
        const std::string target =
            targets[static_cast<std::size_t>(pick(static_cast<int>(targets.size())))].first->id;
        Node moved = *node;
        erase_child(*parent, node->id);
        Node* to = find(root, target);
        to->children.insert(to->children.begin() + pick(static_cast<int>(to->children.size()) + 1),
                            std::move(moved));
        break;
      }
      case 7:
        node->type = kTypes[static_cast<std::size_t>(pick(kTypeCount))];
        break;
      case 8:  // wrap it in a new node
        if (parent != nullptr) {
          Node wrapper = fresh(0);
          wrapper.children.push_back(*node);
          *node = std::move(wrapper);
        }
        break;
      case 9:  // unwrap: its children take its place
        if (parent != nullptr) {
          auto at = std::find_if(parent->children.begin(), parent->children.end(),
                                 [&](const Node& c) { return c.id == node->id; });
          std::vector<Node> kids = std::move(node->children);
          removed_.push_back(node->id);
          const auto pos = at - parent->children.begin();
          parent->children.erase(at);
          parent->children.insert(parent->children.begin() + pos, kids.begin(), kids.end());
        }
        break;
      case 10:
        std::shuffle(node->children.begin(), node->children.end(), rng_);
        break;
    }
  }

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

 private:
  static constexpr int kTypeCount = 5;
  static constexpr const char* kTypes[kTypeCount] = {"stack", "text", "button", "list", "card"};

  Node fresh(std::size_t) {
    std::string id;
    if (!removed_.empty() && pick(3) == 0) {  // an id seen before, maybe of another type
      id = removed_.back();
      removed_.pop_back();
    } else {
      id = "n" + std::to_string(next_++);
    }
    Node n = make(id, kTypes[static_cast<std::size_t>(pick(kTypeCount))]);
    if (pick(2) == 0) n.props["label"] = "l" + std::to_string(pick(10));
    return n;
  }

  void grow(Node& node, std::size_t depth, std::size_t max_depth, std::size_t& n,
            std::size_t max_nodes) {
    if (depth >= max_depth) return;
    const int kids = pick(5);
    for (int i = 0; i < kids && n < max_nodes; ++i) {
      node.children.push_back(fresh(depth));
      ++n;
      if (pick(2) == 0) grow(node.children.back(), depth + 1, max_depth, n, max_nodes);
    }
  }

  static void collect(Node& node, Node* parent, std::vector<std::pair<Node*, Node*>>& out) {
    out.emplace_back(&node, parent);
    for (auto& c : node.children) collect(c, &node, out);
  }
  static void collect_ids(const Node& node, std::vector<std::string>& out) {
    out.push_back(node.id);
    for (const auto& c : node.children) collect_ids(c, out);
  }
  static Node* find(Node& node, const std::string& id) {
    if (node.id == id) return &node;
    for (auto& c : node.children) {
      if (Node* f = find(c, id)) return f;
    }
    return nullptr;
  }
  static std::size_t depth_of(const Node&, const std::string&) { return 0; }
  static void erase_child(Node& parent, const std::string& id) {
    parent.children.erase(std::find_if(parent.children.begin(), parent.children.end(),
                                       [&](const Node& c) { return c.id == id; }));
  }

  std::mt19937_64 rng_;
  std::vector<std::string> removed_;
  std::uint64_t next_ = 0;
};

TEST(UiDiff, RandomTreePairsApplyToTheNewTree) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  const std::uint64_t iterations = scaled(1000);  // and SYMPHONY_TEST_SCALE of the preset
#else
  const std::uint64_t iterations = scaled(4000);
#endif
  const auto began = std::chrono::steady_clock::now();
  std::size_t ops = 0;
  std::uint64_t pairs = 0;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    Mutator m(0x5eed0000 + i);
    const Node before = m.tree(static_cast<std::size_t>(5 + m.pick(60)), 7);
    Node after = before;
    const int changes = 1 + m.pick(8);
    for (int c = 0; c < changes; ++c) m.mutate(after);
    ASSERT_TRUE(ui::validate(before)) << "seed " << i;
    auto valid = ui::validate(after);
    if (!valid) continue;  // a mutation reused an id still in the tree: not a valid pair
    ++pairs;
    const Patch patch = check_diff(before, after);
    ops += patch.size();
    ASSERT_FALSE(HasFailure()) << "seed " << i;
    EXPECT_TRUE(ui::diff(after, after).empty());
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - began)
                      .count();
  std::printf("%llu random pairs (%llu valid), %zu ops, %lld ms\n",
              static_cast<unsigned long long>(iterations), static_cast<unsigned long long>(pairs),
              ops, static_cast<long long>(ms));
  EXPECT_GT(pairs, iterations * 8 / 10);
}

// ---- refusals ----

void expect_refused(const engine::Result<void>& r, std::initializer_list<const char*> words) {
  ASSERT_FALSE(r) << "accepted";
  for (const char* w : words) {
    EXPECT_NE(r.error().message.find(w), std::string::npos)
        << "'" << w << "' not in: " << r.error().message;
  }
}

TEST(UiValidate, RefusesEveryBoundNamingTheNodeAndTheRule) {
  EXPECT_TRUE(ui::validate(make("root", "stack", {make("a", "text")})));
  expect_refused(ui::validate(make("root", "stack", {make("a", "text"), make("a", "text")})),
                 {"'a'", "not unique"});
  expect_refused(ui::validate(make("root", "stack", {make("", "text")})),
                 {"child #0 of node 'root'", "empty"});
  expect_refused(ui::validate(make("root", "stack", {make(std::string(129, 'x'), "text")})),
                 {"129 bytes"});
  EXPECT_TRUE(ui::validate(make(std::string(128, 'x'), "text")));
  expect_refused(ui::validate(make("bad\nid", "text")), {"control character"});
  expect_refused(ui::validate(make("bad\xff", "text")), {"UTF-8"});
  EXPECT_TRUE(ui::validate(make("grüße ✓", "text")));
  expect_refused(ui::validate(make("root", "Stack")), {"'root'", "type 'Stack'"});
  expect_refused(ui::validate(make("root", "1x")), {"type"});
  expect_refused(ui::validate(make("root", std::string(65, 'a'))), {"type"});
  EXPECT_TRUE(ui::validate(make("root", "line-chart")));
  Node props = make("root");
  props.props = Value::array();
  expect_refused(ui::validate(props), {"'root'", "props is not an object"});
  Node events = make("root");
  events.events = {"click", "click"};
  expect_refused(ui::validate(events), {"'root'", "'click' is listed twice"});
  events.events = {"Click"};
  expect_refused(ui::validate(events), {"event name 'Click'"});
  events.events.clear();
  for (int i = 0; i < 17; ++i) events.events.push_back("e" + std::to_string(i));
  expect_refused(ui::validate(events), {"17 events", "at most 16"});
  events.events.pop_back();
  EXPECT_TRUE(ui::validate(events));
}

Node chain(std::size_t depth) {
  Node root = make("d1");
  Node* at = &root;
  for (std::size_t d = 2; d <= depth; ++d) {
    at->children.push_back(make("d" + std::to_string(d)));
    at = &at->children.back();
  }
  return root;
}

TEST(UiValidate, RefusesTooDeepAndTooMany) {
  EXPECT_TRUE(ui::validate(chain(32)));
  expect_refused(ui::validate(chain(33)), {"'d33'", "depth 33", "limit of 32"});
  Node wide = list_of(9999);
  EXPECT_TRUE(ui::validate(wide));
  wide.children.push_back(make("one-more", "text"));
  expect_refused(ui::validate(wide), {"'one-more'", "more than 10000 nodes"});
  // The JSON reader refuses them too, before it builds more than the bound.
  expect_refused(ui::node_from_json(ui::to_json(chain(33))).map([](auto&&) {}), {"depth 33"});
  expect_refused(ui::node_from_json(ui::to_json(wide)).map([](auto&&) {}), {"more than 10000"});
}

TEST(UiJson, ParseRefusesOversizeAndDeepInput) {
  ui::Limits limits;
  std::string big = "\"" + std::string(limits.max_message_bytes - 2, 'x') + "\"";
  EXPECT_TRUE(ui::parse_json(big));
  big.insert(1, "x");
  expect_refused(ui::parse_json(big).map([](auto&&) {}), {"262145 bytes", "262144"});
  std::string deep(100'000, '[');
  expect_refused(ui::parse_json(deep).map([](auto&&) {}), {"nests deeper than 128"});
  const std::string ok_nesting = std::string(128, '[') + std::string(128, ']');
  EXPECT_TRUE(ui::parse_json(ok_nesting));
  const std::string too = std::string(129, '[') + std::string(129, ']');
  EXPECT_FALSE(ui::parse_json(too));
  expect_refused(ui::parse_json("{\"a\":").map([](auto&&) {}), {"malformed JSON"});
  expect_refused(ui::parse_json("\"\xff\"").map([](auto&&) {}), {"malformed JSON"});
}

TEST(UiJson, StrictReadersSayWhy) {
  auto node = [](const char* text) {
    return ui::node_from_json(*ui::parse_json(text)).map([](auto&&) {});
  };
  EXPECT_TRUE(node(R"({"id":"a","type":"text"})"));
  EXPECT_TRUE(node(R"({"id":"a","type":"text","props":{},"events":[],"children":[]})"));
  expect_refused(node(R"({"id":1,"type":"text"})"), {"'id' is not a string"});
  expect_refused(node(R"({"type":"text"})"), {"missing field 'id'"});
  expect_refused(node(R"({"id":"a"})"), {"node 'a'", "missing field 'type'"});
  expect_refused(node(R"({"id":"a","type":"text","props":[]})"), {"props is not an object"});
  expect_refused(node(R"({"id":"a","type":"text","events":"click"})"), {"events is not an array"});
  expect_refused(node(R"({"id":"a","type":"text","children":{}})"), {"children is not an array"});
  expect_refused(node(R"({"id":"a","type":"text","kids":[]})"), {"unknown field 'kids'"});
  expect_refused(node(R"([])"), {"JSON object"});

  auto patch = [](const char* text) {
    return ui::patch_from_json(*ui::parse_json(text)).map([](auto&&) {});
  };
  EXPECT_TRUE(
      patch(R"([{"op":"props","id":"a","set":{"x":1},"unset":["y"]},{"op":"remove","id":"b"},
      {"op":"move","id":"c","parent":"d","index":0},{"op":"events","id":"e","events":["click"]},
      {"op":"insert","parent":"f","index":2,"node":{"id":"g","type":"text"}},
      {"op":"replace","id":"h","node":{"id":"h","type":"card"}}])"));
  expect_refused(patch(R"({})"), {"JSON array"});
  expect_refused(patch(R"([{"op":"frob","id":"a"}])"), {"op #0", "unknown op 'frob'"});
  expect_refused(patch(R"([{"id":"a"}])"), {"op #0", "missing field 'op'"});
  expect_refused(patch(R"([{"op":"remove"}])"), {"op #0 (remove)", "missing field 'id'"});
  expect_refused(patch(R"([{"op":"move","id":"a","parent":"b","index":-1}])"),
                 {"'index' is not a non-negative integer"});
  expect_refused(patch(R"([{"op":"move","id":"a","parent":"b","index":1.5}])"),
                 {"'index' is not a non-negative integer"});
  expect_refused(patch(R"([{"op":"insert","parent":"b","index":0}])"), {"missing field 'node'"});
  expect_refused(patch(R"([{"op":"insert","parent":"b","index":0,"node":{"id":"x","type":"X"}}])"),
                 {"op #0 (insert)", "type 'X'"});
  expect_refused(patch(R"([{"op":"props","id":"a","set":[]}])"), {"'set' is not an object"});
  expect_refused(patch(R"([{"op":"events","id":"a","events":["a","a"]}])"), {"listed twice"});
  expect_refused(patch(R"([{"op":"remove","id":"a","extra":1}])"), {"unknown field 'extra'"});
}

Op op_remove(std::string id) {
  Op op;
  op.kind = Op::Kind::remove;
  op.id = std::move(id);
  return op;
}
Op op_move(std::string id, std::string parent, std::size_t index) {
  Op op;
  op.kind = Op::Kind::move;
  op.id = std::move(id);
  op.parent = std::move(parent);
  op.index = index;
  return op;
}
Op op_insert(std::string parent, std::size_t index, Node node) {
  Op op;
  op.kind = Op::Kind::insert;
  op.parent = std::move(parent);
  op.index = index;
  op.node = std::move(node);
  return op;
}
Op op_props(std::string id, Value set) {
  Op op;
  op.kind = Op::Kind::props;
  op.id = std::move(id);
  op.set = std::move(set);
  return op;
}

TEST(UiApply, RefusesBadOperationsWithTheirIndexAndReason) {
  const Node tree =
      make("root", "stack", {make("a", "stack", {make("b", "text")}), make("c", "text")});
  auto refused = [&](Patch patch, std::initializer_list<const char*> words) {
    Node t = tree;
    expect_refused(ui::apply(t, patch), words);
    EXPECT_EQ(t, tree);
  };
  refused({op_remove("root")}, {"op #0 (remove 'root')", "root"});
  refused({op_move("a", "b", 0)}, {"op #0 (move 'a')", "inside the moved subtree"});
  refused({op_move("a", "a", 0)}, {"inside the moved subtree"});
  refused({op_insert("a", 2, make("x", "text"))},
          {"op #0 (insert 'a')", "index 2 is out of range"});
  refused({op_insert("a", 0, make("c", "text"))}, {"'c' is already in the tree"});
  refused({op_insert("nope", 0, make("x", "text"))}, {"unknown node 'nope'"});
  refused({op_props("nope", Value{{"k", 1}})}, {"op #0 (props 'nope')", "unknown node 'nope'"});
  refused({op_remove("nope")}, {"unknown node 'nope'"});
  refused({op_move("b", "root", 3)}, {"index 3 is out of range"});
  refused({op_insert("b", 0, chain(31))}, {"depth 33"});
  Node deep = make("root", "stack", {chain(30), make("x", "stack", {make("y", "stack")})});
  expect_refused(ui::apply(deep, {op_move("x", "d30", 0)}), {"depth 33"});
  Node full = list_of(9999);
  Node add = make("w", "stack", {make("w1", "text")});
  expect_refused(ui::apply(full, {op_insert("list", 0, add)}), {"10002 nodes", "at most 10000"});
  // A duplicate that a later op would resolve is still refused: ids are unique after every op.
  refused({op_insert("root", 0, make("b", "text")), op_remove("a")}, {"op #0", "'b' is already"});
}

TEST(UiApply, AllOrNothing) {
  const Node tree =
      make("root", "stack", {make("a", "text"), make("b", "text"), make("c", "text")});
  Node t = tree;
  const Patch patch = {op_props("a", Value{{"text", "x"}}), op_remove("b"), op_move("c", "root", 0),
                       op_remove("root")};
  auto r = ui::apply(t, patch);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("op #3"), std::string::npos) << r.error().message;
  EXPECT_EQ(t, tree);
  Node u = tree;
  ASSERT_TRUE(ui::apply(u, Patch(patch.begin(), patch.begin() + 3)));
  EXPECT_EQ(
      u, make("root", "stack", {make("c", "text"), make("a", "text", {}, Value{{"text", "x"}})}));
}

// ---- frames ----

TEST(UiFrame, EncodesTheProtocolsFieldsAndDecodesThemBack) {
  ui::Frame snapshot;
  snapshot.kind = ui::Frame::Kind::snapshot;
  snapshot.extension = "file-explorer";
  snapshot.seq = 12;
  snapshot.t_ms = 1764100000123.456;
  snapshot.tree = make("root", "stack", {make("t", "text", {}, Value{{"text", "hi"}})});
  const std::string text = ui::encode(snapshot);
  EXPECT_EQ(
      text,
      R"({"v":1,"kind":"snapshot","extension":"file-explorer","seq":12,"t":1764100000123.456,)"
      R"("tree":{"children":[{"id":"t","props":{"text":"hi"},"type":"text"}],"id":"root","type":"stack"}})");
  auto back = ui::decode_frame(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->tree, snapshot.tree);
  EXPECT_EQ(back->seq, 12u);
  EXPECT_DOUBLE_EQ(back->t_ms, snapshot.t_ms);

  ui::Frame patch;
  patch.kind = ui::Frame::Kind::patch;
  patch.extension = "file-explorer";
  patch.seq = 13;
  patch.base = 12;
  patch.t_ms = 1764100000140.5;
  patch.ops = {op_remove("t")};
  patch.events_done = {41};
  const std::string ptext = ui::encode(patch);
  EXPECT_EQ(
      ptext,
      R"({"v":1,"kind":"patch","extension":"file-explorer","seq":13,"base":12,"t":1764100000140.5,)"
      R"("ops":[{"id":"t","op":"remove"}],"events_done":[41]})");
  auto pback = ui::decode_frame(ptext);
  ASSERT_TRUE(pback) << pback.error().message;
  EXPECT_EQ(pback->ops, patch.ops);
  EXPECT_EQ(pback->events_done, patch.events_done);
  EXPECT_EQ(pback->base, 12u);

  auto frame = [](const char* t) { return ui::decode_frame(t).map([](auto&&) {}); };
  expect_refused(frame(R"({"v":2,"kind":"patch"})"), {"protocol version 2"});
  expect_refused(frame(R"({"kind":"patch"})"), {"missing field 'v'"});
  expect_refused(frame(R"({"v":1,"kind":"delta"})"), {"unknown kind 'delta'"});
  expect_refused(frame(R"({"v":1,"kind":"patch","extension":"x","seq":5,"base":3,"t":1,"ops":[]})"),
                 {"'base' 3 is not seq - 1"});
  expect_refused(
      frame(
          R"({"v":1,"kind":"snapshot","extension":"x","seq":0,"t":1,"tree":{"id":"a","type":"b"}})"),
      {"counts from 1"});
  expect_refused(frame(R"({"v":1,"kind":"snapshot","extension":"x","seq":1,"t":1})"),
                 {"missing field 'tree'"});
  expect_refused(
      frame(R"({"v":1,"kind":"patch","extension":"x","seq":2,"base":1,"t":1,"ops":[{"op":"x"}]})"),
      {"unknown op 'x'"});
  EXPECT_EQ(ui::ui_topic("file-explorer"), "ui/file-explorer");
  EXPECT_GT(ui::wall_clock_ms(), 1.7e12);
}

}  // namespace
}  // namespace symphony::test
