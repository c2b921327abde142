#include "symphony/supervisor/supervisor.hpp"

#if defined(SYMPHONY_SUPERVISOR_HAVE_ICEORYX)
#include "roudi_lease.hpp"  // engine/src/iceoryx: the engine's RouDi manager
#endif

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "cgroups.hpp"
#include "log_sink.hpp"
#include "spawn.hpp"
#include "symphony/controlplane/envelope.hpp"
#include "symphony/controlplane/extension.hpp"
#include "symphony/engine/checkpoint.hpp"
#include "symphony/engine/runtime_dir.hpp"
#include "unique_fd.hpp"

extern char** environ;

namespace symphony::supervisor {
namespace {

namespace fs = std::filesystem;
using controlplane::PeerEvent;
using controlplane::PeerState;
using controlplane::Registration;
using engine::Errc;
using engine::Error;
using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::atomic<unsigned> g_supervisor_serial{0};

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? "SIG" + std::string(abbrev) : "signal " + std::to_string(sig);
}

std::string describe_exit(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return "exited with code " + std::to_string(info.si_status);
  std::string text = "killed by signal " + std::to_string(info.si_status) + " (" +
                     signal_name(info.si_status) + ")";
  if (info.si_code == CLD_DUMPED) text += ", core dumped";
  return text;
}

std::string mib_text(std::uint64_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

// utime + stime (clock ticks) and resident pages of `pid`, from /proc.
struct ProcessSample {
  std::chrono::nanoseconds cpu{0};
  std::uint64_t rss_bytes = 0;
};

ProcessSample sample_process(pid_t pid) {
  ProcessSample sample;
  if (pid <= 0) return sample;
  std::string text;
  {
    // read(2), not an istreambuf_iterator: g++ 12 sees a null dereference in the latter.
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    char buffer[1024];
    const ssize_t n = fd ? ::read(fd.get(), buffer, sizeof buffer) : -1;
    if (n > 0) text.assign(buffer, static_cast<std::size_t>(n));
  }
  // The command name (field 2) may hold spaces and parentheses: fields count from the last ')'.
  const auto close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    std::uint64_t utime = 0;
    std::uint64_t stime = 0;
    for (int index = 3; fields >> field; ++index) {
      if (index == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
      if (index == 15) {
        stime = std::strtoull(field.c_str(), nullptr, 10);
        break;
      }
    }
    static const long ticks = ::sysconf(_SC_CLK_TCK);
    sample.cpu = std::chrono::nanoseconds((utime + stime) * 1'000'000'000ULL /
                                          static_cast<std::uint64_t>(ticks > 0 ? ticks : 100));
  }
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t size = 0;
  std::uint64_t resident = 0;
  if (statm >> size >> resident) {
    static const long page = ::sysconf(_SC_PAGESIZE);
    sample.rss_bytes = resident * static_cast<std::uint64_t>(page);
  }
  return sample;
}

}  // namespace

const char* to_string(LifecycleState state) noexcept {
  switch (state) {
    case LifecycleState::created: return "CREATED";
    case LifecycleState::starting: return "STARTING";
    case LifecycleState::running: return "RUNNING";
    case LifecycleState::healthy: return "HEALTHY";
    case LifecycleState::updating: return "UPDATING";
    case LifecycleState::stopping: return "STOPPING";
    case LifecycleState::terminated: return "TERMINATED";
    case LifecycleState::crashed: return "CRASHED";
    case LifecycleState::failed: return "FAILED";
  }
  return "UNKNOWN";
}

const char* to_string(LimitMechanism mechanism) noexcept {
  switch (mechanism) {
    case LimitMechanism::cgroup_v2: return "cgroup v2";
    case LimitMechanism::cgroup_v1: return "cgroup v1";
    case LimitMechanism::rlimit: return "rlimit";
    case LimitMechanism::none: return "none";
  }
  return "unknown";
}

std::string LifecycleEvent::to_json() const {
  return controlplane::JsonObject()
      .add("extension", extension)
      .add("instance", instance)
      .add("generation", generation)
      .add("from", to_string(from))
      .add("state", to_string(to))
      .add("reason", reason)
      .add("pid", static_cast<std::int64_t>(pid))
      .add("restarts", restarts)
      .str();
}

// ---- one instance ------------------------------------------------------------------------------

struct Extension;

// An extension instance and its state machine. Owned by the supervisor thread; nothing here is
// touched by another thread.
struct ExtensionSlot {
  enum class Ending : std::uint8_t {
    none,       // it dies on its own: a crash
    requested,  // stop() or shutdown: TERMINATED
    hang,       // unresponsive or not HEALTHY in time: killed, then CRASHED
  };
  // Where a kill stands: the stop command, then SIGTERM, then SIGKILL.
  enum class Escalation : std::uint8_t { none, command_sent, term_sent, kill_sent };

  ExtensionSlot(Extension& owner, int number, std::shared_ptr<const Manifest> version)
      : extension(owner),
        manifest(std::move(version)),
        instance(number),
        route(manifest->id + "/" + std::to_string(number)),
        tracker(manifest->restart, manifest->intensity) {}

  Extension& extension;
  // This instance's version: the extension's, or (during a hot update or an A/B test) another.
  std::shared_ptr<const Manifest> manifest;
  const int instance;  // never reused within the supervisor: it names the route and the log
  const std::string route;
  LifecycleState state = LifecycleState::created;
  std::string reason = "manifest added";

  Registration registration;
  bool registration_fresh = false;  // registered and not yet given to a process
  pid_t pid = 0;
  UniqueFd pidfd;
  UniqueFd status;   // exec-status pipe until exec succeeded or failed
  UniqueFd output;   // stdout/stderr pipe
  std::uint64_t pidfd_token = 0;
  std::uint64_t status_token = 0;
  std::uint64_t output_token = 0;
  std::string spawn_failure;  // what the child reported before exec
  LogSink log;
  std::optional<ExtensionCgroup> cgroup;
  std::uint64_t oom_baseline = 0;
  // Created when the instance is added, so every restart of it finds the last checkpoint;
  // destroyed (segment removed) with the slot: on remove() and when the supervisor stops.
  std::optional<engine::CheckpointStore> checkpoint;

  bool hello = false;
  bool ready = false;
  Steady::time_point exec_at{};
  Steady::time_point start_deadline = Steady::time_point::max();

  Ending ending = Ending::none;
  std::string ending_reason;
  Escalation escalation = Escalation::none;
  Steady::time_point escalate_at = Steady::time_point::max();
  bool start_after_stop = false;
  bool remove_after_stop = false;

  // request() may send it requests: false for a hot update's successor until it has taken
  // over, and for its predecessor from the drain on.
  bool serves = true;
  bool candidate = false;       // A/B: an instance of the candidate version
  bool await_handover = false;  // a successor: started with kEnvAwaitHandover
  bool replaced = false;        // dropped from its extension once its process is down
  int requests_in_flight = 0;   // sent to it by request(), not answered yet
  // Retired while requests were in flight: stopped once they are answered, or at this time.
  std::string retire_reason;
  Steady::time_point retire_at = Steady::time_point::max();

  RestartTracker tracker;
  bool restart_pending = false;
  TimePoint restart_at{};
  std::uint64_t restarts = 0;

  bool alive() const noexcept { return pid > 0; }
};

struct Extension {
  std::shared_ptr<const Manifest> manifest;  // the baseline version
  std::vector<std::unique_ptr<ExtensionSlot>> slots;
  int next_number = 0;     // the next instance number
  bool updating = false;   // a hot update runs
  std::shared_ptr<const Manifest> update_to;  // its new version
  // A/B: the candidate version and its share of requests; the smooth weighted round robin's
  // credits; requests per version ([0] baseline, [1] candidate).
  std::shared_ptr<const Manifest> candidate;
  double candidate_weight = 0;
  double credit[2] = {0, 0};
  VersionCounters counts[2];
  // Supervisor::request(): calls under way (waiting for HEALTHY or for the reply), when the
  // last one began or ended (an on-demand extension idles from there), and the round robin.
  int requests_in_flight = 0;
  Steady::time_point last_request{};
  std::size_t next_instance = 0;
};

bool takes_requests(const ExtensionSlot& slot) {
  return slot.serves && slot.ending == ExtensionSlot::Ending::none &&
         (slot.state == LifecycleState::healthy || slot.state == LifecycleState::updating);
}

// Where a Supervisor::request() stands after one look at the extension.
struct RequestStep {
  std::optional<Error> error;  // give up with this
  std::string route;           // forward to this HEALTHY instance
  std::string version;         // the instance's version (A/B counters)
  std::string waiting_for;     // otherwise: what it waits for (for the timeout's message)
};

// ---- the supervisor -------------------------------------------------------------------------

struct Supervisor::Impl {
  // What an epoll event is about. Tokens, not fds, key the watches: a handler that closes one
  // fd must not let a later event of the same batch reach a reused fd number.
  enum class WatchKind : std::uint8_t { wake, pidfd, status, output };
  struct Watch {
    WatchKind kind;
    ExtensionSlot* slot;
    int fd;
  };

