// The extension runtime: run() and the threads behind the callbacks (see extension.hpp).

#include "symphony/sdk/extension.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <simdjson.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <utility>

#include "symphony/controlplane/extension.hpp"
#include "symphony/engine/bus.hpp"
#include "symphony/engine/checkpoint.hpp"
#include "symphony/ui/tree.hpp"
#include "symphony/supervisor/lifecycle.hpp"  // kReadyEvent and the hand-over's names only
#include "threads.hpp"
#include "ui_runtime.hpp"

namespace symphony::sdk {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr const char* kAwaitFlag = "--symphony-await-handover";
// How long stop waits for running callbacks before it abandons them (the supervisor's stop
// grace is 2 s by default: the command, SIGTERM at half of it, SIGKILL at the end).
constexpr auto kStopWait = 1500ms;
// Requests the SDK answers for its UI (docs/ui-protocol.md, section 3).
constexpr std::string_view kUiEventMethod = "symphony.ui.event";
constexpr std::string_view kUiSnapshotMethod = "symphony.ui.snapshot";

std::atomic<int> g_signal_fd{-1};

extern "C" void on_stop_signal(int) {
  const int fd = g_signal_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
  }
}

void poke(int fd) {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
}

void drain_eventfd(int fd) {
  std::uint64_t value = 0;
  [[maybe_unused]] const ssize_t n = ::read(fd, &value, sizeof value);
}

std::shared_ptr<spdlog::logger> make_logger() {
  std::string name = "extension";
  if (const char* id = std::getenv(controlplane::kEnvExtension)) {
    name = id;
    if (const char* instance = std::getenv(controlplane::kEnvInstance)) {
      name += "/" + std::string(instance);
    }
  }
  auto logger = std::make_shared<spdlog::logger>(
      name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %l [%n] %v");
  spdlog::level::level_enum level = spdlog::level::info;
  if (const char* text = std::getenv("SYMPHONY_LOG_LEVEL")) {
    level = spdlog::level::from_str(text);
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);  // the supervisor reads the pipe: no buffering
  return logger;
}

// Runs `callback`, logging (not propagating) an exception; false if one was thrown.
template <typename F>
bool guarded(spdlog::logger& log, const char* what, F&& callback) {
  try {
    callback();
    return true;
  } catch (const std::exception& e) {
    log.error("{} threw: {}", what, e.what());
  } catch (...) {
    log.error("{} threw a non-standard exception", what);
  }
  return false;
}

}  // namespace

// ---- Request ----

Request::Request(std::string method, std::string payload)
    : method_(std::move(method)), payload_(std::move(payload)) {}

const controlplane::JsonReader* Request::reader() const {
  if (!reader_) reader_.emplace(controlplane::JsonReader::parse(payload_));
  return *reader_ ? &**reader_ : nullptr;
}
std::optional<std::string> Request::string(std::string_view key) const {
  const auto* r = reader();
  return r ? r->string(key) : std::nullopt;
}
std::optional<std::int64_t> Request::integer(std::string_view key) const {
  const auto* r = reader();
  return r ? r->integer(key) : std::nullopt;
}
std::optional<bool> Request::boolean(std::string_view key) const {
  const auto* r = reader();
  return r ? r->boolean(key) : std::nullopt;
}
std::optional<std::string> Request::raw(std::string_view key) const {
  const auto* r = reader();
  return r ? r->raw(key) : std::nullopt;
}

// ---- the runtime ----

namespace {

enum class Phase : std::uint8_t {
  declaring,  // before run() started the extension
  awaiting,   // started for a hand-over: serves requests only, until resumed
  running,
  drained,    // handed over (or about to be): takes no samples, runs no timers, publishes nothing
  stopping,
  stopped,
};

// One subscription: its topic handle and the thread that takes its samples.
struct Subscription {
  std::string topic;
  engine::TopicType type;
  SubscribeOptions options;
  std::function<void(std::span<const std::byte>)> callback;
  std::optional<DeclaredTopic> declared;

  std::optional<engine::RawSubscriber> subscriber;
  int notify_fd = -1;  // owned by `subscriber`
  int wake_fd = -1;    // ours: pause / stop
  detail::JoinableThread thread;
  std::atomic<bool> pause_requested{false};
  std::atomic<bool> stop_requested{false};
  std::mutex mutex;
  std::condition_variable changed;
  bool parked = false;

  ~Subscription() {
    if (wake_fd >= 0) ::close(wake_fd);
  }
};

struct Timer {
  std::chrono::nanoseconds period;
  std::function<void()> tick;
  detail::JoinableThread thread;
  std::mutex mutex;
  std::condition_variable changed;
  bool stop = false;
};

}  // namespace

