#include "symphony/cli/config.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "symphony/engine/runtime_dir.hpp"

namespace symphony::cli {

namespace fs = std::filesystem;
using supervisor::Manifest;

std::string ConfigError::message() const {
  std::string text = "config '" + source + "'";
  if (!key.empty()) text += ": key '" + key + "'";
  return text + ": " + reason;
}

supervisor::SupervisorOptions HostConfig::supervisor_options() const {
  supervisor::SupervisorOptions options;
  options.host.bus = bus;
  options.host.heartbeat_interval = heartbeat;
  options.host.unresponsive_after = unresponsive_after;
  options.log_dir = log_dir;
  options.log_max_bytes = log_max_bytes;
  options.stop_grace = stop_grace;
  options.kill_grace = kill_grace;
  options.cgroups = cgroups;
  return options;
}

namespace {

class Parser {
 public:
  Parser(const fs::path& base_dir, std::string_view source) : base_(base_dir), source_(source) {}

  ConfigResult<HostConfig> run(std::string_view text) {
    toml::table root;
    try {
      root = toml::parse(text, source_);
    } catch (const toml::parse_error& e) {
      const auto& where = e.source().begin;
      return fail("", "not valid TOML at line " + std::to_string(where.line) + ", column " +
                          std::to_string(where.column) + ": " + std::string(e.description()));
    }
    HostConfig config;
    config.source = source_ == "<string>" ? fs::path{} : fs::path(source_);
    if (auto r = known_keys(root, "",
                            {"bus", "log_dir", "log_max_bytes", "log_level", "manifests", "limits",
                             "supervisor", "extension"});
        !r) {
      return tl::unexpected(r.error());
    }
    if (const auto* node = root.get("bus")) {
      auto bus = string(*node, "bus");
      if (!bus) return tl::unexpected(bus.error());
      if (auto ok = engine::check_bus_name(*bus); !ok) return fail("bus", ok.error().message);
      config.bus = *bus;
    }
    if (const auto* node = root.get("log_dir")) {
      auto dir = string(*node, "log_dir");
      if (!dir) return tl::unexpected(dir.error());
      if (!dir->empty()) config.log_dir = resolve(*dir);
    }
    if (auto n = integer(root, "log_max_bytes", "log_max_bytes", 4096, std::int64_t{1} << 40); !n) {
      return tl::unexpected(n.error());
    } else if (*n) {
      config.log_max_bytes = static_cast<std::uint64_t>(**n);
    }
    if (const auto* node = root.get("log_level")) {
      auto level = string(*node, "log_level");
      if (!level) return tl::unexpected(level.error());
      static const std::set<std::string> levels = {"trace", "debug",    "info", "warn",
                                                   "error", "critical", "off"};
      if (!levels.contains(*level)) {
        return fail("log_level",
                    "must be one of trace, debug, info, warn, error, critical, off "
                    "(got '" +
                        *level + "')");
      }
      config.log_level = *level;
    }
    if (const auto* node = root.get("limits")) {
      if (auto r = limits(*node, config); !r) return tl::unexpected(r.error());
    }
    if (const auto* node = root.get("supervisor")) {
      if (auto r = supervisor_table(*node, config); !r) return tl::unexpected(r.error());
    }
    if (const auto* node = root.get("manifests")) {
      const toml::array* list = node->as_array();
      if (list == nullptr) return fail("manifests", "must be an array of file names");
      for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string key = "manifests[" + std::to_string(i) + "]";
        const toml::node* item = list->get(i);
        if (item == nullptr) return fail(key, "missing");
        auto file = string(*item, key);
        if (!file) return tl::unexpected(file.error());
        auto manifest = supervisor::load_manifest(resolve(*file));
        if (!manifest) return fail(key, manifest.error().message());
        if (auto r = add(config, std::move(*manifest), key); !r) return tl::unexpected(r.error());
      }
    }
    if (const auto* node = root.get("extension")) {
      const toml::array* list = node->as_array();
      if (list == nullptr) return fail("extension", "must be an array of tables ([[extension]])");
      for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string key = "extension[" + std::to_string(i) + "]";
        const toml::node* item = list->get(i);
        const toml::table* table = item == nullptr ? nullptr : item->as_table();
        if (table == nullptr) return fail(key, "must be a table ([[extension]])");
        // The manifest's own parser checks every field: the table goes to it as JSON.
        std::ostringstream json;
        json << toml::json_formatter{*table};
        auto manifest = supervisor::parse_manifest(json.str(), base_, source_);
        if (!manifest) {
          const auto& e = manifest.error();
          return fail(e.field.empty() ? key : key + "." + e.field, e.reason);
        }
        if (auto r = add(config, std::move(*manifest), key + ".id"); !r) {
          return tl::unexpected(r.error());
        }
      }
    }
    return config;
  }

 private:
  tl::unexpected<ConfigError> fail(std::string key, std::string reason) const {
    return tl::unexpected(ConfigError{source_, std::move(key), std::move(reason)});
  }

  fs::path resolve(const std::string& path) const {
    const fs::path p(path);
    if (p.is_absolute() || base_.empty()) return p;
    return base_ / p;
  }

