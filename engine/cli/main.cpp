// symphony: run a host with extensions, and look at it from outside (extensions, topics, logs,
// config, perf). See engine/cli/README.md.

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "symphony/cli/admin.hpp"
#include "symphony/cli/config.hpp"
#include "symphony/cli/host.hpp"
#include "symphony/cli/text.hpp"
#include "symphony/cli/topics.hpp"
#include "symphony/controlplane/envelope.hpp"
#include "symphony/engine/runtime_dir.hpp"

namespace {

namespace fs = std::filesystem;
using namespace symphony;
using namespace symphony::cli;
using controlplane::JsonObject;
using controlplane::JsonReader;

// Exit codes (README): 0 done, 1 failed (one line on stderr says why), 2 bad command line,
// 3 no host is running on the bus.
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNoHost = 3;

struct Failure {
  int code;
  std::string message;
};

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "symphony: %s\n", message.c_str());
  return code;
}

struct Globals {
  std::optional<std::string> bus;
  std::optional<std::string> config;
  bool json = false;
};

// --bus, else $SYMPHONY_BUS, else the config's bus (search order), else "default".
tl::expected<std::string, Failure> resolve_bus(const Globals& g) {
  if (g.bus) {
    if (auto ok = engine::check_bus_name(*g.bus); !ok) {
      return tl::unexpected(Failure{kExitUsage, "--bus: " + ok.error().message});
    }
    return *g.bus;
  }
  if (const char* env = std::getenv(kEnvBus); env != nullptr && *env != '\0') return env;
  auto found = find_config(g.config);
  if (!found) return tl::unexpected(Failure{kExitFailed, found.error().message()});
  if (!*found) return std::string("default");
  auto config = load_config((*found)->path);
  if (!config) return tl::unexpected(Failure{kExitFailed, config.error().message()});
  return config->bus;
}

// Blocks SIGINT and SIGTERM in this (the main) thread before any other thread exists, so they
// are only ever read from the returned signalfd (every thread inherits the mask).
int block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

const char* signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal";
}

tl::expected<AdminClient, Failure> connect(const Globals& g, std::string* bus_out = nullptr) {
  auto bus = resolve_bus(g);
  if (!bus) return tl::unexpected(bus.error());
  if (bus_out != nullptr) *bus_out = *bus;
  auto client = AdminClient::connect(*bus);
  if (!client) return tl::unexpected(Failure{kExitNoHost, client.error().message});
  return std::move(*client);
}

tl::expected<std::string, Failure> call(
    AdminClient& client, const std::string& bus, std::string_view method, std::string_view args,
    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto reply = client.call(method, args, timeout);
  if (reply) return *reply;
  const AdminError& e = reply.error();
  switch (e.failure) {
    case AdminFailure::no_host:
      return tl::unexpected(Failure{kExitNoHost, e.message});
    case AdminFailure::no_answer:
      return tl::unexpected(Failure{kExitNoHost, e.message});
    case AdminFailure::unauthorized:
      return tl::unexpected(
          Failure{kExitFailed, "the host on bus '" + bus + "' refused the request: " + e.message});
    case AdminFailure::refused:
      return tl::unexpected(Failure{kExitFailed, e.message});
  }
  return tl::unexpected(Failure{kExitFailed, e.message});
}

