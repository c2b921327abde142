#pragma once
// The extension side of the control plane: a ZeroMQ DEALER (identity
// "<extension>/<instance>/<generation>") to the host's ROUTER and a SUB to its events, owned by
// one I/O thread ("sym-ctl-ext"). It says hello with its token, answers heartbeats, serves
// requests and lifecycle commands through the handlers, keeps a copy of the host's broadcast
// state (a snapshot, then sequenced deltas; a gap triggers a resync), and when the host vanishes
// it says hello again until the host is back. Handlers run on the I/O thread. Heartbeats carry
// the age of the oldest running callback (CallbackWatch).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "symphony/controlplane/envelope.hpp"
#include "symphony/engine/error.hpp"

namespace symphony::controlplane {

// The environment a launcher gives an extension.
inline constexpr const char* kEnvBus = "SYMPHONY_BUS";
inline constexpr const char* kEnvExtension = "SYMPHONY_EXTENSION_ID";
inline constexpr const char* kEnvInstance = "SYMPHONY_INSTANCE";
inline constexpr const char* kEnvGeneration = "SYMPHONY_GENERATION";
inline constexpr const char* kEnvToken = "SYMPHONY_TOKEN";
inline constexpr const char* kEnvControl = "SYMPHONY_CONTROL_ENDPOINT";

struct ExtensionOptions {
  std::string bus = "default";
  std::string extension;
  int instance = 0;
  std::uint64_t generation = 1;
  std::string token;
  std::string control_endpoint;
  std::chrono::milliseconds host_timeout{1500};  // nothing from the host this long: it is gone
  std::chrono::milliseconds retry_interval{200};  // hello again this often while it is gone
  ParseLimits limits;
  int protocol = kProtocolVersion;  // tests speak older versions through this

  // From the SYMPHONY_* variables; Error naming the first one missing or malformed.
  static engine::Result<ExtensionOptions> from_environment();
};

// Answers one request, once, from any thread: what a handler that hands the work to another
// thread keeps. Destroyed without an answer, it answers with an error (the host's caller never
// waits for a timeout because a reply was forgotten); an answer after the channel is gone is
// dropped.
class Responder {
 public:
  struct Route;  // where the answer goes (shared with the channel's I/O thread)
  Responder(std::shared_ptr<Route> route, std::uint64_t request_id) noexcept
      : route_(std::move(route)), request_id_(request_id) {}
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&&) noexcept = default;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  // The reply payload (JSON), or an error sent back as such. Later calls do nothing.
  void operator()(engine::Result<std::string> result);
  bool answered() const noexcept { return route_ == nullptr; }

 private:
  std::shared_ptr<Route> route_;
  std::uint64_t request_id_ = 0;
};

struct ExtensionHandlers {
  // A request's reply payload (JSON), or an error sent back as such.
  std::function<engine::Result<std::string>(const std::string& method,
                                            const std::string& payload_json)>
      on_request;
  // Instead of on_request (when set): the handler answers later, from any thread, through the
  // Responder (an SDK runs the request on a worker and keeps the I/O thread free).
  std::function<void(const std::string& method, const std::string& payload_json,
                     Responder respond)>
      on_request_deferred;
  // stop, pause, resume, update: an error refuses it.
  std::function<engine::Result<void>(const std::string& command, const std::string& args_json)>
      on_command;
  // Every broadcast event, in sequence (state deltas included, after they are applied).
  std::function<void(std::uint64_t seq, const std::string& kind, const std::string& body_json)>
      on_event;
  // The host came (true) or went (false).
  std::function<void(bool connected)> on_host;
};

// Which callbacks are running and since when. The I/O thread reports the age of the oldest one
// in every heartbeat ("busy_ms"), so the host sees a deadlocked callback as a hang even while
// heartbeats still flow. An SDK that runs callbacks on worker threads marks each one here. (The
// channel's own handlers run on the I/O thread: one that is stuck stops the heartbeats, which
// the host notices as well.)
class CallbackWatch {
 public:
  using Clock = std::chrono::steady_clock;

  class Running {
   public:
    Running(Running&& other) noexcept : watch_(std::exchange(other.watch_, nullptr)), id_(other.id_) {}
    Running& operator=(Running&&) = delete;
    ~Running() {
      if (watch_ != nullptr) watch_->finish(id_);
    }

   private:
    friend class CallbackWatch;
    Running(CallbackWatch* watch, std::uint64_t id) noexcept : watch_(watch), id_(id) {}
    CallbackWatch* watch_;
    std::uint64_t id_;
  };

  // Marks a callback as running until the returned token is destroyed.
  [[nodiscard]] Running start();
  // How long the oldest running callback has been running; zero when none is.
  std::chrono::milliseconds oldest_running(Clock::time_point now = Clock::now()) const;

 private:
  void finish(std::uint64_t id);

  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 1;
  std::vector<std::pair<std::uint64_t, Clock::time_point>> running_;  // few at a time
};

struct ExtensionCounters {
  std::uint64_t requests = 0;
  std::uint64_t hellos = 0;       // sent (one per connect or reconnect attempt)
  std::uint64_t reconnects = 0;   // times the host came back after being lost
  std::uint64_t resyncs = 0;      // snapshots asked for because of a sequence gap
  std::uint64_t events = 0;
  std::uint64_t refusals = 0;     // error replies from the host (e.g. a refused hello)
};

class ExtensionChannel {
 public:
  static engine::Result<std::unique_ptr<ExtensionChannel>> connect(ExtensionOptions options,
                                                                   ExtensionHandlers handlers);
  ~ExtensionChannel();
  ExtensionChannel(const ExtensionChannel&) = delete;
  ExtensionChannel& operator=(const ExtensionChannel&) = delete;

  // Waits until the host welcomed us (and the state snapshot arrived); false on timeout.
  bool wait_ready(std::chrono::milliseconds timeout) const;
  bool host_connected() const;

  // Sends an event or a topic announcement to the host (dropped while it is gone: false).
  bool send_event(std::string_view kind, std::string payload_json);
  bool announce_topic(std::string_view name, std::string_view role, std::string_view transport,
                      std::string_view type);

  // The host's broadcast state as last synchronised: key -> JSON value; and its sequence.
  std::map<std::string, std::string> state() const;
  std::uint64_t state_sequence() const;
  // The last error the host sent (e.g. why a hello was refused).
  std::string last_refusal() const;
  ExtensionCounters counters() const;
  // Callbacks that run outside the channel's handlers (an SDK's worker threads) mark themselves
  // here.
  CallbackWatch& callbacks() noexcept;

  struct Impl;

 private:
  explicit ExtensionChannel(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace symphony::controlplane
