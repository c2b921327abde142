// symphony-roudi-keeper: starts iox-roudi with Symphony's memory-pool config, keeps it running
// while any host holds the lease, and stops it (and cleans up after it) when the last host has
// exited or died. Started by a host (roudi_lease.cpp) as a detached process (double fork, setsid,
// exec), never by hand; see README.md in this folder for the whole protocol.
//
//   symphony-roudi-keeper --dir DIR --roudi PATH [--config PATH] [--ready-fd N]
//                         [--kill-delay S] [--stop-timeout S]
//
// --ready-fd: the keeper writes one line there, "ready <roudi pid>" once RouDi accepts
// connections, or "error <why>", and closes it. Exit status: 0 after a normal teardown, 1 if
// RouDi could not be started.

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "roudi_config_embedded.hpp"
#include "roudi_protocol.hpp"

namespace {

using namespace symphony::engine::roudi;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string dir;
  std::string roudi;
  std::string config;  // empty: write the embedded one into the lease dir
  int ready_fd = -1;
  unsigned kill_delay_s = 3;    // iox-roudi -k: SIGTERM to SIGKILL for apps still registered
  unsigned stop_timeout_s = 10; // SIGTERM to SIGKILL for RouDi itself
  // How long RouDi stays up after the last host has gone, for a host that comes soon after, and
  // so that RouDi has dropped dead apps (it notices them ~1.5 s late) before it is stopped: iceoryx
  // 2.0's RouDi aborts on SIGTERM while a dead app is still registered. From
  // $SYMPHONY_ROUDI_LINGER_MS, default 2000.
  unsigned linger_ms = 2000;
};

int g_ready_fd = -1;

void log(const char* format, ...) __attribute__((format(printf, 1, 2)));
void log(const char* format, ...) {
  char line[1024];
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  int n = std::snprintf(line, sizeof line, "[%lld.%03lld] keeper %d: ",
                        static_cast<long long>(ms / 1000), static_cast<long long>(ms % 1000),
                        static_cast<int>(::getpid()));
  va_list ap;
  va_start(ap, format);
  n += std::vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n) - 1, format, ap);
  va_end(ap);
  if (n > static_cast<int>(sizeof line) - 2) n = static_cast<int>(sizeof line) - 2;
  line[n++] = '\n';
  [[maybe_unused]] const ssize_t w = ::write(STDERR_FILENO, line, static_cast<std::size_t>(n));
}

// One line to the host that started us, once.
void report(const std::string& line) {
  if (g_ready_fd < 0) return;
  const std::string text = line + "\n";
  [[maybe_unused]] const ssize_t w = ::write(g_ready_fd, text.data(), text.size());
  ::close(g_ready_fd);
  g_ready_fd = -1;
}

[[noreturn]] void fail_startup(const std::string& why) {
  log("cannot start RouDi: %s", why.c_str());
  report("error " + why);
  std::exit(1);
}

int open_file(const std::string& path, int flags) {
  return ::open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW, 0600);
}

bool parse_uint(const char* text, unsigned& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long v = std::strtoul(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v > 3600) return false;
  out = static_cast<unsigned>(v);
  return true;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string opt = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    bool ok = value != nullptr;
    if (opt == "--dir" && ok) {
      a.dir = value;
    } else if (opt == "--roudi" && ok) {
      a.roudi = value;
    } else if (opt == "--config" && ok) {
      a.config = value;
    } else if (opt == "--ready-fd" && ok) {
      unsigned fd = 0;
      ok = parse_uint(value, fd);
      a.ready_fd = static_cast<int>(fd);
    } else if (opt == "--kill-delay" && ok) {
      ok = parse_uint(value, a.kill_delay_s);
    } else if (opt == "--stop-timeout" && ok) {
      ok = parse_uint(value, a.stop_timeout_s);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr,
                   "usage: %s --dir DIR --roudi PATH [--config PATH] [--ready-fd N] "
                   "[--kill-delay S] [--stop-timeout S]\n"
                   "Started by the Symphony engine; see engine/src/iceoryx/README.md.\n",
                   argv[0]);
      std::exit(2);
    }
    ++i;
  }
  if (const char* linger = std::getenv("SYMPHONY_ROUDI_LINGER_MS"); linger != nullptr) {
    char* end = nullptr;
    const unsigned long ms = std::strtoul(linger, &end, 10);
    if (end != linger && *end == '\0' && ms <= 60000) a.linger_ms = static_cast<unsigned>(ms);
  }
  if (a.dir.empty() || a.roudi.empty()) {
    std::fprintf(stderr, "%s: --dir and --roudi are required\n", argv[0]);
    std::exit(2);
  }
  return a;
}

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// The last lines of a log file, for error messages.
std::string tail_of(const std::string& path, std::size_t max_bytes = 600) {
  const int fd = open_file(path, O_RDONLY);
  if (fd < 0) return {};
  struct stat st {};
  std::string text;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    const off_t size = st.st_size;
    const off_t from = size > static_cast<off_t>(max_bytes) ? size - static_cast<off_t>(max_bytes) : 0;
    text.resize(static_cast<std::size_t>(size - from));
    const ssize_t n = ::pread(fd, text.data(), text.size(), from);
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  ::close(fd);
  for (char& c : text) {
    if (c == '\n') c = '|';
  }
  return text;
}

