// The UI thread: handlers, coalesced renders, diffs and frames (see ui_runtime.hpp).

#include "ui_runtime.hpp"

#include <algorithm>

namespace symphony::sdk::detail {

namespace sui = ::symphony::ui;
using Clock = std::chrono::steady_clock;

namespace {

tl::unexpected<engine::Error> error(std::string message,
                                    engine::Errc code = engine::Errc::invalid_argument) {
  return tl::unexpected(engine::Error{code, std::move(message)});
}

std::size_t depth_of(const sui::Node& node) {
  std::size_t d = 0;
  for (const auto& child : node.children) d = std::max(d, depth_of(child));
  return d + 1;
}

std::size_t count_nodes(const sui::Node& node) {
  std::size_t n = 1;
  for (const auto& child : node.children) n += count_nodes(child);
  return n;
}

bool contains(const sui::Node& node, const std::string& id) {
  if (node.id == id) return true;
  return std::any_of(node.children.begin(), node.children.end(),
                     [&](const sui::Node& c) { return contains(c, id); });
}

// A patch whose intermediate states could pass the depth bound (moves of deep subtrees) is
// checked by applying it; below this depth no order of ops can.
constexpr std::size_t kCheckDepth = 16;

}  // namespace

void UiRuntime::Waiter::answer(Reply r) {
  {
    std::lock_guard lock(mutex);
    if (reply) return;
    reply = std::move(r);
  }
  done.notify_all();
}

UiRuntime::UiRuntime(ui::View view, ui::UiOptions options, Hooks hooks)
    : view_(std::move(view)), options_(options), hooks_(std::move(hooks)) {}

UiRuntime::~UiRuntime() {
  stop(Clock::now() + std::chrono::seconds(1));
}

void UiRuntime::start(std::string extension) {
  extension_ = std::move(extension);
  thread_ = JoinableThread("sym-sdk-ui", [this] { loop(); });
}

void UiRuntime::activate() {
  {
    std::lock_guard lock(mutex_);
    active_ = true;
    dirty_ = true;
    need_snapshot_ = true;
    next_render_ = Clock::now();
  }
  wake_.notify_all();
}

void UiRuntime::deactivate() {
  {
    std::lock_guard lock(mutex_);
    active_ = false;
    need_snapshot_ = true;
  }
  wake_.notify_all();
}

void UiRuntime::changed() {
  std::lock_guard lock(mutex_);
  if (dirty_) return;  // the UI thread renders it anyway: no wake-up per change at 1 kHz
  dirty_ = true;
  wake_.notify_all();
}

UiRuntime::Reply UiRuntime::wait(const std::shared_ptr<Waiter>& waiter,
                                 std::chrono::milliseconds timeout, const char* what) {
  std::unique_lock lock(waiter->mutex);
  if (!waiter->done.wait_for(lock, timeout, [&] { return waiter->reply.has_value(); })) {
    return error(std::string("the UI thread did not answer the ") + what + " within " +
                     std::to_string(timeout.count()) + " ms (a handler or the view is slow)",
                 engine::Errc::unavailable);
  }
  return *waiter->reply;
}

UiRuntime::Reply UiRuntime::event(std::string_view payload_json) {
  auto parsed = sui::parse_json(payload_json);
  if (!parsed) return error("symphony.ui.event: " + parsed.error().message);
  const sui::Value& json = *parsed;
  auto node = json.find("node");
  auto name = json.find("event");
  if (!json.is_object() || node == json.end() || !node->is_string() || name == json.end() ||
      !name->is_string()) {
    return error(
        R"(symphony.ui.event wants {"node":"<id>","event":"<name>","payload":{...},"seq":N})");
  }
  PendingEvent pending;
  pending.node = node->get<std::string>();
  pending.name = name->get<std::string>();
  if (auto payload = json.find("payload"); payload != json.end()) pending.payload = *payload;
  if (pending.payload.is_null()) pending.payload = sui::Value::object();
  if (auto seq = json.find("seq"); seq != json.end()) {
    if (!seq->is_number_unsigned()) {
      return error("symphony.ui.event: 'seq' is not a non-negative integer");
    }
    pending.seq = seq->get<std::uint64_t>();
  }
  auto waiter = std::make_shared<Waiter>();
  pending.waiter = waiter;
  {
    std::lock_guard lock(mutex_);
    if (stop_) return error("the extension is stopping", engine::Errc::unavailable);
    if (!active_) {
      return error("the UI is not active (awaiting or after a hand-over)",
                   engine::Errc::unavailable);
    }
    events_.push_back(std::move(pending));
  }
  wake_.notify_all();
  return wait(waiter, options_.event_timeout, "event");
}

UiRuntime::Reply UiRuntime::snapshot() {
  auto waiter = std::make_shared<Waiter>();
  {
    std::lock_guard lock(mutex_);
    if (stop_) return error("the extension is stopping", engine::Errc::unavailable);
    snapshot_waiters_.push_back(waiter);
  }
  wake_.notify_all();
  return wait(waiter, std::max(options_.event_timeout, std::chrono::milliseconds(2000)),
              "snapshot request");
}

bool UiRuntime::stop(Clock::time_point deadline) {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  return thread_.join_until(deadline);
}

UiRuntime::Counters UiRuntime::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

void UiRuntime::log_once(const std::string& reason) {
  {
    std::lock_guard lock(mutex_);
    ++counters_.refused;
  }
  // Bounded: a view whose reasons never repeat (a counter in the message) stops at 64.
  constexpr std::size_t kMaxReasons = 64;
  if (logged_.size() >= kMaxReasons || !logged_.insert(reason).second) return;
  if (hooks_.log) {
    hooks_.log->error("UI not published (the previous tree stays; logged once per reason): {}",
                      reason);
  }
}

void UiRuntime::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    for (;;) {
      if (stop_) {
        for (auto& e : events_)
          e.waiter->answer(error("the extension is stopping", engine::Errc::unavailable));
        for (auto& e : awaiting_)
          e.waiter->answer(error("the extension is stopping", engine::Errc::unavailable));
        for (auto& w : snapshot_waiters_)
          w->answer(error("the extension is stopping", engine::Errc::unavailable));
        return;
      }
      if (!events_.empty() || !snapshot_waiters_.empty()) break;
      if (active_ && dirty_) {
        if (Clock::now() >= next_render_) break;
        wake_.wait_until(lock, next_render_);
      } else {
        wake_.wait(lock);
      }
    }
    std::deque<PendingEvent> events = std::move(events_);
    events_.clear();
    std::deque<std::shared_ptr<Waiter>> snapshots = std::move(snapshot_waiters_);
    snapshot_waiters_.clear();
    const bool active = active_;
    lock.unlock();