std::string extension_table(const std::string& array_json, bool with_figures) {
  auto items = json_array_items(array_json);
  std::vector<std::vector<std::string>> rows;
  if (with_figures) {
    rows.push_back({"ID", "VERSION", "PID", "STATE", "RESTARTS", "CPU", "RSS", "UPTIME", "REASON"});
  } else {
    rows.push_back({"ID", "VERSION", "PID", "STATE"});
  }
  for (const auto& item : items.value_or(std::vector<std::string>{})) {
    auto f = JsonReader::parse(item);
    if (!f) continue;
    std::string id = f->string("id").value_or("?");
    const auto instance = f->integer("instance").value_or(0);
    if (instance != 0) id += "/" + std::to_string(instance);
    const auto pid = f->integer("pid").value_or(0);
    std::vector<std::string> row = {id, f->string("version").value_or(""),
                                    pid > 0 ? std::to_string(pid) : "-",
                                    f->string("state").value_or("?")};
    if (with_figures) {
      const bool running = pid > 0;
      std::string reason = f->string("reason").value_or("");
      if (reason.size() > 60) reason = reason.substr(0, 57) + "...";
      row.push_back(std::to_string(f->integer("restarts").value_or(0)));
      row.push_back(running
                        ? human_duration(std::chrono::nanoseconds(f->integer("cpu_ns").value_or(0)))
                        : "-");
      row.push_back(
          running ? human_bytes(static_cast<std::uint64_t>(f->integer("rss_bytes").value_or(0)))
                  : "-");
      row.push_back(
          running ? human_duration(std::chrono::nanoseconds(f->integer("uptime_ns").value_or(0)))
                  : "-");
      row.push_back(reason);
    }
    rows.push_back(std::move(row));
  }
  return render_table(rows);
}

// ---- up -------------------------------------------------------------------------------------

// Samples published so far on each topic of the bus (its publisher's counter, which a restarted
// publisher carries on).
std::map<std::string, std::uint64_t> published_by_topic(const Bus& bus) {
  std::map<std::string, std::uint64_t> published;
  if (auto topics = bus.topics()) {
    for (const TopicInfo& topic : *topics) {
      std::uint64_t count = 0;
      for (const TopicParticipant& p : topic.publishers) count += p.published;
      published[topic.name] = count;
    }
  }
  return published;
}

// What ran: every instance's state and restarts, and what each topic carried while the host ran
// (one line that scripts can check: "up: ... total N samples, R samples/s").
std::string run_summary(Host& host, const Bus& bus,
                        const std::map<std::string, std::uint64_t>& at_start, double seconds) {
  std::string out;
  int healthy = 0;
  std::uint64_t restarts = 0;
  const auto figures = host.supervisor().figures();
  for (const auto& f : figures) {
    healthy += f.state == supervisor::LifecycleState::healthy;
    restarts += f.restarts;
  }
  std::uint64_t total = 0;
  std::string topics;
  for (const auto& [name, count] : published_by_topic(bus)) {
    const auto before = at_start.find(name);
    const std::uint64_t carried = count - std::min(count, before == at_start.end() ? 0 : before->second);
    total += carried;
    char line[256];
    std::snprintf(line, sizeof line, "%s%s %llu (%.0f/s)", topics.empty() ? "" : ", ", name.c_str(),
                  static_cast<unsigned long long>(carried),
                  seconds > 0 ? static_cast<double>(carried) / seconds : 0.0);
    topics += line;
  }
  char head[256];
  std::snprintf(head, sizeof head, "up: ran %.1f s; %zu instance(s): %d HEALTHY, %llu restart(s)",
                seconds, figures.size(), healthy, static_cast<unsigned long long>(restarts));
  out += head;
  if (!topics.empty()) out += "; samples per topic: " + topics;
  char tail[128];
  std::snprintf(tail, sizeof tail, "; total %llu samples, %.0f samples/s\n",
                static_cast<unsigned long long>(total),
                seconds > 0 ? static_cast<double>(total) / seconds : 0.0);
  return out + tail;
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds);
  return text;
}

