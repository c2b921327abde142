#include "child_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

namespace symphony::perf {

namespace {

using SteadyClock = std::chrono::steady_clock;

volatile sig_atomic_t g_interrupted = 0;

void on_interrupt(int) {
  g_interrupted = 1;
}

// Extra time the parent gives a child beyond the measurement's timeout: a child notices its own
// time-out first and reports it, which says more than "killed by the parent".
constexpr auto kReportGrace = std::chrono::seconds(5);
// How long a child that has reported (or died) may take to be reaped before it is killed.
constexpr auto kReapTimeout = std::chrono::seconds(2);

constexpr int kExitOrphan = 120;       // the parent was gone before the child could arm PDEATHSIG
constexpr int kExitWriteFailed = 121;  // the report could not be written

struct Child {
  const SidePlan* plan = nullptr;
  pid_t pid = -1;
  int fd = -1;  // read end of the child's report pipe
  SideReport report;
  std::size_t received = 0;
  bool reported = false;
  bool reaped = false;
  int status = 0;
};

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           ::strsignal(WTERMSIG(status)) + ")";
  }
  return "stopped with wait status " + std::to_string(status);
}

std::string describe_side(const Child& child) {
  std::string text = to_string(child.plan->role);
  if (child.plan->role == Role::producer || child.plan->role == Role::consumer) {
    text += " " + std::to_string(child.plan->index);
  }
  text += " (pid " + std::to_string(child.pid);
  if (child.plan->cpu >= 0) text += ", cpu " + std::to_string(child.plan->cpu);
  return text + ")";
}