struct Extension::Impl {
  std::shared_ptr<spdlog::logger> logger = make_logger();
  std::string id;
  int instance = 0;
  std::string bus_name;
  std::vector<std::string> args;
  std::optional<DeclaredTopics> declared;  // nullopt: SYMPHONY_TOPICS not set
  bool declared_loaded = false;
  std::optional<Error> declared_error;

  std::function<void()> on_start;
  std::function<void()> on_stop;
  std::function<void(const Event&)> on_event;
  std::function<std::vector<std::byte>()> save;
  std::function<void(std::span<const std::byte>)> restore;

  mutable std::mutex mutex;  // phase, the lists, the handlers
  Phase phase = Phase::declaring;
  std::map<std::string, RequestHandler, std::less<>> handlers;
  std::vector<std::shared_ptr<detail::PublisherCore>> publishers;
  std::vector<std::unique_ptr<Subscription>> subscriptions;
  std::vector<std::unique_ptr<Timer>> timers;

  std::optional<Bus> bus;
  std::unique_ptr<controlplane::ExtensionChannel> channel;
  std::mutex checkpoint_mutex;
  std::optional<engine::Checkpoint> checkpoint;
  std::mutex handover_mutex;  // one drain or resume at a time

  detail::WorkerPool pool{2, 8};
  // Broadcast events, handed from the I/O thread to the events thread.
  std::mutex events_mutex;
  std::condition_variable events_changed;
  std::deque<Event> events;
  bool events_closed = false;
  detail::JoinableThread events_thread;

  // The UI (ui()): its thread and its topic's publisher, which drain and stop unbind with the
  // others. `ui` is created by ui() before run(), started by serve(); declared after the core
  // it publishes through, so that its thread is gone before the core is.
  std::shared_ptr<detail::PublisherCore> ui_core;
  std::unique_ptr<detail::UiRuntime> ui;

  int wake_fd = -1;  // run()'s loop: stop requested
  std::atomic<bool> stop_requested{false};
  bool abandoned = false;  // a callback did not return in time: exit without cleanup

  Impl() {
    wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    spdlog::set_default_logger(logger);
  }
  ~Impl() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  // Set once the channel exists (a request can reach a worker while connect() is returning;
  // such an early callback is simply not marked), cleared before the channel goes.
  std::atomic<controlplane::CallbackWatch*> watch_ptr{nullptr};
  std::atomic<controlplane::ExtensionChannel*> channel_ptr{nullptr};  // the same, for send_event
  controlplane::CallbackWatch* watch() { return watch_ptr.load(std::memory_order_acquire); }

  // Marks a callback as running in the channel's CallbackWatch while `f` runs.
  template <typename F>
  auto watched(F&& f) {
    if (auto* w = watch()) {
      auto running = w->start();
      return f();
    }
    return f();
  }

  const std::optional<DeclaredTopics>& declarations() {
    if (!declared_loaded) {
      declared_loaded = true;
      auto parsed = DeclaredTopics::from_environment();
      if (parsed) {
        declared = std::move(*parsed);
      } else {
        declared_error = parsed.error();
      }
    }
    return declared;
  }

  Result<std::optional<DeclaredTopic>> check(std::string_view topic, std::string_view type,
                                             bool publish) {
    if (auto ok = engine::check_topic_name(topic); !ok) return tl::unexpected(ok.error());
    const auto& d = declarations();
    if (declared_error) return tl::unexpected(*declared_error);
    if (!d) return std::optional<DeclaredTopic>();
    auto found = publish ? d->check_publish(topic, type) : d->check_subscribe(topic, type);
    if (!found) return tl::unexpected(std::move(found.error()));
    return std::optional<DeclaredTopic>(std::move(*found));
  }

  // ---- publishers ----

  Result<void> bind(detail::PublisherCore& core) {
    auto publisher = bus->advertise(core.topic(), core.type(), core.topic_options(),
                                    core.publisher_options());
    if (!publisher) {
      return tl::unexpected(Error{publisher.error().code, "advertise topic '" + core.topic() +
                                                              "': " + publisher.error().message});
    }
    core.bind(std::move(*publisher));
    return {};
  }

  Result<void> bind_all() {
    std::vector<std::shared_ptr<detail::PublisherCore>> list;
    {
      std::lock_guard lock(mutex);
      list = publishers;
    }
    for (auto& core : list) {
      if (core->bound()) continue;
      // A predecessor that was just drained has given the role up; give it a moment.
      const auto deadline = Clock::now() + 1s;
      for (;;) {
        auto bound = bind(*core);
        if (bound) break;
        if (bound.error().code != Errc::role_taken || Clock::now() >= deadline) return bound;
        std::this_thread::sleep_for(10ms);
      }
    }
    return {};
  }

