#pragma once
// An extension instance's lifecycle and the event every transition produces.
//
//   CREATED -> STARTING -> RUNNING -> HEALTHY -> (UPDATING) -> STOPPING -> TERMINATED
//                 |           |          |
//                 +-----------+----------+--> CRASHED -> (restart per policy) -> STARTING
//                                                    \-> FAILED (intensity exceeded, or the
//                                                        executable could not be started)
//
// STARTING: forked, not yet exec'd. RUNNING: the extension's own code runs (exec succeeded).
// HEALTHY: its hello was accepted and it sent its first ready signal (an event of kind
// kReadyEvent on the control plane). UPDATING: it is being replaced by a new version
// (Supervisor::update) and serves what it already has until its successor took over.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace symphony::supervisor {

// The event kind an extension sends (ExtensionChannel::send_event) once it is ready to work.
inline constexpr const char* kReadyEvent = "ready";

// Hot update's hand-over (Supervisor::update), which the extension runtime implements:
//  - A successor is started with kEnvAwaitHandover=1: it says hello and ready and serves
//    requests, but neither restores its checkpoint nor subscribes to its topics yet.
//  - The predecessor gets the request kDrainMethod: it stops taking samples at a sample
//    boundary (after the callback that runs now), stays subscribed — its `block` subscriptions
//    keep gating the publishers, so nothing it has not taken can be overwritten — commits its
//    final checkpoint, and replies {"positions":{"<topic>":<RawSubscriber::position()>,...}}.
//  - The successor gets kResumeMethod with that reply's body: it restores the checkpoint (the
//    predecessor's last, carried into its own store), subscribes to each topic with
//    SubscriberOptions::start_at = its position, and replies once subscribed. Every sample is
//    then taken exactly once, by the predecessor or the successor.
//  - A predecessor that gets kResumeMethod (the update was rolled back) takes samples again.
inline constexpr const char* kEnvAwaitHandover = "SYMPHONY_AWAIT_HANDOVER";
inline constexpr const char* kDrainMethod = "symphony.drain";
inline constexpr const char* kResumeMethod = "symphony.resume";

enum class LifecycleState : std::uint8_t {
  created,
  starting,
  running,
  healthy,
  updating,
  stopping,
  terminated,
  crashed,
  failed,
};

const char* to_string(LifecycleState state) noexcept;

struct LifecycleEvent {
  std::string extension;
  int instance = 0;
  std::uint64_t generation = 0;  // the control plane's registration generation
  LifecycleState from = LifecycleState::created;
  LifecycleState to = LifecycleState::created;
  std::string reason;  // "exited with code 3", "killed by signal 9 (SIGKILL)", "hello and ready"
  pid_t pid = 0;       // the process the transition is about (0 before the first spawn)
  std::uint64_t restarts = 0;
  std::chrono::steady_clock::time_point at{};  // when the supervisor made the transition

  // {"extension":..,"instance":..,"generation":..,"from":..,"state":..,"reason":..,"pid":..,
  //  "restarts":..}: the value of the control plane's state key "supervisor/<id>/<instance>".
  std::string to_json() const;
};

}  // namespace symphony::supervisor