int cmd_up(const Globals& g, double duration_s) {
  const int stop_fd = block_stop_signals();
  if (stop_fd < 0) return fail(kExitFailed, std::string("signalfd: ") + std::strerror(errno));
  auto found = find_config(g.config);
  if (!found) return fail(kExitFailed, found.error().message());
  HostConfig config;
  std::string where = "no config file found (searched: ";
  for (const auto& place : config_search_order()) where += place + ", ";
  where.resize(where.size() - 2);
  where += "): running with defaults and no extensions";
  if (*found) {
    auto loaded = load_config((*found)->path);
    if (!loaded) return fail(kExitFailed, loaded.error().message());
    config = std::move(*loaded);
    where = "config " + (*found)->path.string() + " (" + (*found)->rule + ")";
  }
  if (g.bus) {
    if (auto ok = engine::check_bus_name(*g.bus); !ok) {
      return fail(kExitUsage, "--bus: " + ok.error().message);
    }
    config.bus = *g.bus;
  } else if (const char* env = std::getenv(kEnvBus); env != nullptr && *env != '\0') {
    if (auto ok = engine::check_bus_name(env); !ok) {
      return fail(kExitUsage, std::string("$") + kEnvBus + ": " + ok.error().message);
    }
    config.bus = env;
  }

  auto logger = spdlog::stderr_color_mt("symphony");
  logger->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  logger->set_level(spdlog::level::from_str(config.log_level));
  logger->flush_on(spdlog::level::trace);

  HostOptions options;
  options.on_lifecycle = [logger](const supervisor::LifecycleEvent& e) {
    const auto level =
        e.to == supervisor::LifecycleState::crashed || e.to == supervisor::LifecycleState::failed
            ? spdlog::level::warn
            : spdlog::level::info;
    logger->log(level, "{}/{} {} -> {} (pid {}): {}", e.extension, e.instance,
                supervisor::to_string(e.from), supervisor::to_string(e.to), e.pid, e.reason);
  };
  const std::string bus = config.bus;
  const std::size_t count = config.extensions.size();
  logger->info("starting a host on bus '{}' with {} extension(s); {}", bus, count, where);
  auto host = Host::start(std::move(config), std::move(options));
  if (!host) return fail(kExitFailed, host.error().message);
  (*host)->wait_settled(std::chrono::seconds(10));

  auto listing = (*host)->handle("ext.list", *JsonReader::parse("{}"));
  auto body = JsonReader::parse(listing.value_or("{}"));
  std::string out = "\nsymphony host on bus '" + bus + "' (pid " + std::to_string(::getpid()) +
                    "): " + std::to_string(count) + " extension(s)\n\n";
  if (count > 0 && body) out += extension_table(body->raw("extensions").value_or("[]"), false);
  // The UI gateway writes ui.json before it says ready; give a slow one a few seconds more.
  auto ui = (*host)->ui();
  const bool has_gateway = std::any_of(
      (*host)->config().extensions.begin(), (*host)->config().extensions.end(),
      [](const supervisor::Manifest& m) { return m.executable.filename() == "ui-gateway"; });
  for (int i = 0; !ui && has_gateway && i < 60; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ui = (*host)->ui();
  }
  if (ui) out += "\nUI: " + ui->url + "\n";
  const std::string flag = " --bus " + bus;
  out += "\nlogs:    " + (*host)->log_dir().string() + "\n";
  out += "admin:   " + (*host)->admin()->endpoint() +
         " (token: " + (*host)->admin()->token_file().string() + ")\n";
  out += "try:     symphony ext list" + flag + "\n";
  out += "         symphony ext call ID METHOD '{...}'" + flag + "\n";
  out += "         symphony ext logs ID" + flag + " --follow\n";
  out += "         symphony topic list" + flag + "\n";
  out += "         symphony topic hz TOPIC" + flag + "\n";
  out += "stop:    Ctrl-C or SIGTERM" +
         (duration_s > 0 ? " (or after " + seconds_text(duration_s) + " s)" : "") +
         "\n\n";
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);

  // The summary at the end counts what the topics carried from here on.
  BusOptions observer_options;
  observer_options.name = bus;
  auto observer = Bus::open(observer_options);
  const auto at_start = observer ? published_by_topic(*observer)
                                 : std::map<std::string, std::uint64_t>{};
  const auto start = std::chrono::steady_clock::now();
  std::string why = "duration";
  for (;;) {
    int timeout = -1;
    if (duration_s > 0) {
      const double left =
          duration_s -
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (left <= 0) break;
      timeout = static_cast<int>(left * 1000.0) + 1;
    }
    pollfd p{stop_fd, POLLIN, 0};
    const int n = ::poll(&p, 1, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      signalfd_siginfo info{};
      if (::read(stop_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        why = signal_name(static_cast<int>(info.ssi_signo));
      }
      break;
    }
  }
  if (observer) {
    const double ran =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fputs(("\n" + run_summary(**host, *observer, at_start, ran)).c_str(), stdout);
    std::fflush(stdout);
  }
  logger->info("stopping ({}): every extension, then the control plane", why);
  host->reset();
  logger->info("stopped");
  ::close(stop_fd);
  return 0;
}