  // ---- subscriptions ----

  Result<void> attach(Subscription& s, std::optional<std::uint64_t> start_at) {
    engine::SubscriberOptions options;
    options.depth = s.options.depth;
    options.overflow = s.options.overflow;
    options.history = s.options.history;
    engine::TopicOptions topic = s.options.topic;
    if (s.declared) {
      topic.transport = s.declared->transport;
      if (s.declared->depth) options.depth = *s.declared->depth;
      if (s.declared->overflow) options.overflow = *s.declared->overflow;
      if (s.declared->history) topic.history = *s.declared->history;
    }
    options.start_at = start_at;
    auto subscriber = bus->subscribe(s.topic, s.type, topic, options);
    if (!subscriber) {
      return tl::unexpected(Error{subscriber.error().code, "subscribe to topic '" + s.topic +
                                                               "': " + subscriber.error().message});
    }
    auto fd = subscriber->notify_fd();
    if (!fd) {
      return tl::unexpected(Error{fd.error().code, "subscribe to topic '" + s.topic +
                                                       "': notify fd: " + fd.error().message});
    }
    if (s.wake_fd < 0) s.wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s.wake_fd < 0) return tl::unexpected(Error::from_errno("eventfd", errno));
    s.subscriber.emplace(std::move(*subscriber));
    s.notify_fd = *fd;
    s.stop_requested = false;
    s.pause_requested = false;
    s.thread = detail::JoinableThread("sym-sdk-sub", [this, &s] { take_samples(s); });
    logger->debug("subscribed to '{}'{}", s.topic,
                  start_at ? " at position " + std::to_string(*start_at) : std::string());
    return {};
  }

  void take_samples(Subscription& s) {
    bool corrupt_logged = false;
    for (;;) {
      if (s.stop_requested.load(std::memory_order_acquire)) return;
      if (s.pause_requested.load(std::memory_order_acquire)) {
        std::unique_lock lock(s.mutex);
        s.parked = true;
        s.changed.notify_all();
        s.changed.wait(lock, [&] {
          return !s.pause_requested.load() || s.stop_requested.load();
        });
        s.parked = false;
        continue;
      }
      const engine::Frame frame = s.subscriber->try_take();
      if (frame.ok()) {
        const std::span<const std::byte> bytes(static_cast<const std::byte*>(
                                                   static_cast<const void*>(frame.data)),
                                               frame.size);
        watched([&] {
          guarded(*logger, "subscription callback", [&] { s.callback(bytes); });
        });
        s.subscriber->release();
        continue;
      }
      if (frame.status == engine::RingStatus::corrupt) {
        if (!corrupt_logged) logger->error("topic '{}': a corrupt sample was skipped", s.topic);
        corrupt_logged = true;
        continue;
      }
      pollfd fds[2] = {{s.notify_fd, POLLIN, 0}, {s.wake_fd, POLLIN, 0}};
      if (::poll(fds, 2, -1) > 0 && (fds[1].revents & POLLIN) != 0) drain_eventfd(s.wake_fd);
    }
  }

  void pause(Subscription& s) {
    std::unique_lock lock(s.mutex);
    s.pause_requested.store(true, std::memory_order_release);
    poke(s.wake_fd);
    s.changed.wait(lock, [&] { return s.parked; });
  }

  void unpause(Subscription& s) {
    {
      std::lock_guard lock(s.mutex);
      s.pause_requested.store(false, std::memory_order_release);
    }
    s.changed.notify_all();
  }

  // Returns false if its callback did not return before `deadline`.
  bool detach(Subscription& s, Clock::time_point deadline) {
    if (!s.thread.running()) return true;
    {
      std::lock_guard lock(s.mutex);
      s.stop_requested.store(true, std::memory_order_release);
    }
    s.changed.notify_all();
    poke(s.wake_fd);
    if (!s.thread.join_until(deadline)) {
      logger->error("topic '{}': the subscription callback did not return within {} ms of the "
                    "stop; abandoned",
                    s.topic, kStopWait.count());
      return false;
    }
    s.subscriber.reset();
    return true;
  }

  // ---- timers ----

  void start_timer(Timer& t) {
    {
      std::lock_guard lock(t.mutex);
      t.stop = false;
    }
    t.thread = detail::JoinableThread("sym-sdk-tick", [this, &t] {
      auto next = Clock::now() + t.period;
      std::unique_lock lock(t.mutex);
      for (;;) {
        if (t.changed.wait_until(lock, next, [&] { return t.stop; })) return;
        lock.unlock();
        watched([&] { guarded(*logger, "timer callback", t.tick); });
        lock.lock();
        next += t.period;
        const auto now = Clock::now();
        if (next < now) next = now + t.period;  // skip missed ticks
      }
    });
  }

  bool stop_timer(Timer& t, Clock::time_point deadline) {
    {
      std::lock_guard lock(t.mutex);
      t.stop = true;
    }
    t.changed.notify_all();
    if (!t.thread.join_until(deadline)) {
      logger->error("a timer callback did not return within {} ms of the stop; abandoned",
                    kStopWait.count());
      return false;
    }
    return true;
  }

  // ---- checkpoint ----

  Result<std::uint64_t> commit() {
    if (!save) return tl::unexpected(Error{Errc::invalid_argument, "no on_checkpoint() given"});
    std::lock_guard lock(checkpoint_mutex);
    if (!checkpoint) {
      return tl::unexpected(Error{Errc::not_found,
                                  "this extension has no checkpoint store (its manifest sets no "
                                  "\"checkpoint_bytes\")"});
    }
    std::vector<std::byte> bytes;
    bool ok = watched([&] { return guarded(*logger, "checkpoint save()", [&] { bytes = save(); }); });
    if (!ok) return tl::unexpected(Error{Errc::invalid_argument, "save() threw"});
    auto committed = checkpoint->commit(bytes);
    if (!committed) {
      return tl::unexpected(Error{committed.error().code,
                                  "checkpoint commit: " + committed.error().message});
    }
    return *committed;
  }

  void restore_checkpoint() {
    if (!restore) return;
    std::lock_guard lock(checkpoint_mutex);
    if (!checkpoint) return;
    auto last = checkpoint->restore();
    if (!last) {
      logger->error("checkpoint unreadable, starting fresh: {}", last.error().message);
      return;
    }
    if (!*last) {
      logger->info("no checkpoint yet: starting fresh");
      return;
    }
    logger->info("restoring checkpoint generation {} ({} bytes{})", (*last)->generation,
                 (*last)->bytes.size(), (*last)->fell_back ? ", the one before a torn commit" : "");
    watched([&] { guarded(*logger, "checkpoint restore()", [&] { restore((*last)->bytes); }); });
  }

  // ---- requests ----

  void dispatch(const std::string& method, const std::string& payload,
                controlplane::Responder respond) {
    auto responder = std::make_shared<controlplane::Responder>(std::move(respond));
    std::function<void()> job;
    if (method == supervisor::kDrainMethod) {
      job = [this, responder] { (*responder)(watched([&] { return drain(); })); };
    } else if (method == supervisor::kResumeMethod) {
      job = [this, responder, payload] { (*responder)(watched([&] { return resume(payload); })); };
    } else if (ui && method == kUiEventMethod) {
      // Not watched here: the handler is marked on the UI thread, where it runs.
      job = [this, responder, payload] { (*responder)(ui->event(payload)); };
    } else if (ui && method == kUiSnapshotMethod) {
      job = [this, responder] { (*responder)(ui->snapshot()); };
    } else {
      RequestHandler handler;
      std::string known;
      {
        std::lock_guard lock(mutex);
        if (auto it = handlers.find(method); it != handlers.end()) handler = it->second;
        for (const auto& [name, h] : handlers) known += (known.empty() ? "" : ", ") + name;
      }
      if (!handler) {
        (*responder)(fail("unknown method '" + method + "' (this extension answers: " +
                          (known.empty() ? std::string("none") : known) + ")"));
        return;
      }
      job = [this, responder, method, payload, handler = std::move(handler)] {
        Reply reply = fail("no reply");
        watched([&] {
          try {
            reply = handler(Request(method, payload));
          } catch (const std::exception& e) {
            reply = fail("request '" + method + "' threw: " + e.what());
          } catch (...) {
            reply = fail("request '" + method + "' threw a non-standard exception");
          }
        });
        (*responder)(std::move(reply));
      };
    }
    if (!pool.submit(std::move(job))) {
      (*responder)(fail("the extension is stopping", Errc::unavailable));
    }
  }

  Reply drain() {
    std::lock_guard handover(handover_mutex);
    {
      std::lock_guard lock(mutex);
      if (phase == Phase::awaiting) {
        return fail("nothing to drain: this instance awaits a hand-over itself");
      }
      if (phase != Phase::running && phase != Phase::drained) {
        return fail("cannot drain while stopping", Errc::unavailable);
      }
    }
    std::vector<Subscription*> subs;
    std::vector<Timer*> timer_list;
    std::vector<std::shared_ptr<detail::PublisherCore>> pubs;
    {
      std::lock_guard lock(mutex);
      for (auto& s : subscriptions) subs.push_back(s.get());
      for (auto& t : timers) timer_list.push_back(t.get());
      pubs = publishers;
    }
    Json positions;
    for (Subscription* s : subs) {
      if (!s->subscriber) continue;
      pause(*s);  // after the callback that runs now: a sample boundary
      if (auto at = s->subscriber->position()) positions.add(s->topic, *at);
    }
    for (Timer* t : timer_list) stop_timer(*t, Clock::now() + std::chrono::hours(1));
    if (ui) ui->deactivate();
    for (auto& core : pubs) core->unbind();
    {
      std::lock_guard lock(mutex);
      phase = Phase::drained;
    }
    if (save) {
      auto committed = commit();
      if (!committed && committed.error().code != Errc::not_found) {
        return fail("drained, but the final checkpoint failed: " + committed.error().message);
      }
    }
    const std::string body = Json().add_raw("positions", positions.str()).str();
    logger->info("drained for a hand-over: {}", body);
    return body;
  }

  Reply resume(const std::string& payload) {
    std::lock_guard handover(handover_mutex);
    Phase now;
    {
      std::lock_guard lock(mutex);
      now = phase;
    }
    if (now == Phase::running) return std::string("{}");
    if (now != Phase::awaiting && now != Phase::drained) {
      return fail("cannot resume while stopping", Errc::unavailable);
    }
    std::map<std::string, std::uint64_t, std::less<>> positions;
    {
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      simdjson::dom::object object;
      const simdjson::padded_string padded(payload);
      if (parser.parse(padded).get(doc) != simdjson::SUCCESS ||
          (doc["positions"].get(object) != simdjson::SUCCESS &&
           doc["positions"].error() != simdjson::NO_SUCH_FIELD)) {
        return fail("resume wants {\"positions\":{\"<topic>\":<position>,...}} (got " + payload +
                    ")");
      }
      if (doc["positions"].error() == simdjson::SUCCESS) {
        for (auto field : object) {
          std::uint64_t at = 0;
          if (field.value.get(at) != simdjson::SUCCESS) {
            return fail("resume: position of '" + std::string(field.key) +
                        "' must be a non-negative integer");
          }
          positions.emplace(std::string(field.key), at);
        }
      }
    }
    std::vector<Subscription*> subs;
    std::vector<Timer*> timer_list;
    {
      std::lock_guard lock(mutex);
      for (auto& s : subscriptions) subs.push_back(s.get());
      for (auto& t : timers) timer_list.push_back(t.get());
    }
    if (now == Phase::awaiting) {
      restore_checkpoint();
    }
    for (Subscription* s : subs) {
      if (s->subscriber) {
        unpause(*s);  // a rolled-back update: the predecessor takes samples again
        continue;
      }
      std::optional<std::uint64_t> start_at;
      if (auto it = positions.find(s->topic); it != positions.end()) start_at = it->second;
      if (auto attached = attach(*s, start_at); !attached) {
        return tl::unexpected(attached.error());
      }
    }
    if (auto bound = bind_all(); !bound) return tl::unexpected(bound.error());
    for (Timer* t : timer_list) start_timer(*t);
    {
      std::lock_guard lock(mutex);
      phase = Phase::running;
    }
    if (ui) ui->activate();
    logger->info("{} ({} topic position(s) given)",
                 now == Phase::awaiting ? "took over from a predecessor" : "resumed after a drain",
                 positions.size());
    return std::string("{}");
  }

  // ---- events ----

  void start_events() {
    events_thread = detail::JoinableThread("sym-sdk-events", [this] {
      std::unique_lock lock(events_mutex);
      for (;;) {
        events_changed.wait(lock, [&] { return events_closed || !events.empty(); });
        if (events.empty()) return;
        Event event = std::move(events.front());
        events.pop_front();
        lock.unlock();
        watched([&] { guarded(*logger, "event callback", [&] { on_event(event); }); });
        lock.lock();
      }
    });
  }

  bool stop_events(Clock::time_point deadline) {
    {
      std::lock_guard lock(events_mutex);
      events_closed = true;
      events.clear();
    }
    events_changed.notify_all();
    return events_thread.join_until(deadline);
  }

  int serve(int argc, char** argv);
  void shut_down(int& code);
};

