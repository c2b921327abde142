// The SDK's UI end to end without a browser: the ui-probe extension under a real supervisor,
// its topic ui/ui-probe read here the way the gateway reads it (discard_oldest, a mirror tree
// kept with symphony::ui::apply), and the SDK's requests through Supervisor::request.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "supervisor_fixture.hpp"
#include "symphony/engine/bus.hpp"
#include "symphony/ui/tree.hpp"

#ifndef SYMPHONY_UI_PROBE_MANIFEST
#error "SYMPHONY_UI_PROBE_MANIFEST must name the ui-probe's manifest"
#endif

namespace symphony::test {
namespace {

namespace sui = ::symphony::ui;

class UiProbeTest : public SupervisorFixture {
 protected:
  void SetUp() override {
    SupervisorFixture::SetUp();
    start();
  }
  void TearDown() override {
    sub_.reset();
    bus_handle_.reset();
    SupervisorFixture::TearDown();
  }

  static supervisor::Manifest probe(std::vector<std::string> args) {
    auto m = supervisor::load_manifest(SYMPHONY_UI_PROBE_MANIFEST);
    EXPECT_TRUE(m) << m.error().message();
    if (!m) return {};
    m->args = std::move(args);
    m->start_timeout = 30s;
    m->intensity = {1'000'000, 1s};
    return *m;
  }

  // Subscribes to ui/ui-probe like the gateway: never slows the extension down.
  void subscribe(const std::string& extension = "ui-probe") {
    ext_ = extension;
    auto bus = Bus::open({.name = bus_, .runtime_dir = {}});
    ASSERT_TRUE(bus) << bus.error().message;
    bus_handle_.emplace(std::move(*bus));
    engine::SubscriberOptions options;
    options.depth = sui::kTopicCapacity - 1;
    options.overflow = engine::Overflow::discard_oldest;
    auto sub = bus_handle_->subscribe(sui::ui_topic(ext_), engine::TopicType{},
                                      sui::topic_options(), options);
    ASSERT_TRUE(sub) << sub.error().message;
    sub_.emplace(std::move(*sub));
  }

  // Frames a second over `window` of reading, by the frames' seq and their own publish times
  // (robust to discards); nullopt without two frames. `span_ms`: the publish times covered.
  struct FrameRate {
    double per_s = 0;
    double span_ms = 0;
  };
  std::optional<FrameRate> frame_rate(std::chrono::milliseconds window) {
    std::optional<std::uint64_t> from;
    std::uint64_t to = 0;
    double t_from = 0, t_to = 0;
    const auto until = Clock::now() + window;
    while (Clock::now() < until) {
      auto f = next(100ms);
      if (!f) continue;
      if (!from) {
        from = f->seq;
        t_from = f->t_ms;
      }
      to = f->seq;
      t_to = f->t_ms;
    }
    if (!from || t_to <= t_from) return std::nullopt;
    return FrameRate{static_cast<double>(to - *from) / ((t_to - t_from) / 1000.0), t_to - t_from};
  }

  // The next frame (nullopt after `timeout`).
  std::optional<sui::Frame> next(std::chrono::milliseconds timeout = 10s) {
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      const engine::Frame f = sub_->try_take();
      if (f.ok()) {
        const std::string text(static_cast<const char*>(static_cast<const void*>(f.data)), f.size);
        sub_->release();
        auto frame = sui::decode_frame(text);
        EXPECT_TRUE(frame) << frame.error().message << ": " << text.substr(0, 300);
        if (frame) return std::move(*frame);
        continue;
      }
      std::this_thread::sleep_for(1ms);
    }
    return std::nullopt;
  }

  // The gateway's mirror: a snapshot resets it, a patch must apply on its base.
  void mirror(const sui::Frame& f) {
    if (f.kind == sui::Frame::Kind::snapshot) {
      mirror_ = *f.tree;
    } else {
      ASSERT_EQ(f.base, mirror_seq_) << "a gap";
      auto ok = sui::apply(mirror_, f.ops);
      ASSERT_TRUE(ok) << ok.error().message;
    }
    mirror_seq_ = f.seq;
  }

  // Mirrors frames until one with seq >= `seq`; returns it.
  std::optional<sui::Frame> until_seq(std::uint64_t seq) {
    for (;;) {
      auto f = next();
      if (!f) return std::nullopt;
      mirror(*f);
      if (f->seq >= seq) return f;
    }
  }

