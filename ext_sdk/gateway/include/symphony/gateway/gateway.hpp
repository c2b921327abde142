#pragma once
// symphony::gateway::Gateway — the "Harmony Board": the bridge between every extension's UI
// (topics ui/<id>, docs/ui-protocol.md section 3) and browsers (HTTP + WebSocket on loopback,
// section 4), plus the gateway's own panel, a live dashboard of the bus.
//
//   auto link = gateway::admin_link("demo");                 // talks to the host's admin endpoint
//   auto gw = gateway::Gateway::start({.bus = "demo", .id = "ui-gateway",
//                                      .static_dir = "ui/dist"}, std::move(link));
//   gw->url();   // http://127.0.0.1:7800/?token=<hex>
//
// It owns these threads (all stopped and joined by the destructor):
//   - "sym-gw-io": Asio's thread. Every browser session, HTTP and static files; never blocks.
//   - "sym-gw-bus": reads every ui/<id> topic (discard_oldest subscribers, one poll loop),
//     validates frames and keeps the mirror (one tree per extension).
//   - "sym-gw-topics": discovery (Bus::topics(), which maps every segment: slow, so never on the
//     thread that reads frames): new ui/<id> topics, and the dashboard's topic figures.
//   - "sym-gw-poll": ext.list every poll_period (states, restarts, gone) and the dashboard.
//   - "sym-gw-work" (workers): every call to the host (snapshot requests, browser events,
//     restarts), so a slow extension never delays a browser or a frame.
// The mirror is shared under one mutex; browsers' state lives on the io thread only.
//
// Slow browsers: each session has at most one write in flight; frames for an extension arriving
// meanwhile only mark it stale, and the session gets one snapshot of its latest tree when the
// write completes. A session's memory is bounded by one message in flight plus one pending
// state per extension and a bounded ack queue (reading pauses while it is full).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "symphony/engine/error.hpp"

namespace symphony::gateway {

// One instance as ext.list reports it (cli/host.hpp's <instance>).
struct InstanceStatus {
  std::string id;
  int instance = 0;
  std::string version;
  std::int64_t pid = 0;
  std::string state;  // "HEALTHY", "CRASHED", ...
  std::string reason;
  std::uint64_t generation = 0;
  std::uint64_t restarts = 0;
  std::int64_t cpu_ns = 0;
  std::uint64_t rss_bytes = 0;
  std::int64_t uptime_ns = 0;
};

// What the gateway needs from the host. Thread-safe: called from several threads at once.
class HostLink {
 public:
  virtual ~HostLink() = default;
  virtual engine::Result<std::vector<InstanceStatus>> list() = 0;
  // A request to the extension (admin ext.call); the extension's reply JSON.
  virtual engine::Result<std::string> call(const std::string& id, const std::string& method,
                                           const std::string& payload_json,
                                           std::chrono::milliseconds timeout) = 0;
  // ext.restart {id, wait_ms: 0}
  virtual engine::Result<void> restart(const std::string& id) = 0;
};

// The host's admin endpoint (cli::AdminClient, one client per calling thread from a pool).
std::unique_ptr<HostLink> admin_link(std::string bus,
                                     std::filesystem::path runtime_dir = {});

enum class LogLevel { debug, info, warn, error };
using LogSink = std::function<void(LogLevel, const std::string&)>;

struct GatewayOptions {
  std::string bus = "default";
  std::string id = "ui-gateway";   // the gateway's own extension id (its panel's)
  std::filesystem::path static_dir;  // the built app (index.html); empty/missing: 503 on "/"
  std::uint16_t port = 7800;         // 0: ephemeral (the previous ui.json's port first)
  // Where ui.json goes; empty: engine::ensure_runtime_dir(bus).
  std::filesystem::path runtime_dir;
  bool write_ui_file = true;
  std::chrono::milliseconds poll_period{200};       // ext.list
  std::chrono::milliseconds topic_period{200};      // topic discovery
  std::chrono::milliseconds dashboard_period{500};  // the panel's refresh
  std::chrono::milliseconds ping_period{5000};      // WebSocket ping and app heartbeat
  std::chrono::milliseconds pong_timeout{15000};    // drop a browser silent this long
  std::chrono::milliseconds call_timeout{5000};     // requests to extensions
  unsigned workers = 4;
  std::size_t max_sessions = 64;
  // SO_SNDBUF of browser sockets (0: the kernel's autotuning, up to tcp_wmem's 4 MiB): bounds
  // what a slow browser has queued in the kernel too, so that it soon gets coalesced state
  // instead of seconds of stale patches.
  int socket_send_buffer = 256 * 1024;
  std::size_t max_events_in_flight = 32;  // per browser; more are refused in an ack
  LogSink log;  // empty: stderr
};

struct SessionStats {
  std::uint64_t messages = 0;  // written
  std::uint64_t bytes = 0;
  std::uint64_t patches = 0;    // forwarded as such
  std::uint64_t snapshots = 0;  // written
  std::uint64_t coalesced = 0;  // frames that only marked an extension stale
  std::size_t pending_bytes = 0;       // now: in flight + queued
  std::size_t peak_pending_bytes = 0;  // the most ever held for this browser
};

struct GatewayStats {
  std::uint64_t frames = 0;          // frames read from ui/<id> topics
  std::uint64_t frames_applied = 0;  // patches applied to the mirror
  std::uint64_t frames_invalid = 0;  // dropped: not a valid frame or a patch that fails
  std::uint64_t frames_stale = 0;    // dropped: seq at or below the mirror's
  std::uint64_t gaps = 0;
  std::uint64_t snapshot_requests = 0;
  std::uint64_t upgrades_refused = 0;
  std::uint64_t events = 0;          // forwarded to extensions
  std::uint64_t events_refused = 0;  // refused by the gateway
  std::vector<SessionStats> sessions;
};

class Gateway {
 public:
  // Reads <runtime dir>/ui.json (token and port of a previous instance), binds 127.0.0.1,
  // writes ui.json (0600), starts the threads.
  static engine::Result<std::unique_ptr<Gateway>> start(GatewayOptions options,
                                                        std::unique_ptr<HostLink> link);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  std::uint16_t port() const noexcept;
  const std::string& token() const noexcept;
  std::string url() const;  // http://127.0.0.1:<port>/?token=<token>
  const std::filesystem::path& ui_file() const noexcept;

  GatewayStats stats() const;
  std::string stats_json() const;

  // A lifecycle event from the host (the supervisor's state broadcast, which the SDK hands to
  // on_event): its state goes to browsers at once, and the host is polled now. Polling alone
  // (every poll_period) misses a CRASHED that lasts less than a period. Any thread.
  void lifecycle_changed(const InstanceStatus& status);

  struct Impl;

 private:
  explicit Gateway(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// The bits that need no sockets, for tests.
namespace detail {
bool equal_constant_time(std::string_view a, std::string_view b) noexcept;
std::string content_type(const std::filesystem::path& file);
// The file under `root` that `target` (an HTTP request target) names, or nullopt when it
// leaves `root` or is malformed ("/" is index.html).
std::optional<std::filesystem::path> resolve_static(const std::filesystem::path& root,
                                                    std::string_view target);
std::optional<std::string> query_param(std::string_view target, std::string_view name);
}  // namespace detail

}  // namespace symphony::gateway
