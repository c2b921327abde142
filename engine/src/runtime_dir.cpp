#include "symphony/engine/runtime_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>

namespace symphony::engine {
namespace {

// Creates `dir` 0700 if missing; checks it is a real directory, ours, not open to others.
Result<void> ensure_private_dir(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return tl::unexpected(Error::from_errno("mkdir " + dir.string(), errno));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    return tl::unexpected(Error::from_errno("lstat " + dir.string(), errno));
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 0077) != 0) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "runtime directory " + dir.string() +
                                    " is not a private directory of this user (want mode 0700, "
                                    "owner uid " +
                                    std::to_string(::geteuid()) + ", no symlink)"});
  }
  return {};
}

// $XDG_RUNTIME_DIR/symphony, else /tmp/symphony-<uid>.
std::filesystem::path default_base() {
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg == '/') {
    return std::filesystem::path(xdg) / "symphony";
  }
  return "/tmp/symphony-" + std::to_string(::geteuid());
}

}  // namespace

Result<void> check_bus_name(std::string_view bus) {
  const bool valid = !bus.empty() && bus.size() <= 40 &&
                     std::all_of(bus.begin(), bus.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '-' || c == '_';
                     });
  if (!valid) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "bus name '" + std::string(bus) +
                                    "' must be 1-40 letters, digits, '-' or '_'"});
  }
  return {};
}

Result<std::filesystem::path> runtime_dir_path(std::string_view bus,
                                               const std::filesystem::path& override_dir) {
  if (auto valid = check_bus_name(bus); !valid) return tl::unexpected(valid.error());
  if (!override_dir.empty()) return override_dir;
  return default_base() / std::string(bus);
}

Result<std::filesystem::path> ensure_runtime_dir(std::string_view bus,
                                                 const std::filesystem::path& override_dir) {
  auto dir = runtime_dir_path(bus, override_dir);
  if (!dir) return dir;
  if (override_dir.empty()) {
    if (auto made = ensure_private_dir(default_base()); !made) {
      return tl::unexpected(made.error());
    }
  }
  if (auto made = ensure_private_dir(*dir); !made) return tl::unexpected(made.error());
  return dir;
}

}  // namespace symphony::engine
