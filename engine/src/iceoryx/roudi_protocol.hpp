#pragma once
// What the library (roudi_lease.cpp) and the keeper (roudi_keeper_main.cpp) agree on: where the
// lease directory is, the files in it, and how to tell whether a RouDi runs. No iceoryx headers
// here (the keeper does not link iceoryx); roudi_lease.cpp checks these names against iceoryx's
// own constants at compile time.
//
// Lease directory /tmp/symphony-roudi-<uid>/ (mode 0700, owned by the user):
//   lease        every host holds flock(LOCK_SH) on it for as long as it lives; the keeper waits
//                for flock(LOCK_EX): it gets it when the last host has exited or died
//   start.lock   flock(LOCK_EX) serialises "is RouDi up? if not, start a keeper" (hosts) and
//                the keeper's teardown, so a host never sees a RouDi that is being stopped
//   keeper.lock  the keeper holds flock(LOCK_EX) for its whole life: "a keeper is alive"
//   state        "keeper <pid>\nroudi <pid>\n" while a keeper runs (diagnostics, tests)
//   keeper.log   the keeper's own log; roudi.log: RouDi's output; roudi_config.toml: the
//                memory-pool config RouDi was started with
// None of these files is ever unlinked: a lock file that is removed and re-created would let two
// processes lock two different inodes under one name.

#include <string>

namespace symphony::engine::roudi {

// iceoryx 2.0's fixed names (IOX_UDS_SOCKET_PATH_PREFIX "/tmp/" + IPC_CHANNEL_ROUDI_NAME etc.).
inline constexpr const char kRoudiSocketPath[] = "/tmp/roudi";
inline constexpr const char kRoudiSocketLockPath[] = "/tmp/roudi.lock";
inline constexpr const char kRoudiUniqueLockPath[] = "/tmp/iox-unique-roudi.lock";
inline constexpr const char kManagementShmName[] = "iceoryx_mgmt";
inline constexpr const char kSocketDir[] = "/tmp/";

// The iceoryx runtime name of a Symphony process: "symphony-rt-<pid>" (an iceoryx app leaves
// /tmp/<name> and /tmp/<name>.lock behind when it is killed; the keeper removes those of dead pids).
inline constexpr const char kRuntimeNamePrefix[] = "symphony-rt-";

inline constexpr const char kLeaseFile[] = "lease";
inline constexpr const char kStartLockFile[] = "start.lock";
inline constexpr const char kKeeperLockFile[] = "keeper.lock";
inline constexpr const char kStateFile[] = "state";
inline constexpr const char kKeeperLogFile[] = "keeper.log";
inline constexpr const char kRoudiLogFile[] = "roudi.log";
inline constexpr const char kConfigFile[] = "roudi_config.toml";

// The keeper's name, as a binary and as its process name.
inline constexpr const char kKeeperBinaryName[] = "symphony-roudi-keeper";

// "/tmp/symphony-roudi-<uid>".
std::string lease_dir();

// Creates the lease directory (0700) if needed and checks that it is a real directory owned by
// this user and not writable by others. Empty on success, else why not.
std::string ensure_lease_dir(const std::string& dir);

enum class RoudiProbe {
  running,    // something is bound to /tmp/roudi
  absent,     // nothing is (no socket, or a stale one)
  no_access,  // a RouDi runs but this user may not talk to it
};

// Connects a datagram socket to /tmp/roudi (and closes it): a bound socket means a live RouDi.
// Sends nothing.
RoudiProbe probe_roudi() noexcept;

// True if a process with this pid exists (kill(pid, 0) succeeds or fails with EPERM).
bool pid_alive(long pid) noexcept;

}  // namespace symphony::engine::roudi
