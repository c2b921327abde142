#include "symphony/controlplane/extension.hpp"

#include <pthread.h>
#include <simdjson.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "io_wake.hpp"
#include "symphony/layouts/common.hpp"

namespace symphony::controlplane {
namespace {

using Clock = std::chrono::steady_clock;
using engine::Errc;
using engine::Error;

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

std::optional<std::int64_t> env_integer(const char* name) {
  const auto text = env(name);
  if (!text) return std::nullopt;
  char* end = nullptr;
  const long long value = std::strtoll(text->c_str(), &end, 10);
  if (end == nullptr || *end != '\0' || value < 0) return std::nullopt;
  return value;
}

}  // namespace

engine::Result<ExtensionOptions> ExtensionOptions::from_environment() {
  ExtensionOptions options;
  const auto extension = env(kEnvExtension);
  const auto token = env(kEnvToken);
  const auto control = env(kEnvControl);
  const auto instance = env_integer(kEnvInstance);
  const auto generation = env_integer(kEnvGeneration);
  const char* missing = !extension    ? kEnvExtension
                        : !token      ? kEnvToken
                        : !control    ? kEnvControl
                        : !instance   ? kEnvInstance
                        : !generation ? kEnvGeneration
                                      : nullptr;
  if (missing != nullptr) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                std::string("environment variable ") + missing +
                                    " is missing or malformed (an extension is started by a "
                                    "Symphony host or launcher)"});
  }
  options.bus = env(kEnvBus).value_or("default");
  options.extension = *extension;
  options.token = *token;
  options.control_endpoint = *control;
  options.instance = static_cast<int>(*instance);
  options.generation = static_cast<std::uint64_t>(*generation);
  return options;
}

CallbackWatch::Running CallbackWatch::start() {
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_id_++;
  running_.emplace_back(id, Clock::now());
  return Running(this, id);
}

void CallbackWatch::finish(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  for (auto& entry : running_) {
    if (entry.first == id) {
      entry = running_.back();
      running_.pop_back();
      return;
    }
  }
}

std::chrono::milliseconds CallbackWatch::oldest_running(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  Clock::time_point oldest = now;
  for (const auto& entry : running_) oldest = std::min(oldest, entry.second);
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - oldest);
}

// Replies made off the I/O thread: queued here, and the I/O thread woken to send them. Shared
// with every Responder, so one that answers after the channel is gone finds it closed.
struct Responder::Route {
  std::mutex mutex;
  std::deque<Envelope> queue;
  bool open = true;
  IoWake wake;  // the channel's I/O thread polls it

  void push(Envelope e) {
    {
      std::lock_guard lock(mutex);
      if (!open) return;
      queue.push_back(std::move(e));
    }
    wake.signal();
  }
};

namespace {

Envelope reply_envelope(std::uint64_t request_id, engine::Result<std::string> result) {
  Envelope r;
  r.id = request_id;
  if (result) {
    r.type = MessageType::reply;
    r.body = JsonObject().add_raw("payload", result->empty() ? "null" : *result).str();
  } else {
    r.type = MessageType::error;
    r.body = JsonObject()
                 .add("code", engine::to_string(result.error().code))
                 .add("message", result.error().message)
                 .str();
  }
  return r;
}

}  // namespace

void Responder::operator()(engine::Result<std::string> result) {
  if (route_ == nullptr) return;
  route_->push(reply_envelope(request_id_, std::move(result)));
  route_.reset();
}

Responder::~Responder() {
  if (route_ != nullptr) {
    (*this)(tl::unexpected(
        Error{Errc::unavailable, "the extension dropped the request without an answer"}));
  }
}