  static std::string join(const std::string& prefix, std::string_view key) {
    return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
  }

  ConfigResult<void> known_keys(const toml::table& table, const std::string& prefix,
                                std::initializer_list<std::string_view> allowed) const {
    for (const auto& [key, value] : table) {
      bool known = false;
      for (const auto name : allowed) known = known || key.str() == name;
      if (!known) {
        std::string list;
        for (const auto name : allowed) list += (list.empty() ? "" : ", ") + std::string(name);
        return fail(join(prefix, key.str()), "unknown key (known here: " + list + ")");
      }
    }
    return {};
  }

  ConfigResult<std::string> string(const toml::node& node, const std::string& key) const {
    if (const auto value = node.value<std::string>(); value && node.is_string()) return *value;
    return fail(key, "must be a string");
  }

  ConfigResult<std::optional<std::int64_t>> integer(const toml::table& table, std::string_view name,
                                                    const std::string& key, std::int64_t min,
                                                    std::int64_t max) const {
    const toml::node* node = table.get(name);
    if (node == nullptr) return std::optional<std::int64_t>{};
    if (!node->is_integer()) return fail(key, "must be an integer");
    const std::int64_t value = *node->value<std::int64_t>();
    if (value < min || value > max) {
      return fail(key, "must be at least " + std::to_string(min) + " and at most " +
                           std::to_string(max) + " (got " + std::to_string(value) + ")");
    }
    return std::optional<std::int64_t>{value};
  }

  ConfigResult<void> limits(const toml::node& node, HostConfig& config) const {
    const toml::table* table = node.as_table();
    if (table == nullptr) return fail("limits", "must be a table ([limits])");
    if (auto r = known_keys(*table, "limits", {"memory_mib", "cpu_cores"}); !r) return r;
    auto memory = integer(*table, "memory_mib", "limits.memory_mib", 0, 1 << 20);
    if (!memory) return tl::unexpected(memory.error());
    if (*memory && **memory != 0 && **memory < 4) {
      return fail("limits.memory_mib",
                  "must be 0 (none) or at least 4 (got " + std::to_string(**memory) + ")");
    }
    if (*memory) config.default_limits.memory_bytes = static_cast<std::uint64_t>(**memory) << 20;
    if (const toml::node* cpu = table->get("cpu_cores")) {
      if (!cpu->is_number()) return fail("limits.cpu_cores", "must be a number");
      const double cores = *cpu->value<double>();
      if (cores != 0 && (cores < 0.01 || cores > 1024)) {
        return fail("limits.cpu_cores",
                    "must be 0 (none) or 0.01-1024 (got " + std::to_string(cores) + ")");
      }
      config.default_limits.cpu_cores = cores;
    }
    return {};
  }

