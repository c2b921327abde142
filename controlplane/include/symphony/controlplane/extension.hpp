#pragma once
// The extension side of the control plane: a ZeroMQ DEALER (identity
// "<extension>/<instance>/<generation>") to the host's ROUTER and a SUB to its events, owned by
// one I/O thread ("sym-ctl-ext"). It says hello with its token, answers heartbeats, serves
// requests and lifecycle commands through the handlers, keeps a copy of the host's broadcast
// state (a snapshot, then sequenced deltas; a gap triggers a resync), and when the host vanishes
// it says hello again until the host is back. Handlers run on the I/O thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

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

struct ExtensionHandlers {
  // A request's reply payload (JSON), or an error sent back as such.
  std::function<engine::Result<std::string>(const std::string& method,
                                            const std::string& payload_json)>
      on_request;
  // stop, pause, resume, update: an error refuses it.
  std::function<engine::Result<void>(const std::string& command, const std::string& args_json)>
      on_command;
  // Every broadcast event, in sequence (state deltas included, after they are applied).
  std::function<void(std::uint64_t seq, const std::string& kind, const std::string& body_json)>
      on_event;
  // The host came (true) or went (false).
  std::function<void(bool connected)> on_host;
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

  struct Impl;

 private:
  explicit ExtensionChannel(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace symphony::controlplane