  SupervisorOptions options;
  std::shared_ptr<Clock> clock;
  std::unique_ptr<controlplane::ControlHost> host;
  CgroupRoots cgroups;
  fs::path log_dir;
  std::string group_name;  // "symphony-<pid>-<serial>"
  UniqueFd epoll;
  UniqueFd wake;
  UniqueFd dev_null;
  std::thread thread;
  std::atomic<std::thread::id> thread_id{};

  std::mutex mutex;  // guards `queue` (other threads post work to the supervisor thread)
  std::deque<std::function<void()>> queue;

  // Counts transitions: Supervisor::request() callers wait on it for an instance to be HEALTHY.
  std::mutex transitions_mutex;
  std::condition_variable transitions_changed;
  std::uint64_t transitions = 0;  // guarded by transitions_mutex

  // Supervisor thread only.
  std::map<std::string, std::unique_ptr<Extension>> extensions;  // by id
  std::map<std::string, ExtensionSlot*> by_route;
  std::map<std::uint64_t, Watch> watches;
  std::uint64_t next_token = 1;
  bool shutting_down = false;

  ~Impl() = default;

  // ---- threading ----

  bool on_supervisor_thread() const {
    return std::this_thread::get_id() == thread_id.load(std::memory_order_acquire);
  }

  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mutex);
      queue.push_back(std::move(task));
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake.get(), &one, sizeof one);
  }

  // Runs `f` on the supervisor thread and returns its result (at once if already there).
  template <typename F>
  auto call(F f) -> decltype(f()) {
    if (on_supervisor_thread()) return f();
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    post([&task] { task(); });
    return result.get();
  }

  // ---- epoll ----

  std::uint64_t watch(WatchKind kind, ExtensionSlot* slot, int fd) {
    const std::uint64_t token = next_token++;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = token;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &event) != 0) return 0;
    watches.emplace(token, Watch{kind, slot, fd});
    return token;
  }

  void unwatch(std::uint64_t& token) {
    auto it = watches.find(token);
    if (it != watches.end()) {
      ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
      watches.erase(it);
    }
    token = 0;
  }

  // ---- events ----

  // request() and update() wait for news about instances: a transition, or a change of which
  // instance serves.
  void wake_waiters() {
    {
      std::lock_guard lock(transitions_mutex);
      ++transitions;
    }
    transitions_changed.notify_all();
  }

  // A mark of the news so far (taken before looking); wait_news() returns once there is more,
  // false at `deadline`. Off the supervisor thread only.
  std::uint64_t news_mark() {
    std::lock_guard lock(transitions_mutex);
    return transitions;
  }
  bool wait_news(std::uint64_t mark, Steady::time_point deadline) {
    std::unique_lock lock(transitions_mutex);
    return transitions_changed.wait_until(lock, deadline, [&] { return transitions != mark; });
  }

  void transition(ExtensionSlot& slot, LifecycleState to, std::string why) {
    LifecycleEvent event;
    event.extension = slot.manifest->id;
    event.instance = slot.instance;
    event.generation = slot.registration.generation;
    event.from = slot.state;
    event.to = to;
    event.reason = std::move(why);
    event.pid = slot.pid;
    event.restarts = slot.restarts;
    event.at = Steady::now();
    slot.state = to;
    slot.reason = event.reason;
    wake_waiters();
    if (!slot.log.file().empty()) {
      slot.log.note(std::string(to_string(event.from)) + " -> " + to_string(to) + ": " +
                    event.reason);
    }
    // The state key gives late joiners the snapshot; its delta is the broadcast event.
    host->set_state("supervisor/" + slot.route, event.to_json());
    if (options.on_lifecycle) options.on_lifecycle(event);
  }

  // ---- spawning ----

  std::vector<std::string> environment_for(const ExtensionSlot& slot) const {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      if (std::strncmp(*e, "SYMPHONY_", 9) != 0) env.emplace_back(*e);
    }
    const Registration& r = slot.registration;
    env.push_back(std::string(controlplane::kEnvBus) + "=" + options.host.bus);
    env.push_back(std::string(controlplane::kEnvExtension) + "=" + r.extension);
    env.push_back(std::string(controlplane::kEnvInstance) + "=" + std::to_string(r.instance));
    env.push_back(std::string(controlplane::kEnvGeneration) + "=" + std::to_string(r.generation));
    env.push_back(std::string(controlplane::kEnvToken) + "=" + r.token);
    env.push_back(std::string(controlplane::kEnvControl) + "=" + host->control_endpoint());
    env.push_back(std::string(kEnvTopics) + "=" + declared_topics_json(*slot.manifest));
    if (slot.await_handover) env.push_back(std::string(kEnvAwaitHandover) + "=1");
    return env;
  }

  // STARTING: a fresh generation forked; or FAILED when that is impossible.
  void spawn(ExtensionSlot& slot, const std::string& why) {
    const Manifest& m = *slot.manifest;
    slot.restart_pending = false;
    slot.ending = ExtensionSlot::Ending::none;
    slot.ending_reason.clear();
    slot.escalation = ExtensionSlot::Escalation::none;
    slot.escalate_at = Steady::time_point::max();
    slot.start_deadline = Steady::time_point::max();
    slot.spawn_failure.clear();
    slot.hello = slot.ready = false;
    if (!slot.registration_fresh) {
      slot.registration = host->register_extension(m.id, slot.instance, m.hang_timeout);
    }
    slot.registration_fresh = false;

    if (slot.log.file().empty()) {
      auto log = LogSink::open(log_dir / (m.id + "." + std::to_string(slot.instance) + ".log"),
                               options.log_max_bytes);
      if (!log) return transition(slot, LifecycleState::failed, "log: " + log.error().message);
      slot.log = std::move(*log);
    }
    const bool uses_cgroups = cgroups.report().memory == LimitMechanism::cgroup_v1 ||
                              cgroups.report().memory == LimitMechanism::cgroup_v2 ||
                              cgroups.report().cpu == LimitMechanism::cgroup_v1;
    if (uses_cgroups && !slot.cgroup) {
      auto group = ExtensionCgroup::create(cgroups, m.id + "." + std::to_string(slot.instance),
                                           m.limits);
      if (!group) return transition(slot, LifecycleState::failed, "cgroup: " + group.error().message);
      slot.cgroup = std::move(*group);
    }
    std::vector<UniqueFd> join_files;
    if (slot.cgroup) {
      // A grandchild of the previous generation that left its process group is still here.
      slot.cgroup->kill_all();
      slot.oom_baseline = slot.cgroup->oom_kills();
      auto files = slot.cgroup->open_join_files();
      if (!files) return transition(slot, LifecycleState::failed, "cgroup: " + files.error().message);
      join_files = std::move(*files);
    }
    int output_pipe[2];
    if (::pipe2(output_pipe, O_CLOEXEC) != 0) {
      return transition(slot, LifecycleState::failed,
                        std::string("log pipe: ") + std::strerror(errno));
    }
    UniqueFd output_read(output_pipe[0]);
    UniqueFd output_write(output_pipe[1]);
    raise_above_stdio(output_read);
    raise_above_stdio(output_write);
    ::fcntl(output_read.get(), F_SETFL, O_NONBLOCK);

    SpawnPlan plan;
    plan.argv.push_back(m.executable.string());
    plan.argv.insert(plan.argv.end(), m.args.begin(), m.args.end());
    plan.env = environment_for(slot);
    for (const UniqueFd& fd : join_files) plan.cgroup_procs.push_back(fd.get());
    if (cgroups.report().memory == LimitMechanism::rlimit) plan.rlimit_data = m.limits.memory_bytes;
    plan.stdin_fd = dev_null.get();
    plan.output_fd = output_write.get();
    auto spawned = spawn_process(plan);
    if (!spawned) return transition(slot, LifecycleState::failed, spawned.error().message);

    slot.pid = spawned->pid;
    slot.pidfd = std::move(spawned->pidfd);
    slot.status = std::move(spawned->status);
    slot.output = std::move(output_read);
    slot.pidfd_token = watch(WatchKind::pidfd, &slot, slot.pidfd.get());
    slot.status_token = watch(WatchKind::status, &slot, slot.status.get());
    slot.output_token = watch(WatchKind::output, &slot, slot.output.get());
    slot.tracker.started(clock->now());
    // An on-demand extension idles from its start too (also one started by hand).
    slot.extension.last_request = std::max(slot.extension.last_request, Steady::now());
    slot.log.note("generation " + std::to_string(slot.registration.generation) + ", pid " +
                  std::to_string(slot.pid) + ": " + m.executable.string());
    transition(slot, LifecycleState::starting,
               why + " (pid " + std::to_string(slot.pid) + ", generation " +
                   std::to_string(slot.registration.generation) + ")");
  }

  // The exec-status pipe: EOF means exec succeeded (RUNNING); a record means a step failed.
  void on_status(ExtensionSlot& slot) {
    if (!slot.status) return;
    unsigned char record[kSpawnFailureSize];
    const ssize_t n = ::read(slot.status.get(), record, sizeof record);
    if (n < 0 && errno == EAGAIN) return;
    unwatch(slot.status_token);
    slot.status.reset();
    if (n == static_cast<ssize_t>(sizeof record)) {
      slot.spawn_failure = describe_spawn_failure(record);
      return;  // the child _exits: its pidfd reports it
    }
    slot.exec_at = Steady::now();
    slot.start_deadline = slot.exec_at + slot.manifest->start_timeout;
    transition(slot, LifecycleState::running, "exec succeeded");
  }

  void on_output(ExtensionSlot& slot) {
    if (!slot.output) return;
    if (!slot.log.drain(slot.output.get())) {
      unwatch(slot.output_token);
      slot.output.reset();
    }
  }

  // The pidfd is readable: the process has exited. Reap exactly it, find out why, and decide.
  void on_exit(ExtensionSlot& slot) {
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(slot.pidfd.get()), &info, WEXITED | WNOHANG) != 0 ||
        info.si_pid == 0) {
      return;  // not yet (or already reaped)
    }
    // Whatever it printed last, and whether exec happened, before the verdict.
    on_status(slot);
    if (slot.output) {
      slot.log.drain(slot.output.get());
      unwatch(slot.output_token);
      slot.output.reset();
    }
    unwatch(slot.pidfd_token);
    slot.pidfd.reset();
    const pid_t dead = slot.pid;
    // Its process group and cgroup: nothing of this generation outlives it.
    ::kill(-dead, SIGKILL);
    std::string oom;
    if (slot.cgroup) {
      slot.cgroup->kill_all();
      const std::uint64_t kills = slot.cgroup->oom_kills();
      if (kills > slot.oom_baseline) {
        oom = "memory limit " + mib_text(slot.manifest->limits.memory_bytes) +
              " reached: killed by the kernel's OOM killer (" +
              (cgroups.v2() ? "memory.events" : "memory.oom_control") + " oom_kill " +
              std::to_string(kills) + ", " + to_string(cgroups.report().memory) + "); ";
      }
    }
    std::string status = describe_exit(info);
    if (!slot.log.last_line().empty() && slot.ending != ExtensionSlot::Ending::requested &&
        info.si_code == CLD_EXITED && info.si_status != 0) {
      status += "; last output: " + slot.log.last_line();
    }
    slot.log.note("pid " + std::to_string(dead) + " " + status);
    slot.hello = slot.ready = false;
    slot.start_deadline = Steady::time_point::max();
    slot.escalate_at = Steady::time_point::max();
    slot.escalation = ExtensionSlot::Escalation::none;
    // Requests in flight to the dead generation fail now, with why it died (not at their
    // timeout, and not with a bare "replaced by a new generation")...
    std::string death = oom;
    if (slot.ending == ExtensionSlot::Ending::hang) death += slot.ending_reason + "; ";
    death += status;
    host->mark_gone(slot.route, slot.route + " " + death);
    // ...and the next generation is registered now: the dead one's token is refused from here on.
    slot.registration = host->register_extension(slot.manifest->id, slot.instance,
                                                 slot.manifest->hang_timeout);
    slot.registration_fresh = true;
    const ExtensionSlot::Ending ending = slot.ending;
    slot.ending = ExtensionSlot::Ending::none;

    if (!slot.spawn_failure.empty()) {
      transition(slot, LifecycleState::failed,
                 "could not start " + slot.manifest->executable.string() + ": " +
                     slot.spawn_failure);
      slot.pid = 0;
      return;
    }
    if (ending == ExtensionSlot::Ending::requested) {
      // The stop's cause stays in the reason (a stop by hand, an idle on-demand extension).
      transition(slot, LifecycleState::terminated,
                 "stopped (" + slot.ending_reason + "): " + status);
      slot.pid = 0;
      if (slot.remove_after_stop) return;  // the caller removes it once everything is down
      if (slot.start_after_stop && !shutting_down) {
        slot.start_after_stop = false;
        spawn(slot, "restarted by hand");
      }
      return;
    }
    const std::string& why = death;
    if (shutting_down || slot.replaced) {
      transition(slot, LifecycleState::crashed, why);
      slot.pid = 0;
      return;
    }
    const RestartDecision decision = slot.tracker.crashed(clock->now());
    switch (decision.action) {
      case RestartDecision::Action::fail:
        transition(slot, LifecycleState::crashed, why);
        slot.pid = 0;
        transition(slot, LifecycleState::failed, decision.reason);
        return;
      case RestartDecision::Action::wait:
        transition(slot, LifecycleState::crashed, why + "; " + decision.reason);
        slot.pid = 0;
        return;
      case RestartDecision::Action::restart:
        transition(slot, LifecycleState::crashed, why + "; " + decision.reason);
        slot.pid = 0;
        ++slot.restarts;
        if (decision.delay.count() == 0) {
          spawn(slot, decision.reason);
        } else {
          slot.restart_pending = true;
          slot.restart_at = decision.at;
        }
        return;
    }
  }

  // ---- stopping and killing ----

  void signal_group(ExtensionSlot& slot, int sig) {
    if (!slot.alive()) return;
    ::kill(-slot.pid, sig);
    ::kill(slot.pid, sig);  // in case it has not reached setpgid yet
    if (sig == SIGTERM) {
      // A stopped process (SIGSTOP) would hold SIGTERM pending forever.
      ::kill(-slot.pid, SIGCONT);
    }
  }

  // Starts ending `slot`'s process: a stop asks first (the stop command to a HEALTHY one, half
  // the grace, then SIGTERM); a hang goes straight to SIGTERM; SIGKILL after the grace.
  void begin_kill(ExtensionSlot& slot, ExtensionSlot::Ending ending, const std::string& why) {
    if (!slot.alive() || slot.ending == ExtensionSlot::Ending::requested) return;
    if (slot.ending == ExtensionSlot::Ending::hang) {
      // Already being killed for a hang; a stop request now only changes how it ends.
      if (ending == ExtensionSlot::Ending::requested) slot.ending = ending;
      return;
    }
    slot.ending = ending;
    slot.ending_reason = why;
    const auto now = Steady::now();
    if (ending == ExtensionSlot::Ending::requested &&
        (slot.state == LifecycleState::healthy || slot.state == LifecycleState::updating)) {
      host->command(slot.route, "stop", "{}", options.stop_grace / 2, nullptr);
      slot.escalation = ExtensionSlot::Escalation::command_sent;
      slot.escalate_at = now + options.stop_grace / 2;
    } else {
      signal_group(slot, SIGTERM);
      slot.escalation = ExtensionSlot::Escalation::term_sent;
      slot.escalate_at = now + (ending == ExtensionSlot::Ending::hang ? options.kill_grace
                                                                       : options.stop_grace / 2);
    }
    transition(slot, LifecycleState::stopping, why);
  }

  void escalate(ExtensionSlot& slot) {
    if (!slot.alive()) return;
    if (slot.escalation == ExtensionSlot::Escalation::command_sent) {
      signal_group(slot, SIGTERM);
      slot.escalation = ExtensionSlot::Escalation::term_sent;
      slot.escalate_at = Steady::now() + options.stop_grace / 2;
      slot.log.note("no exit after the stop command: SIGTERM");
    } else if (slot.escalation == ExtensionSlot::Escalation::term_sent) {
      signal_group(slot, SIGKILL);
      if (slot.cgroup) slot.cgroup->kill_all();
      slot.escalation = ExtensionSlot::Escalation::kill_sent;
      slot.escalate_at = Steady::time_point::max();
      slot.log.note("no exit after SIGTERM: SIGKILL to its process group and cgroup");
    }
  }

  // ---- control-plane news (posted from the control plane's I/O thread) ----

  // The peer's registration as the control plane sees it now (generation check: news about an
  // older generation is stale once the next one is registered).
  std::optional<controlplane::PeerInfo> peer_of(const ExtensionSlot& slot) const {
    for (controlplane::PeerInfo& peer : host->peers()) {
      if (peer.registration.route() == slot.route &&
          peer.registration.generation == slot.registration.generation) {
        return peer;
      }
    }
    return std::nullopt;
  }

  void maybe_healthy(ExtensionSlot& slot) {
    if (slot.state != LifecycleState::running || !slot.hello || !slot.ready) return;
    slot.start_deadline = Steady::time_point::max();
    const auto after = std::chrono::duration_cast<milliseconds>(Steady::now() - slot.exec_at);
    transition(slot, LifecycleState::healthy,
               "hello and ready " + std::to_string(after.count()) + " ms after exec");
  }

  void on_peer(const PeerEvent& event) {
    auto it = by_route.find(event.route);
    if (it == by_route.end()) return;
    ExtensionSlot& slot = *it->second;
    if (!slot.alive()) return;
    const auto peer = peer_of(slot);
    if (!peer) return;  // an older generation's news
    if (event.state == PeerState::connected && peer->state == PeerState::connected) {
      // Its hello can overtake the exec-status EOF (both are news of the same exec).
      if (slot.state == LifecycleState::starting) on_status(slot);
      slot.hello = true;
      maybe_healthy(slot);
    } else if (event.state == PeerState::unresponsive && slot.hello &&
               (slot.state == LifecycleState::healthy || slot.state == LifecycleState::running ||
                slot.state == LifecycleState::updating)) {
      begin_kill(slot, ExtensionSlot::Ending::hang, "hang: " + event.reason);
    }
  }

  void on_ready(const std::string& route) {
    auto it = by_route.find(route);
    if (it == by_route.end()) return;
    ExtensionSlot& slot = *it->second;
    // Before the hello of the current generation it can only be an older generation's.
    if (!slot.alive() || !slot.hello) return;
    slot.ready = true;
    maybe_healthy(slot);
  }

  // ---- timers ----

  milliseconds hang_check_period() const {
    milliseconds period{250};
    for (const auto& [id, ext] : extensions) {
      period = std::min(period, ext->manifest->hang_timeout / 4);
    }
    return std::max(period, milliseconds(10));
  }

  Steady::time_point next_hang_check = Steady::time_point::min();

  void check_hangs(Steady::time_point now) {
    bool any_healthy = false;
    const auto watched = [](const ExtensionSlot& slot) {
      return slot.state == LifecycleState::healthy || slot.state == LifecycleState::updating;
    };
    for (auto& [route, slot] : by_route) any_healthy |= watched(*slot);
    if (!any_healthy) return;
    std::map<std::string, controlplane::PeerInfo> peers;
    for (controlplane::PeerInfo& peer : host->peers()) {
      peers.emplace(peer.registration.route(), std::move(peer));
    }
    for (auto& [route, slot] : by_route) {
      if (!watched(*slot)) continue;
      auto it = peers.find(route);
      if (it == peers.end() || it->second.registration.generation != slot->registration.generation) {
        continue;
      }
      const auto silent = now - it->second.last_seen;
      const milliseconds timeout = slot->manifest->hang_timeout;
      if (silent > timeout) {
        begin_kill(*slot, ExtensionSlot::Ending::hang,
                   "hang: nothing heard for " +
                       std::to_string(std::chrono::duration_cast<milliseconds>(silent).count()) +
                       " ms (hang_timeout_ms " + std::to_string(timeout.count()) + ")");
      }
    }
  }

  // Runs what is due; returns how long epoll may sleep.
  int run_timers() {
    const auto now = Steady::now();
    const TimePoint policy_now = clock->now();
    Steady::time_point next = now + milliseconds(1000);
    for (auto& [route, slot_ptr] : by_route) {
      ExtensionSlot& slot = *slot_ptr;
      if (slot.alive() && slot.escalate_at <= now) escalate(slot);
      finish_retiring(slot, now);
      if (slot.alive() && slot.state == LifecycleState::running && slot.start_deadline <= now) {
        begin_kill(slot, ExtensionSlot::Ending::hang,
                   "start timeout: not HEALTHY " +
                       std::to_string(slot.manifest->start_timeout.count()) +
                       " ms after exec (hello " + (slot.hello ? "seen" : "not seen") +
                       ", ready not seen)");
      }
      if (slot.restart_pending && !shutting_down && slot.restart_at <= policy_now) {
        spawn(slot, "restart after backoff");
      }
      if (slot.alive()) {
        next = std::min({next, slot.escalate_at, slot.start_deadline, slot.retire_at});
      }
    }
    for (auto& [id, ext] : extensions) {
      if (const auto idle_at = idle_deadline(*ext)) {
        if (*idle_at <= now) {
          stop(id, false,
               "idle: no request for " +
                   std::to_string(
                       std::chrono::duration_cast<milliseconds>(now - ext->last_request).count()) +
                   " ms (idle_stop " + std::to_string(ext->manifest->idle_stop.count()) + " ms)");
        } else {
          next = std::min(next, *idle_at);
        }
      }
    }
    if (now >= next_hang_check) {
      check_hangs(now);
      next_hang_check = now + hang_check_period();
    }
    next = std::min(next, next_hang_check);
    auto wait = std::chrono::ceil<milliseconds>(next - Steady::now());
    // Policy deadlines are in the policy clock's time: a manual clock wakes us when it moves.
    for (auto& [route, slot] : by_route) {
      if (slot->restart_pending) {
        wait = std::min(wait, std::chrono::ceil<milliseconds>(slot->restart_at - policy_now));
      }
    }
    return static_cast<int>(std::clamp<std::int64_t>(wait.count(), 0, 1000));
  }

  // When an on-demand extension that runs and serves no request is stopped as idle.
  static std::optional<Steady::time_point> idle_deadline(const Extension& ext) {
    if (ext.manifest->start != StartMode::on_demand || ext.requests_in_flight > 0) {
      return std::nullopt;
    }
    bool running = false;
    for (const auto& slot : ext.slots) {
      running |= slot->alive() && slot->ending != ExtensionSlot::Ending::requested;
    }
    if (!running) return std::nullopt;
    return ext.last_request + ext.manifest->idle_stop;
  }

  bool any_alive() const {
    for (const auto& [route, slot] : by_route) {
      if (slot->alive()) return true;
    }
    return false;
  }

  void run() {
    thread_id.store(std::this_thread::get_id(), std::memory_order_release);
    epoll_event events[32];
    while (!(shutting_down && !any_alive())) {
      const int timeout = run_timers();
      const int n = ::epoll_wait(epoll.get(), events, 32, timeout);
      for (int i = 0; i < n; ++i) {
        auto it = watches.find(events[i].data.u64);
        if (it == watches.end()) continue;  // closed by an earlier event of this batch
        const Watch w = it->second;
        switch (w.kind) {
          case WatchKind::wake: {
            std::uint64_t count = 0;
            [[maybe_unused]] const ssize_t r = ::read(wake.get(), &count, sizeof count);
            std::deque<std::function<void()>> tasks;
            {
              std::lock_guard lock(mutex);
              tasks.swap(queue);
            }
            for (auto& task : tasks) task();
            break;
          }
          case WatchKind::pidfd: on_exit(*w.slot); break;
          case WatchKind::status: on_status(*w.slot); break;
          case WatchKind::output: on_output(*w.slot); break;
        }
      }
      reap_replaced();
    }
    // Everything is down: the groups can go.
    for (auto& [id, ext] : extensions) {
      for (auto& slot : ext->slots) {
        if (slot->cgroup) slot->cgroup->remove();
      }
    }
    cgroups.remove();
  }

  // ---- operations (supervisor thread) ----

  Extension* find(std::string_view id) {
    auto it = extensions.find(std::string(id));
    return it == extensions.end() ? nullptr : it->second.get();
  }

  Error not_found(std::string_view id) const {
    return Error{Errc::not_found, "no extension '" + std::string(id) + "' is supervised"};
  }

  // A new instance of `version` with the extension's next number, and its checkpoint store.
  engine::Result<std::unique_ptr<ExtensionSlot>> make_slot(Extension& ext,
                                                           std::shared_ptr<const Manifest> version) {
    auto slot = std::make_unique<ExtensionSlot>(ext, ext.next_number, version);
    if (version->checkpoint_bytes > 0) {
      auto store = engine::CheckpointStore::create(options.host.bus, version->id, ext.next_number,
                                                   version->checkpoint_bytes);
      if (!store) {
        return tl::unexpected(Error{store.error().code, "extension '" + version->id +
                                                            "': checkpoint: " +
                                                            store.error().message});
      }
      slot->checkpoint = std::move(*store);
    }
    ++ext.next_number;
    return slot;
  }

  // Adds a slot made by make_slot() to its extension and the route table (CREATED).
  ExtensionSlot& adopt(Extension& ext, std::unique_ptr<ExtensionSlot> slot, std::string why) {
    ExtensionSlot& added = *slot;
    ext.slots.push_back(std::move(slot));
    by_route.emplace(added.route, &added);
    transition(added, LifecycleState::created, std::move(why));
    return added;
  }

  // Instances replaced by a hot update or dropped by an A/B test, once their process is down.
  void reap_replaced() {
    for (auto& [id, ext] : extensions) {
      auto& slots = ext->slots;
      for (auto it = slots.begin(); it != slots.end();) {
        ExtensionSlot& slot = **it;
        if (!slot.replaced || slot.alive()) {
          ++it;
          continue;
        }
        if (slot.cgroup) slot.cgroup->remove();
        by_route.erase(slot.route);
        it = slots.erase(it);
        ext->next_instance = 0;
      }
    }
  }

  // Ends an instance that is no longer wanted (its version replaced or dropped): stopped, then
  // forgotten, never restarted.
  void retire(ExtensionSlot& slot, const std::string& why) {
    slot.replaced = true;
    slot.remove_after_stop = true;
    slot.serves = false;
    slot.restart_pending = false;
    if (slot.alive() && slot.requests_in_flight > 0) {
      // Its requests in flight are answered first (bounded by stop_grace).
      slot.retire_reason = why;
      slot.retire_at = Steady::now() + options.stop_grace;
    } else if (slot.alive()) {
      begin_kill(slot, ExtensionSlot::Ending::requested, why);
    } else if (slot.state != LifecycleState::terminated) {
      transition(slot, LifecycleState::terminated, why + " (was not running)");
    }
    wake_waiters();
  }

  // A retired instance whose requests are answered (or which waited long enough) stops now.
  void finish_retiring(ExtensionSlot& slot, Steady::time_point now) {
    if (slot.retire_reason.empty() || (slot.requests_in_flight > 0 && now < slot.retire_at)) return;
    const std::string why = std::exchange(slot.retire_reason, std::string());
    slot.retire_at = Steady::time_point::max();
    if (slot.alive()) begin_kill(slot, ExtensionSlot::Ending::requested, why);
  }

  engine::Result<void> add(Manifest manifest) {
    if (shutting_down) return tl::unexpected(Error{Errc::unavailable, "supervisor is stopping"});
    if (extensions.count(manifest.id) != 0) {
      return tl::unexpected(Error{Errc::invalid_argument,
                                  "extension '" + manifest.id + "' is already supervised"});
    }
    if (auto limits = check_limits(manifest); !limits) return tl::unexpected(limits.error());
    auto ext = std::make_unique<Extension>();
    ext->manifest = std::make_shared<const Manifest>(std::move(manifest));
    ext->counts[0].version = ext->manifest->version;
    for (int i = 0; i < ext->manifest->instances; ++i) {
      // After a host killed with -9 this carries its last committed checkpoint over.
      auto slot = make_slot(*ext, ext->manifest);
      if (!slot) return tl::unexpected(std::move(slot.error()));
      ext->slots.push_back(std::move(*slot));
    }
    for (auto& slot : ext->slots) by_route.emplace(slot->route, slot.get());
    Extension& added = *ext;
    extensions.emplace(added.manifest->id, std::move(ext));
    for (auto& slot : added.slots) {
      std::string why = "manifest added";
      if (slot->checkpoint && slot->checkpoint->recovered()) {
        why += "; checkpoint generation " +
               std::to_string(slot->checkpoint->recovered()->generation) +
               " recovered from a previous host";
      }
      transition(*slot, LifecycleState::created, why);
    }
    if (added.manifest->start == StartMode::eager) {
      for (auto& slot : added.slots) spawn(*slot, "eager start");
    }
    return {};
  }

  engine::Result<void> start(std::string_view id, bool by_hand) {
    Extension* ext = find(id);
    if (ext == nullptr) return tl::unexpected(not_found(id));
    for (auto& slot : ext->slots) {
      if (slot->alive()) continue;
      if (by_hand) slot->tracker.reset();
      spawn(*slot, by_hand ? "started by hand" : "start");
    }
    return {};
  }

  engine::Result<void> stop(std::string_view id, bool then_start, std::string why = {}) {
    Extension* ext = find(id);
    if (ext == nullptr) return tl::unexpected(not_found(id));
    if (why.empty()) why = then_start ? "restart requested" : "stop requested";
    for (auto& slot : ext->slots) {
      slot->restart_pending = false;
      if (slot->alive()) {
        slot->start_after_stop = then_start;
        if (then_start) slot->tracker.reset();
        begin_kill(*slot, ExtensionSlot::Ending::requested, why);
      } else if (then_start) {
        slot->tracker.reset();
        spawn(*slot, "restarted by hand");
      } else if (slot->state != LifecycleState::terminated &&
                 slot->state != LifecycleState::created) {
        transition(*slot, LifecycleState::terminated, "stop requested (was not running)");
      }
    }
    return {};
  }

  // ---- requests (Supervisor::request) ----

  engine::Result<void> enter_request(std::string_view id) {
    Extension* ext = find(id);
    if (ext == nullptr) return tl::unexpected(not_found(id));
    ++ext->requests_in_flight;
    ext->last_request = Steady::now();
    return {};
  }

  void leave_request(const std::string& id) {
    Extension* ext = find(id);
    if (ext == nullptr) return;
    --ext->requests_in_flight;
    ext->last_request = Steady::now();  // the idle time counts from here
  }

  // A HEALTHY instance to forward to (round robin); else on-demand instances that are down are
  // started, and the caller waits, unless no instance runs or is about to.
  RequestStep request_step(std::string_view id) {
    Extension* ext = find(id);
    if (ext == nullptr) return {not_found(id), {}, {}, {}};
    const std::size_t count = ext->slots.size();
    // A/B: the version first (smooth weighted round robin over the versions that can take it),
    // then round robin over that version's instances.
    bool can[2] = {false, false};
    for (const auto& slot : ext->slots) can[slot->candidate] |= takes_requests(*slot);
    bool version = can[1] && !can[0];
    if (ext->candidate && can[0] && can[1]) {
      ext->credit[0] += 1 - ext->candidate_weight;
      ext->credit[1] += ext->candidate_weight;
      version = ext->credit[1] > ext->credit[0];
      ext->credit[version] -= 1;
    }
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t index = (ext->next_instance + k) % count;
      ExtensionSlot& slot = *ext->slots[index];
      if (slot.candidate == version && takes_requests(slot)) {
        ext->next_instance = (index + 1) % count;
        ++ext->counts[version].requests;
        ++slot.requests_in_flight;
        return {std::nullopt, slot.route, slot.manifest->version, {}};
      }
    }
    const bool on_demand = ext->manifest->start == StartMode::on_demand;
    bool coming = false;
    std::string states;
    for (auto& slot : ext->slots) {
      // An on-demand instance that is down on purpose (never started, stopped, idle) starts;
      // a crashed or failed one is left to its restart policy.
      if (on_demand && !shutting_down && !slot->remove_after_stop && !slot->alive() &&
          !slot->restart_pending &&
          (slot->state == LifecycleState::created || slot->state == LifecycleState::terminated)) {
        spawn(*slot, "on-demand start: a request for " + ext->manifest->id);
      }
      coming |= slot->alive() || slot->restart_pending;
      states += (states.empty() ? "" : "; ") + slot->route + " " + to_string(slot->state) + ": " +
                slot->reason;
    }
    if (!coming) {
      return {Error{Errc::unavailable,
                    "extension '" + ext->manifest->id + "' is not running (" + states + ")"},
              {},
              {},
              {}};
    }
    return {std::nullopt, {}, {}, states};
  }

  // ---- hot update (Supervisor::update runs these steps from the caller's thread) ----

  ExtensionSlot* slot_at(const std::string& route) {
    auto it = by_route.find(route);
    return it == by_route.end() ? nullptr : it->second;
  }

  // An extension with iceoryx topics needs RouDi. The host takes its lease first, so that a RouDi
  // it starts is the host's child, in the host's cgroup: started by the extension, RouDi would
  // live in the extension's cgroup and die with it (and with it every iceoryx user's topics).
  static engine::Result<void> ensure_roudi_for(const Manifest& m) {
    const auto iceoryx = [](const TopicDeclaration& t) {
      return t.transport == engine::TopicTransport::iceoryx;
    };
    if (std::none_of(m.publishes.begin(), m.publishes.end(), iceoryx) &&
        std::none_of(m.subscribes.begin(), m.subscribes.end(), iceoryx)) {
      return {};
    }
#if defined(SYMPHONY_SUPERVISOR_HAVE_ICEORYX)
    if (auto lease = engine::roudi::acquire_lease(); !lease) {
      return tl::unexpected(Error{lease.error().code, "extension '" + m.id +
                                                          "' declares iceoryx topics, but RouDi "
                                                          "is not available: " +
                                                          lease.error().message});
    }
    return {};
#else
    return tl::unexpected(Error{Errc::unsupported, "extension '" + m.id +
                                                       "' declares iceoryx topics, and this "
                                                       "build has no iceoryx transport"});
#endif
  }

  engine::Result<void> check_limits(const Manifest& m) const {
    const LimitReport& r = cgroups.report();
    if (m.limits.cpu_cores > 0 && r.cpu == LimitMechanism::none) {
      return tl::unexpected(Error{Errc::unsupported,
                                  "extension '" + m.id + "': limits.cpu_cores cannot be "
                                  "enforced here (" + r.why + ")"});
    }
    return ensure_roudi_for(m);
  }

  // The routes of the instances to replace, in order.
  engine::Result<std::vector<std::string>> begin_update(std::shared_ptr<const Manifest> next) {
    if (shutting_down) return tl::unexpected(Error{Errc::unavailable, "supervisor is stopping"});
    Extension* ext = find(next->id);
    if (ext == nullptr) return tl::unexpected(not_found(next->id));
    if (ext->updating) {
      return tl::unexpected(Error{Errc::invalid_argument,
                                  "extension '" + next->id + "' is already being updated"});
    }
    if (ext->candidate) {
      return tl::unexpected(Error{Errc::invalid_argument,
                                  "extension '" + next->id + "' runs an A/B test (version " +
                                      ext->candidate->version + "): end it first"});
    }
    if (auto limits = check_limits(*next); !limits) return tl::unexpected(limits.error());
    ext->updating = true;
    ext->update_to = std::move(next);
    std::vector<std::string> routes;
    for (const auto& slot : ext->slots) {
      if (!slot->replaced) routes.push_back(slot->route);
    }
    return routes;
  }

  void end_update(const std::string& id, bool done) {
    Extension* ext = find(id);
    if (ext == nullptr) return;
    if (done) {
      ext->manifest = ext->update_to;
      ext->counts[0] = VersionCounters{};
      ext->counts[0].version = ext->manifest->version;
    }
    ext->updating = false;
    ext->update_to.reset();
  }

  // Starts the successor of `old_route` (serving nothing yet); its route.
  engine::Result<std::string> start_successor(const std::string& id, const std::string& old_route) {
    Extension* ext = find(id);
    ExtensionSlot* old = slot_at(old_route);
    if (ext == nullptr || old == nullptr) {
      return tl::unexpected(Error{Errc::not_found, old_route + " is gone"});
    }
    auto made = make_slot(*ext, ext->update_to);
    if (!made) return tl::unexpected(std::move(made.error()));
    (*made)->serves = false;
    (*made)->await_handover = old->alive();
    const std::string change = old->manifest->version + " -> " + ext->update_to->version;
    ExtensionSlot& next = adopt(*ext, std::move(*made), "update " + change + " of " + old_route);
    if (old->state == LifecycleState::healthy) {
      transition(*old, LifecycleState::updating, "update " + change + ": " + next.route +
                                                     " starting");
    }
    spawn(next, "update " + change + " of " + old_route);
    return next.route;
  }

  // nullopt while the successor is on its way; "" once HEALTHY; else why it will not be.
  std::optional<std::string> successor_verdict(const std::string& route) {
    ExtensionSlot* slot = slot_at(route);
    if (slot == nullptr) return std::string("it is gone");
    switch (slot->state) {
      case LifecycleState::healthy: return std::string();
      case LifecycleState::starting:
      case LifecycleState::running:
      case LifecycleState::created:
        return std::nullopt;
      default: return std::string(to_string(slot->state)) + ": " + slot->reason;
    }
  }

  // Rolls an instance's update back: the successor goes, the predecessor serves again.
  void roll_back(const std::string& old_route, const std::string& new_route,
                 const std::string& why) {
    if (ExtensionSlot* next = slot_at(new_route)) retire(*next, "update rolled back: " + why);
    if (ExtensionSlot* old = slot_at(old_route)) {
      old->serves = true;
      if (old->state == LifecycleState::updating) {
        transition(*old, LifecycleState::healthy, "update rolled back: " + why);
      }
      wake_waiters();
    }
  }

  // From here requests wait for the successor; true if the predecessor runs (drain it).
  bool stop_serving(const std::string& route) {
    ExtensionSlot* old = slot_at(route);
    if (old == nullptr) return false;
    old->serves = false;
    return old->alive() && old->hello;
  }

  engine::Result<void> carry_checkpoint(const std::string& old_route, const std::string& new_route) {
    ExtensionSlot* old = slot_at(old_route);
    ExtensionSlot* next = slot_at(new_route);
    if (old == nullptr || next == nullptr) {
      return tl::unexpected(Error{Errc::not_found, "an instance went away during the hand-over"});
    }
    if (!old->checkpoint || !next->checkpoint) return {};
    auto last = old->checkpoint->latest();
    if (!last) return tl::unexpected(last.error());
    if (!*last) return {};
    return next->checkpoint->carry_over(**last);
  }

  // The successor serves; the predecessor is stopped and forgotten.
  void complete_handover(const std::string& old_route, const std::string& new_route) {
    ExtensionSlot* next = slot_at(new_route);
    ExtensionSlot* old = slot_at(old_route);
    const std::string version = next != nullptr ? next->manifest->version : std::string("?");
    if (next != nullptr) next->serves = true;
    if (old != nullptr) retire(*old, "replaced by " + version + " (" + new_route + ")");
    wake_waiters();
  }

  // ---- A/B ----

  static engine::Result<void> check_weight(double weight) {
    if (!(weight >= 0 && weight <= 1)) {
      return tl::unexpected(Error{Errc::invalid_argument,
                                  "A/B weight must be between 0 and 1 (got " +
                                      std::to_string(weight) + ")"});
    }
    return {};
  }

  // The extension `id`, which must run an A/B test.
  engine::Result<Extension*> running_ab(std::string_view id) {
    Extension* ext = find(id);
    if (ext == nullptr) return tl::unexpected(not_found(id));
    if (!ext->candidate) {
      return tl::unexpected(Error{Errc::invalid_argument,
                                  "extension '" + std::string(id) + "' runs no A/B test"});
    }
    return ext;
  }

  engine::Result<void> start_ab(std::shared_ptr<const Manifest> candidate, double weight) {
    if (shutting_down) return tl::unexpected(Error{Errc::unavailable, "supervisor is stopping"});
    Extension* ext = find(candidate->id);
    if (ext == nullptr) return tl::unexpected(not_found(candidate->id));
    if (ext->updating || ext->candidate) {
      return tl::unexpected(Error{Errc::invalid_argument,
                                  "extension '" + candidate->id + "' is being updated or already "
                                  "runs an A/B test"});
    }
    if (candidate->version == ext->manifest->version) {
      return tl::unexpected(Error{Errc::invalid_argument,
                                  "A/B of '" + candidate->id + "': the candidate has the same "
                                  "version as the running one (" + candidate->version + ")"});
    }
    if (auto valid = check_weight(weight); !valid) return tl::unexpected(valid.error());
    if (auto limits = check_limits(*candidate); !limits) return tl::unexpected(limits.error());
    std::vector<std::unique_ptr<ExtensionSlot>> made;
    for (int i = 0; i < candidate->instances; ++i) {
      auto slot = make_slot(*ext, candidate);
      if (!slot) return tl::unexpected(std::move(slot.error()));
      (*slot)->candidate = true;
      made.push_back(std::move(*slot));
    }
    ext->candidate = candidate;
    ext->candidate_weight = weight;
    ext->credit[0] = ext->credit[1] = 0;
    ext->counts[0] = VersionCounters{};
    ext->counts[0].version = ext->manifest->version;
    ext->counts[1] = VersionCounters{};
    ext->counts[1].version = candidate->version;
    ext->counts[1].candidate = true;
    for (auto& slot : made) {
      ExtensionSlot& added = adopt(*ext, std::move(slot),
                                   "A/B candidate " + candidate->version + " (weight " +
                                       std::to_string(weight) + ")");
      if (candidate->start == StartMode::eager) spawn(added, "A/B candidate start");
    }
    return {};
  }

  engine::Result<void> set_ab_weight(std::string_view id, double weight) {
    auto ab = running_ab(id);
    if (!ab) return tl::unexpected(ab.error());
    Extension* ext = *ab;
    if (auto valid = check_weight(weight); !valid) return tl::unexpected(valid.error());
    ext->candidate_weight = weight;
    ext->credit[0] = ext->credit[1] = 0;
    return {};
  }

  engine::Result<void> end_ab(std::string_view id, AbOutcome keep) {
    auto ab = running_ab(id);
    if (!ab) return tl::unexpected(ab.error());
    Extension* ext = *ab;
    const bool keep_candidate = keep == AbOutcome::keep_candidate;
    const std::string kept = keep_candidate ? ext->candidate->version : ext->manifest->version;
    for (auto& slot : ext->slots) {
      if (slot->replaced) continue;
      if (slot->candidate != keep_candidate) {
        retire(*slot, "A/B ended: " + kept + " kept");
      } else {
        slot->candidate = false;
      }
    }
    if (keep_candidate) ext->manifest = ext->candidate;
    ext->candidate.reset();
    ext->counts[0] = ext->counts[keep_candidate];
    ext->counts[0].candidate = false;
    ext->counts[1] = VersionCounters{};
    return {};
  }

  std::vector<VersionCounters> version_counters(std::string_view id) {
    Extension* ext = find(id);
    if (ext == nullptr) return {};
    std::vector<VersionCounters> all{ext->counts[0]};
    if (ext->candidate) all.push_back(ext->counts[1]);
    for (VersionCounters& v : all) {
      v.weight = !ext->candidate ? 1.0 : v.candidate ? ext->candidate_weight
                                                      : 1 - ext->candidate_weight;
      v.instances = 0;
      for (const auto& slot : ext->slots) {
        v.instances += slot->candidate == v.candidate && !slot->replaced &&
                       (slot->state == LifecycleState::healthy ||
                        slot->state == LifecycleState::updating);
      }
    }
    return all;
  }

  void count_reply(const std::string& id, const std::string& route, const std::string& version,
                   bool failed) {
    if (ExtensionSlot* slot = slot_at(route)) {
      --slot->requests_in_flight;
      finish_retiring(*slot, Steady::now());
    }
    Extension* ext = find(id);
    if (ext == nullptr || !failed) return;
    for (VersionCounters& v : ext->counts) {
      if (v.version == version) ++v.errors;
    }
  }

  void begin_shutdown() {
    shutting_down = true;
    for (auto& [route, slot] : by_route) {
      slot->restart_pending = false;
      if (slot->alive()) begin_kill(*slot, ExtensionSlot::Ending::requested, "supervisor stopping");
    }
  }

  ExtensionFigures figures_of(const ExtensionSlot& slot,
                              const std::map<std::string, controlplane::PeerInfo>& peers) const {
    const Manifest& m = *slot.manifest;
    ExtensionFigures f;
    f.extension = m.id;
    f.instance = slot.instance;
    f.version = m.version;
    f.state = slot.state;
    f.reason = slot.reason;
    f.pid = slot.pid;
    f.generation = slot.registration.generation;
    f.restarts = slot.restarts;
    f.memory_limit_bytes = m.limits.memory_bytes;
    f.cpu_limit_cores = m.limits.cpu_cores;
    f.log_file = slot.log.file();
    if (slot.alive()) {
      const ProcessSample sample = sample_process(slot.pid);
      f.cpu_time = sample.cpu;
      f.rss_bytes = sample.rss_bytes;
      if (slot.exec_at != Steady::time_point{} && slot.state != LifecycleState::starting) {
        f.uptime = Steady::now() - slot.exec_at;
      }
      auto it = peers.find(slot.route);
      if (it != peers.end() && it->second.registration.generation == slot.registration.generation &&
          it->second.last_seen != Steady::time_point{}) {
        f.last_heartbeat_age = Steady::now() - it->second.last_seen;
      }
    }
    if (slot.cgroup) {
      f.memory_usage_bytes = slot.cgroup->memory_usage();
      f.oom_kills = slot.cgroup->oom_kills();
      f.cpu_throttled = slot.cgroup->cpu_throttled();
    }
    return f;
  }

  std::map<std::string, controlplane::PeerInfo> peers_by_route() const {
    std::map<std::string, controlplane::PeerInfo> peers;
    for (controlplane::PeerInfo& peer : host->peers()) {
      peers.emplace(peer.registration.route(), std::move(peer));
    }
    return peers;
  }
};