struct ExtensionChannel::Impl {
  ExtensionOptions options;
  ExtensionHandlers handlers;
  std::string route;
  std::string identity;
  zmq::context_t context{1};
  zmq::socket_t dealer{context, zmq::socket_type::dealer};
  zmq::socket_t sub{context, zmq::socket_type::sub};
  // The outbox of every thread but the I/O thread (events, topic announcements, deferred
  // replies) and the eventfd that wakes the I/O thread.
  std::shared_ptr<Responder::Route> outbox = std::make_shared<Responder::Route>();
  std::thread thread;
  std::atomic<bool> stopping{false};

  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  bool welcomed = false;
  bool ready = false;  // welcomed and state synchronised
  std::map<std::string, std::string> state;
  std::uint64_t state_seq = 0;
  std::string last_refusal;
  ExtensionCounters counters;
  CallbackWatch callbacks;

  // I/O thread only.
  std::string events_endpoint;
  bool ever_welcomed = false;
  bool snapshot_pending = false;
  std::vector<std::pair<std::uint64_t, std::string>> buffered;  // (seq, envelope body)
  std::chrono::milliseconds heartbeat{250};
  Clock::time_point last_heard{};
  Clock::time_point next_hello{};
  // Hellos sent before the ipc connection is up are dropped (ZMQ_IMMEDIATE): retry soon, then
  // back off to retry_interval, so a freshly started extension is heard within milliseconds.
  std::chrono::milliseconds hello_backoff{kFirstHelloRetry};
  Clock::time_point next_heartbeat{};
  std::uint64_t next_id = 1;

  bool send(Envelope e) {
    e.version = options.protocol;
    e.from = route;
    e.to = "host";
    if (e.id == 0) e.id = next_id++;
    try {
      // ZMQ_IMMEDIATE: with no connection to the host this fails at once instead of queueing.
      return dealer.send(zmq::buffer(encode(e)), zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t&) {
      return false;
    }
  }

  std::uint64_t state_sequence() const {
    std::lock_guard lock(mutex);
    return state_seq;
  }

  void send_hello() {
    Envelope hello;
    hello.type = MessageType::hello;
    hello.body = JsonObject()
                     .add("token", options.token)
                     .add("extension", options.extension)
                     .add("instance", options.instance)
                     .add("generation", options.generation)
                     .add("sdk", kSdkVersion)
                     .add("layout", static_cast<std::int64_t>(layouts::kLayoutVersion))
                     .str();
    send(std::move(hello));
    std::lock_guard lock(mutex);
    ++counters.hellos;
  }

  void ask_snapshot() {
    snapshot_pending = true;
    buffered.clear();
    Envelope request;
    request.type = MessageType::snapshot_request;
    send(std::move(request));
  }

  void set_ready(bool value) {
    {
      std::lock_guard lock(mutex);
      ready = value;
    }
    changed.notify_all();
  }

  static constexpr std::chrono::milliseconds kFirstHelloRetry{2};

  void host_lost() {
    {
      std::lock_guard lock(mutex);
      welcomed = false;
      ready = false;
    }
    changed.notify_all();
    next_hello = Clock::now();
    hello_backoff = kFirstHelloRetry;
    if (handlers.on_host) handlers.on_host(false);
  }

  void on_welcome(const Envelope& e) {
    auto body = JsonReader::parse(e.body, options.limits);
    if (!body) return;
    heartbeat = std::chrono::milliseconds(std::max<std::int64_t>(
        10, body->integer("heartbeat_ms").value_or(250)));
    const std::string events = body->string("events").value_or("");
    if (events != events_endpoint) {
      try {
        if (!events_endpoint.empty()) sub.disconnect(events_endpoint);
        sub.connect(events);
        events_endpoint = events;
      } catch (const zmq::error_t&) {
        events_endpoint.clear();
      }
    }
    const bool again = ever_welcomed;
    ever_welcomed = true;
    {
      std::lock_guard lock(mutex);
      welcomed = true;
      if (again) ++counters.reconnects;
    }
    // A fresh host starts its sequence afresh: always take a snapshot after a welcome.
    ask_snapshot();
    if (handlers.on_host) handlers.on_host(true);
  }

  void apply_event(std::uint64_t seq, const std::string& body_json) {
    auto body = JsonReader::parse(body_json, options.limits);
    if (!body) return;
    const std::string kind = body->string("kind").value_or("");
    {
      std::lock_guard lock(mutex);
      if (kind == "state") {
        if (auto key = body->string("key")) state[*key] = body->raw("value").value_or("null");
      }
      state_seq = seq;
      ++counters.events;
    }
    if (handlers.on_event) handlers.on_event(seq, kind, body_json);
  }

  void on_snapshot(const Envelope& e) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    const simdjson::padded_string padded(e.body);
    if (parser.parse(padded).get(root) != simdjson::SUCCESS) return;
    std::uint64_t seq = 0;
    simdjson::dom::object object;
    if (root["seq"].get(seq) != simdjson::SUCCESS || root["state"].get(object) != simdjson::SUCCESS) {
      return;
    }
    std::map<std::string, std::string> fresh;
    for (auto field : object) fresh[std::string(field.key)] = simdjson::minify(field.value);
    {
      std::lock_guard lock(mutex);
      state = std::move(fresh);
      state_seq = seq;
    }
    snapshot_pending = false;
    // Deltas that arrived while we waited, in order; a gap among them means another resync.
    auto pending = std::move(buffered);
    buffered.clear();
    std::sort(pending.begin(), pending.end());
    for (const auto& [event_seq, body] : pending) {
      if (!on_sequenced(event_seq, body)) return;
    }
    set_ready(true);
  }