    for (auto& e : events) {
      if (!active) {
        e.waiter->answer(error("the UI is not active (awaiting or after a hand-over)",
                               engine::Errc::unavailable));
        continue;
      }
      handle(e);
    }

    lock.lock();
    // A snapshot request before the first render renders at once (it must show something), and
    // so do handled events: the coalescing interval is for streams of state changes, and a
    // user's click must not wait behind the last tick's render (events are few: the gateway
    // bounds them per browser, and every event queued meanwhile shares this one render).
    const bool due = active_ && dirty_ &&
                     (Clock::now() >= next_render_ || (active && !events.empty()) ||
                      (!snapshots.empty() && !tree_));
    const bool force = need_snapshot_;
    const bool still_active = active_;
    if (due) {
      dirty_ = false;
      need_snapshot_ = false;
      next_render_ = Clock::now() + options_.min_interval;
    }
    lock.unlock();
    if (due) render(force);
    // Handled events are answered after the first render that follows them: its frame (or the
    // current one, if the render changed nothing or was refused) shows their effect. Not after
    // "the last pending render": under a steady stream of changes there always is one.
    if (due || !still_active) {
      for (auto& e : awaiting_) {
        e.waiter->answer(sui::Value{{"handled", true}, {"tree_seq", seq_}}.dump());
      }
      awaiting_.clear();
    }
    for (auto& w : snapshots) w->answer(snapshot_frame());
    lock.lock();
  }
}

void UiRuntime::handle(PendingEvent& e) {
  auto node = handlers_.find(e.node);
  if (node == handlers_.end()) {
    if (tree_ && contains(*tree_, e.node)) {
      e.waiter->answer(
          error("node '" + e.node + "' has no event '" + e.name + "' (it handles none)"));
    } else {
      e.waiter->answer(error("unknown node '" + e.node + "' (not in the current tree)"));
    }
    return;
  }
  auto handler = node->second.find(e.name);
  if (handler == node->second.end()) {
    std::string known;
    for (const auto& [name, h] : node->second) known += (known.empty() ? "" : ", ") + name;
    e.waiter->answer(
        error("node '" + e.node + "' has no event '" + e.name + "' (it handles: " + known + ")"));
    return;
  }
  std::optional<std::string> threw;
  const ui::UiEvent event(e.node, e.name, e.payload, e.seq);
  hooks_.watched([&] {
    try {
      handler->second(event);
    } catch (const std::exception& ex) {
      threw = ex.what();
    } catch (...) {
      threw = "a non-standard exception";
    }
  });
  {
    std::lock_guard lock(mutex_);
    dirty_ = true;  // every handled event re-renders (a handler need not call ui_changed())
  }
  if (threw) {
    if (hooks_.log) {
      hooks_.log->error("UI handler '{}' of node '{}' threw: {}", e.name, e.node, *threw);
    }
    e.waiter->answer(
        error("the handler of '" + e.name + "' on node '" + e.node + "' threw: " + *threw));
    return;
  }
  events_done_.push_back(e.seq);
  awaiting_.push_back(std::move(e));
}

