#pragma once
// The extension supervisor: starts every instance of an extension as a clean, owned process,
// keeps it within its memory and CPU limits, notices at once when it dies (pidfd) or hangs
// (heartbeats), and brings it back per its manifest's restart policy, while the rest runs on.
//
// Threads. The supervisor owns one thread, "sym-supervisor", which lives as long as the
// supervisor: it forks every extension (PR_SET_PDEATHSIG fires when the *forking thread* exits,
// so it must be a thread that outlives its children), watches their pidfds, exec-status pipes
// and log pipes in one epoll, and runs every state transition. It also owns a ControlHost (the
// control plane's ROUTER + PUB), whose I/O thread forwards peer events and messages to it.
// Public calls may come from any thread; they run on the supervisor thread and the caller waits
// for the result (called from a lifecycle callback, which runs on that thread, they run at
// once). Callbacks must not block: every extension's supervision waits for them.
//
// The embedding contract: no signal handlers, no SIGCHLD disposition, no waitpid(-1): only the
// supervisor's own children are reaped, each through its pidfd.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "symphony/controlplane/host.hpp"
#include "symphony/engine/checkpoint.hpp"
#include "symphony/engine/error.hpp"
#include "symphony/supervisor/lifecycle.hpp"
#include "symphony/supervisor/manifest.hpp"
#include "symphony/supervisor/restart_policy.hpp"

namespace symphony::supervisor {

// How memory and CPU limits are enforced (one mechanism per resource).
enum class LimitMechanism : std::uint8_t {
  cgroup_v2,  // memory.max, cpu.max in a child group of ours
  cgroup_v1,  // memory.limit_in_bytes, cpu.cfs_quota_us in child groups of ours
  rlimit,     // setrlimit in the child (memory: RLIMIT_DATA); no cgroup could be created
  none,       // cannot be enforced here (CPU without cgroups: rlimits have no rate limit)
};
const char* to_string(LimitMechanism mechanism) noexcept;

struct LimitReport {
  LimitMechanism memory = LimitMechanism::none;
  LimitMechanism cpu = LimitMechanism::none;
  std::filesystem::path memory_group;  // the supervisor's parent group, when a cgroup is used
  std::filesystem::path cpu_group;
  std::string why;  // how the mechanism was chosen, and why a better one was not available
};

enum class CgroupUse : std::uint8_t {
  automatic,  // v2 if it has memory and cpu, else v1, else rlimits
  disabled,   // never create cgroups (rlimits only): tests of the fallback, or a host's choice
};

struct SupervisorOptions {
  controlplane::HostOptions host;  // the control plane the supervisor starts and owns
  std::filesystem::path log_dir;   // empty: <runtime dir of the bus>/logs
  // Per instance, the current log and its one rotated predecessor (<id>.<n>.log.1) together.
  std::uint64_t log_max_bytes = 1 << 20;
  std::chrono::milliseconds stop_grace{2000};  // stop: the stop command, SIGTERM half-way, SIGKILL
  std::chrono::milliseconds kill_grace{500};   // a hung instance: SIGTERM, then SIGKILL after this
  CgroupUse cgroups = CgroupUse::automatic;
  std::shared_ptr<Clock> clock;  // restart policies; empty: the steady clock
  // Every lifecycle transition, on the supervisor thread, after it is published on the bus.
  std::function<void(const LifecycleEvent&)> on_lifecycle;
  // Forwarded from the control plane (the supervisor takes ControlHost's single callbacks), on
  // the control plane's I/O thread.
  std::function<void(const controlplane::PeerEvent&)> on_peer_event;
  controlplane::MessageCallback on_message;
};

// One instance, as last seen by the supervisor.
struct ExtensionFigures {
  std::string extension;
  int instance = 0;
  std::string version;
  LifecycleState state = LifecycleState::created;
  std::string reason;  // of the last transition
  pid_t pid = 0;       // 0 when not running
  std::uint64_t generation = 0;
  std::uint64_t restarts = 0;
  std::chrono::nanoseconds cpu_time{0};  // user + system of the current process
  std::uint64_t rss_bytes = 0;
  std::chrono::nanoseconds uptime{0};  // since exec of the current process (0 when not running)
  // Age of the last message heard from it on the control plane; nullopt before its hello.
  std::optional<std::chrono::nanoseconds> last_heartbeat_age;
  std::uint64_t memory_limit_bytes = 0;
  double cpu_limit_cores = 0;
  std::uint64_t memory_usage_bytes = 0;  // its cgroup's usage (0 without a memory cgroup)
  std::uint64_t oom_kills = 0;           // its cgroup's OOM kills, all generations
  std::uint64_t cpu_throttled = 0;       // its cgroup's nr_throttled, all generations
  std::filesystem::path log_file;
};

// A/B: requests routed to each version of an extension running side by side.
struct VersionCounters {
  std::string version;
  bool candidate = false;  // the version start_ab() added (else the baseline)
  double weight = 0;       // its share of requests, 0-1
  int instances = 0;       // its instances that are HEALTHY now
  std::uint64_t requests = 0;  // routed to it by request()
  std::uint64_t errors = 0;    // of those, answered with an error (or failed in flight)
};

enum class AbOutcome : std::uint8_t { keep_baseline, keep_candidate };

class Supervisor {
 public:
  static engine::Result<std::unique_ptr<Supervisor>> start(SupervisorOptions options);
  // Stops every instance (the stop command, SIGTERM, SIGKILL of its process group and cgroup),
  // removes its cgroups and log pipes, then stops the control plane.
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  controlplane::ControlHost& control() noexcept;
  const LimitReport& limits() const noexcept;