  std::string prop(const std::string& id, const char* key) {
    const sui::Node* n = find(mirror_, id);
    if (n == nullptr || !n->props.contains(key)) return "<none>";
    return n->props[key].is_string() ? n->props[key].get<std::string>() : n->props[key].dump();
  }
  static const sui::Node* find(const sui::Node& n, const std::string& id) {
    if (n.id == id) return &n;
    for (const auto& c : n.children) {
      if (auto* f = find(c, id)) return f;
    }
    return nullptr;
  }

  engine::Result<std::string> call(const std::string& method, const std::string& payload) {
    return supervisor_->request(ext_, method, payload, 10s);
  }

  std::string ext_ = "ui-probe";
  std::optional<Bus> bus_handle_;
  std::optional<engine::RawSubscriber> sub_;
  sui::Node mirror_;
  std::uint64_t mirror_seq_ = 0;
};

TEST_F(UiProbeTest, SnapshotFirstEventsAnsweredWithTheFrameThatShowsThem) {
  subscribe();
  add(probe({"--tick-ms", "0"}));
  healthy("ui-probe");
  auto first = next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->kind, sui::Frame::Kind::snapshot);
  EXPECT_EQ(first->seq, 1u);
  EXPECT_EQ(first->extension, "ui-probe");
  mirror(*first);
  EXPECT_EQ(prop("count", "text"), "0");
  EXPECT_EQ(find(mirror_, "increment")->events, std::vector<std::string>{"click"});

  auto snapshot = call("symphony.ui.snapshot", "{}");
  ASSERT_TRUE(snapshot) << snapshot.error().message;
  auto snap = sui::decode_frame(*snapshot);
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_EQ(snap->kind, sui::Frame::Kind::snapshot);
  EXPECT_EQ(snap->seq, 1u);
  EXPECT_EQ(*snap->tree, mirror_);

  for (std::uint64_t click = 1; click <= 3; ++click) {
    const std::uint64_t event_seq = 40 + click;
    auto reply =
        call("symphony.ui.event", R"({"node":"increment","event":"click","payload":{},"seq":)" +
                                      std::to_string(event_seq) + "}");
    ASSERT_TRUE(reply) << reply.error().message;
    auto json = sui::parse_json(*reply);
    ASSERT_TRUE(json);
    EXPECT_EQ((*json)["handled"], true);
    const auto tree_seq = (*json)["tree_seq"].get<std::uint64_t>();
    EXPECT_EQ(tree_seq, mirror_seq_ + 1);
    auto f = until_seq(tree_seq);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->kind, sui::Frame::Kind::patch);
    EXPECT_EQ(f->seq, tree_seq);
    EXPECT_EQ(f->events_done, std::vector<std::uint64_t>{event_seq});
    EXPECT_EQ(prop("count", "text"), std::to_string(click));
  }

  auto echo = call("symphony.ui.event",
                   R"({"node":"echo","event":"change","payload":{"value":"héllo"},"seq":50})");
  ASSERT_TRUE(echo) << echo.error().message;
  ASSERT_TRUE(until_seq(sui::parse_json(*echo)->at("tree_seq").get<std::uint64_t>()));
  EXPECT_EQ(prop("echoed", "text"), "héllo");

  auto unknown =
      call("symphony.ui.event", R"({"node":"nope","event":"click","payload":{},"seq":51})");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown node 'nope'"), std::string::npos)
      << unknown.error().message;
  auto no_event =
      call("symphony.ui.event", R"({"node":"increment","event":"submit","payload":{},"seq":52})");
  ASSERT_FALSE(no_event);
  EXPECT_NE(no_event.error().message.find("node 'increment' has no event 'submit'"),
            std::string::npos)
      << no_event.error().message;
  auto threw =
      call("symphony.ui.event", R"({"node":"fail","event":"click","payload":{},"seq":53})");
  ASSERT_FALSE(threw);
  EXPECT_NE(threw.error().message.find("probe failure"), std::string::npos)
      << threw.error().message;
  // Still serving.
  auto again =
      call("symphony.ui.event", R"({"node":"increment","event":"click","payload":{},"seq":54})");
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_TRUE(until_seq(sui::parse_json(*again)->at("tree_seq").get<std::uint64_t>()));
  EXPECT_EQ(prop("count", "text"), "4");
  // A clean stop (under ASan: no leak, no error at exit either).
  ASSERT_TRUE(supervisor_->stop("ui-probe"));
  const long ended = events_.wait_state("ui-probe", LifecycleState::terminated);
  ASSERT_GE(ended, 0);
  EXPECT_NE(events_.at(ended).reason.find("exited with code 0"), std::string::npos)
      << events_.at(ended).reason;
}