pid_t start_roudi(const Args& args, const std::string& config, int log_fd) {
  std::vector<std::string> words = {args.roudi,      "-c", config,   "-l", "warning",
                                    "-m",            "on", "-k",     std::to_string(args.kill_delay_s)};
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  const pid_t keeper = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Child: RouDi gets SIGTERM (a clean shutdown) if the keeper dies, so that a killed keeper
  // never leaves a RouDi nobody will stop.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != keeper) ::_exit(126);
  // iceoryx 2.0's RouDi may abort while shutting down (an app it still lists died): no core file.
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::dup2(log_fd, STDOUT_FILENO);
  ::dup2(log_fd, STDERR_FILENO);
  ::syscall(SYS_close_range, 3U, ~0U, 0U);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

// RouDi's leftovers after it was killed or crashed (a clean shutdown removes them itself): its
// shared memory, socket and lock files, and the sockets of Symphony apps that died. Only while no
// RouDi holds the unique lock.
void clean_up_after_roudi() {
  const int unique = ::open(kRoudiUniqueLockPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (unique >= 0) {
    if (::flock(unique, LOCK_EX | LOCK_NB) != 0) {
      log("a RouDi holds %s: leaving its files alone", kRoudiUniqueLockPath);
      ::close(unique);
      return;
    }
  }
  std::vector<std::string> shm = {std::string("/") + kManagementShmName};
  if (const group* g = ::getgrgid(::getegid())) shm.push_back(std::string("/") + g->gr_name);
  for (const std::string& name : shm) {
    if (::shm_unlink(name.c_str()) == 0) log("removed stale shared memory %s", name.c_str());
  }
  for (const char* path : {kRoudiSocketPath, kRoudiSocketLockPath, kRoudiUniqueLockPath}) {
    if (::unlink(path) == 0) log("removed stale %s", path);
  }
  if (unique >= 0) ::close(unique);
}

// /tmp/symphony-rt-<pid>[.lock] of processes that are gone (an iceoryx app killed with SIGKILL
// leaves its socket and lock file behind).
void remove_dead_app_files() {
  DIR* dir = ::opendir(kSocketDir);
  if (dir == nullptr) return;
  const std::size_t prefix = std::strlen(kRuntimeNamePrefix);
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.compare(0, prefix, kRuntimeNamePrefix) != 0) continue;
    char* end = nullptr;
    const long pid = std::strtol(name.c_str() + prefix, &end, 10);
    if (end == name.c_str() + prefix || (*end != '\0' && std::strcmp(end, ".lock") != 0)) continue;
    if (pid_alive(pid)) continue;
    struct stat st {};
    const std::string path = std::string(kSocketDir) + name;
    if (::lstat(path.c_str(), &st) == 0 && st.st_uid == ::getuid() &&
        (S_ISSOCK(st.st_mode) || S_ISREG(st.st_mode)) && ::unlink(path.c_str()) == 0) {
      log("removed %s (pid %ld is gone)", path.c_str(), pid);
    }
  }
  ::closedir(dir);
}

