#include "dashboard.hpp"

#include <cstdio>
#include <functional>

#include "symphony/cli/text.hpp"  // human_bytes: sizes as symphony ext list shows them

namespace symphony::gateway {

namespace {

ui::Node node(std::string id, std::string type, ui::Value props = ui::Value::object(),
              std::vector<ui::Node> children = {}, std::vector<std::string> events = {}) {
  ui::Node n;
  n.id = std::move(id);
  n.type = std::move(type);
  n.props = std::move(props);
  n.children = std::move(children);
  n.events = std::move(events);
  return n;
}

ui::Node text(std::string id, std::string value, bool mono = false) {
  ui::Value props = {{"text", std::move(value)}};
  if (mono) props["mono"] = true;
  return node(std::move(id), "text", std::move(props));
}

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}


std::string duration_text(std::int64_t ns) {
  const std::int64_t s = ns / 1'000'000'000;
  if (s < 60) return std::to_string(s) + " s";
  if (s < 3600) return std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  return std::to_string(s / 3600) + " h " + std::to_string((s % 3600) / 60) + " min";
}

const char* tone_of(const std::string& state) {
  if (state == "HEALTHY") return "success";
  if (state == "CRASHED" || state == "FAILED" || state == "UNRESPONSIVE" || state == "HUNG") {
    return "error";
  }
  if (state == "STOPPED") return "default";
  return "warning";  // STARTING, RUNNING, STOPPING, ...
}

// Node ids are at most 128 bytes; a long topic name gets a stable hash instead.
std::string bounded_id(const std::string& prefix, const std::string& name) {
  std::string id = prefix + name;
  if (id.size() <= 128) return id;
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%016zx", std::hash<std::string>{}(name));
  return prefix + "#" + buffer;
}

}  // namespace

ui::Node build_dashboard(const DashboardInput& in) {
  std::size_t healthy = 0;
  std::uint64_t restarts = 0;
  for (const auto& row : in.instances) {
    healthy += row.status.state == "HEALTHY";
    restarts += row.status.restarts;
  }
  double published_per_s = 0;
  std::uint64_t dropped = 0;
  for (const auto& t : in.topics) {
    published_per_s += t.published_per_s;
    dropped += t.dropped;
  }

  std::vector<ui::Node> summary;
  summary.push_back(node("stat-instances", "stat",
                         {{"label", "instances"}, {"value", in.instances.size()}}));
  summary.push_back(node("stat-healthy", "stat", {{"label", "healthy"}, {"value", healthy}}));
  summary.push_back(node("stat-restarts", "stat", {{"label", "restarts"}, {"value", restarts}}));
  summary.push_back(node("stat-topics", "stat", {{"label", "topics"}, {"value", in.topics.size()}}));
  summary.push_back(node("stat-rate", "stat",
                         {{"label", "published"}, {"value", fixed(published_per_s, 0)},
                          {"unit", "samples/s"}}));
  summary.push_back(node("stat-dropped", "stat", {{"label", "dropped"}, {"value", dropped}}));
  summary.push_back(node("stat-browsers", "stat", {{"label", "browsers"}, {"value", in.browsers}}));

  std::vector<ui::Node> ext_rows;
  for (const auto& row : in.instances) {
    const InstanceStatus& s = row.status;
    const std::string key = "ext:" + s.id + "/" + std::to_string(s.instance);
    const bool running = s.pid > 0;
    std::vector<ui::Node> cells;
    cells.push_back(text(key + ":id", s.instance == 0 ? s.id : s.id + "/" + std::to_string(s.instance),
                         true));
    cells.push_back(text(key + ":version", s.version));
    cells.push_back(node(key + ":state", "badge", {{"text", s.state}, {"tone", tone_of(s.state)}}));
    cells.push_back(text(key + ":pid", running ? std::to_string(s.pid) : "-", true));
    cells.push_back(text(key + ":restarts", std::to_string(s.restarts)));
    cells.push_back(text(key + ":cpu", running && row.cpu_percent ? fixed(*row.cpu_percent, 1) : "-"));
    cells.push_back(text(key + ":rss", running ? cli::human_bytes(s.rss_bytes) : "-"));
    cells.push_back(text(key + ":uptime", running ? duration_text(s.uptime_ns) : "-"));
    cells.push_back(text(key + ":reason", s.reason));
    if (s.instance == 0) {
      cells.push_back(node(kRestartPrefix + s.id, "button",
                           {{"label", "restart"},
                            {"variant", s.id == in.self_id ? "destructive" : "secondary"}},
                           {}, {"click"}));
    } else {
      cells.push_back(text(key + ":action", ""));
    }
    ext_rows.push_back(node(key, "row", ui::Value::object(), std::move(cells)));
  }

  std::vector<ui::Node> topic_rows;
  for (const auto& t : in.topics) {
    const std::string key = bounded_id("topic:", t.name);
    std::vector<ui::Node> cells;
    cells.push_back(text(key + ":name", t.name, true));
    cells.push_back(text(key + ":transport", t.transport));
    cells.push_back(text(key + ":pubsub",
                         std::to_string(t.publishers) + " / " + std::to_string(t.subscribers)));
    cells.push_back(text(key + ":published", std::to_string(t.published)));
    cells.push_back(text(key + ":rate", fixed(t.published_per_s, 1)));
    cells.push_back(node(key + ":dropped", "badge",
                         {{"text", std::to_string(t.dropped)},
                          {"tone", t.dropped_per_s > 0 ? "warning" : "default"}}));
    cells.push_back(text(key + ":drop-rate", fixed(t.dropped_per_s, 1)));
    cells.push_back(text(key + ":latency",
                         t.frame_latency_ms ? fixed(*t.frame_latency_ms, 2) + " ms" : "-"));
    topic_rows.push_back(node(key, "row", ui::Value::object(), std::move(cells)));
  }

  std::vector<ui::Node> children;
  children.push_back(node("title", "heading",
                          {{"text", "Harmony Board: bus '" + in.bus + "'"}, {"level", 1}}));
  children.push_back(node("summary", "stack", {{"direction", "row"}, {"gap", 12}},
                          std::move(summary)));
  children.push_back(node(
      "extensions-card", "card", {{"title", "Extensions"}},
      {node("extensions", "table",
            {{"columns", {"extension", "version", "state", "pid", "restarts", "CPU %", "RSS",
                          "uptime", "reason", ""}}},
            std::move(ext_rows))}));
  children.push_back(node(
      "topics-card", "card",
      {{"title", "Topics"},
       {"description",
        "published/s and dropped/s over the last refresh; latency: the engine's topic counters "
        "carry none, so it is shown for ui/<id> topics only (frame time stamp to the gateway)"}},
      {node("topics", "table",
            {{"columns", {"topic", "transport", "pub / sub", "published", "published/s", "dropped",
                          "dropped/s", "latency"}}},
            std::move(topic_rows))}));
  return node("dashboard", "stack", {{"direction", "column"}, {"gap", 16}}, std::move(children));
}

}  // namespace symphony::gateway