TEST_F(UiProbeTest, TickerPatchesApplyInOrderToTheMirror) {
  subscribe();
  add(probe({"--tick-ms", "20"}));
  healthy("ui-probe");
  auto first = next();
  ASSERT_TRUE(first);
  ASSERT_EQ(first->kind, sui::Frame::Kind::snapshot);
  mirror(*first);
  long last_tick = std::stol(prop("ticker", "text"));
  int patches = 0;
  const auto until = Clock::now() + 1s;
  while (Clock::now() < until) {
    auto f = next(2s);
    ASSERT_TRUE(f);
    ASSERT_EQ(f->kind, sui::Frame::Kind::patch);
    mirror(*f);
    ASSERT_FALSE(HasFailure());
    const long tick = std::stol(prop("ticker", "text"));
    EXPECT_GT(tick, last_tick);
    last_tick = tick;
    ++patches;
  }
  EXPECT_GE(patches, 10) << "a tick every 20 ms";
  auto snap = sui::decode_frame(*call("symphony.ui.snapshot", "{}"));
  ASSERT_TRUE(snap);
  EXPECT_GE(snap->seq, mirror_seq_);
}

// No reader for a while (the ring wraps many times: publishing never waits), then a late one
// resyncs like the gateway: a snapshot by request, then the patches after its seq.
TEST_F(UiProbeTest, ALateSubscriberResyncsFromASnapshotRequest) {
  add(probe({"--tick-ms", "5"}));
  healthy("ui-probe");
  std::this_thread::sleep_for(600ms);  // ~100 frames into a 16-slot ring, nobody reading
  subscribe();
  auto snapshot = call("symphony.ui.snapshot", "{}");
  ASSERT_TRUE(snapshot) << snapshot.error().message;
  auto snap = sui::decode_frame(*snapshot);
  ASSERT_TRUE(snap);
  EXPECT_GT(snap->seq, 20u);
  mirror(*snap);
  int applied = 0;
  while (applied < 20) {
    auto f = next(5s);
    ASSERT_TRUE(f);
    if (f->seq <= mirror_seq_) continue;  // from before the snapshot (history, queue)
    ASSERT_EQ(f->kind, sui::Frame::Kind::patch);
    ASSERT_EQ(f->base, mirror_seq_);  // no gap: the snapshot's seq is where patches go on
    mirror(*f);
    ASSERT_FALSE(HasFailure());
    ++applied;
  }
  EXPECT_GT(std::stol(prop("ticker", "text")), 100);
}

TEST_F(UiProbeTest, AThousandChangesASecondRenderAtMostAboutSixtyTimes) {
  subscribe();
  add(probe({"--tick-ms", "0", "--rate-hz", "1000"}));
  healthy("ui-probe");
  auto first = next();
  ASSERT_TRUE(first);
  // Count frames by their seq over two seconds (robust to discards), after a settling time.
  std::this_thread::sleep_for(300ms);
  const auto measured = frame_rate(2s);
  ASSERT_TRUE(measured);
  ASSERT_GT(measured->span_ms, 1000.0);
  const double rate = measured->per_s;
  std::printf("1 kHz ui_changed(): %.1f frames/s\n", rate);
  EXPECT_LE(rate, 70.0);
  EXPECT_GE(rate, kSanitized ? 5.0 : 30.0);
  const sui::Node* chart = nullptr;
  auto snap = sui::decode_frame(*call("symphony.ui.snapshot", "{}"));
  ASSERT_TRUE(snap);
  chart = find(*snap->tree, "chart");
  ASSERT_NE(chart, nullptr);
  EXPECT_EQ(chart->props["series"][0]["points"].size(), 300u);
}

