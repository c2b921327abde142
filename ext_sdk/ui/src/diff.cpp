// The keyed differ (docs/ui-protocol.md, section 2).
//
// Nodes are matched by id. A node is *kept* (it survives, changed by props/events ops and at most
// one move) when its id is in both trees with the same type and its new parent is kept too (the
// roots: same id and type). Every other node of the new tree is *created*: it arrives inside an
// insert's or a replace's subtree (a node whose new parent is created rides along in its
// parent's subtree). Every other node of the old tree is *destroyed*. A *replace candidate* is a
// node whose type changed but whose parent (kept) did not: one replace, in place.
//
// The ops come in sweeps, in an order whose application never holds two nodes of one id (an id
// can be destroyed and created at once: a type change, or a node that moved into a created
// parent):
//   0. props / events of kept nodes;
//   1. remove destroyed subtrees that hold no kept node (fewer nodes to carry around below);
//   2. moves, parent by parent in the new tree's pre-order: every kept child is brought to its
//      final parent, and the siblings that stay put are a longest increasing subsequence of
//      their current positions (the fewest moves). A parent's own ancestors are final by then,
//      so a move never enters the moved node's subtree;
//   3. remove the destroyed nodes that are left (kept nodes have all left them by now);
//   4. replace and insert the created nodes: their ids are free by now. A replace candidate
//      whose old subtree still holds an id created elsewhere is removed in 3 and inserted here.

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "detail.hpp"

namespace symphony::ui {

namespace {

struct Where {
  const Node* node = nullptr;
  std::string_view parent;  // empty for the root
};

using Index = std::unordered_map<std::string_view, Where>;

void index_tree(const Node& node, std::string_view parent, Index& out) {
  out.emplace(node.id, Where{&node, parent});
  for (const auto& child : node.children) index_tree(child, node.id, out);
}

// Indices (into `seq`) of one longest strictly increasing subsequence: patience sorting,
// O(n log n).
std::vector<std::size_t> longest_increasing(const std::vector<std::size_t>& seq) {
  std::vector<std::size_t> tails;  // tails[k]: index in seq of the smallest end of a run of k+1
  std::vector<std::size_t> prev(seq.size(), SIZE_MAX);
  for (std::size_t i = 0; i < seq.size(); ++i) {
    auto it = std::lower_bound(tails.begin(), tails.end(), seq[i],
                               [&](std::size_t at, std::size_t value) { return seq[at] < value; });
    if (it != tails.begin()) prev[i] = *(it - 1);
    if (it == tails.end()) {
      tails.push_back(i);
    } else {
      *it = i;
    }
  }
  std::vector<std::size_t> out(tails.size());
  std::size_t at = tails.empty() ? SIZE_MAX : tails.back();
  for (std::size_t k = out.size(); k-- > 0;) {
    out[k] = at;
    at = prev[at];
  }
  return out;
}

std::size_t count(const Node& node) {
  std::size_t n = 1;
  for (const auto& child : node.children) n += count(child);
  return n;
}

std::size_t position(const std::vector<std::string_view>& list, std::string_view id) {
  return static_cast<std::size_t>(std::find(list.begin(), list.end(), id) - list.begin());
}

class Differ {
 public:
  Differ(const Node& before, const Node& after, std::size_t old_count, std::size_t new_count)
      : before_(before), after_(after) {
    old_.reserve(old_count);
    new_.reserve(new_count);
    children_.reserve(old_count);
    parent_.reserve(old_count);
    kept_.reserve(new_count);
    order_.reserve(new_count);
    index_tree(before, {}, old_);
    index_tree(after, {}, new_);
    for (const auto& [id, where] : old_) {
      auto& list = children_[id];
      list.reserve(where.node->children.size());
      for (const auto& child : where.node->children) list.push_back(child.id);
      parent_[id] = where.parent;
    }
  }

  Patch run() {
    classify(after_);
    for (std::string_view id : order_) props_and_events(id);
    remove_unreachable();
    place(after_);
    remove_destroyed();
    create();
    return std::move(patch_);
  }

 private:
  bool kept(std::string_view id) const { return kept_.contains(id); }
  bool in_place(std::string_view id) const {  // kept, or replaced where it stands
    return kept_.contains(id) || (candidates_.contains(id) && !fallback_.contains(id));
  }

  // Kept nodes top-down; `order_` is their pre-order in the new tree.
  void classify(const Node& node) {
    kept_.insert(node.id);
    order_.push_back(node.id);
    for (const auto& child : node.children) {
      auto it = old_.find(child.id);
      if (it == old_.end()) continue;
      if (it->second.node->type == child.type) {
        classify(child);
      } else if (it->second.parent == node.id) {
        candidates_.insert(child.id);
      }
    }
  }

  void props_and_events(std::string_view id) {
    const Node& a = *old_.at(id).node;
    const Node& b = *new_.at(id).node;
    if (a.props == b.props && a.events == b.events) return;  // most nodes: no op to build
    Op op;
    op.kind = Op::Kind::props;
    op.id = b.id;
    for (auto it = b.props.begin(); it != b.props.end(); ++it) {
      auto was = a.props.find(it.key());
      if (was == a.props.end() || *was != it.value()) op.set[it.key()] = it.value();
    }
    for (auto it = a.props.begin(); it != a.props.end(); ++it) {
      if (!b.props.contains(it.key())) op.unset.push_back(it.key());
    }
    if (!op.set.empty() || !op.unset.empty()) patch_.push_back(std::move(op));
    if (a.events != b.events) {
      Op ev;
      ev.kind = Op::Kind::events;
      ev.id = b.id;
      ev.events = b.events;
      patch_.push_back(std::move(ev));
    }
  }

