#pragma once
// The host side of RouDi management: a process's share of RouDi (its "lease"), and starting a
// keeper (symphony-roudi-keeper) when no RouDi runs. The protocol is in roudi_protocol.hpp and
// README.md here. Internal to the engine (and used by perf/harness's iceoryx-raw peer, whose
// parent process needs RouDi up without an iceoryx runtime of its own).

#include <chrono>
#include <string>

#include "symphony/engine/error.hpp"

namespace symphony::engine::roudi {

struct LeaseInfo {
  // true: RouDi runs under our keeper, with our memory-pool config (roudi_config.toml);
  // false: someone else's RouDi (started by hand, or by another user's keeper) is used as is.
  bool ours = false;
  std::string dir;  // the lease directory
};

// Takes this process's lease on RouDi, bringing RouDi up (through a detached keeper) if none
// runs. Idempotent: the first success is remembered, and the lease is then held until the process
// exits or dies (iceoryx 2.0 cannot shut a runtime down, so a process that has used iceoryx keeps
// needing RouDi). Children forked without exec share it. Errc::unavailable if RouDi cannot be
// started or reached within `timeout` (the message names the reason and the logs to read).
// Thread-safe.
Result<LeaseInfo> acquire_lease(std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Where the keeper binary is: $SYMPHONY_ROUDI_KEEPER, else next to the executable, else
// <exe>/../libexec/symphony/, else the install tree, else the build tree. Empty if none exists.
std::string find_keeper();

// $SYMPHONY_IOX_ROUDI, else iox-roudi on $PATH, else /usr/bin/iox-roudi.
std::string find_iox_roudi();

}  // namespace symphony::engine::roudi