TEST_F(UiProbeTest, HotUpdateSuccessorStartsWithASnapshotOfSeqOne) {
  subscribe();
  add(probe({"--tick-ms", "50"}));
  healthy("ui-probe");
  auto first = next();
  ASSERT_TRUE(first);
  mirror(*first);
  ASSERT_TRUE(until_seq(5));
  auto next_version = probe({"--tick-ms", "50"});
  next_version.version = "2.0.0";
  auto updated = supervisor_->update(next_version, 30s);
  ASSERT_TRUE(updated) << updated.error().message;
  // Frames until the successor's first: a snapshot with seq 1, then patches on it.
  bool restarted = false;
  for (int i = 0; i < 200 && !restarted; ++i) {
    auto f = next(5s);
    ASSERT_TRUE(f);
    if (f->seq == 1) {
      EXPECT_EQ(f->kind, sui::Frame::Kind::snapshot);
      restarted = true;
    }
    mirror(*f);
    ASSERT_FALSE(HasFailure());
  }
  ASSERT_TRUE(restarted);
  auto f = next(5s);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, sui::Frame::Kind::patch);
  EXPECT_EQ(f->base, 1u);
  mirror(*f);
}

// ---- the samples' panels ----

class SamplePanelTest : public UiProbeTest {
 protected:
  static supervisor::Manifest sample(const std::string& name) {
    auto m = supervisor::load_manifest(std::filesystem::path(SYMPHONY_EXTENSIONS_DIR) / name /
                                       (name + ".json"));
    EXPECT_TRUE(m) << m.error().message();
    if (!m) return {};
    m->start_timeout = 30s;
    m->intensity = {1'000'000, 1s};
    if (kSanitized) m->limits = {};
    return *m;
  }
  std::uint64_t event(const std::string& node, const std::string& name,
                      const std::string& payload) {
    static std::uint64_t seq = 100;
    auto reply = call("symphony.ui.event", R"({"node":")" + node + R"(","event":")" + name +
                                               R"(","payload":)" + payload + R"(,"seq":)" +
                                               std::to_string(++seq) + "}");
    EXPECT_TRUE(reply) << reply.error().message;
    if (!reply) return 0;
    return sui::parse_json(*reply)->at("tree_seq").get<std::uint64_t>();
  }
};

TEST_F(SamplePanelTest, FileExplorerSearchesAndComesBackWithItsQueryAfterAKill) {
  const auto root = std::filesystem::temp_directory_path() / ("symphony-ui-fe-" + bus_);
  std::filesystem::create_directories(root / "src");
  for (int i = 0; i < 70; ++i)
    std::ofstream(root / "src" / ("needle_" + std::to_string(i) + ".cpp")) << i;
  std::ofstream(root / "README.md") << "hello";
  auto m = sample("file-explorer");
  m.args = {"--root", root.string()};
  subscribe("file-explorer");
  add(m);
  healthy("file-explorer");
  auto first = next();
  ASSERT_TRUE(first);
  mirror(*first);
  ASSERT_NE(find(mirror_, "search"), nullptr);
  EXPECT_EQ(find(mirror_, "search")->events, std::vector<std::string>{"change"});
  EXPECT_EQ(find(mirror_, "search")->props["debounce_ms"], 100);
  EXPECT_EQ(prop("files", "value"), "71");
  EXPECT_TRUE(find(mirror_, "results")->children.empty());

  ASSERT_TRUE(until_seq(event("search", "change", R"({"value":"needle_1"})")));
  // needle_1, needle_10..19: 11 matches.
  EXPECT_EQ(find(mirror_, "results")->children.size(), 11u);
  EXPECT_EQ(prop("match-count", "text"), "11 matches");
  EXPECT_EQ(prop("search", "value"), "needle_1");
  const sui::Node* row = find(mirror_, "r:src/needle_1.cpp");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->type, "row");
  ASSERT_TRUE(until_seq(event("search", "change", R"({"value":"needle"})")));
  EXPECT_EQ(find(mirror_, "results")->children.size(), 50u);
  EXPECT_EQ(prop("match-count", "text"), "70 matches (first 50 shown)");
  ASSERT_TRUE(until_seq(event("search", "change", R"({"value":"needle_2"})")));
  EXPECT_EQ(find(mirror_, "results")->children.size(), 11u);

  // Killed: no final checkpoint; the query was committed when it changed.
  const auto before = figures("file-explorer");
  const std::size_t from = events_.size();
  ASSERT_EQ(::kill(before.pid, SIGKILL), 0);
  healthy("file-explorer", from);
  std::optional<sui::Frame> fresh;
  for (int i = 0; i < 20; ++i) {
    fresh = next();
    ASSERT_TRUE(fresh);
    if (fresh->seq == 1) break;
  }
  ASSERT_EQ(fresh->seq, 1u);
  ASSERT_EQ(fresh->kind, sui::Frame::Kind::snapshot);
  mirror(*fresh);
  EXPECT_EQ(prop("search", "value"), "needle_2");
  EXPECT_EQ(find(mirror_, "results")->children.size(), 11u);
  EXPECT_EQ(prop("match-count", "text"), "11 matches");
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
}

