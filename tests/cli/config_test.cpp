// The host config (TOML): defaults, every refusal naming its key, manifests and inline
// extensions, default limits, the search order.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "symphony/cli/config.hpp"

#ifndef SYMPHONY_TEST_EXTENSION
#error "SYMPHONY_TEST_EXTENSION must name the test extension's executable"
#endif

namespace symphony::test {
namespace {

namespace fs = std::filesystem;
using cli::ConfigError;
using cli::HostConfig;

// Sets an environment variable for the scope of a test, restoring it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class CliConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("symphony-cli-config-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path write(const std::string& name, const std::string& text) {
    const fs::path file = dir_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
    return file;
  }

  static std::string extension_table(const std::string& id, const std::string& extra = "") {
    return "[[extension]]\nid = \"" + id + "\"\nversion = \"1.0\"\nexecutable = \"" +
           std::string(SYMPHONY_TEST_EXTENSION) + "\"\n" + extra;
  }

  ConfigError refused(const std::string& toml) {
    auto config = cli::parse_config(toml, dir_, "t.toml");
    EXPECT_FALSE(config) << "accepted:\n" << toml;
    return config ? ConfigError{} : config.error();
  }

  fs::path dir_;
};

TEST_F(CliConfigTest, GeneratedDefaultParsesToTheDefaults) {
  auto config = cli::parse_config(cli::default_config_text("plant"), dir_, "gen.toml");
  ASSERT_TRUE(config) << config.error().message();
  const HostConfig defaults;
  EXPECT_EQ(config->bus, "plant");
  EXPECT_TRUE(config->extensions.empty());
  EXPECT_TRUE(config->log_dir.empty());
  EXPECT_EQ(config->log_max_bytes, defaults.log_max_bytes);
  EXPECT_EQ(config->stop_grace, defaults.stop_grace);
  EXPECT_EQ(config->kill_grace, defaults.kill_grace);
  EXPECT_EQ(config->heartbeat, defaults.heartbeat);
  EXPECT_EQ(config->unresponsive_after, defaults.unresponsive_after);
  EXPECT_EQ(config->default_limits.memory_bytes, 0u);
  // An empty document is a valid config too.
  auto empty = cli::parse_config("", dir_);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->bus, "default");
}

TEST_F(CliConfigTest, EveryRefusalNamesItsKey) {
  EXPECT_EQ(refused("bsu = \"x\"\n").key, "bsu");
  EXPECT_EQ(refused("bus = \"no spaces\"\n").key, "bus");
  EXPECT_EQ(refused("bus = 3\n").key, "bus");
  EXPECT_EQ(refused("[supervisor]\nkill_grace_ms = \"soon\"\n").key, "supervisor.kill_grace_ms");
  EXPECT_EQ(refused("[supervisor]\nstop_grace = 10\n").key, "supervisor.stop_grace");
  EXPECT_EQ(refused("[supervisor]\nheartbeat_ms = 500\nunresponsive_ms = 400\n").key,
            "supervisor.unresponsive_ms");
  EXPECT_EQ(refused("[supervisor]\ncgroups = \"maybe\"\n").key, "supervisor.cgroups");
  EXPECT_EQ(refused("[limits]\nmemory_mib = 2\n").key, "limits.memory_mib");
  EXPECT_EQ(refused("[limits]\ncpu_cores = 5000\n").key, "limits.cpu_cores");
  EXPECT_EQ(refused("log_level = \"loud\"\n").key, "log_level");
  EXPECT_EQ(refused("manifests = \"a.json\"\n").key, "manifests");
  const ConfigError e = refused("[supervisor]\nkill_grace_ms = 1\n");
  EXPECT_EQ(e.message(),
            "config 't.toml': key 'supervisor.kill_grace_ms': must be at least 10 and at most "
            "600000 (got 1)");
}

TEST_F(CliConfigTest, BadTomlSaysWhere) {
  const ConfigError e = refused("bus = \"a\"\n[supervisor\n");
  EXPECT_TRUE(e.key.empty());
  EXPECT_NE(e.reason.find("line 2"), std::string::npos) << e.reason;
}

