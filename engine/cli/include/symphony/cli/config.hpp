#pragma once
// The host's configuration: one TOML file that names the bus, the extensions to run (manifest
// files and/or inline [[extension]] tables, which take the manifest's fields), where logs go,
// default limits and the supervisor's timings. Parsed with toml++; every key is checked and an
// unknown one is refused, so a typo never falls back to a default. A refusal names the key by
// its path ("supervisor.stop_grace_ms", "extension[1].restart.factor", "manifests[0]").
//
// Found by find_config() in this order (the first that exists wins): the --config flag, the
// SYMPHONY_CONFIG environment variable, ./symphony.toml, $XDG_CONFIG_HOME/symphony/symphony.toml
// (else ~/.config/symphony/symphony.toml), /etc/symphony/symphony.toml.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "symphony/supervisor/manifest.hpp"
#include "symphony/supervisor/supervisor.hpp"

namespace symphony::cli {

inline constexpr const char* kEnvConfig = "SYMPHONY_CONFIG";
inline constexpr const char* kEnvBus = "SYMPHONY_BUS";
inline constexpr const char* kConfigFileName = "symphony.toml";

struct HostConfig {
  std::string bus = "default";
  std::filesystem::path log_dir;  // empty: <runtime dir of the bus>/logs
  std::uint64_t log_max_bytes = 1 << 20;
  std::string log_level = "info";  // the host's own log (spdlog level name)
  // Defaults for every extension whose manifest sets no limit of its own (0: none).
  supervisor::ResourceLimits default_limits;
  std::chrono::milliseconds stop_grace{2000};
  std::chrono::milliseconds kill_grace{500};
  std::chrono::milliseconds heartbeat{250};
  std::chrono::milliseconds unresponsive_after{1500};
  supervisor::CgroupUse cgroups = supervisor::CgroupUse::automatic;
  // Every extension, in file order: the manifest files first, then the inline tables. Default
  // limits already applied.
  std::vector<supervisor::Manifest> extensions;
  std::filesystem::path source;  // the config file, if it came from one

  supervisor::SupervisorOptions supervisor_options() const;
};

// Why a config was refused: the key's path and the reason.
struct ConfigError {
  std::string source;  // the file, or "<string>"
  std::string key;     // "supervisor.kill_grace_ms", "extension[0].id"; empty: the document
  std::string reason;

  // "config 'a.toml': key 'extension[0].restart.factor': must be at least 1 ... (got 0.5)"
  std::string message() const;
};

template <typename T>
using ConfigResult = tl::expected<T, ConfigError>;

// `base_dir` resolves relative paths (manifests, inline executables, log_dir): the config file's
// folder when loaded from a file, else the working directory.
ConfigResult<HostConfig> parse_config(std::string_view toml, const std::filesystem::path& base_dir,
                                      std::string_view source = "<string>");
ConfigResult<HostConfig> load_config(const std::filesystem::path& file);

// Where a config was found and by which rule ("--config", "SYMPHONY_CONFIG", "./symphony.toml",
// "user config dir", "/etc").
struct FoundConfig {
  std::filesystem::path path;
  std::string rule;
};

// The search, in order. An explicit flag or SYMPHONY_CONFIG naming a file that does not exist is
// an error (the user asked for it); the other places are skipped when absent. nullopt: none.
ConfigResult<std::optional<FoundConfig>> find_config(const std::optional<std::string>& flag);

// The places searched, in order, as they resolve here (for --help and error messages).
std::vector<std::string> config_search_order();

// A commented config with every key at its default; `bus` fills in the bus name.
std::string default_config_text(std::string_view bus = "default");

}  // namespace symphony::cli