TEST_F(SamplePanelTest, DataOperatorChartsAtMostSixtyRendersASecond) {
  auto m = sample("data-operator");
  m.args = {"--source", "stat", "--rate", "1000", "--window", "10"};
  subscribe("data-operator");
  add(m);
  healthy("data-operator");
  ASSERT_TRUE(next());
  std::this_thread::sleep_for(1200ms);
  const auto measured = frame_rate(1500ms);
  ASSERT_TRUE(measured);
  const double rate = measured->per_s;
  std::printf("data-operator panel: %.1f frames/s\n", rate);
  EXPECT_LE(rate, 70.0);
  auto snap = sui::decode_frame(*call("symphony.ui.snapshot", "{}"));
  ASSERT_TRUE(snap);
  const sui::Node* cpu = find(*snap->tree, "cpu");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->type, "line-chart");
  EXPECT_GT(cpu->props["series"][0]["points"].size(), 10u);
  EXPECT_LE(cpu->props["series"][0]["points"].size(), 300u);
  EXPECT_NE(find(*snap->tree, "rate"), nullptr);
  EXPECT_NE(find(*snap->tree, "mean"), nullptr);
}

TEST_F(SamplePanelTest, HelloCountsAndChaosCrashesFromItsPanel) {
  subscribe("hello");
  add(sample("hello"));
  healthy("hello");
  auto first = next();
  ASSERT_TRUE(first);
  mirror(*first);
  EXPECT_EQ(prop("greeted", "text"), "0 greeted");
  ASSERT_TRUE(until_seq(event("greet", "click", "{}")));
  EXPECT_EQ(prop("greeted", "text"), "1 greeted");

  subscribe("chaos");
  add(sample("chaos"));
  healthy("chaos");
  auto chaos = next();
  ASSERT_TRUE(chaos);
  mirror(*chaos);
  for (const char* id : {"crash", "hang", "leak"}) {
    const sui::Node* b = find(mirror_, id);
    ASSERT_NE(b, nullptr) << id;
    EXPECT_EQ(b->props["variant"], "destructive");
    EXPECT_EQ(b->events, std::vector<std::string>{"click"});
  }
  ASSERT_TRUE(until_seq(event("leak", "click", "{}")));
  EXPECT_EQ(prop("leaked", "value"), "16");
  const std::size_t from = events_.size();
  auto crashed =
      call("symphony.ui.event", R"({"node":"crash","event":"click","payload":{},"seq":1})");
  EXPECT_FALSE(crashed);
  EXPECT_GE(events_.wait_state("chaos", LifecycleState::crashed, 20s, from), 0);
  healthy("chaos", from);
}

// The hang button spins on the UI thread: the SDK marks UI handlers in the CallbackWatch, so the
// host sees the hang although heartbeats flow, and restarts chaos.
TEST_F(SamplePanelTest, ChaosHangButtonIsDetectedAsAHang) {
  auto m = sample("chaos");
  m.hang_timeout = kUnresponsiveAfter * 2;
  add(m);
  healthy("chaos");
  const std::size_t from = events_.size();
  auto stuck = supervisor_->control().request(
      "chaos/0", "symphony.ui.event", R"({"node":"hang","event":"click","payload":{},"seq":1})",
      30s);
  const long hung = events_.wait_for(
      [](const LifecycleEvent& e) {
        return e.extension == "chaos" && e.to == LifecycleState::stopping &&
               e.reason.find("hung") != std::string::npos;
      },
      30s, from);
  ASSERT_GE(hung, 0) << "no hang detected";
  healthy("chaos", static_cast<std::size_t>(hung));
  EXPECT_FALSE(stuck.get());
}

}  // namespace
}  // namespace symphony::test
