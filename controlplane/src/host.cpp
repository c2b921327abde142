#include "symphony/controlplane/host.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "io_wake.hpp"
#include "symphony/engine/runtime_dir.hpp"
#include "symphony/layouts/common.hpp"

namespace symphony::controlplane {
namespace {

using Clock = std::chrono::steady_clock;
using engine::Errc;
using engine::Error;

constexpr const char* kHost = "host";

Error failure(Errc code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace

std::string Registration::route() const { return extension + "/" + std::to_string(instance); }
std::string Registration::identity() const {
  return route() + "/" + std::to_string(generation);
}

const char* to_string(PeerState state) noexcept {
  switch (state) {
    case PeerState::registered: return "registered";
    case PeerState::connected: return "connected";
    case PeerState::unresponsive: return "unresponsive";
    case PeerState::gone: return "gone";
  }
  return "unknown";
}

std::string make_token() {
  unsigned char bytes[16];
  std::size_t filled = 0;
  while (filled < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + filled, sizeof bytes - filled, 0);
    if (n > 0) filled += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (const unsigned char b : bytes) {
    token += kHex[b >> 4];
    token += kHex[b & 15];
  }
  return token;
}

struct BoundSocketFile {
  std::string path;
  dev_t device;
  ino_t inode;
};

struct ControlHost::Impl {
  struct Peer {
    PeerInfo info;
    std::string identity;  // the connected generation's routing identity
  };
  struct Pending {
    std::string route;
    Clock::time_point deadline;
    ReplyCallback done;
  };

  HostOptions options;
  std::string control_endpoint;
  std::string events_endpoint;
  std::vector<BoundSocketFile> socket_files;  // ipc:// files we bound, removed at the end
  zmq::context_t context{1};
  zmq::socket_t router{context, zmq::socket_type::router};
  zmq::socket_t pub{context, zmq::socket_type::pub};
  IoWake wake;
  std::thread thread;
  std::atomic<std::thread::id> io_thread_id{};
  std::atomic<bool> stopping{false};

  mutable std::mutex mutex;  // guards everything below that other threads read or queue
  std::deque<std::function<void()>> queue;
  std::map<std::string, Peer> peers;  // by route
  std::function<void(const PeerEvent&)> peer_callback;
  MessageCallback message_callback;
  HostCounters counters;

  // I/O thread only.
  std::map<std::uint64_t, Pending> pending;
  std::set<std::pair<Clock::time_point, std::uint64_t>> deadlines;
  std::map<std::string, std::string> state;  // key -> JSON value, for snapshots
  std::uint64_t sequence = 0;
  std::atomic<std::uint64_t> next_id{1};
  Clock::time_point next_heartbeat{};

  // From a callback on the I/O thread itself, runs at once (no eventfd round trip through the
  // poll loop: a reply's callback that sends the next request is the common case).
  void post(std::function<void()> task) {
    if (std::this_thread::get_id() == io_thread_id.load(std::memory_order_acquire)) {
      task();
      return;
    }
    {
      std::lock_guard lock(mutex);
      queue.push_back(std::move(task));
    }
    wake.signal();
  }

  template <typename F>
  void count(F&& f) {
    std::lock_guard lock(mutex);
    f(counters);
  }

  void emit(const PeerEvent& event) {
    std::function<void(const PeerEvent&)> callback;
    {
      std::lock_guard lock(mutex);
      callback = peer_callback;
    }
    if (callback) callback(event);
  }

  bool send_to(const std::string& identity, const Envelope& envelope) {
    const std::string text = encode(envelope);
    try {
      zmq::multipart_t message;
      message.addstr(identity);
      message.addstr(text);
      // ROUTER_MANDATORY: an unknown or gone identity fails here (EHOSTUNREACH), not silently.
      return message.send(router, static_cast<int>(zmq::send_flags::dontwait));
    } catch (const zmq::error_t&) {
      return false;
    }
  }

  void reply_error(const std::string& identity, std::uint64_t id, std::string_view code,
                   std::string_view message) {
    Envelope e;
    e.type = MessageType::error;
    e.id = id;
    e.from = kHost;
    e.to = identity;
    e.body = JsonObject().add("code", code).add("message", message).str();
    send_to(identity, e);
  }

  void complete(std::uint64_t id, engine::Result<std::string> result) {
    auto it = pending.find(id);
    if (it == pending.end()) return;
    ReplyCallback done = std::move(it->second.done);
    deadlines.erase({it->second.deadline, id});
    pending.erase(it);
    if (done) done(std::move(result));
  }

  // Fails every request waiting on `route` (it went unresponsive or was replaced).
  void fail_pending_of(const std::string& route, const std::string& why) {
    std::vector<std::uint64_t> ids;
    for (const auto& [id, p] : pending) {
      if (p.route == route) ids.push_back(id);
    }
    for (const std::uint64_t id : ids) {
      complete(id, tl::unexpected(failure(Errc::unavailable, why)));
    }
  }

  static std::string normalise_route(std::string_view route) {
    return route.find('/') == std::string_view::npos ? std::string(route) + "/0"
                                                     : std::string(route);
  }

  void start_request(std::uint64_t id, std::string route, MessageType type,
                     std::string body, std::chrono::milliseconds timeout, ReplyCallback done) {
    std::string identity;
    PeerState peer_state = PeerState::gone;
    {
      std::lock_guard lock(mutex);
      auto it = peers.find(route);
      if (it != peers.end()) {
        peer_state = it->second.info.state;
        identity = it->second.identity;
      }
    }
    if (peer_state != PeerState::connected) {
      count([](HostCounters& c) { ++c.failed_fast; });
      if (done) {
        done(tl::unexpected(failure(
            Errc::unavailable,
            "extension '" + route + "' is " +
                (peer_state == PeerState::gone ? std::string("not registered or gone")
                                               : std::string(to_string(peer_state))))));
      }
      return;
    }
    Envelope e;
    e.type = type;
    e.id = id;
    e.from = kHost;
    e.to = route;
    e.body = std::move(body);
    if (!send_to(identity, e)) {
      count([](HostCounters& c) { ++c.failed_fast; });
      if (done) {
        done(tl::unexpected(failure(
            Errc::unavailable, "extension '" + route + "' cannot be reached (disconnected, or " +
                                   "100,000 messages already queued to it)")));
      }
      return;
    }
    count([](HostCounters& c) { ++c.requests_sent; });
    const Clock::time_point deadline = Clock::now() + timeout;
    pending.emplace(id, Pending{route, deadline, std::move(done)});
    deadlines.emplace(deadline, id);
  }

  void publish(std::string kind, JsonObject body) {
    Envelope e;
    e.type = MessageType::event;
    e.id = ++sequence;
    e.from = kHost;
    e.to = "*";
    e.body = body.add("seq", sequence).add("kind", kind).str();
    try {
      zmq::multipart_t message;
      message.addstr("ev");
      message.addstr(encode(e));
      message.send(pub, static_cast<int>(zmq::send_flags::dontwait));
    } catch (const zmq::error_t&) {
      // A PUB socket drops for slow subscribers; they notice the gap and resync.
    }
    count([](HostCounters& c) { ++c.events_published; });
  }

  void handle_hello(const std::string& identity, const Envelope& e) {
    auto body = JsonReader::parse(e.body, options.limits);
    const std::string extension = body ? body->string("extension").value_or("") : "";
    const auto instance = body ? body->integer("instance").value_or(-1) : -1;
    const auto generation = body ? body->integer("generation").value_or(-1) : -1;
    const std::string token = body ? body->string("token").value_or("") : "";
    const std::string route = extension + "/" + std::to_string(instance);
    bool accepted = false;
    std::string why;
    {
      std::lock_guard lock(mutex);
      auto it = peers.find(route);
      if (it == peers.end()) {
        ++counters.refused_unregistered;
        why = "extension '" + route + "' is not registered";
      } else if (it->second.info.registration.token != token) {
        ++counters.refused_bad_token;
        why = "wrong token for '" + route + "'";
      } else if (it->second.info.registration.generation !=
                     static_cast<std::uint64_t>(generation) ||
                 it->second.info.registration.identity() != identity) {
        ++counters.refused_bad_token;
        why = "identity '" + identity + "' is not the registered generation " +
              std::to_string(it->second.info.registration.generation) + " of '" + route + "'";
      } else {
        accepted = true;
        it->second.identity = identity;
        it->second.info.state = PeerState::connected;
        it->second.info.last_seen = Clock::now();
        it->second.info.protocol = e.version;
        it->second.info.sdk = body->string("sdk").value_or("");
      }
    }
    if (!accepted) {
      reply_error(identity, e.id, "refused", why);
      return;
    }
    Envelope welcome;
    welcome.type = MessageType::welcome;
    welcome.id = e.id;
    welcome.from = kHost;
    welcome.to = route;
    welcome.body = JsonObject()
                       .add("heartbeat_ms", static_cast<std::int64_t>(
                                                options.heartbeat_interval.count()))
                       .add("events", events_endpoint)
                       .str();
    send_to(identity, welcome);
    emit({route, PeerState::connected, "hello accepted (protocol " + std::to_string(e.version) +
                                           ")"});
  }

  // Marks the sender seen; returns its route if it completed a hello, else refuses. `busy`: what
  // a heartbeat says about its oldest running callback (other messages leave it as it was).
  std::optional<std::string> known_sender(const std::string& identity, std::uint64_t id,
                                          std::optional<std::chrono::milliseconds> busy) {
    std::optional<std::string> route;
    bool came_back = false;
    std::string hang;
    {
      std::lock_guard lock(mutex);
      for (auto& [r, peer] : peers) {
        if (peer.identity == identity &&
            (peer.info.state == PeerState::connected ||
             peer.info.state == PeerState::unresponsive)) {
          PeerInfo& info = peer.info;
          if (busy) info.busy_for = *busy;
          info.last_seen = Clock::now();
          const auto limit = info.registration.hang_after;
          if (limit.count() > 0 && info.busy_for > limit) {
            if (info.state == PeerState::connected) {
              info.state = PeerState::unresponsive;
              hang = "extension '" + r + "' is hung (a callback has been running for " +
                     std::to_string(info.busy_for.count()) + " ms, over its limit of " +
                     std::to_string(limit.count()) + " ms)";
            }
          } else {
            came_back = info.state == PeerState::unresponsive;
            info.state = PeerState::connected;
          }
          route = r;
          break;
        }
      }
      if (!route) ++counters.refused_unregistered;
    }
    if (!route) {
      reply_error(identity, id, "refused", "say hello with a registered token first");
      return std::nullopt;
    }
    if (!hang.empty()) {
      fail_pending_of(*route, hang);
      emit({*route, PeerState::unresponsive, hang});
    }
    if (came_back) emit({*route, PeerState::connected, "responsive again"});
    return route;
  }

  // A heartbeat's "busy_ms"; zero when absent or unreadable.
  std::chrono::milliseconds busy_of(const Envelope& heartbeat) const {
    if (heartbeat.body.size() <= 2) return {};  // "{}": the common case, nothing to parse
    auto body = JsonReader::parse(heartbeat.body, options.limits);
    const auto busy = body ? body->integer("busy_ms") : std::nullopt;
    return std::chrono::milliseconds(busy && *busy > 0 ? *busy : 0);
  }

  void handle(zmq::multipart_t& message) {
    if (message.size() != 2) {
      count([](HostCounters& c) { ++c.malformed; });
      return;
    }
    const std::string identity = message[0].to_string();
    auto envelope = decode(message[1].to_string_view(), options.limits);
    if (!envelope) {
      if (envelope.error().code == Errc::qos_mismatch) {
        count([](HostCounters& c) { ++c.wrong_version; });
        reply_error(identity, 0, "version", envelope.error().message);
      } else {
        count([](HostCounters& c) { ++c.malformed; });
        reply_error(identity, 0, "malformed", envelope.error().message);
      }
      return;
    }
    const Envelope& e = *envelope;
    if (e.type == MessageType::hello) return handle_hello(identity, e);
    const auto route =
        known_sender(identity, e.id,
                     e.type == MessageType::heartbeat
                         ? std::optional<std::chrono::milliseconds>(busy_of(e))
                         : std::nullopt);
    if (!route) return;
    switch (e.type) {
      case MessageType::heartbeat: return;
      case MessageType::reply: {
        auto it = pending.find(e.id);
        if (it == pending.end() || it->second.route != *route) {
          count([](HostCounters& c) { ++c.late_replies; });
          return;
        }
        count([](HostCounters& c) { ++c.replies; });
        auto body = JsonReader::parse(e.body, options.limits);
        complete(e.id, body ? body->raw("payload").value_or("null") : std::string("null"));
        return;
      }
      case MessageType::error: {
        auto it = pending.find(e.id);
        if (it == pending.end() || it->second.route != *route) {
          count([](HostCounters& c) { ++c.late_replies; });
          return;
        }
        auto body = JsonReader::parse(e.body, options.limits);
        const std::string message_text =
            body ? body->string("message").value_or("error") : std::string("error");
        complete(e.id, tl::unexpected(failure(Errc::invalid_argument,
                                              "extension '" + *route + "': " + message_text)));
        return;
      }
      case MessageType::snapshot_request: {
        JsonObject snapshot_state;
        for (const auto& [key, value] : state) snapshot_state.add_raw(key, value);
        Envelope reply;
        reply.type = MessageType::snapshot;
        reply.id = e.id;
        reply.from = kHost;
        reply.to = *route;
        reply.body = JsonObject().add("seq", sequence).add_raw("state", snapshot_state.str()).str();
        send_to(identity, reply);
        return;
      }
      case MessageType::event:
      case MessageType::topic: {
        MessageCallback callback;
        {
          std::lock_guard lock(mutex);
          callback = message_callback;
        }
        if (callback) callback(*route, e);
        return;
      }
      default:
        count([](HostCounters& c) { ++c.malformed; });
        reply_error(identity, e.id, "unexpected",
                    std::string("a host does not accept '") + to_string(e.type) + "'");
    }
  }

  void tick(Clock::time_point now) {
    while (!deadlines.empty() && deadlines.begin()->first <= now) {
      const std::uint64_t id = deadlines.begin()->second;
      const std::string route = pending.at(id).route;
      count([](HostCounters& c) { ++c.timeouts; });
      complete(id, tl::unexpected(failure(Errc::unavailable,
                                          "request to '" + route + "' timed out")));
    }
    if (now < next_heartbeat) return;
    next_heartbeat = now + options.heartbeat_interval;
    std::vector<std::pair<std::string, std::string>> beat;
    std::vector<std::string> lost;
    {
      std::lock_guard lock(mutex);
      for (auto& [route, peer] : peers) {
        if (peer.info.state != PeerState::connected && peer.info.state != PeerState::unresponsive) {
          continue;
        }
        beat.emplace_back(route, peer.identity);
        if (peer.info.state == PeerState::connected &&
            now - peer.info.last_seen > options.unresponsive_after) {
          peer.info.state = PeerState::unresponsive;
          lost.push_back(route);
        }
      }
    }
    for (const auto& [route, identity] : beat) {
      Envelope hb;
      hb.type = MessageType::heartbeat;
      hb.from = kHost;
      hb.to = route;
      // The broadcast sequence: a subscriber that missed the last events (a PUB drops what it
      // sends before a SUB is connected) sees that it is behind without waiting for the next.
      hb.body = JsonObject().add("seq", sequence).str();
      send_to(identity, hb);
    }
    for (const std::string& route : lost) {
      const std::string why = "extension '" + route + "' is unresponsive (nothing heard for " +
                              std::to_string(options.unresponsive_after.count()) + " ms)";
      fail_pending_of(route, why);
      emit({route, PeerState::unresponsive, why});
    }
  }

  void run() {
    io_thread_id.store(std::this_thread::get_id(), std::memory_order_release);
    while (!stopping.load(std::memory_order_acquire)) {
      const Clock::time_point now = Clock::now();
      tick(now);
      Clock::time_point wake_at = next_heartbeat;
      if (!deadlines.empty()) wake_at = std::min(wake_at, deadlines.begin()->first);
      const auto timeout = std::max<std::chrono::milliseconds>(
          std::chrono::milliseconds(0),
          std::chrono::ceil<std::chrono::milliseconds>(wake_at - Clock::now()));
      zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, wake.fd(), ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 2, timeout);
      } catch (const zmq::error_t&) {
        continue;  // EINTR
      }
      if (items[1].revents & ZMQ_POLLIN) {
        wake.drain();
        std::deque<std::function<void()>> tasks;
        {
          std::lock_guard lock(mutex);
          tasks.swap(queue);
        }
        for (auto& task : tasks) task();
      }
      // A bounded batch per round, so timers and queued calls are never starved; only when poll
      // flagged the socket (a recv that finds nothing costs libzmq a poll(2) of its mailbox).
      for (int i = 0; (items[0].revents & ZMQ_POLLIN) && i < 256; ++i) {
        zmq::multipart_t message;
        try {
          if (!message.recv(router, static_cast<int>(zmq::recv_flags::dontwait))) break;
        } catch (const zmq::error_t&) {
          break;
        }
        handle(message);
      }
    }
    for (auto& [id, p] : pending) {
      if (p.done) p.done(tl::unexpected(failure(Errc::unavailable, "host stopped")));
    }
    pending.clear();
  }
};

ControlHost::ControlHost(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

ControlHost::~ControlHost() {
  impl_->stopping.store(true, std::memory_order_release);
  impl_->wake.signal();
  if (impl_->thread.joinable()) impl_->thread.join();
  // libzmq leaves ipc socket files behind; remove ours (only if still ours: same inode).
  for (const BoundSocketFile& file : impl_->socket_files) {
    struct stat now {};
    if (::stat(file.path.c_str(), &now) == 0 && now.st_dev == file.device &&
        now.st_ino == file.inode) {
      ::unlink(file.path.c_str());
    }
  }
}

engine::Result<std::unique_ptr<ControlHost>> ControlHost::start(HostOptions options) {
  auto impl = std::make_unique<Impl>();
  auto wake = IoWake::create();
  if (!wake) return tl::unexpected(std::move(wake.error()));
  impl->wake = std::move(*wake);
  if (options.control_endpoint.empty() || options.events_endpoint.empty()) {
    auto dir = engine::ensure_runtime_dir(options.bus, options.runtime_dir);
    if (!dir) return tl::unexpected(std::move(dir.error()));
    options.runtime_dir = *dir;
    if (options.control_endpoint.empty()) {
      options.control_endpoint = "ipc://" + (*dir / "control").string();
    }
    if (options.events_endpoint.empty()) {
      options.events_endpoint = "ipc://" + (*dir / "events").string();
    }
  }
  for (const std::string* endpoint : {&options.control_endpoint, &options.events_endpoint}) {
    if (endpoint->rfind("ipc://", 0) == 0 && endpoint->size() - 6 > 107) {
      return tl::unexpected(failure(Errc::invalid_argument,
                                    "ipc endpoint '" + *endpoint +
                                        "' is longer than the 107 bytes a Unix socket path allows"));
    }
  }
  impl->options = options;
  try {
    for (zmq::socket_t* socket : {&impl->router, &impl->pub}) {
      socket->set(zmq::sockopt::linger, 0);
      socket->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(options.limits.max_bytes));
    }
    // Room for thousands of requests in flight to one extension (the default is 1,000, and a
    // full pipe makes a ROUTER_MANDATORY send fail).
    impl->router.set(zmq::sockopt::sndhwm, 100'000);
    impl->router.set(zmq::sockopt::rcvhwm, 100'000);
    impl->router.set(zmq::sockopt::router_mandatory, 1);
    // No ROUTER_HANDOVER: with it, any peer that connects with a live extension's identity
    // (guessable: "<id>/<instance>/<generation>") takes its connection over before its token
    // is even checked. A restarted instance has a new generation, hence a new identity, and
    // never collides; a reconnecting one finds its old ipc pipe already gone.
    impl->router.set(zmq::sockopt::router_handover, 0);
    impl->router.bind(options.control_endpoint);
    impl->pub.bind(options.events_endpoint);
    impl->control_endpoint = impl->router.get(zmq::sockopt::last_endpoint);
    impl->events_endpoint = impl->pub.get(zmq::sockopt::last_endpoint);
    for (const std::string* endpoint : {&impl->control_endpoint, &impl->events_endpoint}) {
      if (endpoint->rfind("ipc://", 0) != 0) continue;
      BoundSocketFile file{endpoint->substr(6), 0, 0};
      struct stat st {};
      if (::stat(file.path.c_str(), &st) == 0) {
        file.device = st.st_dev;
        file.inode = st.st_ino;
        impl->socket_files.push_back(std::move(file));
      }
    }
  } catch (const zmq::error_t& e) {
    return tl::unexpected(failure(Errc::system_error, std::string("control plane: ") + e.what() +
                                                          " (" + options.control_endpoint + ", " +
                                                          options.events_endpoint + ")"));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  ::pthread_setname_np(impl->thread.native_handle(), "sym-ctl-host");
  return std::unique_ptr<ControlHost>(new ControlHost(std::move(impl)));
}

const std::string& ControlHost::control_endpoint() const noexcept {
  return impl_->control_endpoint;
}
const std::string& ControlHost::events_endpoint() const noexcept { return impl_->events_endpoint; }

Registration ControlHost::register_extension(std::string_view extension, int instance,
                                             std::chrono::milliseconds hang_after) {
  Registration registration;
  registration.extension = std::string(extension);
  registration.instance = instance;
  registration.hang_after = hang_after;
  registration.token = make_token();
  {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->peers.find(registration.route());
    registration.generation =
        it == impl_->peers.end() ? 1 : it->second.info.registration.generation + 1;
  }
  register_extension(registration);
  return registration;
}

void ControlHost::register_extension(const Registration& registration) {
  const std::string route = registration.route();
  bool replaced_live = false;
  {
    std::lock_guard lock(impl_->mutex);
    auto& peer = impl_->peers[route];
    replaced_live = peer.info.state == PeerState::connected ||
                    peer.info.state == PeerState::unresponsive;
    peer.info = PeerInfo{};
    peer.info.registration = registration;
    peer.info.state = PeerState::registered;
    peer.identity.clear();
  }
  if (replaced_live) {
    impl_->post([impl = impl_.get(), route] {
      impl->fail_pending_of(route, "extension '" + route + "' was replaced by a new generation");
    });
  }
}

void ControlHost::mark_gone(std::string_view route, std::string reason) {
  impl_->post([impl = impl_.get(), route = Impl::normalise_route(route),
               reason = std::move(reason)] {
    bool was_there = false;
    {
      std::lock_guard lock(impl->mutex);
      auto it = impl->peers.find(route);
      if (it != impl->peers.end() && it->second.info.state != PeerState::gone) {
        was_there = true;
        it->second.info.state = PeerState::gone;
        it->second.identity.clear();
      }
    }
    if (!was_there) return;
    impl->fail_pending_of(route, reason);
    impl->emit({route, PeerState::gone, reason});
  });
}

std::uint64_t ControlHost::request(std::string_view route, std::string_view method,
                                   std::string payload_json, std::chrono::milliseconds timeout,
                                   ReplyCallback done) {
  const std::uint64_t id = impl_->next_id.fetch_add(1, std::memory_order_relaxed);
  std::string body = JsonObject()
                         .add("method", method)
                         .add_raw("payload", payload_json.empty() ? "null" : payload_json)
                         .add("deadline_ms", static_cast<std::int64_t>(timeout.count()))
                         .str();
  impl_->post([impl = impl_.get(), id, r = Impl::normalise_route(route), body = std::move(body),
               timeout, done = std::move(done)]() mutable {
    impl->start_request(id, std::move(r), MessageType::request, std::move(body), timeout,
                        std::move(done));
  });
  return id;
}

std::future<engine::Result<std::string>> ControlHost::request(std::string_view route,
                                                              std::string_view method,
                                                              std::string payload_json,
                                                              std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<engine::Result<std::string>>>();
  auto future = promise->get_future();
  request(route, method, std::move(payload_json), timeout,
          [promise](engine::Result<std::string> result) { promise->set_value(std::move(result)); });
  return future;
}

void ControlHost::cancel(std::uint64_t request_id) {
  impl_->post([impl = impl_.get(), request_id] {
    if (impl->pending.count(request_id) == 0) return;
    impl->count([](HostCounters& c) { ++c.cancelled; });
    impl->complete(request_id, tl::unexpected(failure(Errc::unavailable, "cancelled")));
  });
}

std::uint64_t ControlHost::command(std::string_view route, std::string_view command,
                                   std::string args_json, std::chrono::milliseconds timeout,
                                   ReplyCallback done) {
  const std::uint64_t id = impl_->next_id.fetch_add(1, std::memory_order_relaxed);
  std::string body = JsonObject()
                         .add("command", command)
                         .add_raw("args", args_json.empty() ? "{}" : args_json)
                         .str();
  impl_->post([impl = impl_.get(), id, r = Impl::normalise_route(route), body = std::move(body),
               timeout, done = std::move(done)]() mutable {
    impl->start_request(id, std::move(r), MessageType::command, std::move(body), timeout,
                        std::move(done));
  });
  return id;
}

void ControlHost::set_state(std::string_view key, std::string value_json) {
  impl_->post([impl = impl_.get(), key = std::string(key), value = std::move(value_json)] {
    impl->state[key] = value;
    impl->publish("state", JsonObject().add("key", key).add_raw("value", value));
  });
}

void ControlHost::broadcast(std::string_view kind, std::string payload_json) {
  impl_->post([impl = impl_.get(), kind = std::string(kind), payload = std::move(payload_json)] {
    impl->publish(kind, JsonObject().add_raw("payload", payload.empty() ? "null" : payload));
  });
}

void ControlHost::on_peer_event(std::function<void(const PeerEvent&)> callback) {
  std::lock_guard lock(impl_->mutex);
  impl_->peer_callback = std::move(callback);
}

void ControlHost::on_message(MessageCallback callback) {
  std::lock_guard lock(impl_->mutex);
  impl_->message_callback = std::move(callback);
}

HostCounters ControlHost::counters() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->counters;
}

std::vector<PeerInfo> ControlHost::peers() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<PeerInfo> result;
  for (const auto& [route, peer] : impl_->peers) result.push_back(peer.info);
  return result;
}

}  // namespace symphony::controlplane