bool write_all(int fd, const void* data, std::size_t size) noexcept {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, bytes, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Waits up to `timeout` for the child to exit, then kills it. Never blocks longer.
void reap(Child& child, SteadyClock::duration timeout) noexcept {
  if (child.reaped || child.pid <= 0) return;
  const auto until = SteadyClock::now() + timeout;
  for (;;) {
    const pid_t done = ::waitpid(child.pid, &child.status, WNOHANG);
    if (done == child.pid || (done < 0 && errno != EINTR)) break;
    if (SteadyClock::now() >= until) {
      ::kill(child.pid, SIGKILL);
      while (::waitpid(child.pid, &child.status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  child.reaped = true;
}

void kill_and_reap_all(std::vector<Child>& children) noexcept {
  for (Child& child : children) {
    if (!child.reaped && child.pid > 0) ::kill(child.pid, SIGKILL);
  }
  for (Child& child : children) reap(child, kReapTimeout);
  for (Child& child : children) {
    if (child.fd >= 0) ::close(child.fd);
    child.fd = -1;
  }
}

[[noreturn]] void run_child(Session& session, const MeasureSpec& spec, const SidePlan& plan,
                            unsigned sides, ControlBlock& control, const TickClock& clock,
                            bool yield, pid_t parent, int report_fd) {
  // Dies with the parent. Armed after fork, so check that the parent did not die before that.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(kExitOrphan);
  // Ctrl-C reaches the whole process group: children just stop; the parent reports it.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGPIPE, SIG_DFL);
  SideReport report;
  if (plan.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<std::size_t>(plan.cpu), &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) {
      fail(report, "cannot pin to cpu %d: %s", plan.cpu, std::strerror(errno));
      ::_exit(write_all(report_fd, &report, sizeof report) ? 0 : kExitWriteFailed);
    }
  }
  SideContext side;
  side.role = plan.role;
  side.index = plan.index;
  side.sides = sides;
  side.spec = &spec;
  side.control = &control;
  side.clock = &clock;
  side.yield = yield;
  side.deadline = SteadyClock::now() + spec.timeout;
  report = session.run_side(side);
  // _exit: the parent's objects (segments it owns) were copied by fork and must not be
  // destroyed here, nor stdio buffers flushed twice.
  ::_exit(write_all(report_fd, &report, sizeof report) ? 0 : kExitWriteFailed);
}

}  // namespace

void install_interrupt_handlers() noexcept {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

bool interrupted() noexcept {
  return g_interrupted != 0;
}

tl::expected<std::vector<SideReport>, std::string> run_sides(Session& session,
                                                             const MeasureSpec& spec,
                                                             std::span<const SidePlan> plan,
                                                             ControlBlock& control,
                                                             const TickClock& clock, bool yield) {
  std::memset(static_cast<void*>(&control), 0, sizeof control);
  std::vector<Child> children(plan.size());
  const pid_t parent = ::getpid();
  const auto sides = static_cast<unsigned>(plan.size());
  std::fflush(nullptr);  // a forked child must not inherit unflushed output
  for (std::size_t i = 0; i < plan.size(); ++i) {
    Child& child = children[i];
    child.plan = &plan[i];
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      const int saved = errno;
      kill_and_reap_all(children);
      return tl::unexpected(std::string("pipe2: ") + std::strerror(saved));
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int saved = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      kill_and_reap_all(children);
      return tl::unexpected(std::string("fork: ") + std::strerror(saved));
    }
    if (pid == 0) {
      // Only our own write end stays open: another child's write end held here would hide
      // that child's death (its pipe would never reach end-of-file).
      ::close(fds[0]);
      for (std::size_t j = 0; j < i; ++j) ::close(children[j].fd);
      run_child(session, spec, plan[i], sides, control, clock, yield, parent, fds[1]);
    }
    ::close(fds[1]);
    child.pid = pid;
    child.fd = fds[0];
  }

  const auto deadline = SteadyClock::now() + spec.timeout + kReportGrace;
  std::string failure;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<Child*> waiting;
    for (Child& child : children) {
      if (child.reported) continue;
      fds.push_back(pollfd{child.fd, POLLIN, 0});
      waiting.push_back(&child);
    }
    if (waiting.empty()) break;
    if (interrupted()) {
      failure = "interrupted";
      break;
    }
    const auto now = SteadyClock::now();
    if (now >= deadline) {
      failure = "no report within " +
                std::to_string(
                    std::chrono::duration_cast<std::chrono::seconds>(spec.timeout + kReportGrace)
                        .count()) +
                " s from";
      for (const Child* child : waiting) failure += " " + describe_side(*child);
      failure += ": killed (a stalled side; raise --timeout if the run is just long)";
      break;
    }
    // Sleeps until a report, a death, a signal (which interrupts poll) or the deadline: a
    // parent waking up on a timer would take a core from a side in the middle of a run.
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    const int ready = ::poll(fds.data(), fds.size(),
                             static_cast<int>(std::min<std::int64_t>(wait_ms.count() + 1, 60'000)));
    if (ready < 0 && errno != EINTR) {
      failure = std::string("poll: ") + std::strerror(errno);
      break;
    }
    for (std::size_t i = 0; ready > 0 && i < fds.size() && failure.empty(); ++i) {
      if (fds[i].revents == 0) continue;
      Child& child = *waiting[i];
      auto* into = reinterpret_cast<char*>(&child.report) + child.received;
      const ssize_t n = ::read(child.fd, into, sizeof child.report - child.received);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        failure = describe_side(child) + ": reading its report: " + std::strerror(errno);
      } else if (n == 0) {
        reap(child, kReapTimeout);
        const bool stopped_by_user =
            WIFSIGNALED(child.status) &&
            (WTERMSIG(child.status) == SIGINT || WTERMSIG(child.status) == SIGTERM);
        failure =
            stopped_by_user || interrupted()
                ? "interrupted"
                : describe_side(child) + " " + describe_status(child.status) + " before reporting";
      } else {
        child.received += static_cast<std::size_t>(n);
        if (child.received < sizeof child.report) continue;
        child.reported = true;
        if (child.report.magic != SideReport::kMagic) {
          failure = describe_side(child) + " sent a malformed report";
        } else if (child.report.ok != 1) {
          child.report.error[sizeof child.report.error - 1] = '\0';
          failure = describe_side(child) + " failed: " + child.report.error;
        }
      }
    }
    if (!failure.empty()) break;
  }

  if (!failure.empty()) {
    kill_and_reap_all(children);
    return tl::unexpected(std::move(failure));
  }
  // Every side reported: they are exiting now.
  for (Child& child : children) reap(child, kReapTimeout);
  std::vector<SideReport> reports;
  for (Child& child : children) {
    ::close(child.fd);
    child.fd = -1;
    reports.push_back(child.report);
  }
  return reports;
}

}  // namespace symphony::perf