// ---- declarations ----

Extension::Extension() : impl_(std::make_unique<Impl>()) {}
Extension::~Extension() = default;

Extension& Extension::on_start(std::function<void()> callback) {
  impl_->on_start = std::move(callback);
  return *this;
}
Extension& Extension::on_stop(std::function<void()> callback) {
  impl_->on_stop = std::move(callback);
  return *this;
}
Extension& Extension::on_request(std::string method, RequestHandler handler) {
  std::lock_guard lock(impl_->mutex);
  impl_->handlers[std::move(method)] = std::move(handler);
  return *this;
}
Extension& Extension::on_event(std::function<void(const Event&)> callback) {
  impl_->on_event = std::move(callback);
  return *this;
}
Extension& Extension::on_checkpoint(std::function<std::vector<std::byte>()> save,
                                    std::function<void(std::span<const std::byte>)> restore) {
  impl_->save = std::move(save);
  impl_->restore = std::move(restore);
  return *this;
}
Extension& Extension::every(std::chrono::nanoseconds period, std::function<void()> tick) {
  auto timer = std::make_unique<Timer>();
  timer->period = std::max(period, std::chrono::nanoseconds(1000));
  timer->tick = std::move(tick);
  std::lock_guard lock(impl_->mutex);
  if (impl_->phase == Phase::running) impl_->start_timer(*timer);
  impl_->timers.push_back(std::move(timer));
  return *this;
}
Extension& Extension::max_request_workers(unsigned workers) {
  impl_->pool.set_max(workers);
  return *this;
}