// ---- public API -----------------------------------------------------------------------------

Supervisor::Supervisor(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

engine::Result<std::unique_ptr<Supervisor>> Supervisor::start(SupervisorOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->clock = options.clock ? options.clock : steady_clock();
  auto runtime_dir = engine::ensure_runtime_dir(options.host.bus, options.host.runtime_dir);
  if (!runtime_dir) return tl::unexpected(runtime_dir.error());
  impl->log_dir = options.log_dir.empty() ? *runtime_dir / "logs" : options.log_dir;
  std::error_code ec;
  fs::create_directories(impl->log_dir, ec);
  if (ec) {
    return tl::unexpected(Error{Errc::system_error, "log directory " + impl->log_dir.string() +
                                                        ": " + ec.message()});
  }
  impl->epoll = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  impl->wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  impl->dev_null = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!impl->epoll || !impl->wake || !impl->dev_null || !raise_above_stdio(impl->dev_null)) {
    return tl::unexpected(Error::from_errno("supervisor: epoll/eventfd//dev/null", errno));
  }
  impl->group_name = "symphony-" + std::to_string(::getpid()) + "-" +
                     std::to_string(g_supervisor_serial.fetch_add(1));
  impl->cgroups = CgroupRoots::detect(options.cgroups, impl->group_name);

  auto host = controlplane::ControlHost::start(options.host);
  if (!host) {
    impl->cgroups.remove();
    return tl::unexpected(host.error());
  }
  impl->host = std::move(*host);
  impl->options = std::move(options);
  impl->watch(Impl::WatchKind::wake, nullptr, impl->wake.get());

  Impl* raw = impl.get();
  impl->host->on_peer_event([raw](const PeerEvent& event) {
    if (raw->options.on_peer_event) raw->options.on_peer_event(event);
    raw->post([raw, event] { raw->on_peer(event); });
  });
  impl->host->on_message([raw](const std::string& route, const controlplane::Envelope& message) {
    if (message.type == controlplane::MessageType::event) {
      auto body = controlplane::JsonReader::parse(message.body);
      if (body && body->string("kind").value_or("") == kReadyEvent) {
        raw->post([raw, route] { raw->on_ready(route); });
      }
    }
    if (raw->options.on_message) raw->options.on_message(route, message);
  });
  // The clock may outlive the supervisor (a test's ManualClock): its callback holds its own
  // duplicate of the wake eventfd, which wakes nobody once the supervisor is gone.
  auto clock_wake = std::make_shared<UniqueFd>(::fcntl(impl->wake.get(), F_DUPFD_CLOEXEC, 3));
  impl->clock->on_change([clock_wake] {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(clock_wake->get(), &one, sizeof one);
  });
  impl->thread = std::thread([raw] { raw->run(); });
  ::pthread_setname_np(impl->thread.native_handle(), "sym-supervisor");
  return std::unique_ptr<Supervisor>(new Supervisor(std::move(impl)));
}

