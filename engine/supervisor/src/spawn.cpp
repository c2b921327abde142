#include "spawn.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace symphony::supervisor {
namespace {

enum Step : std::int32_t {
  kSetPgid = 1,
  kDeathSignal,
  kParentGone,
  kJoinCgroup,
  kRlimit,
  kStdio,
  kSignals,
  kCloseFds,
  kExec,
};

const char* step_name(std::int32_t step) {
  switch (step) {
    case kSetPgid: return "setpgid";
    case kDeathSignal: return "prctl(PR_SET_PDEATHSIG)";
    case kParentGone: return "the supervisor exited before the child started";
    case kJoinCgroup: return "join its cgroup (write to cgroup.procs)";
    case kRlimit: return "setrlimit(RLIMIT_DATA)";
    case kStdio: return "dup2 of stdin/stdout/stderr";
    case kSignals: return "reset signal mask";
    case kCloseFds: return "close_range";
    case kExec: return "exec";
  }
  return "unknown step";
}

// Child side: only async-signal-safe calls from here on.
[[noreturn]] void child_fail(int status_fd, std::int32_t step, int error) {
  std::int32_t record[2] = {step, error};
  [[maybe_unused]] const ssize_t n = ::write(status_fd, record, sizeof record);
  ::_exit(127);
}

[[noreturn]] void run_child(const SpawnPlan& plan, char* const* argv, char* const* envp,
                            int status_fd, pid_t parent, const sigset_t& empty_mask) {
  if (::setpgid(0, 0) != 0) child_fail(status_fd, kSetPgid, errno);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(status_fd, kDeathSignal, errno);
  // The parent may have died between fork and prctl: then nobody would kill us later.
  if (::getppid() != parent) child_fail(status_fd, kParentGone, 0);
  for (const int procs : plan.cgroup_procs) {
    // "0": the writing process itself (cgroup v1 and v2).
    if (::write(procs, "0", 1) != 1) child_fail(status_fd, kJoinCgroup, errno);
  }
  if (plan.rlimit_data != 0) {
    const rlimit limit{plan.rlimit_data, plan.rlimit_data};
    if (::setrlimit(RLIMIT_DATA, &limit) != 0) child_fail(status_fd, kRlimit, errno);
  }
  if (::dup2(plan.stdin_fd, 0) < 0 || ::dup2(plan.output_fd, 1) < 0 ||
      ::dup2(plan.output_fd, 2) < 0) {
    child_fail(status_fd, kStdio, errno);
  }
  // Handlers are reset by exec anyway; ignored signals (a host ignoring SIGPIPE) are not.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &default_action, nullptr);
  if (::sigprocmask(SIG_SETMASK, &empty_mask, nullptr) != 0) {
    child_fail(status_fd, kSignals, errno);
  }
  // Close-on-exec rather than close: the status pipe must stay open until exec succeeds.
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    child_fail(status_fd, kCloseFds, errno);
  }
  ::execve(argv[0], argv, envp);
  child_fail(status_fd, kExec, errno);
}

}  // namespace

std::string describe_spawn_failure(const unsigned char (&record)[8]) {
  std::int32_t fields[2];
  std::memcpy(fields, record, sizeof fields);
  std::string text = step_name(fields[0]);
  if (fields[1] != 0) text += std::string(": ") + std::strerror(fields[1]);
  return text;
}

engine::Result<SpawnedProcess> spawn_process(const SpawnPlan& plan) {
  if (plan.argv.empty() || plan.stdin_fd < 3 || plan.output_fd < 3) {
    return tl::unexpected(engine::Error{engine::Errc::invalid_argument,
                                        "spawn: an executable and stdio fds >= 3 are needed"});
  }
  // Everything the child needs is built here: after fork it may not allocate.
  std::vector<std::string> argv_strings = plan.argv;
  std::vector<std::string> env_strings = plan.env;
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  sigset_t empty_mask;
  sigemptyset(&empty_mask);

  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    return tl::unexpected(engine::Error::from_errno("spawn: pipe2", errno));
  }
  UniqueFd status_read(status_pipe[0]);
  UniqueFd status_write(status_pipe[1]);
  if (!raise_above_stdio(status_read) || !raise_above_stdio(status_write)) {
    return tl::unexpected(engine::Error::from_errno("spawn: fcntl(F_DUPFD_CLOEXEC)", errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return tl::unexpected(engine::Error::from_errno("spawn: fork", errno));
  if (pid == 0) run_child(plan, argv.data(), envp.data(), status_write.get(), parent, empty_mask);

  // Also from this side, so that a kill of the group right after fork cannot miss it (EACCES
  // once the child has exec'd: it did it itself by then).
  ::setpgid(pid, pid);
  status_write.reset();
  SpawnedProcess spawned;
  spawned.pid = pid;
  // Not reaped yet, so the pid cannot have been reused: the pidfd names our child.
  // The raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++.
  spawned.pidfd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U)));
  if (!spawned.pidfd) {
    const int error = errno;
    ::kill(pid, SIGKILL);
    siginfo_t info{};
    ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED);
    return tl::unexpected(engine::Error::from_errno("spawn: pidfd_open", error));
  }
  ::fcntl(spawned.pidfd.get(), F_SETFD, FD_CLOEXEC);
  ::fcntl(status_read.get(), F_SETFL, O_NONBLOCK);
  spawned.status = std::move(status_read);
  return spawned;
}

}  // namespace symphony::supervisor