  ConfigResult<void> supervisor_table(const toml::node& node, HostConfig& config) const {
    const toml::table* table = node.as_table();
    if (table == nullptr) return fail("supervisor", "must be a table ([supervisor])");
    if (auto r = known_keys(
            *table, "supervisor",
            {"stop_grace_ms", "kill_grace_ms", "heartbeat_ms", "unresponsive_ms", "cgroups"});
        !r) {
      return r;
    }
    struct Field {
      const char* name;
      std::chrono::milliseconds* target;
      std::int64_t min, max;
    };
    const Field fields[] = {
        {"stop_grace_ms", &config.stop_grace, 10, 600'000},
        {"kill_grace_ms", &config.kill_grace, 10, 600'000},
        {"heartbeat_ms", &config.heartbeat, 10, 60'000},
        {"unresponsive_ms", &config.unresponsive_after, 50, 600'000},
    };
    for (const Field& f : fields) {
      auto value = integer(*table, f.name, join("supervisor", f.name), f.min, f.max);
      if (!value) return tl::unexpected(value.error());
      if (*value) *f.target = std::chrono::milliseconds(**value);
    }
    if (config.unresponsive_after <= config.heartbeat) {
      return fail(
          "supervisor.unresponsive_ms",
          "must be longer than heartbeat_ms (" + std::to_string(config.heartbeat.count()) + " ms)");
    }
    if (const toml::node* cgroups = table->get("cgroups")) {
      auto value = string(*cgroups, "supervisor.cgroups");
      if (!value) return tl::unexpected(value.error());
      if (*value == "auto") {
        config.cgroups = supervisor::CgroupUse::automatic;
      } else if (*value == "off") {
        config.cgroups = supervisor::CgroupUse::disabled;
      } else {
        return fail("supervisor.cgroups", "must be \"auto\" or \"off\" (got '" + *value + "')");
      }
    }
    return {};
  }

  ConfigResult<void> add(HostConfig& config, Manifest manifest, const std::string& key) const {
    for (const Manifest& other : config.extensions) {
      if (other.id == manifest.id) {
        return fail(key, "extension id '" + manifest.id + "' is already used (" +
                             (other.source.empty() ? std::string("an [[extension]] table")
                                                   : other.source.string()) +
                             ")");
      }
    }
    if (manifest.limits.memory_bytes == 0) {
      manifest.limits.memory_bytes = config.default_limits.memory_bytes;
    }
    if (manifest.limits.cpu_cores == 0) manifest.limits.cpu_cores = config.default_limits.cpu_cores;
    config.extensions.push_back(std::move(manifest));
    return {};
  }

  fs::path base_;
  std::string source_;
};

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

fs::path user_config_dir() {
  if (auto xdg = env("XDG_CONFIG_HOME")) return fs::path(*xdg);
  if (auto home = env("HOME")) return fs::path(*home) / ".config";
  return {};
}

}  // namespace

ConfigResult<HostConfig> parse_config(std::string_view toml, const fs::path& base_dir,
                                      std::string_view source) {
  return Parser(base_dir, source).run(toml);
}

ConfigResult<HostConfig> load_config(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return tl::unexpected(ConfigError{file.string(), "", "cannot be read (missing or no access)"});
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::error_code ec;
  fs::path absolute = fs::absolute(file, ec);
  if (ec) absolute = file;
  return parse_config(text.str(), absolute.parent_path(), file.string());
}

std::vector<std::string> config_search_order() {
  std::vector<std::string> order = {"--config FILE", std::string("$") + kEnvConfig,
                                    std::string("./") + kConfigFileName};
  const fs::path user = user_config_dir();
  order.push_back(user.empty() ? std::string("$XDG_CONFIG_HOME/symphony/") + kConfigFileName
                               : (user / "symphony" / kConfigFileName).string());
  order.push_back(std::string("/etc/symphony/") + kConfigFileName);
  return order;
}

ConfigResult<std::optional<FoundConfig>> find_config(const std::optional<std::string>& flag) {
  auto exists = [](const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);
  };
  if (flag) {
    if (!exists(*flag)) return tl::unexpected(ConfigError{*flag, "", "no such file (--config)"});
    return std::optional<FoundConfig>(FoundConfig{*flag, "--config"});
  }
  if (auto from_env = env(kEnvConfig)) {
    if (!exists(*from_env)) {
      return tl::unexpected(
          ConfigError{*from_env, "", std::string("no such file (") + kEnvConfig + ")"});
    }
    return std::optional<FoundConfig>(FoundConfig{*from_env, kEnvConfig});
  }
  if (exists(kConfigFileName)) {
    return std::optional<FoundConfig>(
        FoundConfig{fs::path(".") / kConfigFileName, std::string("./") + kConfigFileName});
  }
  if (const fs::path user = user_config_dir(); !user.empty()) {
    const fs::path file = user / "symphony" / kConfigFileName;
    if (exists(file)) return std::optional<FoundConfig>(FoundConfig{file, "user config dir"});
  }
  const fs::path etc = fs::path("/etc/symphony") / kConfigFileName;
  if (exists(etc)) return std::optional<FoundConfig>(FoundConfig{etc, "/etc"});
  return std::optional<FoundConfig>{};
}

std::string default_config_text(std::string_view bus) {
  std::string text = R"(# Symphony host configuration: what `symphony up` runs.
# Found in this order: --config FILE, $SYMPHONY_CONFIG, ./symphony.toml,
# $XDG_CONFIG_HOME/symphony/symphony.toml (or ~/.config/...), /etc/symphony/symphony.toml.
# Relative paths (manifests, executables, log_dir) resolve against this file's folder.
# Check it with: symphony config validate FILE

# The bus: 1-40 of [A-Za-z0-9_-]. Every process that opens this bus sees the same topics;
# the other verbs (symphony ext ..., topic ...) use it too unless given --bus.
bus = "@BUS@"

# Extension logs (stdout and stderr of every instance, rotated). Empty: <runtime dir>/logs.
log_dir = ""
# Per instance: the current log and its one rotated predecessor together.
log_max_bytes = 1048576
# The host's own log on stderr: trace, debug, info, warn, error, critical, off.
log_level = "info"

# Extension manifests (JSON files, one per extension; see engine/supervisor/README.md).
manifests = []

# Defaults for extensions whose manifest sets no limit of its own (0: none).
[limits]
memory_mib = 0
cpu_cores = 0.0

[supervisor]
stop_grace_ms = 2000     # stop: the stop command, SIGTERM half-way, SIGKILL at the end
kill_grace_ms = 500      # a hung instance: SIGTERM, then SIGKILL after this
heartbeat_ms = 250       # control-plane heartbeats
unresponsive_ms = 1500   # nothing heard this long: unresponsive (hung)
cgroups = "auto"         # "auto": cgroup v2, else v1, else rlimits; "off": rlimits only

# Extensions can also be written inline, with the manifest's fields:
# [[extension]]
# id = "thermo"
# version = "1.0.0"
# executable = "bin/thermo"
# args = ["--rate", "100"]
# limits = { memory_mib = 64 }
# restart = { policy = "backoff", initial_ms = 100, factor = 2, cap_ms = 30000 }
# topics = { publish = [{ name = "sensors/temp", type = "bytes" }] }
)";
  const auto at = text.find("@BUS@");
  text.replace(at, 5, bus);
  return text;
}

}  // namespace symphony::cli