Supervisor::~Supervisor() {
  impl_->call([impl = impl_.get()] { impl->begin_shutdown(); });
  if (impl_->thread.joinable()) impl_->thread.join();
  // The control plane's I/O thread may still post news: it stops before the queue goes away.
  // (The host removes its ipc socket files itself.)
  impl_->host.reset();
}

controlplane::ControlHost& Supervisor::control() noexcept { return *impl_->host; }
const LimitReport& Supervisor::limits() const noexcept { return impl_->cgroups.report(); }

engine::Result<void> Supervisor::add(Manifest manifest) {
  return impl_->call([impl = impl_.get(), m = std::move(manifest)]() mutable {
    return impl->add(std::move(m));
  });
}

engine::Result<void> Supervisor::start(std::string_view extension) {
  return impl_->call([impl = impl_.get(), id = std::string(extension)] {
    return impl->start(id, true);
  });
}

engine::Result<void> Supervisor::stop(std::string_view extension) {
  return impl_->call([impl = impl_.get(), id = std::string(extension)] {
    return impl->stop(id, false);
  });
}

engine::Result<void> Supervisor::restart(std::string_view extension) {
  return impl_->call([impl = impl_.get(), id = std::string(extension)] {
    return impl->stop(id, true);
  });
}

engine::Result<void> Supervisor::remove(std::string_view extension) {
  const std::string id(extension);
  auto stopped = impl_->call([impl = impl_.get(), id] {
    Extension* ext = impl->find(id);
    if (ext == nullptr) return engine::Result<void>(tl::unexpected(impl->not_found(id)));
    for (auto& slot : ext->slots) slot->remove_after_stop = true;
    return impl->stop(id, false);
  });
  if (!stopped) return stopped;
  // Waits (off the supervisor thread) until every instance is down, then forgets it.
  for (;;) {
    const bool down = impl_->call([impl = impl_.get(), id] {
      Extension* ext = impl->find(id);
      if (ext == nullptr) return true;
      for (auto& slot : ext->slots) {
        if (slot->alive()) return false;
      }
      for (auto& slot : ext->slots) {
        if (slot->cgroup) slot->cgroup->remove();
        impl->by_route.erase(slot->route);
      }
      impl->extensions.erase(id);
      return true;
    });
    if (down) return {};
    if (impl_->on_supervisor_thread()) {
      return tl::unexpected(Error{Errc::invalid_argument,
                                  "remove() from a lifecycle callback cannot wait for the stop"});
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

engine::Result<std::optional<engine::CheckpointData>> Supervisor::checkpoint(
    std::string_view extension, int instance) const {
  return impl_->call([impl = impl_.get(), id = std::string(extension),
                      instance]() -> engine::Result<std::optional<engine::CheckpointData>> {
    auto it = impl->by_route.find(id + "/" + std::to_string(instance));
    if (it == impl->by_route.end()) {
      return tl::unexpected(
          Error{Errc::not_found,
                "no instance " + id + "/" + std::to_string(instance) + " is supervised"});
    }
    if (!it->second->checkpoint) {
      return tl::unexpected(
          Error{Errc::invalid_argument,
                "extension '" + id + "' keeps no checkpoint (checkpoint_bytes 0)"});
    }
    return it->second->checkpoint->latest();
  });
}

engine::Result<std::string> Supervisor::request(std::string_view extension, std::string_view method,
                                                std::string payload_json,
                                                std::chrono::milliseconds timeout) {
  Impl* impl = impl_.get();
  const std::string id(extension);
  if (impl->on_supervisor_thread()) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "request() from a lifecycle callback cannot wait for a reply"});
  }
  const auto deadline = Steady::now() + timeout;
  auto entered = impl->call([impl, &id] { return impl->enter_request(id); });
  if (!entered) return tl::unexpected(entered.error());
  struct Leave {
    Impl* impl;
    const std::string& id;
    ~Leave() {
      impl->post([impl = impl, id = id] { impl->leave_request(id); });
    }
  } leave{impl, id};
  for (;;) {
    const std::uint64_t seen = impl->news_mark();
    RequestStep step = impl->call([impl, &id] { return impl->request_step(id); });
    if (step.error) return tl::unexpected(std::move(*step.error));
    const auto left = std::chrono::ceil<milliseconds>(deadline - Steady::now());
    if (!step.route.empty()) {
      auto reply = left.count() > 0
                       ? impl->host->request(step.route, method, std::move(payload_json), left).get()
                       : engine::Result<std::string>(tl::unexpected(Error{
                             Errc::unavailable, "extension '" + id + "': no instance HEALTHY "
                                                "within " + std::to_string(timeout.count()) +
                                                " ms"}));
      impl->post([impl, id, route = step.route, version = step.version, failed = !reply] {
        impl->count_reply(id, route, version, failed);
      });
      return reply;
    }
    if (!impl->wait_news(seen, deadline)) {
      return tl::unexpected(Error{Errc::unavailable, "extension '" + id +
                                                         "': no instance HEALTHY within " +
                                                         std::to_string(timeout.count()) + " ms (" +
                                                         step.waiting_for + ")"});
    }
  }
}