Extension& Extension::ui(sdk::ui::View view, sdk::ui::UiOptions options) {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->phase != Phase::declaring || impl_->ui) {
      impl_->logger->error("ui(): set once, before run(); ignored");
      return *this;
    }
  }
  Impl* impl = impl_.get();
  detail::UiRuntime::Hooks hooks;
  hooks.publish = [impl](std::string_view frame) {
    return impl->ui_core && impl->ui_core->publish(std::as_bytes(std::span<const char>(
                                                       frame.data(), frame.size())),
                                                   std::chrono::nanoseconds::zero()) ==
                                PublishStatus::ok;
  };
  hooks.watched = [impl](const std::function<void()>& f) { impl->watched(f); };
  hooks.log = impl->logger;
  impl_->ui = std::make_unique<detail::UiRuntime>(std::move(view), options, std::move(hooks));
  return *this;
}

void Extension::ui_changed() {
  if (impl_->ui) impl_->ui->changed();
}

Result<std::shared_ptr<detail::PublisherCore>> Extension::advertise_core(
    std::string_view topic, engine::TopicType type, const AdvertiseOptions& options) {
  auto declared = impl_->check(topic, type.name, true);
  if (!declared) return tl::unexpected(std::move(declared.error()));
  engine::TopicOptions topic_options = options.topic;
  if (*declared) topic_options.transport = (*declared)->transport;
  auto core = std::make_shared<detail::PublisherCore>(std::string(topic), std::move(type),
                                                      topic_options, options.publisher);
  std::lock_guard lock(impl_->mutex);
  if (impl_->phase == Phase::stopping || impl_->phase == Phase::stopped) {
    return fail("advertise topic '" + std::string(topic) + "': the extension has stopped");
  }
  for (const auto& existing : impl_->publishers) {
    if (existing->topic() == topic) {
      return fail("advertise topic '" + std::string(topic) +
                  "': already advertised by this extension (share that publisher)");
    }
  }
  if (impl_->phase == Phase::running) {
    if (auto bound = impl_->bind(*core); !bound) return tl::unexpected(bound.error());
  }
  impl_->publishers.push_back(core);
  return core;
}