void UiRuntime::render(bool force_snapshot) {
  {
    std::lock_guard lock(mutex_);
    ++counters_.renders;
  }
  std::optional<ui::Element> root;
  std::string why;
  hooks_.watched([&] {
    try {
      root.emplace(view_());
    } catch (const std::exception& ex) {
      why = ex.what();
    } catch (...) {
      why = "a non-standard exception";
    }
  });
  if (!root) return log_once("the view threw: " + why);
  ui::Rendered rendered = ui::render(std::move(*root));
  if (auto ok = sui::validate(rendered.tree); !ok) {
    return log_once("the view's tree breaks the protocol: " + ok.error().message);
  }

  const std::size_t nodes = count_nodes(rendered.tree);
  sui::Frame frame;
  frame.extension = extension_;
  frame.seq = seq_ + 1;
  frame.t_ms = sui::wall_clock_ms();
  frame.events_done = events_done_;
  std::string text;
  auto snapshot_text = [&] {
    frame.kind = sui::Frame::Kind::snapshot;
    frame.base = 0;
    frame.ops.clear();
    frame.tree = std::move(rendered.tree);
    std::string out = sui::encode(frame);
    rendered.tree = std::move(*frame.tree);
    frame.tree.reset();
    last_snapshot_bytes_ = out.size();
    last_snapshot_nodes_ = nodes;
    return out;
  };
  bool snapshot = force_snapshot || !tree_;
  bool is_snapshot = false;
  if (!snapshot) {
    sui::Patch patch = sui::diff(*tree_, rendered.tree);
    if (patch.empty()) {  // nothing to show: no frame; the handlers may still have changed
      handlers_ = std::move(rendered.handlers);
      events_done_.clear();
      return;
    }
    if (depth_of(*tree_) > kCheckDepth || depth_of(rendered.tree) > kCheckDepth) {
      sui::Node check = *tree_;
      snapshot = !sui::apply(check, patch);
    }
    if (!snapshot) {
      frame.kind = sui::Frame::Kind::patch;
      frame.base = seq_;
      frame.ops = std::move(patch);
      text = sui::encode(frame);
      // Encoding the snapshot too costs a pass over the tree: only when it may be the smaller,
      // i.e. the patch is at least half the last snapshot's size, or the tree has shrunk to
      // less than half the nodes it had then.
      if (text.size() * 2 >= last_snapshot_bytes_ || nodes * 2 < last_snapshot_nodes_) {
        std::string whole = snapshot_text();
        if (whole.size() < text.size()) {
          text = std::move(whole);
          is_snapshot = true;
        }
      }
    }
  }
  if (snapshot) {
    text = snapshot_text();
    is_snapshot = true;
  }
  const std::size_t limit = sui::Limits{}.max_message_bytes;
  if (text.size() > limit) {
    return log_once("a frame of " + std::to_string(text.size()) + " bytes exceeds the " +
                    std::to_string(limit) + "-byte bound");
  }
  const bool delivered = hooks_.publish(text);
  seq_ = frame.seq;
  tree_ = std::move(rendered.tree);
  handlers_ = std::move(rendered.handlers);
  events_done_.clear();
  std::lock_guard lock(mutex_);
  counters_.seq = seq_;
  if (!delivered) {
    // Receivers missed this frame: the next one must stand alone, and it must come even if
    // nothing changes any more (else a browser stays behind after a burst's last frame), so
    // render again after the interval until a frame gets through.
    need_snapshot_ = true;
    dirty_ = true;
  } else if (is_snapshot) {
    ++counters_.snapshots;
  } else {
    ++counters_.patches;
  }
}

UiRuntime::Reply UiRuntime::snapshot_frame() const {
  if (!tree_) {
    return error(
        "no UI to show yet (the UI is not active, or its view has not rendered a valid "
        "tree)",
        engine::Errc::unavailable);
  }
  sui::Frame frame;
  frame.kind = sui::Frame::Kind::snapshot;
  frame.extension = extension_;
  frame.seq = seq_;
  frame.t_ms = sui::wall_clock_ms();
  frame.tree = *tree_;
  return sui::encode(frame);
}

}  // namespace symphony::sdk::detail