engine::Result<void> Supervisor::update(Manifest next, std::chrono::milliseconds timeout) {
  Impl* impl = impl_.get();
  if (impl->on_supervisor_thread()) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "update() from a lifecycle callback cannot wait for it"});
  }
  auto version = std::make_shared<const Manifest>(std::move(next));
  const std::string id = version->id;
  auto routes = impl->call([impl, version] { return impl->begin_update(version); });
  if (!routes) return tl::unexpected(routes.error());
  for (const std::string& old_route : *routes) {
    const auto deadline = Steady::now() + timeout;
    const auto left = [&] {
      return std::max(milliseconds(1), std::chrono::ceil<milliseconds>(deadline - Steady::now()));
    };
    auto started = impl->call([impl, &id, &old_route] {
      return impl->start_successor(id, old_route);
    });
    const auto fail = [&](const std::string& new_route, const std::string& why) {
      impl->call([&] {
        impl->roll_back(old_route, new_route, why);
        impl->end_update(id, false);
      });
      return tl::unexpected(Error{Errc::unavailable, "update of " + old_route + " to " +
                                                         version->version + " failed: " + why +
                                                         "; " + old_route + " serves on"});
    };
    if (!started) return fail("", started.error().message);
    const std::string new_route = *started;
    // 1. The successor comes up next to its predecessor.
    for (;;) {
      const std::uint64_t seen = impl->news_mark();
      const auto verdict = impl->call([impl, &new_route] {
        return impl->successor_verdict(new_route);
      });
      if (verdict && verdict->empty()) break;
      if (verdict) return fail(new_route, new_route + " " + *verdict);
      if (!impl->wait_news(seen, deadline)) {
        return fail(new_route, new_route + " not HEALTHY within " +
                                   std::to_string(timeout.count()) + " ms");
      }
    }
    // 2. The hand-over: drain the predecessor, carry its checkpoint, resume the successor.
    const bool drain = impl->call([impl, &old_route] { return impl->stop_serving(old_route); });
    std::string positions = "{}";
    if (drain) {
      auto drained = impl->host->request(old_route, kDrainMethod, "{}", left()).get();
      if (!drained) {
        // It may have stopped taking samples before it failed: let it take them again.
        impl->host->request(old_route, kResumeMethod, "{}", left()).get();
        return fail(new_route, old_route + " did not drain: " + drained.error().message);
      }
      positions = drained->empty() ? "{}" : *drained;
    }
    auto carried = impl->call([impl, &old_route, &new_route] {
      return impl->carry_checkpoint(old_route, new_route);
    });
    auto resumed = carried ? impl->host->request(new_route, kResumeMethod, positions, left()).get()
                           : engine::Result<std::string>(tl::unexpected(carried.error()));
    if (!resumed) {
      if (drain) impl->host->request(old_route, kResumeMethod, "{}", left()).get();
      return fail(new_route, (carried ? new_route + " did not resume: "
                                      : std::string("checkpoint hand-over: ")) +
                                 resumed.error().message);
    }
    // 3. The successor serves; the predecessor goes.
    impl->call([impl, &old_route, &new_route] { impl->complete_handover(old_route, new_route); });
  }
  impl->call([impl, &id] { impl->end_update(id, true); });
  return {};
}