// ---- ext ------------------------------------------------------------------------------------

int cmd_ext_list(const Globals& g) {
  std::string bus;
  auto client = connect(g, &bus);
  if (!client) return fail(client.error().code, client.error().message);
  auto reply = call(*client, bus, "ext.list", "{}");
  if (!reply) return fail(reply.error().code, reply.error().message);
  auto body = JsonReader::parse(*reply);
  const std::string list = body ? body->raw("extensions").value_or("[]") : "[]";
  if (g.json) {
    std::printf("%s\n", list.c_str());
  } else {
    std::fputs(extension_table(list, true).c_str(), stdout);
  }
  return 0;
}

// "id" or "id/instance"
std::pair<std::string, int> split_id(const std::string& text, int instance) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return {text, instance};
  return {text.substr(0, slash), std::atoi(text.c_str() + slash + 1)};
}

int cmd_ext_verb(const Globals& g, const std::string& verb, const std::string& id,
                 const std::string& manifest = {}, double timeout_s = 30) {
  std::string bus;
  auto client = connect(g, &bus);
  if (!client) return fail(client.error().code, client.error().message);
  JsonObject args;
  args.add("id", id);
  if (verb == "update") {
    std::error_code ec;
    if (!fs::is_regular_file(manifest, ec)) return fail(kExitFailed, "no manifest " + manifest);
    args.add("manifest", fs::absolute(manifest, ec).string())
        .add("timeout_ms", static_cast<std::int64_t>(timeout_s * 1000));
  }
  auto reply = call(
      *client, bus, "ext." + verb, args.str(),
      std::chrono::seconds(60) + std::chrono::milliseconds(static_cast<long>(timeout_s * 1000)));
  if (!reply) return fail(reply.error().code, reply.error().message);
  if (g.json) {
    std::printf("%s\n", reply->c_str());
    return 0;
  }
  auto body = JsonReader::parse(*reply);
  std::printf("%s %s\n",
              verb == "stop"     ? "stopped"
              : verb == "start"  ? "started"
              : verb == "update" ? "updated"
                                 : "restarted",
              id.c_str());
  if (body)
    std::fputs(extension_table(body->raw("instances").value_or("[]"), true).c_str(), stdout);
  return 0;
}

// `symphony ext call ID METHOD [JSON]`: one request through the host (Supervisor::request: round
// robin over HEALTHY instances; an on-demand extension is started); prints the reply's JSON.
int cmd_ext_call(const Globals& g, const std::string& id, const std::string& method,
                 const std::string& payload, double timeout_s) {
  if (!payload.empty() && !JsonReader::parse(payload)) {
    return fail(kExitUsage, "the payload must be a JSON object, e.g. '{\"query\": \"README\"}'");
  }
  std::string bus;
  auto client = connect(g, &bus);
  if (!client) return fail(client.error().code, client.error().message);
  JsonObject args;
  args.add("id", id).add("method", method).add("timeout_ms",
                                               static_cast<std::int64_t>(timeout_s * 1000));
  args.add_raw("payload", payload.empty() ? "{}" : payload);
  auto reply = call(*client, bus, "ext.call", args.str(),
                    std::chrono::seconds(5) + std::chrono::milliseconds(
                                                  static_cast<long>(timeout_s * 1000)));
  if (!reply) return fail(reply.error().code, reply.error().message);
  auto body = JsonReader::parse(*reply);
  const std::string answer = body ? body->raw("reply").value_or("null") : *reply;
  std::printf("%s\n", g.json ? reply->c_str() : answer.c_str());
  return 0;
}

// Prints what is appended to `file` until a stop signal; follows a rotation (the file is
// replaced by a new, shorter one).
void follow_file(const fs::path& file, std::uintmax_t from, int stop_fd) {
  std::uintmax_t offset = from;
  ino_t inode = 0;
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) inode = st.st_ino;
  std::vector<char> buffer(65536);
  for (;;) {
    pollfd p{stop_fd, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) return;
    if (::stat(file.c_str(), &st) != 0) continue;
    if (st.st_ino != inode || static_cast<std::uintmax_t>(st.st_size) < offset) {
      inode = st.st_ino;  // rotated: the new file from its start
      offset = 0;
    }
    if (static_cast<std::uintmax_t>(st.st_size) == offset) continue;
    std::ifstream in(file, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset));
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
      std::fwrite(buffer.data(), 1, static_cast<std::size_t>(in.gcount()), stdout);
      offset += static_cast<std::uintmax_t>(in.gcount());
    }
    std::fflush(stdout);
  }
}

