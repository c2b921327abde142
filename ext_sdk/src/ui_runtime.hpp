#pragma once
// The SDK's UI runtime: one thread ("sym-sdk-ui") that owns the view, the last published tree,
// the handler table and the frame counter. Everything that touches them runs there — the view,
// the diff, the publish, the handlers — so an author needs no lock between a handler and the
// view. Other threads only queue work for it: ui_changed() marks the view dirty, a request
// worker queues an event or a snapshot request and waits (bounded) for the answer.
//
// Renders are coalesced: at most one per min_interval; a change while idle renders at once.
// Frames go out through `publish` (never blocking); a frame that was not delivered (not bound,
// refused) makes the next one a snapshot, so receivers can always catch up.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

#include "symphony/engine/error.hpp"
#include "symphony/sdk/ui.hpp"
#include "threads.hpp"

namespace symphony::sdk::detail {

class UiRuntime {
 public:
  using Reply = engine::Result<std::string>;
  struct Hooks {
    std::function<bool(std::string_view frame)> publish;  // false: not delivered
    // Runs a callback marked in the channel's CallbackWatch (a stuck one is reported as a hang).
    std::function<void(const std::function<void()>&)> watched;
    std::shared_ptr<spdlog::logger> log;
  };
  struct Counters {
    std::uint64_t renders = 0;    // view() calls
    std::uint64_t snapshots = 0;  // frames published, by kind
    std::uint64_t patches = 0;
    std::uint64_t refused = 0;  // renders not published (the view threw or broke a bound)
    std::uint64_t seq = 0;      // the last frame's
  };

  UiRuntime(ui::View view, ui::UiOptions options, Hooks hooks);
  ~UiRuntime();
  UiRuntime(const UiRuntime&) = delete;
  UiRuntime& operator=(const UiRuntime&) = delete;

  // The thread; `extension` is the frames' "extension" (the id, known once run() started).
  void start(std::string extension);
  // Publishing may begin (publishers bound): the next frame is a snapshot, rendered at once.
  void activate();
  // A drain: no frames until activate(); events are refused meanwhile.
  void deactivate();
  // State the view reads has changed: render again (coalesced). Any thread.
  void changed();
  // symphony.ui.event's payload {"node","event","payload","seq"}: runs the handler on the UI
  // thread, waits for the re-render's frame, replies {"handled":true,"tree_seq":N}.
  Reply event(std::string_view payload_json);
  // symphony.ui.snapshot: the current tree as a snapshot frame with the current seq.
  Reply snapshot();
  // Stops the thread; false if a callback did not return before `deadline` (it is abandoned).
  bool stop(std::chrono::steady_clock::time_point deadline);

  Counters counters() const;

 private:
  struct Waiter {
    std::mutex mutex;
    std::condition_variable done;
    std::optional<Reply> reply;
    void answer(Reply r);
  };
  struct PendingEvent {
    std::string node;
    std::string name;
    ui::Value payload;
    std::uint64_t seq = 0;
    std::shared_ptr<Waiter> waiter;
  };

  void loop();
  void handle(PendingEvent& event);
  void render(bool force_snapshot);
  void log_once(const std::string& reason);
  Reply snapshot_frame() const;
  Reply wait(const std::shared_ptr<Waiter>& waiter, std::chrono::milliseconds timeout,
             const char* what);

  const ui::View view_;
  const ui::UiOptions options_;
  const Hooks hooks_;
  std::string extension_;  // written before the thread starts

  mutable std::mutex mutex_;  // the queue and flags below
  std::condition_variable wake_;
  std::deque<PendingEvent> events_;
  std::deque<std::shared_ptr<Waiter>> snapshot_waiters_;
  bool dirty_ = false;
  bool active_ = false;
  bool need_snapshot_ = true;
  bool stop_ = false;
  std::chrono::steady_clock::time_point next_render_{};
  Counters counters_;

  // The UI thread's own (no lock).
  std::optional<::symphony::ui::Node> tree_;
  decltype(ui::Rendered::handlers) handlers_;
  std::uint64_t seq_ = 0;
  std::vector<std::uint64_t> events_done_;
  std::vector<PendingEvent> awaiting_;  // handled, waiting for the frame that shows the result
  std::set<std::string> logged_;
  std::size_t last_snapshot_bytes_ = 0;  // the last snapshot encoded, and its node count
  std::size_t last_snapshot_nodes_ = 0;

  JoinableThread thread_;
};

}  // namespace symphony::sdk::detail