  // Applies an event in sequence; false if a gap started a resync.
  bool on_sequenced(std::uint64_t seq, const std::string& body) {
    std::uint64_t current = 0;
    {
      std::lock_guard lock(mutex);
      current = state_seq;
    }
    if (seq <= current) return true;  // already in the snapshot
    if (seq != current + 1) {
      {
        std::lock_guard lock(mutex);
        ++counters.resyncs;
        ready = false;
      }
      ask_snapshot();
      buffered.emplace_back(seq, body);
      return false;
    }
    apply_event(seq, body);
    return true;
  }

  void on_broadcast(const std::string& text) {
    auto e = decode(text, options.limits);
    if (!e || e->type != MessageType::event) return;
    auto body = JsonReader::parse(e->body, options.limits);
    if (!body) return;
    const auto seq = body->integer("seq");
    if (!seq || *seq < 0) return;
    if (snapshot_pending) {
      buffered.emplace_back(static_cast<std::uint64_t>(*seq), e->body);
      return;
    }
    on_sequenced(static_cast<std::uint64_t>(*seq), e->body);
  }

  void reply(const Envelope& request, engine::Result<std::string> result) {
    send(reply_envelope(request.id, std::move(result)));
  }

  void on_message(const std::string& text) {
    auto envelope = decode(text, options.limits);
    if (!envelope) return;
    const Envelope& e = *envelope;
    last_heard = Clock::now();
    switch (e.type) {
      case MessageType::welcome: return on_welcome(e);
      case MessageType::heartbeat: {
        // Behind the host's broadcast sequence with nothing pending: we missed the last events.
        auto body = JsonReader::parse(e.body, options.limits);
        const auto seq = body ? body->integer("seq") : std::nullopt;
        if (seq && !snapshot_pending && static_cast<std::uint64_t>(*seq) > state_sequence()) {
          {
            std::lock_guard lock(mutex);
            ++counters.resyncs;
          }
          ask_snapshot();
        }
        return;
      }
      case MessageType::snapshot: return on_snapshot(e);
      case MessageType::request: {
        {
          std::lock_guard lock(mutex);
          ++counters.requests;
        }
        auto body = JsonReader::parse(e.body, options.limits);
        const std::string method = body ? body->string("method").value_or("") : "";
        const std::string payload = body ? body->raw("payload").value_or("null") : "null";
        if (handlers.on_request_deferred) {
          return handlers.on_request_deferred(method, payload, Responder(outbox, e.id));
        }
        if (!handlers.on_request) {
          return reply(e, tl::unexpected(Error{Errc::unsupported, "no request handler"}));
        }
        return reply(e, handlers.on_request(method, payload));
      }
      case MessageType::command: {
        auto body = JsonReader::parse(e.body, options.limits);
        const std::string command = body ? body->string("command").value_or("") : "";
        const std::string args = body ? body->raw("args").value_or("{}") : "{}";
        if (!handlers.on_command) return reply(e, std::string("{\"ok\":true}"));
        auto done = handlers.on_command(command, args);
        if (!done) return reply(e, tl::unexpected(done.error()));
        return reply(e, std::string("{\"ok\":true}"));
      }
      case MessageType::error: {
        auto body = JsonReader::parse(e.body, options.limits);
        std::lock_guard lock(mutex);
        ++counters.refusals;
        last_refusal = body ? body->string("message").value_or("") : "";
        return;
      }
      default: return;
    }
  }