int cmd_ext_logs(const Globals& g, const std::string& id_text, int instance_flag, int lines,
                 bool follow) {
  const int stop_fd = follow ? block_stop_signals() : -1;
  const auto [id, instance] = split_id(id_text, instance_flag);
  std::string bus;
  auto client = connect(g, &bus);
  if (!client) return fail(client.error().code, client.error().message);
  auto reply = call(*client, bus, "ext.logs",
                    JsonObject().add("id", id).add("instance", instance).add("lines", lines).str());
  if (!reply) return fail(reply.error().code, reply.error().message);
  auto body = JsonReader::parse(*reply);
  if (!body) return fail(kExitFailed, "bad reply from the host");
  const std::string file = body->string("file").value_or("");
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (g.json) {
    std::printf("%s\n", reply->c_str());
  } else {
    std::fputs(body->string("text").value_or("").c_str(), stdout);
  }
  std::fflush(stdout);
  if (follow) follow_file(file, ec ? 0 : size, stop_fd);
  return 0;
}

// ---- topic ----------------------------------------------------------------------------------

tl::expected<Bus, Failure> open_bus(const Globals& g) {
  auto name = resolve_bus(g);
  if (!name) return tl::unexpected(name.error());
  auto bus = Bus::open({.name = *name, .runtime_dir = {}});
  if (!bus) return tl::unexpected(Failure{kExitFailed, bus.error().message});
  return std::move(*bus);
}

int cmd_topic_list(const Globals& g, double window_s) {
  auto bus = open_bus(g);
  if (!bus) return fail(bus.error().code, bus.error().message);
  auto topics = survey_topics(*bus, std::chrono::milliseconds(static_cast<long>(window_s * 1000)));
  if (!topics) return fail(kExitFailed, topics.error().message);
  if (g.json) {
    std::printf("%s\n", topics_json(*topics, bus->name()).c_str());
  } else if (topics->empty()) {
    std::printf("no topics on bus '%s'\n", bus->name().c_str());
  } else {
    std::fputs(topics_table(*topics).c_str(), stdout);
  }
  return 0;
}

int cmd_topic_observe(const Globals& g, const std::string& topic, bool hz, const EchoOptions& echo,
                      const HzOptions& hz_options, double wait_s, bool history) {
  const int stop_fd = block_stop_signals();
  auto bus = open_bus(g);
  if (!bus) return fail(bus.error().code, bus.error().message);
  ObserveOptions options;
  options.topic = topic;
  options.history = history && !hz;
  options.wait = std::chrono::milliseconds(wait_s < 0 ? -1 : static_cast<long>(wait_s * 1000));
  options.stop_fd = stop_fd;
  auto subscriber = observe(*bus, options, stderr);
  if (!subscriber) {
    if (subscriber.error().code == engine::Errc::unavailable) return 0;  // Ctrl-C while waiting
    return fail(kExitFailed, subscriber.error().message);
  }
  const int code = hz ? run_hz(*subscriber, hz_options, stdout, stop_fd)
                      : run_echo(*subscriber, echo, stdout, stop_fd);
  if (!hz && !echo.json) {
    const auto counters = subscriber->counters();
    std::fprintf(stderr, "%llu samples, %llu dropped\n",
                 static_cast<unsigned long long>(counters.delivered),
                 static_cast<unsigned long long>(counters.dropped));
  }
  return code;
}

// ---- config ---------------------------------------------------------------------------------

