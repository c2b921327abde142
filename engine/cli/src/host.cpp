#include "symphony/cli/host.hpp"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "symphony/engine/runtime_dir.hpp"

namespace symphony::cli {

namespace fs = std::filesystem;
using controlplane::JsonObject;
using controlplane::JsonReader;
using engine::Errc;
using engine::Error;
using supervisor::ExtensionFigures;
using supervisor::LifecycleState;

std::string figures_json(const ExtensionFigures& f) {
  JsonObject o;
  o.add("id", f.extension)
      .add("instance", f.instance)
      .add("version", f.version)
      .add("pid", static_cast<std::int64_t>(f.pid))
      .add("state", supervisor::to_string(f.state))
      .add("reason", f.reason)
      .add("generation", f.generation)
      .add("restarts", f.restarts)
      .add("cpu_ns", static_cast<std::int64_t>(f.cpu_time.count()))
      .add("rss_bytes", f.rss_bytes)
      .add("uptime_ns", static_cast<std::int64_t>(f.uptime.count()));
  if (f.last_heartbeat_age) {
    o.add(
        "heartbeat_age_ms",
        static_cast<std::int64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(*f.last_heartbeat_age).count()));
  } else {
    o.add_raw("heartbeat_age_ms", "null");
  }
  o.add("memory_limit_bytes", f.memory_limit_bytes)
      .add("cpu_limit_millicores", static_cast<std::int64_t>(f.cpu_limit_cores * 1000.0 + 0.5))
      .add("oom_kills", f.oom_kills)
      .add("log_file", f.log_file.string());
  return o.str();
}

namespace {

std::string read_whole(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  std::string text;
  char buffer[65536];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
  }
  return text;
}

std::string figures_array(const std::vector<ExtensionFigures>& all) {
  std::string list = "[";
  for (const auto& f : all) {
    if (list.size() > 1) list += ",";
    list += figures_json(f);
  }
  return list + "]";
}

bool on_its_way(LifecycleState state) {
  return state == LifecycleState::starting || state == LifecycleState::running ||
         state == LifecycleState::crashed || state == LifecycleState::stopping;
}

}  // namespace

std::string tail_log(const fs::path& log_file, std::size_t lines) {
  fs::path rotated = log_file;
  rotated += ".1";
  std::string text = read_whole(rotated) + read_whole(log_file);
  if (lines == 0) return {};
  // Back from the end, past `lines` line breaks (a last line without one counts too).
  std::size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n') --end;
  std::size_t count = 0;
  std::size_t at = end;
  while (at > 0) {
    if (text[at - 1] == '\n' && ++count == lines) break;
    --at;
  }
  return text.substr(at);
}

std::optional<UiEndpoint> read_ui_endpoint(const fs::path& runtime_dir) {
  const std::string text = read_whole(runtime_dir / kUiFile);
  if (text.empty()) return std::nullopt;
  auto json = JsonReader::parse(text);
  if (!json) return std::nullopt;
  UiEndpoint ui;
  ui.url = json->string("url").value_or("");
  ui.port = static_cast<int>(json->integer("port").value_or(0));
  if (ui.url.rfind("http://", 0) != 0 || ui.port <= 0 || ui.port > 65535) return std::nullopt;
  return ui;
}

struct Host::Impl {
  HostConfig config;
  HostOptions options;
  std::optional<Bus> bus;
  std::unique_ptr<supervisor::Supervisor> supervisor;
  std::unique_ptr<AdminServer> admin;
  fs::path runtime_dir;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // Set once the supervisor runs and every extension was added: the admin endpoint serves
  // from the start (it holds the bus's lock), and says "starting" until then.
  std::atomic<bool> ready{false};
  bool owns_ui_file = false;  // we hold the bus's lock, so ui.json is ours to remove

  ~Impl() {
    admin.reset();       // first: no verb may reach a host that is going away
    supervisor.reset();  // stops every extension
    std::error_code ec;  // the gateway's address dies with it
    if (owns_ui_file) fs::remove(runtime_dir / kUiFile, ec);
  }

  engine::Result<std::string> extension_arg(const JsonReader& args) const {
    auto id = args.string("id");
    if (!id || id->empty()) return tl::unexpected(Error{Errc::invalid_argument, "missing 'id'"});
    bool known = false;
    for (const auto& f : supervisor->figures()) known = known || f.extension == *id;
    if (!known) {
      return tl::unexpected(Error{Errc::not_found, "unknown extension '" + *id + "' on bus '" +
                                                       config.bus +
                                                       "' (symphony ext list shows them)"});
    }
    return *id;
  }

