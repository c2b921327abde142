// The patch applier: all or nothing, every operation checked against the tree as the previous
// ones left it (ids unique, bounds held after each one), the result validated once more.

#include <unordered_map>

#include "detail.hpp"

namespace symphony::ui {

namespace {

using detail::refuse;
using detail::shown;

std::size_t count_nodes(const Node& node) {
  std::size_t n = 1;
  for (const auto& child : node.children) n += count_nodes(child);
  return n;
}

std::size_t height(const Node& node) {
  std::size_t h = 0;
  for (const auto& child : node.children) h = std::max(h, height(child));
  return h + 1;
}

class Applier {
 public:
  Applier(Node& root, const Limits& limits) : root_(root), limits_(limits) { enter(root_, {}); }

  Result<void> apply(const Op& op) {
    switch (op.kind) {
      case Op::Kind::props:
        return props(op);
      case Op::Kind::events:
        return events(op);
      case Op::Kind::insert:
        return insert(op);
      case Op::Kind::remove:
        return remove(op);
      case Op::Kind::move:
        return move(op);
      case Op::Kind::replace:
        return replace(op);
    }
    return refuse("unknown operation");
  }

 private:
  // Registers the ids of a subtree; false (and the id) on a duplicate.
  std::optional<std::string> enter(const Node& node, const std::string& parent) {
    if (!parent_.emplace(node.id, parent).second) return node.id;
    ++count_;
    for (const auto& child : node.children) {
      if (auto dup = enter(child, node.id)) return dup;
    }
    return std::nullopt;
  }
  void leave(const Node& node) {
    parent_.erase(node.id);
    --count_;
    for (const auto& child : node.children) leave(child);
  }

  bool known(const std::string& id) const { return parent_.contains(id); }

  // The node's ancestors' ids from the root down to it, then found child by child.
  Node* find(const std::string& id, std::size_t* depth = nullptr) {
    std::vector<const std::string*> chain;
    for (auto it = parent_.find(id); it != parent_.end(); it = parent_.find(it->second)) {
      chain.push_back(&it->first);
      if (it->second.empty()) break;
    }
    if (chain.empty()) return nullptr;
    Node* at = &root_;
    for (std::size_t k = chain.size() - 1; k-- > 0;) {
      Node* next = nullptr;
      for (auto& child : at->children) {
        if (child.id == *chain[k]) {
          next = &child;
          break;
        }
      }
      if (next == nullptr) return nullptr;
      at = next;
    }
    if (depth != nullptr) *depth = chain.size();
    return at;
  }

  Result<Node*> need(const std::string& id, std::size_t* depth = nullptr) {
    Node* node = find(id, depth);
    if (node == nullptr) return refuse("unknown node " + shown(id));
    return node;
  }

  Result<void> check_payload(const Op& op, std::size_t depth) {
    if (!op.node) return refuse("no node given");
    if (auto ok = detail::validate_subtree(*op.node, limits_, depth); !ok) {
      return tl::unexpected(ok.error());
    }
    return {};
  }

  Result<void> props(const Op& op) {
    auto node = need(op.id);
    if (!node) return tl::unexpected(node.error());
    if (!op.set.is_object()) return refuse("'set' is not an object");
    for (auto it = op.set.begin(); it != op.set.end(); ++it) (*node)->props[it.key()] = it.value();
    for (const auto& key : op.unset) (*node)->props.erase(key);
    return {};
  }

  Result<void> events(const Op& op) {
    auto node = need(op.id);
    if (!node) return tl::unexpected(node.error());
    if (auto p = detail::events_problem(op.events, limits_)) return refuse(*p);
    (*node)->events = op.events;
    return {};
  }

  Result<void> insert(const Op& op) {
    std::size_t depth = 0;
    auto parent = need(op.parent, &depth);
    if (!parent) return tl::unexpected(parent.error());
    if (op.index > (*parent)->children.size()) {
      return refuse("index " + std::to_string(op.index) + " is out of range (node " +
                    shown(op.parent) + " has " + std::to_string((*parent)->children.size()) +
                    " children)");
    }
    if (auto ok = check_payload(op, depth + 1); !ok) return ok;
    const std::size_t added = count_nodes(*op.node);
    if (count_ + added > limits_.max_nodes) {
      return refuse("the tree would have " + std::to_string(count_ + added) + " nodes (at most " +
                    std::to_string(limits_.max_nodes) + ")");
    }
    if (auto dup = enter(*op.node, op.parent)) {
      return refuse("node " + shown(*dup) + " is already in the tree");
    }
    (*parent)->children.insert((*parent)->children.begin() + static_cast<std::ptrdiff_t>(op.index),
                               *op.node);
    return {};
  }

