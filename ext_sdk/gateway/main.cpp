// ui-gateway: the Harmony Board. Serves the built React app and the WebSocket of
// docs/ui-protocol.md on 127.0.0.1, mirroring every extension's UI; see README.md.
//
//   ui-gateway [--port N] [--static DIR]      (run by the host: symphony up)

#include <charconv>
#include <mutex>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include <symphony/sdk/extension.hpp>

#include "symphony/gateway/gateway.hpp"

namespace {

using symphony::gateway::GatewayOptions;
using symphony::gateway::LogLevel;

GatewayOptions parse_args(const std::vector<std::string>& args) {
  GatewayOptions o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      return args[++i];
    };
    if (a == "--port") {
      const std::string& v = value();
      unsigned port = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
      if (ec != std::errc() || end != v.data() + v.size() || port > 65535) {
        throw std::invalid_argument("--port: not a port number: '" + v + "'");
      }
      o.port = static_cast<std::uint16_t>(port);
    } else if (a == "--static") {
      o.static_dir = value();
    } else {
      throw std::invalid_argument("unknown argument '" + a + "' (--port N, --static DIR)");
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  symphony::sdk::Extension ext;
  std::unique_ptr<symphony::gateway::Gateway> gateway;
  std::mutex gateway_mutex;  // on_event runs on the SDK's events thread

  ext.on_start([&] {
    GatewayOptions options = parse_args(ext.args());
    options.bus = ext.bus_name();
    options.id = ext.id();
    options.log = [&ext](LogLevel level, const std::string& text) {
      switch (level) {
        case LogLevel::debug: ext.log().debug("{}", text); break;
        case LogLevel::info: ext.log().info("{}", text); break;
        case LogLevel::warn: ext.log().warn("{}", text); break;
        case LogLevel::error: ext.log().error("{}", text); break;
      }
    };
    if (!options.static_dir.empty() && !std::filesystem::exists(options.static_dir / "index.html")) {
      ext.log().warn("no {}: '/' answers 503 until the UI is built (npm run build in ui/)",
                     (options.static_dir / "index.html").string());
    }
    auto started = symphony::gateway::Gateway::start(
        options, symphony::gateway::admin_link(ext.bus_name()));
    if (!started) throw std::runtime_error(started.error().message);
    std::lock_guard lock(gateway_mutex);
    gateway = std::move(*started);
    // The token stays out of the log: it is in ui.json (0600) and `symphony up` prints it.
    ext.log().info("serving http://127.0.0.1:{}/ (token and URL in {})", gateway->port(),
                   gateway->ui_file().string());
  });
  ext.on_request("symphony.gateway.stats",
                 [&](const symphony::sdk::Request&) -> symphony::sdk::Reply {
                   if (!gateway) return symphony::sdk::fail("not started");
                   return gateway->stats_json();
                 });
  // The supervisor broadcasts every lifecycle transition as the state key "supervisor/<id>/<n>"
  // ({extension, instance, state, reason, pid, restarts, ...}): browsers see a CRASHED that
  // lasts milliseconds, which the host's ext.list, polled, would miss.
  ext.on_event([&](const symphony::sdk::Event& event) {
    if (event.kind != "state") return;
    const auto body = nlohmann::json::parse(event.body, nullptr, false);
    if (!body.is_object() || !body.value("key", std::string()).starts_with("supervisor/")) return;
    const auto& v = body.value("value", nlohmann::json::object());
    if (!v.is_object() || !v.contains("extension") || !v.contains("state")) return;
    symphony::gateway::InstanceStatus status;
    status.id = v.value("extension", std::string());
    status.instance = v.value("instance", 0);
    status.state = v.value("state", std::string());
    status.reason = v.value("reason", std::string());
    status.pid = v.value("pid", std::int64_t{0});
    status.restarts = v.value("restarts", std::uint64_t{0});
    std::lock_guard lock(gateway_mutex);
    if (gateway) gateway->lifecycle_changed(status);
  });
  ext.on_stop([&] {
    std::lock_guard lock(gateway_mutex);
    gateway.reset();
  });
  return ext.run(argc, argv);
}
