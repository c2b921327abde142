// The SDK's UI in one process (no host): the builder, and the UI runtime with a publish hook
// that collects frames — the first frame a snapshot, patches that apply to a mirror, renders
// coalesced under a 1 kHz stream of changes, events run on the UI thread and answered with the
// frame that shows their effect, refusals with reasons, invalid renders kept out. Runs under
// ThreadSanitizer in CI (label unit).

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "symphony/sdk/ui.hpp"
#include "test_scale.hpp"
#include "ui_runtime.hpp"

namespace symphony::test {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

using namespace sdk::ui;
namespace sui = ::symphony::ui;

TEST(UiBuilder, EventsComeFromTheBoundHandlers) {
  int clicks = 0;
  Rendered r = render(stack("root", {heading("title", "Files"),
                                     input("q")
                                         .prop("placeholder", "name")
                                         .on("change", [](const UiEvent&) {})
                                         .on("submit", [](const UiEvent&) {}),
                                     button("go", "Go")
                                         .on("click", [&](const UiEvent&) { ++clicks; })
                                         .on("click", [&](const UiEvent&) { clicks += 10; })}));
  ASSERT_TRUE(sui::validate(r.tree));
  EXPECT_EQ(r.tree.children[0].props, (Value{{"text", "Files"}, {"level", 1}}));
  EXPECT_EQ(r.tree.children[1].events, (std::vector<std::string>{"change", "submit"}));
  EXPECT_EQ(r.tree.children[1].props["placeholder"], "name");
  EXPECT_EQ(r.tree.children[2].events, std::vector<std::string>{"click"});
  EXPECT_TRUE(r.tree.children[0].events.empty());
  ASSERT_EQ(r.handlers.size(), 2u);
  r.handlers.at("go").at("click")(UiEvent("go", "click", Value::object(), 1));
  EXPECT_EQ(clicks, 10);  // the second on() for one event replaced the first
  EXPECT_EQ(UiEvent("q", "change", Value{{"value", "abc"}}, 1).value(), "abc");
  EXPECT_EQ(UiEvent("q", "change", Value{{"value", 3}}, 1).value(), "3");
  EXPECT_EQ(UiEvent("q", "change", Value::object(), 1).value(), "");
  Rendered chart = render(line_chart("cpu", {{"busy", {1, 2, 3}}}));
  EXPECT_EQ(chart.tree.type, "line-chart");
  EXPECT_EQ(chart.tree.props["series"][0]["points"].size(), 3u);
  EXPECT_EQ(render(hstack("h")).tree.props["direction"], "row");
  EXPECT_EQ(
      render(table("t", {"Path", "Size"}, {row("r1", {text("c1", "a")})})).tree.children[0].type,
      "row");
}

// A UI runtime whose frames land in a list, mirrored like the gateway does.
class UiRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sink = std::make_shared<spdlog::sinks::null_sink_mt>();
    log_ = std::make_shared<spdlog::logger>("ui-test", sink);
  }
  void TearDown() override {
    if (runtime_) {
      EXPECT_TRUE(runtime_->stop(std::chrono::steady_clock::now() + 5s));
    }
  }

  void start(View view, UiOptions options = {}) {
    sdk::detail::UiRuntime::Hooks hooks;
    hooks.publish = [this](std::string_view frame) {
      std::lock_guard lock(mutex_);
      if (!deliver_) return false;
      frames_.emplace_back(frame);
      return true;
    };
    hooks.watched = [](const std::function<void()>& f) { f(); };
    hooks.log = log_;
    runtime_ = std::make_unique<sdk::detail::UiRuntime>(std::move(view), options, std::move(hooks));
    runtime_->start("probe");
    runtime_->activate();
  }

  std::size_t frame_count() {
    std::lock_guard lock(mutex_);
    return frames_.size();
  }
  // Waits for frame number n (1-based) and decodes it.
  sui::Frame frame(std::size_t n) {
    const auto until = Clock::now() + 5s;
    while (frame_count() < n && Clock::now() < until) std::this_thread::sleep_for(1ms);
    std::lock_guard lock(mutex_);
    EXPECT_GE(frames_.size(), n);
    if (frames_.size() < n) return {};
    auto decoded = sui::decode_frame(frames_[n - 1]);
    EXPECT_TRUE(decoded) << decoded.error().message;
    return decoded.value_or(sui::Frame{});
  }
  // The gateway's side: a snapshot resets, a patch applies on its base.
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
  const sui::Node* find(const sui::Node& n, const std::string& id) {
    if (n.id == id) return &n;
    for (const auto& c : n.children) {
      if (auto* f = find(c, id)) return f;
    }
    return nullptr;
  }

  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<sdk::detail::UiRuntime> runtime_;
  std::mutex mutex_;
  std::vector<std::string> frames_;
  bool deliver_ = true;
  sui::Node mirror_;
  std::uint64_t mirror_seq_ = 0;
};