bool write_file(const std::string& path, const std::string& text) {
  const int fd = open_file(path + ".tmp", O_WRONLY | O_CREAT | O_TRUNC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok && ::rename((path + ".tmp").c_str(), path.c_str()) == 0;
}

// Waits for `pid` to exit, up to `timeout`; true if it did (and was reaped).
bool wait_exit(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more
    if (Clock::now() >= deadline) return false;
    sleep_ms(5);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  g_ready_fd = args.ready_fd;
  if (g_ready_fd >= 0 && ::fcntl(g_ready_fd, F_SETFD, FD_CLOEXEC) != 0) g_ready_fd = -1;

  // Signals: whatever the host left us (ignored SIGCHLD would auto-reap RouDi), reset; the ones
  // that matter are read from a signalfd, never from handlers.
  ::signal(SIGPIPE, SIG_IGN);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) ::signal(s, SIG_DFL);
  sigset_t handled;
  sigemptyset(&handled);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&handled, s);
  ::sigprocmask(SIG_SETMASK, &handled, nullptr);
  const int sfd = ::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  // A daemon does not keep its starter's working directory busy.
  [[maybe_unused]] const int cd = ::chdir("/");

  if (const std::string bad = ensure_lease_dir(args.dir); !bad.empty()) fail_startup(bad);
  const std::string dir = args.dir + "/";
  // Appended to, so that the previous keepers' lines stay; started afresh past 1 MiB.
  const int log_fd = open_file(dir + kKeeperLogFile, O_WRONLY | O_CREAT | O_APPEND);
  if (log_fd >= 0) {
    struct stat st {};
    if (::fstat(log_fd, &st) == 0 && st.st_size > (1 << 20)) {
      [[maybe_unused]] const int t = ::ftruncate(log_fd, 0);
    }
    ::dup2(log_fd, STDERR_FILENO);
  }
  if (sfd < 0) fail_startup(std::string("signalfd: ") + std::strerror(errno));

  const int keeper_fd = open_file(dir + kKeeperLockFile, O_RDWR | O_CREAT);
  const int lease_fd = open_file(dir + kLeaseFile, O_RDWR | O_CREAT);
  const int start_fd = open_file(dir + kStartLockFile, O_RDWR | O_CREAT);
  if (keeper_fd < 0 || lease_fd < 0 || start_fd < 0) {
    fail_startup("cannot open the lock files in " + args.dir + ": " + std::strerror(errno));
  }
  if (::flock(keeper_fd, LOCK_EX | LOCK_NB) != 0) {
    fail_startup("another keeper holds " + dir + kKeeperLockFile);
  }
  if (probe_roudi() != RoudiProbe::absent) {
    fail_startup(std::string("a RouDi already listens on ") + kRoudiSocketPath);
  }

  std::string config = args.config;
  if (config.empty()) {
    config = dir + kConfigFile;
    if (!write_file(config, kEmbeddedConfig)) {
      fail_startup("cannot write " + config + ": " + std::strerror(errno));
    }
  }
  if (::access(args.roudi.c_str(), X_OK) != 0) {
    fail_startup(args.roudi + " is not executable: " + std::strerror(errno) +
                 " (install Debian's iceoryx package)");
  }
  const std::string roudi_log = dir + kRoudiLogFile;

  // A RouDi that is still dying (its keeper gave up waiting, or it belongs to a keeper that was
  // killed) holds iceoryx's machine-wide lock for a moment: a new one aborts with "Could not
  // acquire lock". Start again for a while before giving up.
  const auto lock_deadline = Clock::now() + std::chrono::seconds(15);
  pid_t roudi = -1;
  // Leftovers of a RouDi that was killed (say, with its keeper, by SIGKILL). Once: between
  // retries, the lock file belongs to the RouDi that is still dying.
  clean_up_after_roudi();
  for (;;) {
    const int roudi_log_fd = open_file(roudi_log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    if (roudi_log_fd < 0) fail_startup("cannot open " + roudi_log + ": " + std::strerror(errno));
    roudi = start_roudi(args, config, roudi_log_fd);
    ::close(roudi_log_fd);
    if (roudi < 0) fail_startup(std::string("fork: ") + std::strerror(errno));
    log("started %s (pid %d) with %s", args.roudi.c_str(), static_cast<int>(roudi),
        config.c_str());
    write_file(dir + kStateFile, "keeper " + std::to_string(::getpid()) + "\nroudi " +
                                     std::to_string(roudi) + "\n");

    // Ready once RouDi's socket accepts connections (apps that register earlier just wait).
    const auto ready_deadline = Clock::now() + std::chrono::seconds(20);
    bool retry = false;
    for (;;) {
      int status = 0;
      if (::waitpid(roudi, &status, WNOHANG) == roudi) {
        const std::string tail = tail_of(roudi_log);
        if (tail.find("Could not acquire lock") != std::string::npos &&
            Clock::now() < lock_deadline) {
          log("iox-roudi found another RouDi's lock (still dying?): trying again");
          sleep_ms(200);
          retry = true;
          break;
        }
        clean_up_after_roudi();
        ::unlink((dir + kStateFile).c_str());
        fail_startup("iox-roudi " + describe_status(status) + "; " + roudi_log + ": " + tail);
      }
      if (probe_roudi() == RoudiProbe::running) break;
      if (Clock::now() >= ready_deadline) {
        ::kill(roudi, SIGKILL);
        wait_exit(roudi, std::chrono::seconds(5), &status);
        clean_up_after_roudi();
        ::unlink((dir + kStateFile).c_str());
        fail_startup("iox-roudi did not open " + std::string(kRoudiSocketPath) +
                     " within 20 s; " + roudi_log + ": " + tail_of(roudi_log));
      }
      sleep_ms(2);
    }
    if (!retry) break;
  }
  log("RouDi is ready");
  report("ready " + std::to_string(roudi));

  // The last host is gone when flock(LOCK_EX) on the lease succeeds: a thread blocks in it and
  // wakes the main loop through a pipe (flock cannot be polled). Signals stay blocked in it.
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC) != 0) {
    log("pipe2: %s; stopping RouDi", std::strerror(errno));
    wake[0] = wake[1] = -1;
  }
  const auto wait_for_last_host = [lease_fd, fd = wake[1]] {
    std::thread([lease_fd, fd] {
      ::pthread_setname_np(::pthread_self(), "sym-keeper-wait");
      while (::flock(lease_fd, LOCK_EX) != 0 && errno == EINTR) {
      }
      [[maybe_unused]] const ssize_t w = ::write(fd, "x", 1);
    }).detach();
  };
  if (wake[1] >= 0) wait_for_last_host();

  std::string reason;
  bool roudi_exited = false;
  int roudi_status = 0;
  bool lingering = false;
  Clock::time_point linger_end{};
  while (reason.empty() && wake[0] >= 0) {
    int timeout_ms = -1;
    if (lingering) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(linger_end - Clock::now());
      timeout_ms = static_cast<int>(std::max<long long>(0, left.count()));
    }
    pollfd fds[2] = {{sfd, POLLIN, 0}, {wake[0], POLLIN, 0}};
    const int ready = ::poll(fds, 2, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      reason = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (ready == 0 && lingering) {
      if (::flock(lease_fd, LOCK_EX | LOCK_NB) == 0) {
        reason = "the last host has gone";
      } else {
        log("a host came back while RouDi lingered");
        lingering = false;
        wait_for_last_host();
      }
      continue;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      char byte = 0;
      [[maybe_unused]] const ssize_t r = ::read(wake[0], &byte, 1);
      if (args.linger_ms == 0) {
        reason = "the last host has gone";
      } else {
        // Let go of the lease while lingering, so that a host arriving now can take its share.
        ::flock(lease_fd, LOCK_UN);
        lingering = true;
        linger_end = Clock::now() + std::chrono::milliseconds(args.linger_ms);
      }
    }
    if ((fds[0].revents & POLLIN) != 0) {
      signalfd_siginfo info{};
      while (::read(sfd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGCHLD) {
          if (::waitpid(roudi, &roudi_status, WNOHANG) == roudi) {
            roudi_exited = true;
            reason = "RouDi " + describe_status(roudi_status) + " by itself; " + roudi_log +
                     ": " + tail_of(roudi_log);
          }
        } else {
          reason = std::string("signal ") + ::strsignal(static_cast<int>(info.ssi_signo));
        }
      }
    }
  }
  if (reason.empty()) reason = "cannot wait for the hosts";

  // Teardown, holding start.lock: no host decides anything about RouDi meanwhile. Hosts only
  // hold it briefly and never wait for the lease while holding it, so this cannot deadlock.
  while (::flock(start_fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  log("stopping RouDi: %s", reason.c_str());
  if (!roudi_exited) {
    ::kill(roudi, SIGTERM);
    if (wait_exit(roudi, std::chrono::seconds(args.stop_timeout_s), &roudi_status)) {
      log("RouDi %s", describe_status(roudi_status).c_str());
    } else {
      log("RouDi did not exit %u s after SIGTERM: SIGKILL", args.stop_timeout_s);
      ::kill(roudi, SIGKILL);
      wait_exit(roudi, std::chrono::seconds(10), &roudi_status);
    }
  }
  clean_up_after_roudi();
  remove_dead_app_files();
  ::unlink((dir + kStateFile).c_str());
  log("done");
  return 0;  // exiting drops keeper.lock, the lease and start.lock
}
