#pragma once
// Who is alive. A pid can be reused, so a process is a (pid, start time) pair: the start time
// is field 22 of /proc/<pid>/stat, in clock ticks since boot, and changes when the pid is reused.

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "symphony/layouts/process_identity.hpp"

namespace symphony::engine {

struct ProcessIdentity {
  pid_t pid = 0;
  std::uint64_t start_time = 0;

  friend bool operator==(const ProcessIdentity&, const ProcessIdentity&) = default;
};

// The calling process (re-read after fork, since the pid changes).
ProcessIdentity self_identity() noexcept;

// Start time of `pid`, or nullopt if no such process exists (or it is a zombie being reaped).
std::optional<std::uint64_t> process_start_time(pid_t pid) noexcept;

// True while `who` still runs: the pid exists and has the same start time. A record whose
// start time is 0 (claimed but not yet completed) is judged by the pid alone. A zombie counts
// as dead: it runs no code and will write nothing more.
bool is_alive(const ProcessIdentity& who) noexcept;

// Reads and writes the shared-memory record (pid and start time, each atomically).
ProcessIdentity load_identity(const layouts::ProcessIdentityRecord& record) noexcept;

enum class ClaimOutcome {
  claimed,         // the record was free (pid 0)
  took_over,       // the record named a dead process
  held_by_live,    // a live process (possibly this one) holds it: nothing changed
};

// Claims `record` for the calling process with a CAS on its pid, then writes our start time.
// Two claimers racing for a dead holder's record cannot both win: the CAS expects that pid.
ClaimOutcome claim_identity(layouts::ProcessIdentityRecord& record) noexcept;
// Frees `record` if the calling process holds it.
void release_identity(layouts::ProcessIdentityRecord& record) noexcept;

}  // namespace symphony::engine
