#pragma once
// The host side of the control plane: a ZeroMQ ROUTER (hello, request/reply, lifecycle commands,
// heartbeats, snapshots) and a PUB (sequenced broadcast events), owned by one I/O thread
// ("sym-ctl-host"). Every public call may come from any thread: it is queued to the I/O thread
// (an eventfd wakes it). Callbacks (replies, peer events, messages) run on the I/O thread and
// must not block.
//
// Only registered extensions are heard: register_extension() makes a random token that the
// launcher passes in the environment; a hello must carry it, from the routing identity
// "<extension>/<instance>/<generation>". Anything else is refused and counted.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "symphony/controlplane/envelope.hpp"
#include "symphony/engine/error.hpp"

namespace symphony::controlplane {

struct HostOptions {
  std::string bus = "default";
  std::filesystem::path runtime_dir;  // empty: engine::ensure_runtime_dir(bus)
  std::string control_endpoint;       // empty: ipc://<runtime_dir>/control
  std::string events_endpoint;        // empty: ipc://<runtime_dir>/events
  std::chrono::milliseconds heartbeat_interval{250};
  std::chrono::milliseconds unresponsive_after{1500};  // no message for this long: unresponsive
  ParseLimits limits;
};

struct Registration {
  std::string extension;
  int instance = 0;
  std::uint64_t generation = 1;
  std::string token;
  // A callback of this extension running longer than this (its heartbeats say so) makes it
  // unresponsive: a hang, even while its heartbeats still flow. Zero: never.
  std::chrono::milliseconds hang_after{0};

  std::string route() const;     // "<extension>/<instance>": what requests are addressed to
  std::string identity() const;  // "<extension>/<instance>/<generation>": the ZeroMQ identity
};

enum class PeerState : std::uint8_t { registered, connected, unresponsive, gone };
const char* to_string(PeerState state) noexcept;

struct PeerEvent {
  std::string route;
  PeerState state;
  std::string reason;
};

struct PeerInfo {
  Registration registration;
  PeerState state = PeerState::registered;
  std::chrono::steady_clock::time_point last_seen{};
  int protocol = 0;
  std::string sdk;
  std::chrono::milliseconds busy_for{0};  // its oldest running callback, per its last heartbeat
};

struct HostCounters {
  std::uint64_t requests_sent = 0;
  std::uint64_t replies = 0;
  std::uint64_t failed_fast = 0;    // requests to an extension that is not connected
  std::uint64_t timeouts = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t late_replies = 0;   // replies to an unknown, expired or cancelled request
  std::uint64_t refused_unregistered = 0;  // messages from identities without a valid hello
  std::uint64_t refused_bad_token = 0;
  std::uint64_t malformed = 0;      // not JSON, bad schema, wrong frame count, too deep, too big
  std::uint64_t wrong_version = 0;
  std::uint64_t events_published = 0;
};

// The reply's body "payload" (JSON text), or the error: a reply of type error, a timeout,
// cancellation, an extension that is down or went unresponsive.
using ReplyCallback = std::function<void(engine::Result<std::string>)>;
// Messages an extension sends on its own (event, topic): route and envelope.
using MessageCallback = std::function<void(const std::string& route, const Envelope& message)>;

class ControlHost {
 public:
  static engine::Result<std::unique_ptr<ControlHost>> start(HostOptions options);
  ~ControlHost();  // stops the I/O thread; pending requests fail with "host stopped"
  ControlHost(const ControlHost&) = delete;
  ControlHost& operator=(const ControlHost&) = delete;

  const std::string& control_endpoint() const noexcept;
  const std::string& events_endpoint() const noexcept;

  // A new token and generation for this extension instance (replacing an earlier one: the
  // older generation is refused from then on).
  Registration register_extension(std::string_view extension, int instance = 0,
                                  std::chrono::milliseconds hang_after = {});
  // Re-admits a known registration (a restarted host taking its extensions back).
  void register_extension(const Registration& registration);

  // The extension at `route` is gone (e.g. its process died): requests in flight fail with
  // `reason`, new ones fail fast, and a PeerEvent (gone, reason) is emitted. Registering it
  // again re-admits it.
  void mark_gone(std::string_view route, std::string reason);

  // Sends `method` with `payload_json` to `route` ("<extension>/<instance>", or "<extension>"
  // for instance 0). `done` runs exactly once. Returns the request id (for cancel()).
  std::uint64_t request(std::string_view route, std::string_view method, std::string payload_json,
                        std::chrono::milliseconds timeout, ReplyCallback done);
  std::future<engine::Result<std::string>> request(std::string_view route,
                                                   std::string_view method,
                                                   std::string payload_json,
                                                   std::chrono::milliseconds timeout);
  // The request fails with "cancelled" (if it has not completed yet); a reply is then dropped.
  void cancel(std::uint64_t request_id);
  // A lifecycle command (stop, pause, resume, update); `done` gets the extension's ack.
  std::uint64_t command(std::string_view route, std::string_view command, std::string args_json,
                        std::chrono::milliseconds timeout, ReplyCallback done);

  // Broadcast state: set_state() updates the snapshot late joiners get and publishes the delta;
  // broadcast() publishes an event that is not state. Both are sequenced.
  void set_state(std::string_view key, std::string value_json);
  void broadcast(std::string_view kind, std::string payload_json);

  void on_peer_event(std::function<void(const PeerEvent&)> callback);
  void on_message(MessageCallback callback);

  HostCounters counters() const;
  std::vector<PeerInfo> peers() const;

  struct Impl;

 private:
  explicit ControlHost(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// A random token (128 bits from getrandom, hex).
std::string make_token();

}  // namespace symphony::controlplane
