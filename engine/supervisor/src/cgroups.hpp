#pragma once
// Memory and CPU limits through the kernel: which mechanism this machine offers (cgroup v2 with
// memory and cpu delegated to us, else cgroup v1 hierarchies, else rlimits), the supervisor's
// own parent groups under the groups /proc/self/cgroup names, and one child group per extension
// instance with its limits, its counters and a kill of everything in it.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "symphony/engine/error.hpp"
#include "symphony/supervisor/manifest.hpp"
#include "symphony/supervisor/supervisor.hpp"
#include "unique_fd.hpp"

namespace symphony::supervisor {

// The supervisor's parent groups ("symphony-<pid>-<serial>"), one per controller hierarchy
// (the same directory for both on cgroup v2).
class CgroupRoots {
 public:
  // Detects the mechanism, removes groups left by supervisors that are gone (a host killed with
  // -9), and creates ours. Never fails: what cannot be used is reported in report().why.
  static CgroupRoots detect(CgroupUse use, const std::string& name);
  CgroupRoots() = default;
  CgroupRoots(CgroupRoots&&) = default;
  CgroupRoots& operator=(CgroupRoots&&) = default;

  const LimitReport& report() const noexcept { return report_; }
  bool v2() const noexcept { return report_.memory == LimitMechanism::cgroup_v2; }
  // Removes our parent groups (their children must be removed first).
  void remove();

 private:
  LimitReport report_;
};

class ExtensionCgroup {
 public:
  // Child groups named `name` under the supervisor's, with the limits written.
  static engine::Result<ExtensionCgroup> create(const CgroupRoots& roots, const std::string& name,
                                                const ResourceLimits& limits);
  ExtensionCgroup() = default;
  ExtensionCgroup(ExtensionCgroup&&) = default;
  ExtensionCgroup& operator=(ExtensionCgroup&&) = default;

  // cgroup.procs of each group, opened for the child to write "0" into before exec.
  engine::Result<std::vector<UniqueFd>> open_join_files() const;
  std::uint64_t oom_kills() const;      // memory.oom_control / memory.events: oom_kill
  std::uint64_t cpu_throttled() const;  // cpu.stat: nr_throttled
  std::uint64_t memory_usage() const;   // memory.usage_in_bytes / memory.current
  // SIGKILLs every process in the groups (a grandchild that left the process group included);
  // returns how many were signalled.
  int kill_all() const;
  // kill_all, then rmdir (retried while the kernel still counts dying tasks); returns false
  // (and leaves the directories) if they could not be removed within about a second.
  bool remove();
  const std::filesystem::path& memory_dir() const noexcept { return memory_dir_; }
  const std::filesystem::path& cpu_dir() const noexcept { return cpu_dir_; }

 private:
  bool v2_ = false;
  std::filesystem::path memory_dir_;  // empty: no memory group
  std::filesystem::path cpu_dir_;     // empty: no cpu group (on v2: the same as memory_dir_)
};

// Counts a "<key> <value>" line of a cgroup stat file (memory.oom_control, cpu.stat, ...).
std::uint64_t read_cgroup_counter(const std::filesystem::path& file, const std::string& key);

}  // namespace symphony::supervisor