Result<RawPublisher> Extension::advertise_raw(std::string_view topic, AdvertiseOptions options) {
  auto core = advertise_core(topic, engine::TopicType{}, options);
  if (!core) return tl::unexpected(std::move(core.error()));
  return RawPublisher(std::move(*core));
}

Result<void> Extension::subscribe_core(std::string_view topic, engine::TopicType type,
                                       const SubscribeOptions& options,
                                       std::function<void(std::span<const std::byte>)> callback) {
  auto declared = impl_->check(topic, type.name, false);
  if (!declared) return tl::unexpected(std::move(declared.error()));
  auto s = std::make_unique<Subscription>();
  s->topic = std::string(topic);
  s->type = std::move(type);
  s->options = options;
  s->callback = std::move(callback);
  s->declared = std::move(*declared);
  std::lock_guard lock(impl_->mutex);
  if (impl_->phase == Phase::stopping || impl_->phase == Phase::stopped) {
    return fail("subscribe to topic '" + std::string(topic) + "': the extension has stopped");
  }
  if (impl_->phase == Phase::running) {
    if (auto attached = impl_->attach(*s, std::nullopt); !attached) return attached;
  }
  impl_->subscriptions.push_back(std::move(s));
  return {};
}

Result<void> Extension::subscribe_raw(std::string_view topic,
                                      std::function<void(std::span<const std::byte>)> callback,
                                      SubscribeOptions options) {
  return subscribe_core(topic, engine::TopicType{}, options, std::move(callback));
}