  // Takes the node out of its parent's children (the caller puts it back or drops it).
  Result<Node> detach(const std::string& id) {
    const auto it = parent_.find(id);
    if (it == parent_.end()) return refuse("unknown node " + shown(id));
    if (it->second.empty()) return refuse("the root cannot be removed or moved");
    Node* parent = find(it->second);
    if (parent == nullptr) return refuse("unknown node " + shown(id));
    auto& list = parent->children;
    for (auto child = list.begin(); child != list.end(); ++child) {
      if (child->id == id) {
        Node node = std::move(*child);
        list.erase(child);
        return node;
      }
    }
    return refuse("unknown node " + shown(id));
  }

  Result<void> remove(const Op& op) {
    auto node = detach(op.id);
    if (!node) return tl::unexpected(node.error());
    leave(*node);
    return {};
  }

  Result<void> move(const Op& op) {
    if (!known(op.id)) return refuse("unknown node " + shown(op.id));
    if (!known(op.parent)) return refuse("unknown parent " + shown(op.parent));
    for (std::string up = op.parent; !up.empty(); up = parent_.at(up)) {
      if (up == op.id) {
        return refuse("the new parent " + shown(op.parent) + " is inside the moved subtree");
      }
    }
    auto node = detach(op.id);
    if (!node) return tl::unexpected(node.error());
    std::size_t depth = 0;
    Node* parent = find(op.parent, &depth);
    if (op.index > parent->children.size()) {
      return refuse("index " + std::to_string(op.index) + " is out of range (node " +
                    shown(op.parent) + " has " + std::to_string(parent->children.size()) +
                    " children after the detach)");
    }
    if (depth + height(*node) > limits_.max_depth) {
      return refuse("the moved subtree would reach depth " + std::to_string(depth + height(*node)) +
                    " (at most " + std::to_string(limits_.max_depth) + ")");
    }
    parent_[op.id] = op.parent;
    parent->children.insert(parent->children.begin() + static_cast<std::ptrdiff_t>(op.index),
                            std::move(*node));
    return {};
  }

  Result<void> replace(const Op& op) {
    std::size_t depth = 0;
    auto node = need(op.id, &depth);
    if (!node) return tl::unexpected(node.error());
    if (auto ok = check_payload(op, depth); !ok) return ok;
    const std::string parent = parent_.at(op.id);
    const std::size_t removed = count_nodes(**node);
    const std::size_t added = count_nodes(*op.node);
    if (count_ - removed + added > limits_.max_nodes) {
      return refuse("the tree would have " + std::to_string(count_ - removed + added) +
                    " nodes (at most " + std::to_string(limits_.max_nodes) + ")");
    }
    leave(**node);
    if (auto dup = enter(*op.node, parent)) {
      return refuse("node " + shown(*dup) + " is already in the tree");
    }
    **node = *op.node;
    return {};
  }

  Node& root_;
  const Limits& limits_;
  std::unordered_map<std::string, std::string> parent_;  // the root's parent is ""
  std::size_t count_ = 0;
};

}  // namespace

Result<void> apply(Node& root, const Patch& patch, const Limits& limits) {
  Node work = root;
  Applier applier(work, limits);
  for (std::size_t i = 0; i < patch.size(); ++i) {
    const Op& op = patch[i];
    if (auto ok = applier.apply(op); !ok) {
      const std::string& target = op.kind == Op::Kind::insert ? op.parent : op.id;
      return refuse("op #" + std::to_string(i) + " (" + std::string(to_string(op.kind)) + " " +
                    shown(target) + "): " + ok.error().message);
    }
  }
  if (auto ok = validate(work, limits); !ok) {
    return refuse("the patched tree: " + ok.error().message);
  }
  root = std::move(work);
  return {};
}

}  // namespace symphony::ui
