#include "roudi_lease.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "roudi_protocol.hpp"

#ifndef SYMPHONY_KEEPER_INSTALL_PATH
#define SYMPHONY_KEEPER_INSTALL_PATH ""
#endif
#ifndef SYMPHONY_KEEPER_BUILD_PATH
#define SYMPHONY_KEEPER_BUILD_PATH ""
#endif

namespace symphony::engine::roudi {
namespace {

using Clock = std::chrono::steady_clock;

Error unavailable(std::string message) {
  return Error{Errc::unavailable, "RouDi: " + std::move(message)};
}

bool executable(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         ::access(path.c_str(), X_OK) == 0;
}

std::string exe_dir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string path(buf, static_cast<std::size_t>(n));
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

std::string tail_of(const std::string& path, std::size_t max_bytes = 600) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return "(no " + path + ")";
  struct stat st {};
  std::string text;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    const off_t size = st.st_size;
    const off_t from =
        size > static_cast<off_t>(max_bytes) ? size - static_cast<off_t>(max_bytes) : 0;
    text.resize(static_cast<std::size_t>(size - from));
    const ssize_t n = ::pread(fd, text.data(), text.size(), from);
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  ::close(fd);
  for (char& c : text) {
    if (c == '\n') c = '|';
  }
  return path + ": " + text;
}

// A file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

int open_lock_file(const std::string& path) {
  return ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
}

// Runs the keeper detached: fork, setsid, fork again, exec. The first child exits at once (we
// reap it: a specific pid, never waitpid(-1)); the keeper is reparented to init (or a
// subreaper), in its own session, so that neither our exit, nor our process group's signals, nor
// a terminal's hang-up reach it. Only async-signal-safe calls between fork and exec.
// Returns the keeper's one-line reply on its ready pipe.
Result<std::string> spawn_keeper(const std::string& keeper, const std::string& iox_roudi,
                                 const std::string& dir, Clock::time_point deadline) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return tl::unexpected(Error::from_errno("pipe2", errno));
  Fd read_end(p[0]);
  Fd write_end(p[1]);
  Fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (devnull.get() < 0) return tl::unexpected(Error::from_errno("open /dev/null", errno));

  std::vector<std::string> words = {keeper, "--dir", dir, "--roudi", iox_roudi, "--ready-fd", "3"};
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);

  const pid_t child = ::fork();
  if (child < 0) return tl::unexpected(Error::from_errno("fork", errno));
  if (child == 0) {
    ::setsid();
    const pid_t grandchild = ::fork();
    if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
    // Move the two fds we keep above the standard ones first: any of them may be 0-3.
    const int w = ::fcntl(write_end.get(), F_DUPFD, 10);
    const int n = ::fcntl(devnull.get(), F_DUPFD, 10);
    if (w < 0 || n < 0) ::_exit(126);
    ::dup2(n, STDIN_FILENO);
    ::dup2(n, STDOUT_FILENO);
    ::dup2(n, STDERR_FILENO);
    ::dup2(w, 3);
    // Nothing of the host's (sockets, files it opened without O_CLOEXEC) stays open in the
    // keeper and RouDi.
    ::syscall(SYS_close_range, 4U, ~0U, 0U);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  write_end.reset();
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  // (ECHILD: the host ignores SIGCHLD or reaped it itself; the pipe tells us what happened.)

  std::string reply;
  char buf[512];
  for (;;) {
    const auto now = Clock::now();
    if (now >= deadline) {
      return tl::unexpected(unavailable("the keeper (" + keeper + ") did not report within the "
                                        "time-out; " + tail_of(dir + "/" + kKeeperLogFile)));
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    pollfd pfd{read_end.get(), POLLIN, 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(std::max<long long>(1, left.count())));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return tl::unexpected(Error::from_errno("poll", errno));
    if (r == 0) continue;
    const ssize_t got = ::read(read_end.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    reply.append(buf, static_cast<std::size_t>(got));
    if (reply.find('\n') != std::string::npos) break;
  }
  if (const auto nl = reply.find('\n'); nl != std::string::npos) reply.resize(nl);
  if (reply.empty()) {
    return tl::unexpected(unavailable("the keeper (" + keeper + ") exited without reporting; " +
                                      tail_of(dir + "/" + kKeeperLogFile)));
  }
  return reply;
}

std::mutex g_mutex;
std::optional<LeaseInfo> g_lease;  // set once; the lease fd is never closed (see header)

}  // namespace

std::string find_iox_roudi() {
  if (const char* env = std::getenv("SYMPHONY_IOX_ROUDI"); env != nullptr && *env != '\0') {
    return env;
  }
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string all = path;
    std::size_t start = 0;
    while (start <= all.size()) {
      const std::size_t end = std::min(all.find(':', start), all.size());
      const std::string dir = all.substr(start, end - start);
      if (!dir.empty() && executable(dir + "/iox-roudi")) return dir + "/iox-roudi";
      start = end + 1;
    }
  }
  return "/usr/bin/iox-roudi";
}

