#pragma once
// The host `symphony up` runs, as a library (tests run it in-process too): the bus, a
// Supervisor with the config's extensions, and the admin endpoint the other verbs talk to.
//
// Admin methods (AdminServer, admin.hpp), their args and reply bodies:
//   host.info                       {bus, pid, runtime_dir, log_dir, config, uptime_ms,
//                                    extensions, admin, ui: {url, port} or null}
//   ext.list                        {extensions:[<instance>...]}      (figures of every instance)
//   ext.start|ext.stop|ext.restart  {id}  -> {extension, instances:[<instance>...]}
//   ext.update                      {id, manifest (a path the host can read), timeout_ms?}
//                                   -> {extension, instances:[...]}  (Supervisor::update: hot
//                                   update, rolled back on failure; the error says why)
//   ext.logs                        {id, instance?, lines?} -> {extension, instance, file,
//                                    rotated, text}   (the last `lines` lines, default 50)
// <instance> = {id, instance, version, pid, state, reason, generation, restarts, cpu_ns,
//               rss_bytes, uptime_ns, heartbeat_age_ms (or null), memory_limit_bytes,
//               cpu_limit_millicores, oom_kills, log_file}
// An unknown extension is Errc::not_found ("unknown extension 'x' on bus 'b' ...").
//
// Threads: the supervisor's, the control plane's, and the admin server's (which runs the
// handlers: Supervisor calls block it, never the caller of the Host). Construction and
// destruction from one thread; destruction stops the admin endpoint first (its files go), then
// every extension.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "symphony/cli/admin.hpp"
#include "symphony/cli/config.hpp"
#include "symphony/engine/bus.hpp"
#include "symphony/supervisor/supervisor.hpp"

namespace symphony::cli {

// The UI gateway (ext_sdk/gateway) writes its address to <runtime dir>/ui.json, mode 0600:
// {"url":"http://127.0.0.1:<port>/?token=<hex>","port":<port>,"token":"<hex>"}. The host removes
// a stale one when it starts and the file when it stops; the gateway keeps the token and port
// across its own restarts.
inline constexpr const char* kUiFile = "ui.json";

struct UiEndpoint {
  std::string url;
  int port = 0;
};

// ui.json in `runtime_dir`, if there is a well-formed one.
std::optional<UiEndpoint> read_ui_endpoint(const std::filesystem::path& runtime_dir);

struct HostOptions {
  bool admin = true;  // serve the admin endpoint
  std::function<void(const supervisor::LifecycleEvent&)> on_lifecycle;
};

class Host {
 public:
  // Opens the bus, starts the supervisor, adds every extension of the config (the first refusal
  // fails the start, naming the extension), then serves the admin endpoint.
  static engine::Result<std::unique_ptr<Host>> start(HostConfig config, HostOptions options = {});
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const HostConfig& config() const noexcept;
  supervisor::Supervisor& supervisor() noexcept;
  const std::filesystem::path& runtime_dir() const noexcept;
  std::filesystem::path log_dir() const;
  const AdminServer* admin() const noexcept;  // nullptr without one
  // The UI gateway's address, once a gateway among the extensions has written it.
  std::optional<UiEndpoint> ui() const;

  // Waits until no instance is on its way up (STARTING, RUNNING, or CRASHED waiting for a
  // restart), or `timeout`. True if settled.
  bool wait_settled(std::chrono::milliseconds timeout) const;

  // The admin methods above, callable in-process.
  engine::Result<std::string> handle(const std::string& method,
                                     const controlplane::JsonReader& args);

  struct Impl;

 private:
  explicit Host(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// One instance's figures as the JSON object described above.
std::string figures_json(const supervisor::ExtensionFigures& figures);

// The last `lines` lines of an instance's log (its rotated predecessor first, if any).
std::string tail_log(const std::filesystem::path& log_file, std::size_t lines);

}  // namespace symphony::cli
