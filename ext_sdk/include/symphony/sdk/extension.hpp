#pragma once
// symphony::sdk::Extension — everything an extension process needs, on top of the control plane
// (controlplane::ExtensionChannel), topics (symphony::Bus) and checkpoints (engine::Checkpoint):
//
//   int main(int argc, char** argv) {
//     symphony::sdk::Extension ext;
//     auto out = ext.advertise<Reading>("sensors/temp", "plant.Reading");      // Result<Publisher>
//     ext.subscribe<Command>("commands", "plant.Command", [&](const Command& c) { ... });
//     ext.on_request("read", [&](const sdk::Request& r) -> sdk::Reply { return R"({"c":21})"; });
//     ext.every(std::chrono::milliseconds(10), [&] { out->publish(Reading{...}); });
//     return ext.run(argc, argv);   // until the host's stop command or SIGTERM
//   }
//
// Lifecycle (run()): connect from the environment (SYMPHONY_*), restore the checkpoint
// (restore(bytes)), bind the publishers, on_start(), subscribe and start the timers, send
// "ready" (the supervisor's HEALTHY), serve until stop; then stop the timers and subscriptions
// (each finishes the callback it runs), let running requests finish (bounded), on_stop(),
// commit a final checkpoint (save()), exit 0. Setup failures (no host in the environment, an
// undeclared topic, a type mismatch) are logged with the reason and run() returns non-zero.
//
// Threads — which one runs which callback. No callback runs on the control plane's I/O thread,
// so a slow callback never delays heartbeats; every callback is marked in the channel's
// CallbackWatch, so one stuck longer than the manifest's hang timeout is reported as a hang.
//   - on_start, on_stop, restore at start, the final save: the thread that called run().
//   - request handlers: a pool of workers "sym-sdk-req" (2 at start, grown to at most
//     `max_request_workers` (8) while all are busy): a slow request occupies one worker only.
//   - each subscription: its own thread "sym-sdk-sub", one callback at a time, in order.
//   - each timer (every()): its own thread "sym-sdk-tick".
//   - on_event (broadcast events): one thread "sym-sdk-events", in sequence order.
//   - save() during a hand-over drain or commit_checkpoint(): the calling thread (a worker).
//   - the UI (ui()): one thread "sym-sdk-ui" runs the view, the diff, the publish and every UI
//     event handler, one at a time; so a handler and the view share the author's state without
//     a lock between them. State they share with any other callback (a timer that changes what
//     the view shows, a request) still needs one, and a call to ui_changed().
// So one slow subscription callback stalls only its own topic; requests, timers and the other
// topics go on. Callbacks on different threads run concurrently: state they share needs a lock.
//
// Hot update (hand-over), implemented for every subscription: with SYMPHONY_AWAIT_HANDOVER=1 in
// the environment (or --symphony-await-handover on the command line) run() neither restores
// the checkpoint nor binds publishers, subscribes or starts timers; it says ready and serves
// requests. The request "symphony.drain" (to the predecessor) stops every subscription at a
// sample boundary (it stays subscribed, so `block` topics keep their samples), stops the
// timers, gives up the publishers, commits a final checkpoint and replies
// {"positions":{"<topic>":<position>,...}}. "symphony.resume" with that body (to the successor)
// restores the checkpoint, subscribes each named topic at its position (the others normally),
// binds the publishers, starts the timers and replies {}; to a drained predecessor (a rolled
// back update) it undoes the drain.
//
// User interface (ui(), docs/ui-protocol.md): the view is rendered on "sym-sdk-ui" and published
// as frames on the SDK's own topic ui/<id> (exempt from the declared-topics check: the manifest
// does not list it), a snapshot first, then patches against the last frame (or a snapshot when
// it is smaller). Renders are coalesced: at most one per UiOptions::min_interval (16 ms), at
// once after a quiet spell or a handled event. The SDK answers "symphony.ui.snapshot" and "symphony.ui.event"
// itself. Publishing starts when the publishers bind (after on_start) and stops at a drain; a
// successor's first frame is a snapshot with seq 1 (seq restarts with the process).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <spdlog/logger.h>