  void run() {
    next_hello = Clock::now();
    while (!stopping.load(std::memory_order_acquire)) {
      Clock::time_point now = Clock::now();
      bool is_welcomed = false;
      {
        std::lock_guard lock(mutex);
        is_welcomed = welcomed;
      }
      if (is_welcomed && now - last_heard > options.host_timeout) {
        host_lost();
        is_welcomed = false;
      }
      if (!is_welcomed && now >= next_hello) {
        send_hello();
        next_hello = now + std::min(hello_backoff, options.retry_interval);
        hello_backoff = std::min(hello_backoff * 2, options.retry_interval);
      }
      if (is_welcomed && now >= next_heartbeat) {
        Envelope hb;
        hb.type = MessageType::heartbeat;
        const auto busy = callbacks.oldest_running(now);
        if (busy.count() > 0 && options.protocol >= 2) {
          hb.body = JsonObject().add("busy_ms", static_cast<std::int64_t>(busy.count())).str();
        }
        send(std::move(hb));
        next_heartbeat = now + heartbeat;
      }
      Clock::time_point wake_at = is_welcomed ? std::min(next_heartbeat,
                                                         last_heard + options.host_timeout)
                                              : next_hello;
      const auto timeout = std::max<std::chrono::milliseconds>(
          std::chrono::milliseconds(1),
          std::chrono::ceil<std::chrono::milliseconds>(wake_at - Clock::now()));
      zmq::pollitem_t items[] = {{dealer.handle(), 0, ZMQ_POLLIN, 0},
                                 {sub.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, outbox->wake.fd(), ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 3, timeout);
      } catch (const zmq::error_t&) {
        continue;
      }
      if (items[2].revents & ZMQ_POLLIN) {
        outbox->wake.drain();
        std::deque<Envelope> out;
        {
          std::lock_guard lock(outbox->mutex);
          out.swap(outbox->queue);
        }
        for (Envelope& e : out) send(std::move(e));
      }
      // Only the sockets poll flagged: every recv that finds nothing costs libzmq a poll(2)
      // of its mailbox.
      for (int i = 0; (items[0].revents & ZMQ_POLLIN) && i < 256; ++i) {
        zmq::message_t message;
        try {
          if (!dealer.recv(message, zmq::recv_flags::dontwait)) break;
        } catch (const zmq::error_t&) {
          break;
        }
        on_message(message.to_string());
      }
      for (int i = 0; (items[1].revents & ZMQ_POLLIN) && i < 256; ++i) {
        zmq::multipart_t message;
        try {
          if (!message.recv(sub, static_cast<int>(zmq::recv_flags::dontwait))) break;
        } catch (const zmq::error_t&) {
          break;
        }
        if (message.size() == 2) on_broadcast(message[1].to_string());
      }
    }
  }
};

