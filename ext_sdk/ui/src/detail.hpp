#pragma once
// Shared by tree.cpp, diff.cpp and apply.cpp: the per-node rules and error helpers.

#include <optional>
#include <string>
#include <string_view>

#include "symphony/ui/tree.hpp"

namespace symphony::ui {
using engine::Result;
}

namespace symphony::ui::detail {

inline constexpr std::size_t kMaxIdBytes = 128;
inline constexpr std::size_t kMaxTypeBytes = 64;
inline constexpr std::size_t kMaxEventBytes = 32;

tl::unexpected<engine::Error> refuse(std::string message);
// 'text', cut to 64 bytes and with control characters escaped: safe in a log line.
std::string shown(std::string_view text);
bool valid_utf8(std::string_view text);
std::optional<std::string> id_problem(std::string_view id);
std::optional<std::string> events_problem(const std::vector<std::string>& events,
                                          const Limits& limits);
// The node's own rules (id, type, props an object, events), not its children's.
std::optional<std::string> own_problem(const Node& node, const Limits& limits);
// The subtree on its own: depth counted from `root_depth`, ids unique within it.
engine::Result<void> validate_subtree(const Node& root, const Limits& limits,
                                      std::size_t root_depth);
// Compact JSON text; invalid UTF-8 in a string is replaced rather than thrown.
std::string dump(const Value& value);

}  // namespace symphony::ui::detail