#include "symphony/controlplane/envelope.hpp"
#include "symphony/engine/error.hpp"
#include "symphony/engine/topic.hpp"
#include "symphony/sdk/declared_topics.hpp"
#include "symphony/sdk/publisher.hpp"
#include "symphony/sdk/ui.hpp"

namespace symphony::sdk {

using engine::Errc;
using engine::Error;
using engine::Result;
using Json = controlplane::JsonObject;  // a small JSON object builder for replies

// A request: method and JSON payload, with getters for the payload's top-level fields.
class Request {
 public:
  Request(std::string method, std::string payload);
  const std::string& method() const noexcept { return method_; }
  const std::string& payload() const noexcept { return payload_; }  // JSON text
  // Top-level fields of the payload; nullopt if missing, of another type, or not an object.
  std::optional<std::string> string(std::string_view key) const;
  std::optional<std::int64_t> integer(std::string_view key) const;
  std::optional<bool> boolean(std::string_view key) const;
  std::optional<std::string> raw(std::string_view key) const;  // the field's JSON text

 private:
  const controlplane::JsonReader* reader() const;
  std::string method_;
  std::string payload_;
  mutable std::optional<Result<controlplane::JsonReader>> reader_;
};

// A reply's JSON payload, or an error the host's caller receives as such.
using Reply = Result<std::string>;
using RequestHandler = std::function<Reply(const Request&)>;

// An error reply: `return sdk::fail("no such file: " + path);`
inline tl::unexpected<Error> fail(std::string message, Errc code = Errc::invalid_argument) {
  return tl::unexpected(Error{code, std::move(message)});
}

// A broadcast event from the host (lifecycle states of every extension among them).
struct Event {
  std::uint64_t seq = 0;
  std::string kind;
  std::string body;  // JSON
};

struct AdvertiseOptions {
  engine::TopicOptions topic;  // used if this publisher creates the topic; transport: the manifest's
  engine::PublisherOptions publisher;
};

struct SubscribeOptions {
  std::uint32_t depth = 64;
  engine::Overflow overflow = engine::Overflow::block;
  bool history = true;
  engine::TopicOptions topic;  // used if this subscriber creates the topic
};

class Extension {
 public:
  Extension();
  ~Extension();
  Extension(const Extension&) = delete;
  Extension& operator=(const Extension&) = delete;

  // ---- what the extension does: declared before run() (or from its callbacks) ----

  // On the run() thread, after the checkpoint was restored and before ready. An exception
  // thrown here makes run() log it and return 1.
  Extension& on_start(std::function<void()> callback);
  // On the run() thread, once timers, subscriptions and requests have stopped; before the
  // final checkpoint.
  Extension& on_stop(std::function<void()> callback);
  // A handler per method name, on a request worker. An exception becomes an error reply.
  Extension& on_request(std::string method, RequestHandler handler);
  Extension& on_event(std::function<void(const Event&)> callback);
  // State that survives restarts and hot updates (needs "checkpoint_bytes" in the manifest):
  // save() is called at stop, at a hand-over drain and by commit_checkpoint(); restore(bytes)
  // once at start (or at a hand-over's resume) with the last committed bytes, if any. save()
  // may run on a request worker while other callbacks run: take your state's lock.
  Extension& on_checkpoint(std::function<std::vector<std::byte>()> save,
                           std::function<void(std::span<const std::byte>)> restore);
  // tick() every `period` on its own thread (missed ticks are skipped, not bunched up).
  Extension& every(std::chrono::nanoseconds period, std::function<void()> tick);
  // Upper bound of the request worker pool (default 8; at least 1).
  Extension& max_request_workers(unsigned workers);

  // The extension's user interface: `view` returns the tree to show (ui.hpp), built from the
  // author's state, with handlers bound to its nodes. Before run(). Rendered on the UI thread
  // when publishing starts and after each ui_changed(), and after every handled event (a
  // handler need not call ui_changed()); coalesced to one render per options.min_interval,
  // except right after handled events (answers to a user are not held back).
  // A render that throws or breaks a protocol bound (duplicate ids, too deep, too many nodes,
  // a frame over 256 KiB) is not published: the previous tree stays, the reason is logged once.
  // A handler that throws makes the event's reply an error; the extension goes on.
  Extension& ui(sdk::ui::View view, sdk::ui::UiOptions options = {});
  // State the view reads has changed: render again (coalesced). Any thread, cheap (a 1 kHz
  // stream costs ~60 renders a second). No effect without ui().
  void ui_changed();