int cmd_config_gen(const Globals& g, const std::string& output, bool force) {
  std::string bus = g.bus.value_or("default");
  if (auto ok = engine::check_bus_name(bus); !ok)
    return fail(kExitUsage, "--bus: " + ok.error().message);
  const std::string text = default_config_text(bus);
  if (output.empty() || output == "-") {
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  std::error_code ec;
  if (!force && fs::exists(output, ec)) {
    return fail(kExitFailed, output + " exists (--force overwrites it)");
  }
  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return fail(kExitFailed, "cannot write " + output);
  std::fprintf(stderr, "wrote %s\n", output.c_str());
  return 0;
}

int cmd_config_validate(const Globals& g, const std::string& file_arg) {
  fs::path file = file_arg;
  if (file.empty()) {
    auto found = find_config(g.config);
    if (!found) return fail(kExitFailed, found.error().message());
    if (!*found) {
      std::string places;
      for (const auto& p : config_search_order()) places += (places.empty() ? "" : ", ") + p;
      return fail(kExitFailed, "no config file to validate (searched: " + places + ")");
    }
    file = (*found)->path;
  }
  auto config = load_config(file);
  if (!config) {
    if (g.json) {
      auto& e = config.error();
      std::printf("%s\n", JsonObject()
                              .add("valid", false)
                              .add("file", file.string())
                              .add("key", e.key)
                              .add("reason", e.reason)
                              .add("message", e.message())
                              .str()
                              .c_str());
    }
    return fail(kExitFailed, config.error().message());
  }
  std::string ids = "[";
  std::string names;
  for (const auto& m : config->extensions) {
    ids += (ids.size() > 1 ? "," : "") + controlplane::json_quote(m.id);
    names += (names.empty() ? "" : ", ") + m.id;
  }
  ids += "]";
  if (g.json) {
    std::printf("%s\n", JsonObject()
                            .add("valid", true)
                            .add("file", file.string())
                            .add("bus", config->bus)
                            .add_raw("extensions", ids)
                            .str()
                            .c_str());
  } else {
    std::printf("%s: valid: bus '%s', %zu extension(s)%s%s\n", file.c_str(), config->bus.c_str(),
                config->extensions.size(), names.empty() ? "" : ": ", names.c_str());
  }
  return 0;
}

// ---- perf -----------------------------------------------------------------------------------

int cmd_perf(const std::vector<std::string>& args) {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("SYMPHONY_PERF"); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  }
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(self.parent_path() / "symphony-perf");
  candidates.emplace_back(SYMPHONY_PERF_BUILD_PATH);
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string all = path;
    for (std::size_t at = 0; at <= all.size();) {
      const auto colon = std::min(all.find(':', at), all.size());
      if (colon > at) candidates.push_back(fs::path(all.substr(at, colon - at)) / "symphony-perf");
      at = colon + 1;
    }
  }
  for (const auto& candidate : candidates) {
    if (::access(candidate.c_str(), X_OK) != 0) continue;
    std::vector<std::string> argv_text = {candidate.string()};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(nullptr);
    ::execv(candidate.c_str(), argv.data());
    return fail(kExitFailed, "exec " + candidate.string() + ": " + std::strerror(errno));
  }
  return fail(kExitFailed, "symphony-perf not found ($SYMPHONY_PERF, next to this binary, " +
                               std::string(SYMPHONY_PERF_BUILD_PATH) +
                               ", PATH); build the perf harness "
                               "(SYMPHONY_BUILD_APPS=ON)");
}