TEST_F(UiRuntimeTest, SnapshotFirstThenPatchesThatApplyToTheMirror) {
  std::atomic<int> count{0};
  start([&] {
    return stack("root", {text("count", std::to_string(count.load())), list("items", [&] {
                            std::vector<Element> items;
                            for (int i = 0; i < count.load(); ++i)
                              items.push_back(text("i" + std::to_string(i), "x"));
                            return items;
                          }())});
  });
  sui::Frame first = frame(1);
  EXPECT_EQ(first.kind, sui::Frame::Kind::snapshot);
  EXPECT_EQ(first.seq, 1u);
  EXPECT_EQ(first.extension, "probe");
  mirror(first);
  for (int i = 1; i <= 5; ++i) {
    count = i;
    runtime_->changed();
    sui::Frame f = frame(static_cast<std::size_t>(i) + 1);
    EXPECT_EQ(f.kind, sui::Frame::Kind::patch);
    EXPECT_EQ(f.seq, static_cast<std::uint64_t>(i) + 1);
    EXPECT_EQ(f.base, static_cast<std::uint64_t>(i));
    mirror(f);
    EXPECT_EQ(find(mirror_, "count")->props["text"], std::to_string(i));
    EXPECT_EQ(find(mirror_, "items")->children.size(), static_cast<std::size_t>(i));
  }
  // Nothing changed: no frame.
  runtime_->changed();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(frame_count(), 6u);
  // The snapshot request: the current tree with the current seq.
  auto snap = runtime_->snapshot();
  ASSERT_TRUE(snap) << snap.error().message;
  auto decoded = sui::decode_frame(*snap);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->seq, 6u);
  EXPECT_EQ(*decoded->tree, mirror_);
}

TEST_F(UiRuntimeTest, AThousandChangesASecondAreCoalescedToAboutSixty) {
  std::atomic<int> value{0};
  start([&] { return stack("root", {text("v", std::to_string(value.load()))}); });
  frame(1);
  const auto began = Clock::now();
  const auto duration = 1s;
  int changes = 0;
  auto next = began;
  while (Clock::now() - began < duration) {
    value = ++changes;
    runtime_->changed();
    next += 1ms;
    std::this_thread::sleep_until(next);
  }
  std::this_thread::sleep_for(50ms);
  const auto counters = runtime_->counters();
  std::printf("%d changes in 1 s: %llu renders, %llu patches\n", changes,
              static_cast<unsigned long long>(counters.renders),
              static_cast<unsigned long long>(counters.patches));
  EXPECT_LE(counters.renders, 72u);
  EXPECT_GE(counters.renders, 10u);
  // The last change is shown.
  auto snap = sui::decode_frame(*runtime_->snapshot());
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->tree->children[0].props["text"], std::to_string(value.load()));
}

TEST_F(UiRuntimeTest, EventsRunOnTheUiThreadAndAnswerWithTheirFrame) {
  int clicks = 0;  // no lock: the view and the handler both run on the UI thread
  std::string thread_name;
  std::string echoed;
  start([&] {
    return stack("root", {button("inc", "+")
                              .on("click",
                                  [&](const UiEvent&) {
                                    char name[16] = {};
                                    pthread_getname_np(pthread_self(), name, sizeof name);
                                    thread_name = name;
                                    ++clicks;
                                  }),
                          text("count", std::to_string(clicks)),
                          input("echo").on("change", [&](const UiEvent& e) { echoed = e.value(); }),
                          text("echoed", echoed),
                          button("boom", "!").on("click", [](const UiEvent&) -> void {
                            throw std::runtime_error("kaboom");
                          })});
  });
  mirror(frame(1));
  auto reply = runtime_->event(R"({"node":"inc","event":"click","payload":{},"seq":41})");
  ASSERT_TRUE(reply) << reply.error().message;
  auto json = sui::parse_json(*reply);
  ASSERT_TRUE(json);
  EXPECT_EQ((*json)["handled"], true);
  const std::uint64_t tree_seq = (*json)["tree_seq"].get<std::uint64_t>();
  EXPECT_EQ(tree_seq, 2u);
  sui::Frame f = frame(2);
  EXPECT_EQ(f.seq, tree_seq);
  EXPECT_EQ(f.events_done, std::vector<std::uint64_t>{41});
  mirror(f);
  EXPECT_EQ(find(mirror_, "count")->props["text"], "1");
  EXPECT_EQ(thread_name, "sym-sdk-ui");

  reply =
      runtime_->event(R"({"node":"echo","event":"change","payload":{"value":"hello"},"seq":42})");
  ASSERT_TRUE(reply) << reply.error().message;
  mirror(frame(3));
  EXPECT_EQ(find(mirror_, "echoed")->props["text"], "hello");

  auto unknown = runtime_->event(R"({"node":"nope","event":"click","payload":{},"seq":43})");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown node 'nope'"), std::string::npos);
  auto no_event = runtime_->event(R"({"node":"inc","event":"change","payload":{},"seq":44})");
  ASSERT_FALSE(no_event);
  EXPECT_NE(no_event.error().message.find("node 'inc' has no event 'change' (it handles: click)"),
            std::string::npos)
      << no_event.error().message;
  auto none = runtime_->event(R"({"node":"count","event":"click","payload":{},"seq":45})");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("node 'count' has no event 'click'"), std::string::npos);
  auto threw = runtime_->event(R"({"node":"boom","event":"click","payload":{},"seq":46})");
  ASSERT_FALSE(threw);
  EXPECT_NE(threw.error().message.find("kaboom"), std::string::npos);
  auto malformed = runtime_->event(R"({"event":"click"})");
  ASSERT_FALSE(malformed);
  // Still alive after all that.
  reply = runtime_->event(R"({"node":"inc","event":"click","payload":{},"seq":47})");
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(clicks, 2);
}