TEST_F(CliConfigTest, InlineExtensionsAreManifestsAndTheirErrorsNameTheField) {
  auto config = cli::parse_config(
      extension_table("one", "args = [\"--print-lines\", \"2\"]\nlimits = { memory_mib = 64 }\n") +
          extension_table("two", "restart = { policy = \"backoff\", initial_ms = 50 }\n"),
      dir_, "t.toml");
  ASSERT_TRUE(config) << config.error().message();
  ASSERT_EQ(config->extensions.size(), 2u);
  EXPECT_EQ(config->extensions[0].id, "one");
  EXPECT_EQ(config->extensions[0].args, (std::vector<std::string>{"--print-lines", "2"}));
  EXPECT_EQ(config->extensions[0].limits.memory_bytes, 64u << 20);
  EXPECT_EQ(config->extensions[1].restart.kind, supervisor::RestartKind::backoff);
  EXPECT_EQ(config->extensions[1].restart.backoff.initial, std::chrono::milliseconds(50));

  const ConfigError e =
      refused(extension_table("ok") + extension_table("bad",
                                                      "restart = { policy = \"backoff\", "
                                                      "factor = 0.5 }\n"));
  EXPECT_EQ(e.key, "extension[1].restart.factor") << e.message();
  EXPECT_EQ(refused(extension_table("x", "colour = \"red\"\n")).key, "extension[0].colour");
  EXPECT_EQ(refused(extension_table("a") + extension_table("a")).key, "extension[1].id");
}

TEST_F(CliConfigTest, ManifestFilesResolveAgainstTheConfigFolderAndTheirErrorsNameTheFile) {
  write("ext/good.json", std::string(R"({"id":"good","version":"2.0","executable":")") +
                             SYMPHONY_TEST_EXTENSION + "\"}");
  write("ext/bad.json", std::string(R"({"id":"bad","version":"2.0","executable":")") +
                            SYMPHONY_TEST_EXTENSION + R"(","instances":0})");
  const fs::path ok =
      write("ok.toml", "manifests = [\"ext/good.json\"]\n" + extension_table("inline"));
  auto config = cli::load_config(ok);
  ASSERT_TRUE(config) << config.error().message();
  ASSERT_EQ(config->extensions.size(), 2u);
  EXPECT_EQ(config->extensions[0].id, "good");
  EXPECT_EQ(config->extensions[1].id, "inline");

  const fs::path bad = write("bad.toml", "manifests = [\"ext/good.json\", \"ext/bad.json\"]\n");
  auto refusal = cli::load_config(bad);
  ASSERT_FALSE(refusal);
  EXPECT_EQ(refusal.error().key, "manifests[1]");
  EXPECT_NE(refusal.error().reason.find("field 'instances'"), std::string::npos)
      << refusal.error().message();
  const fs::path missing = write("missing.toml", "manifests = [\"ext/none.json\"]\n");
  EXPECT_EQ(cli::load_config(missing).error().key, "manifests[0]");
  EXPECT_FALSE(cli::load_config(dir_ / "nothing-here.toml"));
}

TEST_F(CliConfigTest, DefaultLimitsApplyWhereTheManifestSetsNone) {
  auto config =
      cli::parse_config("[limits]\nmemory_mib = 128\ncpu_cores = 0.5\n" + extension_table("plain") +
                            extension_table("own", "limits = { memory_mib = 32 }\n"),
                        dir_);
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->extensions[0].limits.memory_bytes, 128u << 20);
  EXPECT_EQ(config->extensions[0].limits.cpu_cores, 0.5);
  EXPECT_EQ(config->extensions[1].limits.memory_bytes, 32u << 20);
  EXPECT_EQ(config->extensions[1].limits.cpu_cores, 0.5);
}

TEST_F(CliConfigTest, SearchOrderFlagThenEnvThenWorkingDirThenUserDir) {
  const fs::path flag = write("flag.toml", "");
  const fs::path from_env = write("env.toml", "");
  write("xdg/symphony/symphony.toml", "");
  const fs::path cwd = fs::current_path();
  fs::create_directories(dir_ / "work");
  fs::current_path(dir_ / "work");
  ScopedEnv xdg("XDG_CONFIG_HOME", (dir_ / "xdg").string());
  {
    ScopedEnv env(cli::kEnvConfig, from_env.string());
    auto found = cli::find_config(flag.string());
    ASSERT_TRUE(found && *found);
    EXPECT_EQ((*found)->rule, "--config");
    found = cli::find_config(std::nullopt);
    ASSERT_TRUE(found && *found);
    EXPECT_EQ((*found)->path, from_env);
    // Asked for by name but missing: an error, not the next place.
    ScopedEnv gone(cli::kEnvConfig, (dir_ / "gone.toml").string());
    EXPECT_FALSE(cli::find_config(std::nullopt));
    EXPECT_FALSE(cli::find_config((dir_ / "gone.toml").string()));
  }
  ScopedEnv no_env(cli::kEnvConfig, std::nullopt);
  auto found = cli::find_config(std::nullopt);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->rule, "user config dir");
  std::ofstream("symphony.toml") << "";
  found = cli::find_config(std::nullopt);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->rule, "./symphony.toml");
  fs::current_path(cwd);
  const auto order = cli::config_search_order();
  ASSERT_EQ(order.size(), 5u);
  EXPECT_EQ(order[3], (dir_ / "xdg" / "symphony" / "symphony.toml").string());
  EXPECT_EQ(order[4], "/etc/symphony/symphony.toml");
}

}  // namespace
}  // namespace symphony::test
