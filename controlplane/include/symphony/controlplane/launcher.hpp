#pragma once
// A small launcher for tests and tools (the supervisor replaces it): starts an extension's
// executable with its registration in the environment (SYMPHONY_* variables, see
// extension.hpp), in its own process group, dying with the launcher's thread (PDEATHSIG), with
// a clean signal mask. Reaps only its own pid: never waitpid(-1).

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "symphony/controlplane/host.hpp"
#include "symphony/engine/error.hpp"

namespace symphony::controlplane {

struct ExitStatus {
  bool exited = false;  // by exit(): then `code`
  int code = -1;
  int signal = 0;       // killed by this signal
};

class LaunchedExtension {
 public:
  LaunchedExtension(LaunchedExtension&& other) noexcept;
  LaunchedExtension& operator=(LaunchedExtension&&) = delete;
  ~LaunchedExtension();  // SIGTERM, then SIGKILL after 2 s, and reaped

  pid_t pid() const noexcept { return pid_; }
  // nullopt if still running after `timeout`.
  std::optional<ExitStatus> wait(std::chrono::milliseconds timeout);
  void terminate(std::chrono::milliseconds grace = std::chrono::seconds(2));

 private:
  friend engine::Result<LaunchedExtension> launch(const std::filesystem::path&,
                                                  const std::vector<std::string>&,
                                                  const Registration&, const std::string&,
                                                  const std::string&);
  explicit LaunchedExtension(pid_t pid) noexcept : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
};

engine::Result<LaunchedExtension> launch(const std::filesystem::path& executable,
                                         const std::vector<std::string>& args,
                                         const Registration& registration, const std::string& bus,
                                         const std::string& control_endpoint);

}  // namespace symphony::controlplane
