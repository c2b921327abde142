#include "run_roudi.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "roudi_lease.hpp"
#include "roudi_protocol.hpp"

namespace symphony::perf {
namespace {

namespace roudi = engine::roudi;
using Clock = std::chrono::steady_clock;

struct Pool {
  std::uint64_t size;  // chunk payload (iceoryx adds its 40-byte chunk header)
  std::uint32_t count;
};

// Ping-pong holds at most a few chunks per direction; throughput a queue of 4 (large payloads'
// depth) plus a loan and a taken sample. Every iceoryx process maps all of it (~770 MiB, only
// touched as used).
constexpr Pool kHarnessPools[] = {
    {128, 8192},
    {1024, 1024},
    {16 * 1024, 256},
    {128 * 1024, 64},
    {(1 << 20) + 4096, 16},
    {(std::uint64_t{16} << 20) + 4096, 8},
    {(std::uint64_t{64} << 20) + 4096, 8},
};

// iceoryx 2.0's built-in pools (MePooConfig::setDefaults), used by a RouDi started without a
// config file when /etc/iceoryx/roudi_config.toml does not exist.
constexpr std::uint64_t kIceoryxDefaultLargest = 4 << 20;
constexpr const char* kIceoryxDefaultConfig = "/etc/iceoryx/roudi_config.toml";

// How long RouDi takes to drop a dead app (its keep-alive timeout is ~1.5 s): before that, a
// SIGTERM makes iceoryx 2.0's RouDi abort (README in engine/src/iceoryx).
constexpr auto kDropDeadApps = std::chrono::milliseconds(2000);
constexpr auto kStartTimeout = std::chrono::seconds(20);
constexpr auto kStopTimeout = std::chrono::seconds(10);

std::string config_text() {
  std::string text =
      "# symphony-perf's RouDi pools (perf/harness/run_roudi.cpp): chunks up to 64 MiB.\n"
      "[general]\nversion = 1\n\n[[segment]]\n";
  for (const Pool& pool : kHarnessPools) {
    text += "\n[[segment.mempool]]\nsize = " + std::to_string(pool.size) +
            "\ncount = " + std::to_string(pool.count) + "\n";
  }
  return text;
}

// The largest `size = N` of a RouDi config file (TOML: one key per line); 0 if it has none or
// cannot be read.
std::uint64_t largest_pool_in(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  std::uint64_t largest = 0;
  while (std::getline(file, line)) {
    std::size_t at = line.find_first_not_of(" \t");
    if (at == std::string::npos || line.compare(at, 4, "size") != 0) continue;
    at = line.find_first_not_of(" \t", at + 4);
    if (at == std::string::npos || line[at] != '=') continue;
    at = line.find_first_not_of(" \t", at + 1);
    if (at == std::string::npos) continue;
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(line.data() + at, line.data() + line.size(), value);
    if (error == std::errc{} && end != line.data() + at) largest = std::max(largest, value);
  }
  return largest;
}

std::vector<std::string> command_line(long pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(file, arg, '\0')) args.push_back(arg);
  return args;
}

struct RunningRoudi {
  long pid = -1;
  std::string config;  // empty: none on its command line
};

// The iox-roudi process, if this user can see it.
std::optional<RunningRoudi> find_running_roudi() {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return std::nullopt;
  std::optional<RunningRoudi> found;
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    if (!std::getline(comm, name) || name != "iox-roudi") continue;
    RunningRoudi roudi;
    roudi.pid = pid;
    const auto args = command_line(pid);
    for (std::size_t i = 1; i < args.size(); ++i) {
      if ((args[i] == "-c" || args[i] == "--config-file") && i + 1 < args.size()) {
        roudi.config = args[i + 1];
      } else if (args[i].rfind("--config-file=", 0) == 0) {
        roudi.config = args[i].substr(std::strlen("--config-file="));
      }
    }
    found = roudi;
    break;
  }
  ::closedir(proc);
  return found;
}

std::string log_tail(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  std::string all = text.str();
  if (all.size() > 600) all = "..." + all.substr(all.size() - 600);
  return all;
}

// What an iceoryx app that _exit()s leaves in /tmp (symphony-rt-<pid>, .lock), for dead pids.
void remove_dead_runtime_files() {
  DIR* tmp = ::opendir(roudi::kSocketDir);
  if (tmp == nullptr) return;
  const std::string prefix = roudi::kRuntimeNamePrefix;
  std::vector<std::string> doomed;
  while (dirent* entry = ::readdir(tmp)) {
    const std::string name = entry->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && !roudi::pid_alive(pid)) doomed.push_back(std::string(roudi::kSocketDir) + name);
  }
  ::closedir(tmp);
  for (const std::string& path : doomed) ::unlink(path.c_str());
}

}  // namespace

RunRoudi& run_roudi() {
  static RunRoudi instance;
  return instance;
}

RunRoudi::~RunRoudi() {
  stop();
}

std::string RunRoudi::unsupported(std::uint64_t chunk_payload) {
  if (!decided_) decide();
  if (!unusable_.empty()) return unusable_;
  if (chunk_payload > largest_chunk_) {
    return "larger than the largest chunk (" + std::to_string(largest_chunk_) + " bytes) of " +
           which_ + "; stop that RouDi to let symphony-perf start its own (64 MiB chunks)";
  }
  return {};
}

