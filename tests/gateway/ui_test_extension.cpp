// An extension with a hand-made UI for the gateway's tests (no SDK UI API: frames are written
// here as JSON). Topic ui/<id> (declared by the test's manifest); requests:
//   symphony.ui.snapshot            the current tree as a snapshot frame
//   symphony.ui.event               "btn"/"click" adds one to the counter (a patch), replies
//                                   {"handled":true,"tree_seq":N}; anything else is an error
//   test.patches {count, pad, pause_us}  publishes `count` patches (counter += 1 each, a
//                                   `pad`-byte prop), pausing between them
//   test.gap                        skips one seq, then publishes a patch (the gateway sees a gap)
//   test.invalid                    publishes bytes that are not a frame
//   test.stats                      {seq, counter, snapshots, events, last_event}

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <string>

#include <nlohmann/json.hpp>
#include <symphony/sdk/extension.hpp>

namespace {

using Json = nlohmann::json;
using symphony::sdk::Reply;
using symphony::sdk::Request;

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Ui {
  std::mutex mutex;
  std::string id;
  std::optional<symphony::sdk::RawPublisher> out;
  std::uint64_t seq = 0;
  std::uint64_t counter = 0;
  std::string pad;
  std::uint64_t snapshots = 0, events = 0;
  Json last_event = nullptr;

  Json tree() const {
    return {{"id", "root"},
            {"type", "stack"},
            {"children",
             Json::array({{{"id", "counter"}, {"type", "text"}, {"props", {{"text", std::to_string(counter)}}}},
                          {{"id", "btn"}, {"type", "button"}, {"props", {{"label", "add"}}},
                           {"events", {"click"}}},
                          {{"id", "pad"}, {"type", "text"}, {"props", {{"text", pad}}}}})}};
  }
  Json snapshot() const {
    return {{"v", 1}, {"kind", "snapshot"}, {"extension", id}, {"seq", seq}, {"t", now_ms()},
            {"tree", tree()}};
  }
  void publish(const std::string& text) {
    if (!out) return;
    (void)out->publish(std::string_view(text));
  }
  // One patch: counter + 1 (and the pad), seq + 1.
  void bump(std::size_t pad_bytes, std::uint64_t events_done = 0) {
    ++counter;
    const std::uint64_t base = seq++;
    Json set = {{"text", std::to_string(counter)}};
    Json ops = Json::array({{{"op", "props"}, {"id", "counter"}, {"set", set}}});
    if (pad_bytes > 0) {
      pad = std::string(pad_bytes, 'x') + std::to_string(counter);
      ops.push_back({{"op", "props"}, {"id", "pad"}, {"set", {{"text", pad}}}});
    }
    Json frame = {{"v", 1}, {"kind", "patch"}, {"extension", id}, {"seq", seq},
                  {"base", base}, {"t", now_ms()}, {"ops", ops}};
    if (events_done != 0) frame["events_done"] = {events_done};
    publish(frame.dump());
  }
};

}  // namespace

int main(int argc, char** argv) {
  symphony::sdk::Extension ext;
  Ui ui;

  // Advertised before run(), so that run() binds it before on_start publishes the first frame.
  const char* id = std::getenv("SYMPHONY_EXTENSION_ID");
  ui.id = id != nullptr ? id : "uitest";
  symphony::sdk::AdvertiseOptions o;
  o.topic.max_payload = 256 * 1024;
  o.topic.history = 1;
  o.topic.capacity = 64;
  auto pub = ext.advertise_raw("ui/" + ui.id, o);
  if (!pub) {
    std::fprintf(stderr, "advertise: %s\n", pub.error().message.c_str());
    return 1;
  }
  ui.out.emplace(std::move(*pub));
  ext.on_start([&] {
    std::lock_guard lock(ui.mutex);
    ui.seq = 1;
    ui.publish(ui.snapshot().dump());
  });
  ext.on_request("symphony.ui.snapshot", [&](const Request&) -> Reply {
    std::lock_guard lock(ui.mutex);
    ++ui.snapshots;
    return ui.snapshot().dump();
  });
  ext.on_request("symphony.ui.event", [&](const Request& r) -> Reply {
    std::lock_guard lock(ui.mutex);
    const Json body = Json::parse(r.payload(), nullptr, false);
    ++ui.events;
    ui.last_event = body;
    if (!body.is_object() || body.value("node", "") != "btn" || body.value("event", "") != "click") {
      return symphony::sdk::fail("node '" + body.value("node", std::string("?")) + "' has no event '" +
                                 body.value("event", std::string("?")) + "'");
    }
    ui.bump(0, body.value("seq", std::uint64_t{0}));
    return Json({{"handled", true}, {"tree_seq", ui.seq}}).dump();
  });
  ext.on_request("test.patches", [&](const Request& r) -> Reply {
    std::lock_guard lock(ui.mutex);
    const auto count = r.integer("count").value_or(1);
    const auto pad = r.integer("pad").value_or(0);
    const auto pause = std::chrono::microseconds(r.integer("pause_us").value_or(0));
    for (std::int64_t i = 0; i < count; ++i) {
      ui.bump(static_cast<std::size_t>(pad));
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
    }
    return Json({{"seq", ui.seq}, {"counter", ui.counter}}).dump();
  });
  ext.on_request("test.gap", [&](const Request&) -> Reply {
    std::lock_guard lock(ui.mutex);
    ++ui.seq;  // never published
    ++ui.counter;
    ui.bump(0);
    return Json({{"seq", ui.seq}, {"counter", ui.counter}}).dump();
  });
  ext.on_request("test.invalid", [&](const Request&) -> Reply {
    std::lock_guard lock(ui.mutex);
    ui.publish("{\"v\":1,\"kind\":\"patch\",\"this is\":not json");
    return std::string("{}");
  });
  ext.on_request("test.stats", [&](const Request&) -> Reply {
    std::lock_guard lock(ui.mutex);
    return Json({{"seq", ui.seq}, {"counter", ui.counter}, {"snapshots", ui.snapshots},
                 {"events", ui.events}, {"last_event", ui.last_event}})
        .dump();
  });
  return ext.run(argc, argv);
}
