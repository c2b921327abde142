#pragma once
// Forks a clean, owned extension process. Everything is prepared before fork; between fork and
// exec the child makes only async-signal-safe calls (the host is multi-threaded: another thread
// may have held malloc's lock at the fork):
//   setpgid(0, 0)                      its own process group (killed as a whole)
//   prctl(PR_SET_PDEATHSIG, SIGKILL)   dies with the forking thread; then getppid() checked
//   write("0") to each cgroup.procs    joins its cgroups before any of its code runs
//   setrlimit(RLIMIT_DATA)             only when no memory cgroup could be made
//   dup2: /dev/null -> 0, log pipe -> 1 and 2
//   sigaction(SIG_DFL) for every signal, an empty signal mask
//   close_range(3, ~0, CLOSE_RANGE_CLOEXEC)   no other fd survives exec
//   execve
// A step that fails writes {step, errno} to the status pipe (close-on-exec: a successful exec
// closes it, so the parent reads EOF) and _exits with 127.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "symphony/engine/error.hpp"
#include "unique_fd.hpp"

namespace symphony::supervisor {

struct SpawnPlan {
  std::vector<std::string> argv;  // argv[0]: the executable's path
  std::vector<std::string> env;   // "NAME=value"
  std::vector<int> cgroup_procs;  // open (O_WRONLY) cgroup.procs files to join
  std::uint64_t rlimit_data = 0;  // 0: none
  int stdin_fd = -1;              // >= 3
  int output_fd = -1;             // >= 3: stdout and stderr
};

struct SpawnedProcess {
  pid_t pid = 0;
  UniqueFd pidfd;   // readable once the process has exited
  UniqueFd status;  // EOF: exec succeeded; 8 bytes: a step failed (describe_spawn_failure)
};

// Must run on the thread that lives as long as the child should (PR_SET_PDEATHSIG).
engine::Result<SpawnedProcess> spawn_process(const SpawnPlan& plan);

// What the child reported on its status pipe ("exec: No such file or directory").
std::string describe_spawn_failure(const unsigned char (&record)[8]);
inline constexpr std::size_t kSpawnFailureSize = 8;

}  // namespace symphony::supervisor