void RunRoudi::decide() {
  decided_ = true;
  const roudi::RoudiProbe probe = roudi::probe_roudi();
  if (probe == roudi::RoudiProbe::no_access) {
    unusable_ = "a RouDi of another user runs (" + std::string(roudi::kRoudiSocketPath) +
                "): this user cannot use it";
    return;
  }
  if (probe == roudi::RoudiProbe::running) {
    const auto running = find_running_roudi();
    if (!running) {
      unusable_ = "a RouDi runs (" + std::string(roudi::kRoudiSocketPath) +
                  ") but its process is not visible here, so its pools are unknown";
      return;
    }
    std::string config = running->config;
    if (config.empty() && std::filesystem::exists(kIceoryxDefaultConfig)) {
      config = kIceoryxDefaultConfig;
    }
    largest_chunk_ = config.empty() ? kIceoryxDefaultLargest : largest_pool_in(config);
    which_ = "the RouDi already running (pid " + std::to_string(running->pid) + ", " +
             (config.empty() ? std::string("iceoryx's default pools") : "config " + config) + ")";
    if (largest_chunk_ == 0) {
      unusable_ = which_ + ": cannot read its pools";
      return;
    }
    // Keep it up for the run if it is Symphony's keeper's (a no-op for one started by hand).
    if (auto lease = roudi::acquire_lease(); !lease) {
      unusable_ = "cannot take a lease on " + which_ + ": " + lease.error().message;
      return;
    }
    std::fprintf(stderr, "symphony-perf: iceoryx: using %s; its largest chunk is %llu bytes\n",
                 which_.c_str(), static_cast<unsigned long long>(largest_chunk_));
    return;
  }

  // None runs: start ours.
  const std::string iox_roudi = roudi::find_iox_roudi();
  if (iox_roudi.empty() || ::access(iox_roudi.c_str(), X_OK) != 0) {
    unusable_ = "no iox-roudi to start (install Debian's iceoryx, or set $SYMPHONY_IOX_ROUDI)";
    return;
  }
  dir_ = "/tmp/symphony-perf-roudi-" + std::to_string(::getpid());
  std::error_code error;
  std::filesystem::create_directories(dir_, error);
  const std::string config = dir_ + "/roudi_config.toml";
  const std::string log = dir_ + "/roudi.log";
  {
    std::ofstream file(config);
    file << config_text();
    if (!file) {
      unusable_ = "cannot write " + config;
      return;
    }
  }
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    unusable_ = std::string("fork: ") + std::strerror(errno);
    return;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    // Its own process group: Ctrl-C in the terminal stops the harness, which stops RouDi last.
    ::setpgid(0, 0);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::execl(iox_roudi.c_str(), "iox-roudi", "-c", config.c_str(), "-l", "warning",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  pid_ = pid;
  which_ = "symphony-perf's RouDi (pid " + std::to_string(pid) + ", config " + config + ")";
  const auto deadline = Clock::now() + kStartTimeout;
  while (roudi::probe_roudi() != roudi::RoudiProbe::running) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid_ = -1;
      unusable_ = "iox-roudi exited at start: " + log_tail(log);
      return;
    }
    if (Clock::now() >= deadline) {
      stop();
      unusable_ = "iox-roudi did not come up within 20 s: " + log_tail(log);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const Pool& pool : kHarnessPools) largest_chunk_ = std::max(largest_chunk_, pool.size);
  std::fprintf(stderr, "symphony-perf: iceoryx: started %s\n", which_.c_str());
}

void RunRoudi::stop() noexcept {
  if (pid_ <= 0) return;
  const pid_t pid = pid_;
  pid_ = -1;
  // RouDi must have dropped the children that _exit()ed (their runtimes stay registered until
  // their keep-alive times out), or it aborts on SIGTERM.
  std::this_thread::sleep_for(kDropDeadApps);
  ::kill(pid, SIGTERM);
  const auto deadline = Clock::now() + kStopTimeout;
  int status = 0;
  bool exited = false;
  while (!(exited = ::waitpid(pid, &status, WNOHANG) == pid) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!clean) {
    // It died without cleaning up: what iceoryx 2.0's RouDi owns (its names are fixed).
    std::fprintf(stderr,
                 "symphony-perf: iceoryx: our RouDi did not exit cleanly (status %d); removing "
                 "what it left (log: %s/roudi.log)\n",
                 status, dir_.c_str());
    ::unlink(roudi::kRoudiSocketPath);
    ::unlink(roudi::kRoudiSocketLockPath);
    ::unlink(roudi::kRoudiUniqueLockPath);
    ::unlink(("/dev/shm/" + std::string(roudi::kManagementShmName)).c_str());
    // Its data segment is named after the user.
    if (const passwd* user = ::getpwuid(::geteuid()); user != nullptr) {
      ::unlink(("/dev/shm/" + std::string(user->pw_name)).c_str());
    }
  } else {
    std::error_code error;
    std::filesystem::remove_all(dir_, error);
  }
  remove_dead_runtime_files();
}

}  // namespace symphony::perf