ExtensionChannel::ExtensionChannel(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

ExtensionChannel::~ExtensionChannel() {
  impl_->stopping.store(true, std::memory_order_release);
  impl_->outbox->wake.signal();
  if (impl_->thread.joinable()) impl_->thread.join();
  std::lock_guard lock(impl_->outbox->mutex);
  impl_->outbox->open = false;  // late Responders drop their answers
}

engine::Result<std::unique_ptr<ExtensionChannel>> ExtensionChannel::connect(
    ExtensionOptions options, ExtensionHandlers handlers) {
  if (options.extension.empty() || options.extension.find('/') != std::string::npos) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "extension id '" + options.extension +
                                    "' must be non-empty and contain no '/'"});
  }
  auto impl = std::make_unique<Impl>();
  auto wake = IoWake::create();
  if (!wake) return tl::unexpected(std::move(wake.error()));
  impl->outbox->wake = std::move(*wake);
  impl->route = options.extension + "/" + std::to_string(options.instance);
  impl->identity = impl->route + "/" + std::to_string(options.generation);
  impl->options = std::move(options);
  impl->handlers = std::move(handlers);
  try {
    for (zmq::socket_t* socket : {&impl->dealer, &impl->sub}) {
      socket->set(zmq::sockopt::linger, 0);
      socket->set(zmq::sockopt::maxmsgsize,
                  static_cast<std::int64_t>(impl->options.limits.max_bytes));
    }
    impl->dealer.set(zmq::sockopt::routing_id, impl->identity);
    impl->dealer.set(zmq::sockopt::sndhwm, 100'000);
    impl->dealer.set(zmq::sockopt::rcvhwm, 100'000);
    impl->dealer.set(zmq::sockopt::immediate, 1);
    impl->dealer.set(zmq::sockopt::reconnect_ivl, 50);
    impl->sub.set(zmq::sockopt::subscribe, "ev");
    impl->dealer.connect(impl->options.control_endpoint);
  } catch (const zmq::error_t& e) {
    return tl::unexpected(Error{Errc::system_error, std::string("control plane: ") + e.what() +
                                                        " (" + impl->options.control_endpoint +
                                                        ")"});
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  ::pthread_setname_np(impl->thread.native_handle(), "sym-ctl-ext");
  return std::unique_ptr<ExtensionChannel>(new ExtensionChannel(std::move(impl)));
}

bool ExtensionChannel::wait_ready(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->changed.wait_for(lock, timeout, [&] { return impl_->ready; });
}

bool ExtensionChannel::host_connected() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->welcomed;
}

bool ExtensionChannel::send_event(std::string_view kind, std::string payload_json) {
  Envelope e;
  e.type = MessageType::event;
  e.body = JsonObject()
               .add("seq", std::int64_t{0})
               .add("kind", kind)
               .add_raw("payload", payload_json.empty() ? "null" : payload_json)
               .str();
  if (!host_connected()) return false;
  impl_->outbox->push(std::move(e));
  return true;
}

bool ExtensionChannel::announce_topic(std::string_view name, std::string_view role,
                                      std::string_view transport, std::string_view type) {
  Envelope e;
  e.type = MessageType::topic;
  e.body = JsonObject()
               .add("name", name)
               .add("role", role)
               .add("transport", transport)
               .add("type", type)
               .str();
  if (!host_connected()) return false;
  impl_->outbox->push(std::move(e));
  return true;
}

std::map<std::string, std::string> ExtensionChannel::state() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->state;
}

std::uint64_t ExtensionChannel::state_sequence() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->state_seq;
}

std::string ExtensionChannel::last_refusal() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->last_refusal;
}

ExtensionCounters ExtensionChannel::counters() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->counters;
}

CallbackWatch& ExtensionChannel::callbacks() noexcept { return impl_->callbacks; }

}  // namespace symphony::controlplane