std::string find_keeper() {
  if (const char* env = std::getenv("SYMPHONY_ROUDI_KEEPER"); env != nullptr && *env != '\0') {
    return executable(env) ? std::string(env) : std::string();
  }
  std::vector<std::string> candidates;
  if (const std::string dir = exe_dir(); !dir.empty()) {
    candidates.push_back(dir + "/" + kKeeperBinaryName);
    candidates.push_back(dir + "/../libexec/symphony/" + kKeeperBinaryName);
  }
  candidates.emplace_back(SYMPHONY_KEEPER_INSTALL_PATH);
  candidates.emplace_back(SYMPHONY_KEEPER_BUILD_PATH);
  for (const std::string& c : candidates) {
    if (executable(c)) return c;
  }
  return {};
}

Result<LeaseInfo> acquire_lease(std::chrono::milliseconds timeout) {
  std::lock_guard lock(g_mutex);
  if (g_lease) return *g_lease;

  const auto deadline = Clock::now() + timeout;
  const std::string dir = lease_dir();
  if (const std::string bad = ensure_lease_dir(dir); !bad.empty()) {
    return tl::unexpected(unavailable(bad));
  }
  Fd start(open_lock_file(dir + "/" + kStartLockFile));
  Fd lease(open_lock_file(dir + "/" + kLeaseFile));
  Fd keeper_lock(open_lock_file(dir + "/" + kKeeperLockFile));
  if (start.get() < 0 || lease.get() < 0 || keeper_lock.get() < 0) {
    return tl::unexpected(Error::from_errno("open the lock files in " + dir, errno));
  }

  std::string waiting_for = "start.lock";
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) {
      if (Clock::now() >= deadline) {
        return tl::unexpected(unavailable("timed out waiting for " + waiting_for + " in " + dir +
                                          "; " + tail_of(dir + "/" + kKeeperLogFile)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(attempt < 20 ? 2 : 10));
    }
    if (::flock(start.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        return tl::unexpected(Error::from_errno("flock " + dir + "/" + kStartLockFile, errno));
      }
      waiting_for = "start.lock (another host is starting RouDi, or a keeper is stopping it)";
      continue;
    }
    // We decide about RouDi now. A keeper that already holds the lease exclusively is tearing
    // down: let it (it needs start.lock), and come back.
    if (::flock(lease.get(), LOCK_SH | LOCK_NB) != 0) {
      ::flock(start.get(), LOCK_UN);
      waiting_for = "the keeper to stop the previous RouDi";
      continue;
    }
    const bool keeper_alive = ::flock(keeper_lock.get(), LOCK_EX | LOCK_NB) != 0;
    if (!keeper_alive) ::flock(keeper_lock.get(), LOCK_UN);
    const RoudiProbe probe = probe_roudi();
    if (probe == RoudiProbe::no_access) {
      ::flock(lease.get(), LOCK_UN);
      ::flock(start.get(), LOCK_UN);
      return tl::unexpected(unavailable(std::string("a RouDi runs but ") + kRoudiSocketPath +
                                        " is not accessible to this user (another user's?)"));
    }
    LeaseInfo info;
    info.dir = dir;
    if (probe == RoudiProbe::running) {
      info.ours = keeper_alive;
    } else if (keeper_alive) {
      // Our keeper without a RouDi: its RouDi died and it is about to clean up (it needs
      // start.lock and exits), or it is starting one for a host that gave up. Wait.
      ::flock(lease.get(), LOCK_UN);
      ::flock(start.get(), LOCK_UN);
      waiting_for = "a keeper whose RouDi is not up";
      continue;
    } else {
      const std::string keeper = find_keeper();
      if (keeper.empty()) {
        ::flock(lease.get(), LOCK_UN);
        ::flock(start.get(), LOCK_UN);
        return tl::unexpected(unavailable(
            std::string("no RouDi runs and ") + kKeeperBinaryName +
            " was not found (set SYMPHONY_ROUDI_KEEPER, or install Symphony)"));
      }
      const std::string iox_roudi = find_iox_roudi();
      auto reply = spawn_keeper(keeper, iox_roudi, dir, deadline);
      if (!reply || reply->rfind("ready", 0) != 0) {
        ::flock(lease.get(), LOCK_UN);
        ::flock(start.get(), LOCK_UN);
        if (!reply) return tl::unexpected(std::move(reply.error()));
        const std::string why = reply->rfind("error ", 0) == 0 ? reply->substr(6) : *reply;
        return tl::unexpected(unavailable("could not start " + iox_roudi + " (keeper " + keeper +
                                          "): " + why));
      }
      info.ours = true;
    }
    // Keep the shared lock for the rest of the process's life; release the decision lock.
    ::flock(start.get(), LOCK_UN);
    lease.release();
    g_lease = info;
    return info;
  }
}

}  // namespace symphony::engine::roudi