TEST_F(UiRuntimeTest, EventsAreAnsweredPromptlyUnderASteadyStreamOfChanges) {
  std::atomic<int> value{0};
  int clicks = 0;
  start([&] {
    return stack("root", {text("v", std::to_string(value.load())),
                          button("b", "b").on("click", [&](const UiEvent&) { ++clicks; }),
                          text("clicks", std::to_string(clicks))});
  });
  frame(1);
  std::atomic<bool> done{false};
  std::thread changer([&] {
    while (!done) {
      ++value;
      runtime_->changed();
      std::this_thread::sleep_for(1ms);
    }
  });
  for (int i = 0; i < 10; ++i) {
    const auto sent = Clock::now();
    auto reply = runtime_->event(R"({"node":"b","event":"click","payload":{},"seq":)" +
                                 std::to_string(i) + "}");
    ASSERT_TRUE(reply) << reply.error().message;
    EXPECT_LT(Clock::now() - sent, kSanitized ? 1000ms : 200ms);
  }
  done = true;
  changer.join();
}

TEST_F(UiRuntimeTest, APatchLargerThanTheSnapshotIsSentAsTheSnapshot) {
  std::atomic<int> phase{0};
  start([&] {
    std::vector<Element> items;
    const int n = phase == 2 ? 1 : 400;
    for (int i = 0; i < n; ++i) {
      items.push_back(text((phase == 1 ? "new" : "old") + std::to_string(i), "x"));
    }
    return stack("root", std::move(items));
  });
  mirror(frame(1));
  phase = 1;  // every item replaced: 400 removes + 400 inserts > the snapshot
  runtime_->changed();
  sui::Frame f = frame(2);
  EXPECT_EQ(f.kind, sui::Frame::Kind::snapshot);
  mirror(f);
  phase = 2;  // 399 removes, 1 replaced: a 2-node snapshot is smaller
  runtime_->changed();
  f = frame(3);
  EXPECT_EQ(f.kind, sui::Frame::Kind::snapshot);
  EXPECT_EQ(f.tree->children.size(), 1u);
}

TEST_F(UiRuntimeTest, AnInvalidRenderIsNotPublishedAndThePreviousTreeStays) {
  std::atomic<bool> broken{false};
  start([&] {
    if (broken) return stack("root", {text("a", "x"), text("a", "y")});
    return stack("root", {text("a", "x")});
  });
  mirror(frame(1));
  broken = true;
  runtime_->changed();
  std::this_thread::sleep_for(100ms);
  runtime_->changed();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(frame_count(), 1u);
  EXPECT_GE(runtime_->counters().refused, 2u);
  auto snap = sui::decode_frame(*runtime_->snapshot());
  ASSERT_TRUE(snap);
  EXPECT_EQ(*snap->tree, mirror_);
  broken = false;
  runtime_->changed();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(frame_count(), 1u);  // back to the published tree: nothing to send
}

TEST_F(UiRuntimeTest, AFrameNotDeliveredMakesTheNextOneASnapshot) {
  std::atomic<int> v{0};
  start([&] { return stack("root", {text("v", std::to_string(v.load()))}); });
  mirror(frame(1));
  {
    std::lock_guard lock(mutex_);
    deliver_ = false;
  }
  v = 1;
  runtime_->changed();
  std::this_thread::sleep_for(100ms);  // every render fails; each is retried after the interval
  {
    std::lock_guard lock(mutex_);
    deliver_ = true;
  }
  // No further change: the retry alone brings the state to receivers, as a snapshot (the
  // frames before it were lost, seq 2 among them).
  sui::Frame f = frame(2);
  EXPECT_EQ(f.kind, sui::Frame::Kind::snapshot);
  EXPECT_GT(f.seq, 2u);
  ASSERT_TRUE(f.tree);
  ASSERT_EQ(f.tree->children.size(), 1u);
  EXPECT_EQ(f.tree->children[0].props.value("text", ""), "1");
}

TEST_F(UiRuntimeTest, DeactivatedRefusesEventsAndResumesWithASnapshot) {
  std::atomic<int> v{0};
  start(
      [&] { return stack("root", {button("b", "b").on("click", [&](const UiEvent&) { ++v; })}); });
  mirror(frame(1));
  runtime_->deactivate();
  auto refused = runtime_->event(R"({"node":"b","event":"click","payload":{},"seq":1})");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("not active"), std::string::npos);
  runtime_->activate();
  sui::Frame f = frame(2);
  EXPECT_EQ(f.kind, sui::Frame::Kind::snapshot);
  EXPECT_EQ(f.seq, 2u);
}

}  // namespace
}  // namespace symphony::test
