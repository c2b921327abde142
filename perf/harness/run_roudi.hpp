#pragma once
// The RouDi that topic-iceoryx and iceoryx-raw share for one run of symphony-perf (iceoryx builds
// only), decided once, the first time an iceoryx transport asks:
//
//   no RouDi runs      start our own: iox-roudi -c <run dir>/roudi_config.toml, with the pools of
//                      kHarnessPools (chunks up to 64 MiB), as a child of this process
//                      (PR_SET_PDEATHSIG); stop() waits until RouDi has dropped the run's dead
//                      children, stops it and removes what it left.
//   a RouDi runs       use it as it is (Symphony's keeper, or one started by hand): its pools are
//                      read from the config file on its command line (or iceoryx's defaults); a
//                      payload they cannot hold is skipped with a reason naming that RouDi.
//
// Why not Symphony's keeper: the engine trusts the keeper's RouDi to run the pools compiled into
// it (engine/src/iceoryx/roudi_config.toml, 1 MiB chunks) and refuses larger topics; a RouDi it
// did not start is asked for its pools instead, so our own RouDi carries 64 MiB topics.

#include <cstdint>
#include <string>

namespace symphony::perf {

class RunRoudi {
 public:
  RunRoudi() = default;
  RunRoudi(const RunRoudi&) = delete;
  RunRoudi& operator=(const RunRoudi&) = delete;
  ~RunRoudi();

  // Empty if RouDi's largest pool holds a chunk payload of `chunk_payload` bytes; else why not
  // (also when no RouDi could be started or reached). Starts ours on the first call if none runs.
  std::string unsupported(std::uint64_t chunk_payload);
  // Ours only: stops it (after RouDi has dropped the children that used it) and cleans up.
  void stop() noexcept;

 private:
  void decide();

  bool decided_ = false;
  std::string unusable_;  // non-empty: no RouDi to use, and why
  std::string which_;     // "symphony-perf's RouDi (...)" / "the running RouDi (pid N, ...)"
  std::uint64_t largest_chunk_ = 0;
  int pid_ = -1;  // ours
  std::string dir_;
};

// The one per process.
RunRoudi& run_roudi();

}  // namespace symphony::perf