std::string search_order_help() {
  std::string text = "Config search order (the first that exists): ";
  const auto order = config_search_order();
  for (std::size_t i = 0; i < order.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(i + 1) + ". " + order[i];
  }
  return text + ". The bus: --bus, else $SYMPHONY_BUS, else the config's, else \"default\".";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"symphony: run a host with extensions; look at its extensions, topics and logs"};
  app.footer(search_order_help() +
             "\nExit codes: 0 done, 1 failed (one line on stderr says why), 2 bad command line, "
             "3 no host running on the bus.");
  app.require_subcommand(1);
  app.fallthrough();
  Globals g;
  std::string bus_flag;
  std::string config_flag;
  app.add_option("--bus", bus_flag, "Bus name (default: $SYMPHONY_BUS, the config's, \"default\")");
  app.add_option("--config", config_flag, "Config file (TOML); see the search order below");

  // up
  double duration = 0;
  auto* up = app.add_subcommand("up",
                                "Run a host: the bus, a supervisor and the config's "
                                "extensions, until Ctrl-C/SIGTERM or --duration");
  up->add_option("--duration", duration, "Stop after this many seconds")
      ->check(CLI::NonNegativeNumber);
  up->footer(search_order_help());

  // ext
  auto* ext = app.add_subcommand("ext", "Extensions of the running host (over its admin endpoint)");
  ext->require_subcommand(1);
  auto* ext_list =
      ext->add_subcommand("list", "id, version, pid, state, restarts, CPU, RSS, uptime");
  ext_list->add_flag("--json", g.json, "JSON array of every instance's figures");
  std::string ext_id;
  std::vector<std::pair<std::string, CLI::App*>> verbs;
  for (const char* verb : {"start", "stop", "restart"}) {
    auto* sub = ext->add_subcommand(verb, std::string(verb) + " an extension (every instance)");
    sub->add_option("ID", ext_id, "Extension id")->required();
    sub->add_flag("--json", g.json, "The instances after the command, as JSON");
    verbs.emplace_back(verb, sub);
  }
  auto* ext_update = ext->add_subcommand(
      "update",
      "Hot update: replace every instance by the manifest's version, without a gap "
      "(rolled back if the new one is not HEALTHY in time)");
  std::string update_manifest;
  double update_timeout = 30;
  ext_update->add_option("ID", ext_id, "Extension id")->required();
  ext_update->add_option("--manifest", update_manifest, "The new version's manifest (JSON)")
      ->required();
  ext_update
      ->add_option("--timeout", update_timeout,
                   "Seconds for the new version to become HEALTHY (30)")
      ->check(CLI::PositiveNumber);
  ext_update->add_flag("--json", g.json, "The instances after the update, as JSON");
  auto* ext_call = ext->add_subcommand(
      "call", "Send a request to an extension and print its reply (round robin over its "
              "HEALTHY instances; an on-demand one is started)");
  std::string call_method;
  std::string call_payload;
  double call_timeout = 10;
  ext_call->add_option("ID", ext_id, "Extension id")->required();
  ext_call->add_option("METHOD", call_method, "Request method, e.g. search")->required();
  ext_call->add_option("JSON", call_payload, "Payload, a JSON object (default {})");
  ext_call->add_option("--timeout", call_timeout, "Seconds to wait for the reply (10)")
      ->check(CLI::PositiveNumber);
  ext_call->add_flag("--json", g.json, "{extension, method, reply}");
  auto* ext_logs = ext->add_subcommand("logs", "An instance's log (stdout and stderr, captured)");
  int lines = 50;
  int instance = 0;
  bool follow = false;
  ext_logs->add_option("ID", ext_id, "Extension id, or id/instance")->required();
  ext_logs->add_option("--lines,-n", lines, "The last N lines (default 50)")
      ->check(CLI::NonNegativeNumber);
  ext_logs->add_option("--instance", instance, "Instance (default 0)")
      ->check(CLI::NonNegativeNumber);
  ext_logs->add_flag("--follow,-f", follow, "Keep printing what it writes, until Ctrl-C");
  ext_logs->add_flag("--json", g.json, "{extension, instance, file, rotated, text}");

  // topic
  auto* topic = app.add_subcommand("topic", "Topics of the bus (no host needed)");
  topic->require_subcommand(1);
  auto* topic_list = topic->add_subcommand("list",
                                           "Topics with publishers, subscribers, "
                                           "transport, QoS, rates and drops");
  double window_s = 1.0;
  topic_list
      ->add_option("--window", window_s,
                   "Seconds between the two samples of the counters "
                   "(0: no rates; default 1)")
      ->check(CLI::NonNegativeNumber);
  topic_list->add_flag("--json", g.json, "JSON");
  std::string topic_name;
  EchoOptions echo;
  double echo_duration = 0;
  double wait_s = -1;
  bool no_history = false;
  auto* topic_echo = topic->add_subcommand("echo",
                                           "Print a topic's samples (attaches as "
                                           "discard_oldest: never slows a publisher)");
  topic_echo->add_option("TOPIC", topic_name, "Topic name")->required();
  topic_echo->add_flag("--text", echo.text, "Samples as text (default: hex dump)");
  topic_echo->add_flag("--json", echo.json, "One JSON object per sample: {seq, size, hex|text}");
  topic_echo->add_option("--count,-n", echo.count, "Stop after N samples");
  topic_echo->add_option("--max-bytes", echo.max_bytes, "Show at most N bytes a sample (256)");
  topic_echo->add_option("--duration", echo_duration, "Stop after this many seconds");
  topic_echo->add_option("--wait", wait_s,
                         "Seconds to wait for the topic to appear (default: "
                         "forever; 0: fail at once)");
  topic_echo->add_flag("--no-history", no_history, "Skip the topic's history samples");
  HzOptions hz;
  double hz_duration = 0;
  auto* topic_hz = topic->add_subcommand("hz",
                                         "Measure a topic's rate (like ros2 topic hz): "
                                         "rate, min/max/std dev of intervals over a window");
  topic_hz->add_option("TOPIC", topic_name, "Topic name")->required();
  topic_hz->add_option("--window,-w", hz.window, "Intervals in the window (10000)");
  topic_hz->add_flag("--json", hz.json, "One JSON object per report");
  topic_hz->add_option("--duration", hz_duration, "Stop after this many seconds");
  topic_hz->add_option("--wait", wait_s, "Seconds to wait for the topic to appear");

  // config
  auto* config = app.add_subcommand("config", "Host config files");
  config->require_subcommand(1);
  auto* config_gen = config->add_subcommand("gen", "Write a commented default config");
  std::string output;
  bool force = false;
  config_gen->add_option("--output,-o", output, "File to write (default: stdout)");
  config_gen->add_flag("--force", force, "Overwrite an existing file");
  auto* config_validate = config->add_subcommand(
      "validate", "Check a config and the manifests it names; the first problem, with its key");
  std::string validate_file;
  config_validate->add_option("FILE", validate_file, "Config file (default: the search order)");
  config_validate->add_flag("--json", g.json,
                            "{valid, file, bus, extensions} or {valid, key, reason}");

  // perf
  auto* perf = app.add_subcommand("perf",
                                  "Run the perf harness (symphony-perf) with these "
                                  "arguments (symphony perf --help: its options)");
  std::vector<std::string> perf_args;
  perf->set_help_flag();  // --help goes to symphony-perf
  perf->prefix_command();
  perf->allow_extras();
  perf->fallthrough(false);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "symphony: %s (--help shows the usage)\n", e.what());
    return kExitUsage;
  }
  if (!bus_flag.empty()) g.bus = bus_flag;
  if (!config_flag.empty()) g.config = config_flag;

  if (up->parsed()) return cmd_up(g, duration);
  if (ext_list->parsed()) return cmd_ext_list(g);
  for (const auto& [verb, sub] : verbs) {
    if (sub->parsed()) return cmd_ext_verb(g, verb, ext_id);
  }
  if (ext_update->parsed()) {
    return cmd_ext_verb(g, "update", ext_id, update_manifest, update_timeout);
  }
  if (ext_logs->parsed()) return cmd_ext_logs(g, ext_id, instance, lines, follow);
  if (ext_call->parsed()) return cmd_ext_call(g, ext_id, call_method, call_payload, call_timeout);
  if (topic_list->parsed()) return cmd_topic_list(g, window_s);
  if (topic_echo->parsed()) {
    echo.duration = std::chrono::milliseconds(static_cast<long>(echo_duration * 1000));
    return cmd_topic_observe(g, topic_name, false, echo, hz, wait_s, !no_history);
  }
  if (topic_hz->parsed()) {
    hz.duration = std::chrono::milliseconds(static_cast<long>(hz_duration * 1000));
    return cmd_topic_observe(g, topic_name, true, echo, hz, wait_s, false);
  }
  if (config_gen->parsed()) return cmd_config_gen(g, output, force);
  if (config_validate->parsed()) return cmd_config_validate(g, validate_file);
  if (perf->parsed()) return cmd_perf(perf->remaining());
  return fail(kExitUsage, "nothing to do (--help shows the usage)");
}
