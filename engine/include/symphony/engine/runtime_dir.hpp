#pragma once
// The per-bus runtime directory: where a bus keeps files that are not shared memory (notify
// FIFOs, control-plane sockets). $XDG_RUNTIME_DIR/symphony/<bus> when XDG_RUNTIME_DIR is set,
// else /tmp/symphony-<uid>/<bus>. Created with mode 0700; refused if it exists but is not a
// directory of ours with that mode (another user could otherwise plant files in it).

#include <filesystem>
#include <string_view>

#include "symphony/engine/error.hpp"

namespace symphony::engine {

// Letters, digits, '-' and '_', 1-40 characters; Errc::invalid_argument otherwise.
Result<void> check_bus_name(std::string_view bus);

// Where the bus's runtime directory is, without creating or checking anything (a client asking
// whether a host runs must not leave an empty directory behind).
Result<std::filesystem::path> runtime_dir_path(std::string_view bus,
                                               const std::filesystem::path& override_dir = {});

// `override_dir` non-empty: that directory (created 0700 if missing) instead of the default.
Result<std::filesystem::path> ensure_runtime_dir(std::string_view bus,
                                                 const std::filesystem::path& override_dir = {});

}  // namespace symphony::engine