engine::Result<void> Supervisor::start_ab(Manifest candidate, double candidate_weight) {
  return impl_->call([impl = impl_.get(),
                      m = std::make_shared<const Manifest>(std::move(candidate)),
                      candidate_weight] { return impl->start_ab(m, candidate_weight); });
}

engine::Result<void> Supervisor::set_ab_weight(std::string_view extension,
                                               double candidate_weight) {
  return impl_->call([impl = impl_.get(), id = std::string(extension), candidate_weight] {
    return impl->set_ab_weight(id, candidate_weight);
  });
}

engine::Result<void> Supervisor::end_ab(std::string_view extension, AbOutcome keep) {
  return impl_->call([impl = impl_.get(), id = std::string(extension), keep] {
    return impl->end_ab(id, keep);
  });
}

std::vector<VersionCounters> Supervisor::version_counters(std::string_view extension) const {
  return impl_->call([impl = impl_.get(), id = std::string(extension)] {
    return impl->version_counters(id);
  });
}

std::vector<ExtensionFigures> Supervisor::figures() const {
  return impl_->call([impl = impl_.get()] {
    const auto peers = impl->peers_by_route();
    std::vector<ExtensionFigures> all;
    for (const auto& [id, ext] : impl->extensions) {
      for (const auto& slot : ext->slots) all.push_back(impl->figures_of(*slot, peers));
    }
    return all;
  });
}

std::optional<ExtensionFigures> Supervisor::figures(std::string_view extension,
                                                    int instance) const {
  return impl_->call([impl = impl_.get(), route = std::string(extension) + "/" +
                                                 std::to_string(instance)]()
                         -> std::optional<ExtensionFigures> {
    auto it = impl->by_route.find(route);
    if (it == impl->by_route.end()) return std::nullopt;
    return impl->figures_of(*it->second, impl->peers_by_route());
  });
}

}  // namespace symphony::supervisor
