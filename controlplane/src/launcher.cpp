#include "symphony/controlplane/launcher.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "symphony/controlplane/extension.hpp"

extern char** environ;

namespace symphony::controlplane {

LaunchedExtension::LaunchedExtension(LaunchedExtension&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), status_(other.status_) {}

LaunchedExtension::~LaunchedExtension() {
  if (pid_ > 0 && !status_) terminate();
}

std::optional<ExitStatus> LaunchedExtension::wait(std::chrono::milliseconds timeout) {
  if (status_ || pid_ <= 0) return status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int raw = 0;
    const pid_t r = ::waitpid(pid_, &raw, WNOHANG);
    if (r == pid_) {
      ExitStatus status;
      status.exited = WIFEXITED(raw);
      status.code = status.exited ? WEXITSTATUS(raw) : -1;
      status.signal = WIFSIGNALED(raw) ? WTERMSIG(raw) : 0;
      status_ = status;
      return status_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void LaunchedExtension::terminate(std::chrono::milliseconds grace) {
  if (pid_ <= 0 || status_) return;
  ::kill(pid_, SIGTERM);
  if (wait(grace)) return;
  ::kill(pid_, SIGKILL);
  wait(std::chrono::seconds(10));
}

engine::Result<LaunchedExtension> launch(const std::filesystem::path& executable,
                                         const std::vector<std::string>& args,
                                         const Registration& registration, const std::string& bus,
                                         const std::string& control_endpoint) {
  if (::access(executable.c_str(), X_OK) != 0) {
    return tl::unexpected(engine::Error::from_errno("extension executable " + executable.string(),
                                                    errno));
  }
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "SYMPHONY_", 9) != 0) env_strings.emplace_back(*e);
  }
  env_strings.push_back(std::string(kEnvBus) + "=" + bus);
  env_strings.push_back(std::string(kEnvExtension) + "=" + registration.extension);
  env_strings.push_back(std::string(kEnvInstance) + "=" + std::to_string(registration.instance));
  env_strings.push_back(std::string(kEnvGeneration) + "=" +
                        std::to_string(registration.generation));
  env_strings.push_back(std::string(kEnvToken) + "=" + registration.token);
  env_strings.push_back(std::string(kEnvControl) + "=" + control_endpoint);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings{executable.string()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  sigset_t empty;
  sigemptyset(&empty);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) return tl::unexpected(engine::Error::from_errno("fork", errno));
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return LaunchedExtension(pid);
}

}  // namespace symphony::controlplane