  std::vector<ExtensionFigures> instances_of(const std::string& id) const {
    std::vector<ExtensionFigures> mine;
    for (auto& f : supervisor->figures()) {
      if (f.extension == id) mine.push_back(std::move(f));
    }
    return mine;
  }

  // Waits (bounded) until no instance of `id` is on its way anywhere, so the reply shows where
  // the command left it.
  void settle(const std::string& id, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      bool moving = false;
      for (const auto& f : instances_of(id)) moving = moving || on_its_way(f.state);
      if (!moving) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  engine::Result<std::string> handle(const std::string& method, const JsonReader& args) {
    if (!ready.load()) {
      return tl::unexpected(Error{Errc::unavailable, "the host is starting; try again"});
    }
    if (method == "host.info") {
      return JsonObject()
          .add("bus", config.bus)
          .add("pid", static_cast<std::int64_t>(::getpid()))
          .add("runtime_dir", runtime_dir.string())
          .add("log_dir", log_dir().string())
          .add("config", config.source.string())
          .add("uptime_ms",
               static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - started)
                                             .count()))
          .add("extensions", static_cast<std::int64_t>(config.extensions.size()))
          .add("admin", admin ? admin->endpoint() : std::string())
          .add_raw("ui", ui_json())
          .str();
    }
    if (method == "ext.list") {
      return JsonObject().add_raw("extensions", figures_array(supervisor->figures())).str();
    }
    if (method == "ext.start" || method == "ext.stop" || method == "ext.restart") {
      auto id = extension_arg(args);
      if (!id) return tl::unexpected(id.error());
      engine::Result<void> done;
      if (method == "ext.start") {
        done = supervisor->start(*id);
      } else if (method == "ext.stop") {
        done = supervisor->stop(*id);
      } else {
        done = supervisor->restart(*id);
      }
      if (!done) return tl::unexpected(done.error());
      const auto wait = std::chrono::milliseconds(args.integer("wait_ms").value_or(
          (config.stop_grace + config.kill_grace + std::chrono::seconds(10)).count()));
      settle(*id, wait);
      return JsonObject()
          .add("extension", *id)
          .add_raw("instances", figures_array(instances_of(*id)))
          .str();
    }
    if (method == "ext.update") {
      auto id = extension_arg(args);
      if (!id) return tl::unexpected(id.error());
      const std::string file = args.string("manifest").value_or("");
      if (file.empty()) return tl::unexpected(Error{Errc::invalid_argument, "missing 'manifest'"});
      auto next = supervisor::load_manifest(file);
      if (!next) return tl::unexpected(Error{Errc::invalid_argument, next.error().message()});
      if (next->id != *id) {
        return tl::unexpected(Error{
            Errc::invalid_argument,
            "manifest '" + file + "' is for extension '" + next->id + "', not '" + *id + "'"});
      }
      // The config's default limits apply to the new version as to the first.
      if (next->limits.memory_bytes == 0) {
        next->limits.memory_bytes = config.default_limits.memory_bytes;
      }
      if (next->limits.cpu_cores == 0) next->limits.cpu_cores = config.default_limits.cpu_cores;
      const auto timeout = std::chrono::milliseconds(args.integer("timeout_ms").value_or(30'000));
      if (auto updated = supervisor->update(std::move(*next), timeout); !updated) {
        return tl::unexpected(Error{updated.error().code,
                                    "update of '" + *id + "' failed: " + updated.error().message});
      }
      settle(*id, config.stop_grace + config.kill_grace + std::chrono::seconds(10));
      return JsonObject()
          .add("extension", *id)
          .add_raw("instances", figures_array(instances_of(*id)))
          .str();
    }
    if (method == "ext.call") {
      auto id = extension_arg(args);
      if (!id) return tl::unexpected(id.error());
      const std::string name = args.string("method").value_or("");
      if (name.empty()) return tl::unexpected(Error{Errc::invalid_argument, "missing 'method'"});
      const auto timeout = std::chrono::milliseconds(args.integer("timeout_ms").value_or(10'000));
      auto reply = supervisor->request(*id, name, args.raw("payload").value_or("{}"), timeout);
      if (!reply) return tl::unexpected(reply.error());
      return JsonObject()
          .add("extension", *id)
          .add("method", name)
          .add_raw("reply", reply->empty() ? "null" : *reply)
          .str();
    }
    if (method == "ext.logs") {
      auto id = extension_arg(args);
      if (!id) return tl::unexpected(id.error());
      const int instance = static_cast<int>(args.integer("instance").value_or(0));
      auto f = supervisor->figures(*id, instance);
      if (!f) {
        return tl::unexpected(Error{Errc::not_found, "extension '" + *id + "' has no instance " +
                                                         std::to_string(instance)});
      }
      const auto lines = args.integer("lines").value_or(50);
      if (lines < 0) return tl::unexpected(Error{Errc::invalid_argument, "'lines' < 0"});
      fs::path rotated = f->log_file;
      rotated += ".1";
      return JsonObject()
          .add("extension", *id)
          .add("instance", instance)
          .add("file", f->log_file.string())
          .add("rotated", rotated.string())
          .add("text", tail_log(f->log_file, static_cast<std::size_t>(lines)))
          .str();
    }
    return tl::unexpected(Error{Errc::invalid_argument, "unknown method '" + method + "'"});
  }

  fs::path log_dir() const {
    return config.log_dir.empty() ? runtime_dir / "logs" : config.log_dir;
  }

  std::string ui_json() const {
    const auto ui = read_ui_endpoint(runtime_dir);
    if (!ui) return "null";
    return JsonObject().add("url", ui->url).add("port", ui->port).str();
  }
};

Host::Host(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Host::~Host() = default;

const HostConfig& Host::config() const noexcept {
  return impl_->config;
}
supervisor::Supervisor& Host::supervisor() noexcept {
  return *impl_->supervisor;
}
const fs::path& Host::runtime_dir() const noexcept {
  return impl_->runtime_dir;
}
fs::path Host::log_dir() const {
  return impl_->log_dir();
}
const AdminServer* Host::admin() const noexcept {
  return impl_->admin.get();
}
std::optional<UiEndpoint> Host::ui() const {
  return read_ui_endpoint(impl_->runtime_dir);
}

engine::Result<std::string> Host::handle(const std::string& method, const JsonReader& args) {
  return impl_->handle(method, args);
}

bool Host::wait_settled(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    bool moving = false;
    for (const auto& f : impl_->supervisor->figures()) moving = moving || on_its_way(f.state);
    if (!moving) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

engine::Result<std::unique_ptr<Host>> Host::start(HostConfig config, HostOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  impl->options = std::move(options);
  const HostConfig& cfg = impl->config;
  auto dir = engine::ensure_runtime_dir(cfg.bus);
  if (!dir) return tl::unexpected(dir.error());
  impl->runtime_dir = *dir;
  // The admin endpoint's lock first: a second host on this bus is refused before it touches
  // the first one's control-plane sockets.
  if (impl->options.admin) {
    Impl* raw = impl.get();
    auto admin = AdminServer::start({.bus = cfg.bus, .runtime_dir = *dir},
                                    [raw](const std::string& method, const JsonReader& args) {
                                      return raw->handle(method, args);
                                    });
    if (!admin) return tl::unexpected(admin.error());
    impl->admin = std::move(*admin);
    // We hold the bus now: a ui.json left by an earlier host names a dead gateway (its token
    // is not reused across hosts).
    std::error_code ec;
    fs::remove(impl->runtime_dir / kUiFile, ec);
    impl->owns_ui_file = true;
  }
  auto bus = Bus::open({.name = cfg.bus, .runtime_dir = {}});
  if (!bus) return tl::unexpected(bus.error());
  impl->bus.emplace(std::move(*bus));
  auto sup_options = cfg.supervisor_options();
  sup_options.on_lifecycle = impl->options.on_lifecycle;
  auto sup = supervisor::Supervisor::start(std::move(sup_options));
  if (!sup) return tl::unexpected(sup.error());
  impl->supervisor = std::move(*sup);
  for (const auto& manifest : cfg.extensions) {
    if (auto added = impl->supervisor->add(manifest); !added) {
      return tl::unexpected(
          Error{added.error().code, "extension '" + manifest.id + "': " + added.error().message});
    }
  }
  impl->ready.store(true);
  return std::unique_ptr<Host>(new Host(std::move(impl)));
}

}  // namespace symphony::cli