// ---- while running ----

Result<std::uint64_t> Extension::commit_checkpoint() { return impl_->commit(); }

bool Extension::send_event(std::string_view kind, std::string payload_json) {
  auto* channel = impl_->channel_ptr.load(std::memory_order_acquire);
  return channel != nullptr && channel->send_event(kind, std::move(payload_json));
}

void Extension::request_stop() {
  impl_->stop_requested.store(true);
  poke(impl_->wake_fd);
}

bool Extension::stopping() const { return impl_->stop_requested.load(); }

bool Extension::awaiting_handover() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->phase == Phase::awaiting;
}

spdlog::logger& Extension::log() { return *impl_->logger; }
const std::string& Extension::id() const { return impl_->id; }
int Extension::instance() const { return impl_->instance; }
const std::string& Extension::bus_name() const { return impl_->bus_name; }
const std::vector<std::string>& Extension::args() const { return impl_->args; }

// ---- run ----

int Extension::run(int argc, char** argv) {
  struct sigaction action {};
  struct sigaction old_term {};
  struct sigaction old_int {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  g_signal_fd.store(impl_->wake_fd);
  ::sigaction(SIGTERM, &action, &old_term);
  ::sigaction(SIGINT, &action, &old_int);
  int code = impl_->serve(argc, argv);
  impl_->shut_down(code);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGINT, &old_int, nullptr);
  g_signal_fd.store(-1);
  if (impl_->abandoned) {
    // A callback is stuck on a thread we could not join: destructors would race it.
    impl_->logger->error("exiting without cleanup: a callback is still running");
    impl_->logger->flush();
    std::_Exit(code == 0 ? 3 : code);
  }
  return code;
}