  // Publishers, bound by run() before on_start (at once when called later). Refused at once:
  // a bad name, a topic the manifest does not declare for publishing, after stop. Refused when
  // bound: a type or QoS that disagrees with the topic's (run() then fails, naming the topic).
  template <typename T>
  Result<Publisher<T>> advertise(std::string_view topic, std::string_view type_name,
                                 AdvertiseOptions options = {}) {
    static_assert(std::is_trivially_copyable_v<T>,
                  "a topic's sample type lives in shared memory: it must be trivially copyable");
    options.topic.max_payload = sizeof(T);
    auto core = advertise_core(topic, engine::TopicType{std::string(type_name), sizeof(T)},
                               options);
    if (!core) return tl::unexpected(std::move(core.error()));
    return Publisher<T>(std::move(*core));
  }
  // Untyped: bytes of any length up to options.topic.max_payload.
  Result<RawPublisher> advertise_raw(std::string_view topic, AdvertiseOptions options = {});

  // A callback per sample, on the subscription's own thread, with the sample in place in shared
  // memory (valid during the callback only). Subscribed by run() after on_start (at once when
  // called later). Refused at once: a bad name, a topic not declared for subscribing, after stop.
  template <typename T>
  Result<void> subscribe(std::string_view topic, std::string_view type_name,
                         std::function<void(const T&)> callback, SubscribeOptions options = {}) {
    static_assert(std::is_trivially_copyable_v<T>,
                  "a topic's sample type lives in shared memory: it must be trivially copyable");
    options.topic.max_payload = sizeof(T);
    return subscribe_core(
        topic, engine::TopicType{std::string(type_name), sizeof(T)}, options,
        [cb = std::move(callback)](std::span<const std::byte> bytes) {
          cb(*static_cast<const T*>(static_cast<const void*>(bytes.data())));
        });
  }
  Result<void> subscribe_raw(std::string_view topic,
                             std::function<void(std::span<const std::byte>)> callback,
                             SubscribeOptions options = {});

  // ---- while running: from any thread ----

  // Calls save() and commits it now; Errc::invalid_argument without on_checkpoint, not_found
  // when the manifest gives no checkpoint, or the commit's error (too large for the store).
  Result<std::uint64_t> commit_checkpoint();
  // Sends an event to the host (false while it is unreachable).
  bool send_event(std::string_view kind, std::string payload_json);
  // Makes run() stop as if the host had asked.
  void request_stop();
  bool stopping() const;
  // True while waiting for a hand-over (started with SYMPHONY_AWAIT_HANDOVER=1, not resumed).
  bool awaiting_handover() const;

  // The extension's log: stderr, which the supervisor captures into the per-instance log.
  // Level from SYMPHONY_LOG_LEVEL (trace, debug, info, warn, error; default info).
  spdlog::logger& log();
  // From the environment (empty / 0 before run() read it).
  const std::string& id() const;
  int instance() const;
  const std::string& bus_name() const;
  // run()'s arguments without argv[0] and the SDK's own flags.
  const std::vector<std::string>& args() const;

  // Connects, starts, serves until stopped; the process's exit code (0 after a clean stop).
  // Installs SIGTERM and SIGINT handlers that stop it (an extension process owns its main).
  int run(int argc, char** argv);

  struct Impl;

 private:
  Result<std::shared_ptr<detail::PublisherCore>> advertise_core(std::string_view topic,
                                                                engine::TopicType type,
                                                                const AdvertiseOptions& options);
  Result<void> subscribe_core(std::string_view topic, engine::TopicType type,
                              const SubscribeOptions& options,
                              std::function<void(std::span<const std::byte>)> callback);
  std::unique_ptr<Impl> impl_;
};

}  // namespace symphony::sdk