  // Takes the manifest; eager extensions start at once. Refused: a duplicate id, or limits
  // that cannot be enforced here (e.g. a CPU limit without cgroups).
  engine::Result<void> add(Manifest manifest);
  // Starts every instance that is not running (CREATED, TERMINATED, CRASHED or FAILED; a
  // restart by hand also resets the restart series and intensity window).
  engine::Result<void> start(std::string_view extension);
  engine::Result<void> stop(std::string_view extension);
  // Stops (if running), then starts again.
  engine::Result<void> restart(std::string_view extension);
  // Stops and forgets it (its cgroups are removed).
  engine::Result<void> remove(std::string_view extension);

  // Sends a request to the extension (round robin over its HEALTHY instances) and waits for
  // the reply. An on-demand extension that is not running is started first; waiting for an
  // instance to be HEALTHY (also one that is restarting) counts against `timeout`. Fails at
  // once for an unknown extension, or one with no instance running or about to run; fails with
  // the reason an instance died if it dies while the request is in flight. Not from a
  // lifecycle callback (it would wait for the thread that runs it).
  engine::Result<std::string> request(std::string_view extension, std::string_view method,
                                      std::string payload_json, std::chrono::milliseconds timeout);

  // Hot update: replaces every instance of the running extension `next.id` by one of `next`
  // (another version, binary, args or limits), one instance at a time, without a gap in
  // service: the new process starts next to the old one (UPDATING), waits to be HEALTHY, takes
  // over requests, then the hand-over of lifecycle.hpp (drain the old one, carry its last
  // checkpoint over, resume the new one at the old one's topic positions) makes every sample
  // of a `block` topic processed exactly once, by old or new; then the old one is stopped.
  // New instances get new instance numbers (an instance number is never reused within a
  // supervisor). On any failure before the hand-over — the new one not HEALTHY within
  // `timeout`, dead, or its checkpoint capacity too small — it is stopped and the old one goes
  // back to HEALTHY (a rollback, nothing lost), and the error says why. Not while an A/B test
  // runs on the extension. Blocks the caller; not from a lifecycle callback.
  engine::Result<void> update(Manifest next, std::chrono::milliseconds timeout);

  // A/B: starts `candidate.instances` instances of another version of the running extension
  // `candidate.id` next to it; request() then sends `candidate_weight` (0-1) of the requests to
  // the candidate (a smooth weighted round robin: the split is exact to one request at any
  // point), the rest to the baseline, each counted per version. Topics: both versions subscribe
  // as their manifests say. end_ab() keeps one version and stops the other's instances.
  engine::Result<void> start_ab(Manifest candidate, double candidate_weight);
  engine::Result<void> set_ab_weight(std::string_view extension, double candidate_weight);
  engine::Result<void> end_ab(std::string_view extension, AbOutcome keep);
  // One entry per version running (the baseline first); empty for an unknown extension.
  std::vector<VersionCounters> version_counters(std::string_view extension) const;

  // The last checkpoint the instance committed (nothing if none yet); not_found for an unknown
  // instance, invalid_argument if its manifest asks for no checkpoint.
  engine::Result<std::optional<engine::CheckpointData>> checkpoint(std::string_view extension,
                                                                   int instance = 0) const;

  std::vector<ExtensionFigures> figures() const;
  std::optional<ExtensionFigures> figures(std::string_view extension, int instance = 0) const;

  struct Impl;

 private:
  explicit Supervisor(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace symphony::supervisor