int Extension::Impl::serve(int argc, char** argv) {
  bool await_handover = false;
  if (const char* text = std::getenv(supervisor::kEnvAwaitHandover)) {
    await_handover = std::strcmp(text, "1") == 0;
  }
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], kAwaitFlag) == 0) {
      await_handover = true;
    } else {
      args.emplace_back(argv[i]);
    }
  }
  auto options = controlplane::ExtensionOptions::from_environment();
  if (!options) {
    logger->error("not started by a Symphony host: {}", options.error().message);
    return 2;
  }
  id = options->extension;
  instance = options->instance;
  bus_name = options->bus;
  declarations();
  if (declared_error) {
    logger->error("{}", declared_error->message);
    return 2;
  }
  BusOptions bus_options;
  bus_options.name = bus_name;
  auto opened = Bus::open(bus_options);
  if (!opened) {
    logger->error("bus '{}': {}", bus_name, opened.error().message);
    return 2;
  }
  bus.emplace(std::move(*opened));
  if (ui) {
    // The SDK's own topic: not in the manifest, so not checked against SYMPHONY_TOPICS.
    ui_core = std::make_shared<detail::PublisherCore>(
        ::symphony::ui::ui_topic(id), engine::TopicType{}, ::symphony::ui::topic_options(),
        engine::PublisherOptions{});
    {
      std::lock_guard lock(mutex);
      publishers.push_back(ui_core);
    }
    ui->start(id);
  }
  if (save || restore) {
    auto ckpt = engine::Checkpoint::open(bus_name, id, instance);
    if (ckpt) {
      checkpoint.emplace(std::move(*ckpt));
    } else {
      logger->warn("no checkpoint store ({}); state will not survive a restart: set "
                   "\"checkpoint_bytes\" in the manifest",
                   ckpt.error().message);
    }
  }

  controlplane::ExtensionHandlers handlers_;
  handlers_.on_request_deferred = [this](const std::string& method, const std::string& payload,
                                         controlplane::Responder respond) {
    dispatch(method, payload, std::move(respond));
  };
  handlers_.on_command = [this](const std::string& command,
                                const std::string&) -> engine::Result<void> {
    if (command == "stop") {
      stop_requested.store(true);
      poke(wake_fd);
      return {};
    }
    return fail("command '" + command + "' is not supported by the SDK (only stop)",
                Errc::unsupported);
  };
  if (on_event) {
    handlers_.on_event = [this](std::uint64_t seq, const std::string& kind,
                                const std::string& body) {
      {
        std::lock_guard lock(events_mutex);
        if (events_closed) return;
        events.push_back(Event{seq, kind, body});
      }
      events_changed.notify_one();
    };
  }
  pool.start();
  auto connected = controlplane::ExtensionChannel::connect(*options, handlers_);
  if (!connected) {
    logger->error("control plane: {}", connected.error().message);
    return 3;
  }
  channel = std::move(*connected);
  watch_ptr.store(&channel->callbacks(), std::memory_order_release);
  channel_ptr.store(channel.get(), std::memory_order_release);
  if (on_event) start_events();
  if (!channel->wait_ready(30s)) {
    logger->error("no welcome from the host within 30 s ({})", channel->last_refusal());
    return 4;
  }

  if (await_handover) {
    std::lock_guard lock(mutex);
    phase = Phase::awaiting;
  } else {
    restore_checkpoint();
    if (auto bound = bind_all(); !bound) {
      logger->error("{}", bound.error().message);
      return 2;
    }
  }
  if (on_start) {
    bool ok = watched([&] { return guarded(*logger, "on_start", on_start); });
    if (!ok) return 1;
  }
  if (!await_handover) {
    std::lock_guard lock(mutex);
    for (auto& s : subscriptions) {
      if (s->subscriber) continue;
      if (auto attached = attach(*s, std::nullopt); !attached) {
        logger->error("{}", attached.error().message);
        return 2;
      }
    }
    for (auto& t : timers) start_timer(*t);
    phase = Phase::running;
  }
  if (!await_handover && ui) ui->activate();
  channel->send_event(supervisor::kReadyEvent,
                      Json().add("sdk", controlplane::kSdkVersion)
                          .add("awaiting_handover", await_handover)
                          .str());
  logger->info("ready{} (bus {}, {} publisher(s), {} subscription(s), {} timer(s))",
               await_handover ? ", awaiting a hand-over" : "", bus_name, publishers.size(),
               subscriptions.size(), timers.size());

  while (!stop_requested.load()) {
    pollfd fd{wake_fd, POLLIN, 0};
    if (::poll(&fd, 1, 1000) > 0) drain_eventfd(wake_fd);
  }
  stop_requested.store(true);
  logger->info("stopping");
  return 0;
}

void Extension::Impl::shut_down(int& code) {
  const auto stop_began = Clock::now();
  const auto deadline = stop_began + kStopWait;
  std::vector<Subscription*> subs;
  std::vector<Timer*> timer_list;
  {
    std::lock_guard lock(mutex);
    phase = Phase::stopping;
    for (auto& s : subscriptions) subs.push_back(s.get());
    for (auto& t : timers) timer_list.push_back(t.get());
  }
  bool clean = true;
  for (Timer* t : timer_list) clean = stop_timer(*t, deadline) && clean;
  for (Subscription* s : subs) clean = detach(*s, deadline) && clean;
  if (ui) ui->deactivate();
  if (!pool.close(deadline)) {
    logger->error("a request did not finish within {} ms of the stop; abandoned",
                  kStopWait.count());
    clean = false;
  }
  // After the pool: a worker waiting for an event's answer gets it (an error) first.
  if (ui && !ui->stop(deadline)) {
    logger->error("a UI handler or view did not return within {} ms of the stop; abandoned",
                  kStopWait.count());
    clean = false;
  }
  clean = stop_events(deadline) && clean;
  if (!clean) {
    abandoned = true;
    return;  // on_stop and save() would race the stuck callback's state
  }
  if (on_stop && code == 0) {
    watched([&] { guarded(*logger, "on_stop", on_stop); });
  }
  if (save && code == 0) {
    auto committed = commit();
    if (committed) {
      logger->info("final checkpoint committed (generation {})", *committed);
    } else if (committed.error().code != Errc::not_found) {
      logger->error("final checkpoint: {}", committed.error().message);
    }
  }
  {
    std::lock_guard lock(mutex);
    phase = Phase::stopped;
    for (auto& core : publishers) core->stop();
  }
  // Let the ack of the stop command leave before the channel closes (ZMQ_LINGER is 0).
  const auto since = Clock::now() - stop_began;
  if (since < 20ms) std::this_thread::sleep_for(20ms - since);
  watch_ptr.store(nullptr, std::memory_order_release);
  channel_ptr.store(nullptr, std::memory_order_release);
  channel.reset();
  logger->info("stopped");
}

}  // namespace symphony::sdk