  // True if the current subtree of `id` holds a kept node (below it).
  bool holds_kept(std::string_view id) const {
    for (std::string_view child : children_.at(id)) {
      if (kept(child) || holds_kept(child)) return true;
    }
    return false;
  }

  void emit_remove(std::string_view id) {
    auto& siblings = children_[parent_[id]];
    siblings.erase(siblings.begin() + static_cast<std::ptrdiff_t>(position(siblings, id)));
    Op op;
    op.kind = Op::Kind::remove;
    op.id = std::string(id);
    patch_.push_back(std::move(op));
  }

  // Sweep 1: destroyed children of kept nodes whose subtrees hold nothing kept.
  void remove_unreachable() {
    auto gone = [&](std::string_view child) {
      return !kept(child) && !candidates_.contains(child) && !holds_kept(child);
    };
    for (std::string_view parent : order_) {
      const auto& current = children_[parent];
      if (std::none_of(current.begin(), current.end(), gone)) continue;
      const auto list = current;  // a copy: emit_remove edits it
      for (std::string_view child : list) {
        if (gone(child)) emit_remove(child);
      }
    }
  }

  // Sweep 2: every kept node to its final parent and place, the fewest moves.
  void place(const Node& node) {
    auto& here = children_[node.id];
    std::vector<std::string_view> wanted;  // the children that end up in place, in final order
    for (const auto& child : node.children) {
      if (kept(child.id) || candidates_.contains(child.id)) wanted.push_back(child.id);
    }
    if (here != wanted) reorder(node.id, here, wanted);
    for (const auto& child : node.children) {
      if (kept(child.id)) place(child);
    }
  }

  void reorder(std::string_view parent, std::vector<std::string_view>& here,
               const std::vector<std::string_view>& wanted) {
    std::unordered_map<std::string_view, std::size_t> at;
    for (std::size_t i = 0; i < here.size(); ++i) at.emplace(here[i], i);
    std::vector<std::size_t> positions;
    std::vector<std::string_view> present;
    for (std::string_view id : wanted) {
      if (auto it = at.find(id); it != at.end()) {
        positions.push_back(it->second);
        present.push_back(id);
      }
    }
    std::unordered_set<std::string_view> stay;
    for (std::size_t i : longest_increasing(positions)) stay.insert(present[i]);
    std::string_view previous;
    for (std::string_view id : wanted) {
      if (!stay.contains(id)) {
        auto& from = children_[parent_[id]];
        from.erase(from.begin() + static_cast<std::ptrdiff_t>(position(from, id)));
        const std::size_t index = previous.empty() ? 0 : position(here, previous) + 1;
        here.insert(here.begin() + static_cast<std::ptrdiff_t>(index), id);
        parent_[id] = parent;
        Op op;
        op.kind = Op::Kind::move;
        op.id = std::string(id);
        op.parent = std::string(parent);
        op.index = index;
        patch_.push_back(std::move(op));
      }
      previous = id;
    }
  }

  // The current subtree of `id` (below it) holds an id that is created outside the new
  // subtree of `id`: replacing it in place would, at some point, hold that id twice.
  bool clashes(std::string_view root, std::string_view id) const {
    for (std::string_view child : children_.at(id)) {
      if (auto it = new_.find(child); it != new_.end()) {
        std::string_view up = it->second.parent;
        while (!up.empty() && up != root && !kept(up)) up = new_.at(up).parent;
        if (up != root) return true;
      }
      if (clashes(root, child)) return true;
    }
    return false;
  }

  // Sweep 3: what is left of the old tree that does not stay.
  void remove_destroyed() {
    for (std::string_view id : candidates_) {
      if (clashes(id, id)) fallback_.insert(id);
    }
    for (std::string_view parent : order_) {
      const auto& current = children_[parent];
      if (std::all_of(current.begin(), current.end(), [&](auto c) { return in_place(c); })) {
        continue;
      }
      const auto list = current;  // a copy: emit_remove edits it
      for (std::string_view child : list) {
        if (!in_place(child)) emit_remove(child);
      }
    }
  }

  // Sweep 4: created nodes, each with its whole new subtree.
  void create() {
    for (std::string_view parent : order_) {
      const Node& node = *new_.at(parent).node;
      for (std::size_t i = 0; i < node.children.size(); ++i) {
        const Node& child = node.children[i];
        if (kept(child.id)) continue;
        Op op;
        op.node = child;
        if (in_place(child.id)) {
          op.kind = Op::Kind::replace;
          op.id = child.id;
        } else {
          // The children before it are all in place by now: it is child number i.
          op.kind = Op::Kind::insert;
          op.parent = node.id;
          op.index = i;
        }
        patch_.push_back(std::move(op));
      }
    }
  }

  const Node& before_;
  const Node& after_;
  Index old_;
  Index new_;
  // The tree as the ops so far left it (ids only): children lists and parents.
  std::unordered_map<std::string_view, std::vector<std::string_view>> children_;
  std::unordered_map<std::string_view, std::string_view> parent_;
  std::unordered_set<std::string_view> kept_;
  std::vector<std::string_view> order_;
  std::unordered_set<std::string_view> candidates_;
  std::unordered_set<std::string_view> fallback_;
  Patch patch_;
};

}  // namespace

Patch diff(const Node& before, const Node& after) {
  if (before.id != after.id || before.type != after.type) {
    Op op;
    op.kind = Op::Kind::replace;
    op.id = before.id;
    op.node = after;
    return {std::move(op)};
  }
  return Differ(before, after, count(before), count(after)).run();
}

}  // namespace symphony::ui
