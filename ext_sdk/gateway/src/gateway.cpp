// The gateway: HTTP + WebSocket (Boost.Beast) on the io thread, the mirror of every extension's
// tree fed by the bus thread, host polling and the dashboard on the poll thread, host calls on
// workers. See gateway.hpp for the threads and docs/ui-protocol.md for the messages.

#include "symphony/gateway/gateway.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "dashboard.hpp"
#include "symphony/cli/topics.hpp"
#include "symphony/engine/bus.hpp"
#include "symphony/engine/runtime_dir.hpp"
#include "symphony/ui/tree.hpp"
#include "workers.hpp"

namespace symphony::gateway {

namespace {

namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;
using engine::Errc;
using engine::Error;
using Text = std::shared_ptr<const std::string>;

constexpr std::size_t kMaxAcksQueued = 64;    // a browser's unread acks: reading pauses beyond
constexpr std::size_t kMaxErrorsQueued = 16;  // more are dropped (the browser is not reading)
constexpr std::size_t kReadLimit = 1 << 20;   // above the protocol's 256 KiB, to answer why
constexpr auto kSnapshotRetry = std::chrono::seconds(1);

Text text_of(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

std::string random_token() {
  unsigned char bytes[16];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (const unsigned char b : bytes) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

bool is_token(const std::string& s) {
  if (s.size() != 32) return false;
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

struct PreviousUi {
  std::string token;
  std::uint16_t port = 0;
};

std::optional<PreviousUi> read_ui_file(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  const Json j = Json::parse(text.str(), nullptr, false);
  if (!j.is_object()) return std::nullopt;
  PreviousUi p;
  if (auto t = j.find("token"); t != j.end() && t->is_string()) p.token = t->get<std::string>();
  if (auto port = j.find("port"); port != j.end() && port->is_number_unsigned()) {
    const auto value = port->get<std::uint64_t>();
    if (value > 0 && value < 65536) p.port = static_cast<std::uint16_t>(value);
  }
  if (!is_token(p.token)) return std::nullopt;
  return p;
}

engine::Result<void> write_ui_file(const fs::path& file, const std::string& text) {
  fs::path tmp = file;
  tmp += ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return tl::unexpected(Error::from_errno("open " + tmp.string(), errno));
  ::fchmod(fd, 0600);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return tl::unexpected(Error::from_errno("write " + tmp.string(), e));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    return tl::unexpected(Error::from_errno("rename to " + file.string(), errno));
  }
  return {};
}

const ui::Node* find_node(const ui::Node& n, const std::string& id) {
  if (n.id == id) return &n;
  for (const auto& c : n.children) {
    if (const ui::Node* found = find_node(c, id)) return found;
  }
  return nullptr;
}

std::string message(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string ack_refused(std::uint64_t seq, const std::string& why) {
  return message({{"v", 1}, {"kind", "ack"}, {"seq", seq}, {"ok", false}, {"error", why}});
}

Text state_message(const InstanceStatus& s) {
  return text_of(message({{"v", 1},
                          {"kind", "state"},
                          {"extension", s.id},
                          {"state", s.state},
                          {"reason", s.reason},
                          {"instance", s.instance}}));
}

std::string error_message(const std::string& why) {
  return message({{"v", 1}, {"kind", "error"}, {"message", why}});
}

// One extension's tree as the gateway last saw it (under Impl::mutex).
struct Mirror {
  std::optional<ui::Node> tree;
  std::uint64_t seq = 0;
  double t_ms = 0;
  bool valid = false;      // the tree is at `seq`; false while a resync is due
  bool has_topic = false;  // its ui/<id> topic is followed
  bool snapshot_pending = false;
  Clock::time_point last_request{};
  std::string last_failure;  // of the last snapshot request (logged once)
  Text snapshot;             // encoded lazily at `seq`; reset on change
  std::optional<double> latency_ms;
  // Patches that arrived while a snapshot was on its way: those past its seq are applied after
  // it (else a steady stream would gap again at once). Bounded: the newest kMaxHeld frames
  // and kMaxHeldBytes of their text.
  std::deque<std::pair<ui::Frame, std::size_t>> held;
  std::size_t held_bytes = 0;

  void hold(ui::Frame frame, std::size_t bytes);
  void drop_held() {
    held.clear();
    held_bytes = 0;
  }
};

constexpr std::size_t kMaxHeld = 1024;
constexpr std::size_t kMaxHeldBytes = 8 << 20;

void Mirror::hold(ui::Frame frame, std::size_t bytes) {
  held.emplace_back(std::move(frame), bytes);
  held_bytes += bytes;
  while (held.size() > kMaxHeld || held_bytes > kMaxHeldBytes) {
    held_bytes -= held.front().second;
    held.pop_front();
  }
}

}  // namespace

class Session;

struct Gateway::Impl {
  GatewayOptions opt;
  std::unique_ptr<HostLink> link;
  ui::Limits limits;
  std::string token;
  std::uint16_t port = 0;
  fs::path ui_file;

  net::io_context ioc{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};
  net::steady_timer ticker{ioc};

  // io thread only
  std::set<std::shared_ptr<Session>> sessions;
  std::map<std::string, Text> states;  // "<id>/<instance>" -> its last `state` message

  // The mirror, shared by the bus thread, the poll thread, workers and the io thread.
  mutable std::mutex mutex;
  std::map<std::string, Mirror> mirrors;

  // topics thread -> bus thread (ui/<id> topics to follow) and the dashboard
  std::mutex figures_mutex;
  std::set<std::string> ui_topics;
  std::vector<TopicRow> topic_rows;

  std::unique_ptr<Workers> workers;
  std::atomic<bool> stopping{false};
  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool poll_now = false;  // under stop_mutex: a lifecycle event arrived
  std::thread io_thread, bus_thread, topics_thread, poll_thread;

  std::atomic<std::size_t> browsers{0};
  std::atomic<std::uint64_t> frames{0}, frames_applied{0}, frames_invalid{0}, frames_stale{0},
      gaps{0}, snapshot_requests{0}, upgrades_refused{0}, events{0}, events_refused{0};

  // poll thread only
  struct Seen {
    InstanceStatus status;
    Clock::time_point at;
  };
  std::map<std::string, Seen> seen;  // "<id>/<instance>"
  std::map<std::string, double> cpu_percent;
  std::vector<InstanceStatus> instances;
  std::string list_failure;
  Clock::time_point next_dashboard{};

  ~Impl();

  void log(LogLevel level, const std::string& text) const {
    if (opt.log) {
      opt.log(level, text);
      return;
    }
    static const char* const kNames[] = {"debug", "info", "warn", "error"};
    std::fprintf(stderr, "[gateway] [%s] %s\n", kNames[static_cast<int>(level)], text.c_str());
  }

  bool sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(stop_mutex);
    return !stop_cv.wait_for(lock, d, [&] { return stopping.load(); });
  }
  // The poll thread's sleep: also ends early when a lifecycle event asks for a poll.
  bool sleep_until_poll(std::chrono::milliseconds d) {
    std::unique_lock lock(stop_mutex);
    stop_cv.wait_for(lock, d, [&] { return stopping.load() || poll_now; });
    poll_now = false;
    return !stopping.load();
  }

  // ---- the mirror ---------------------------------------------------------------------------

  // With `mutex` held.
  void request_snapshot(const std::string& id, Mirror& m) {
    if (m.snapshot_pending || stopping.load()) return;
    m.snapshot_pending = true;
    m.last_request = Clock::now();
    ++snapshot_requests;
    if (!workers->submit([this, id] { fetch_snapshot(id); })) m.snapshot_pending = false;
  }

  void fetch_snapshot(const std::string& id) {
    auto reply = link->call(id, "symphony.ui.snapshot", "{}", opt.call_timeout);
    engine::Result<ui::Frame> frame = reply ? ui::decode_frame(*reply, limits)
                                            : tl::unexpected(reply.error());
    std::string failure;
    if (frame && frame->kind != ui::Frame::Kind::snapshot) {
      failure = "the reply is a patch, not a snapshot";
    } else if (frame && frame->extension != id) {
      failure = "the reply is for extension '" + frame->extension + "'";
    } else if (!frame) {
      failure = frame.error().message;
    }
    bool changed = false;
    {
      std::lock_guard lock(mutex);
      auto it = mirrors.find(id);
      if (it == mirrors.end()) return;
      Mirror& m = it->second;
      m.snapshot_pending = false;
      if (!failure.empty()) {
        if (failure != m.last_failure) {
          log(LogLevel::warn, "ui/" + id + ": snapshot request failed: " + failure);
        }
        m.last_failure = failure;
        return;
      }
      m.last_failure.clear();
      // Frames at or below the snapshot's seq are in it; a mirror already past it stays.
      if (!m.valid || frame->seq >= m.seq) {
        m.tree = std::move(frame->tree);
        m.seq = frame->seq;
        m.t_ms = frame->t_ms;
        m.valid = true;
        m.snapshot.reset();
        changed = true;
        replay_held(id, m);
      }
      m.drop_held();
    }
    if (changed) broadcast_snapshot(id);
  }

  // With `mutex` held, right after a snapshot: the held patches past it, in order.
  void replay_held(const std::string& id, Mirror& m) {
    for (const auto& [f, bytes] : m.held) {
      if (f.seq <= m.seq) continue;
      if (f.base != m.seq) {
        ++gaps;
        m.valid = false;
        break;
      }
      if (auto applied = ui::apply(*m.tree, f.ops, limits); !applied) {
        ++frames_invalid;
        log(LogLevel::warn, "ui/" + id + ": patch " + std::to_string(f.seq) +
                                " refused, dropped: " + applied.error().message + "; resync");
        m.valid = false;
        break;
      }
      ++frames_applied;
      m.seq = f.seq;
      m.t_ms = f.t_ms;
    }
    m.drop_held();
    if (!m.valid) request_snapshot(id, m);
  }

  void on_frame(const std::string& id, std::string_view text) {
    ++frames;
    auto frame = ui::decode_frame(text, limits);
    std::string invalid;
    if (!frame) {
      invalid = frame.error().message;
    } else if (frame->extension != id) {
      invalid = "the frame names extension '" + frame->extension + "'";
    }
    std::unique_lock lock(mutex);
    Mirror& m = mirrors[id];
    m.has_topic = true;
    if (!invalid.empty()) {
      ++frames_invalid;
      log(LogLevel::warn, "ui/" + id + ": invalid frame dropped (" + std::to_string(text.size()) +
                              " bytes): " + invalid + "; resync");
      m.valid = false;
      request_snapshot(id, m);
      return;
    }
    m.latency_ms = ui::wall_clock_ms() - frame->t_ms;
    if (frame->kind == ui::Frame::Kind::snapshot) {  // always resets
      m.tree = std::move(frame->tree);
      m.seq = frame->seq;
      m.t_ms = frame->t_ms;
      m.valid = true;
      m.snapshot.reset();
      m.drop_held();
      lock.unlock();
      broadcast_snapshot(id);
      return;
    }
    if (!m.valid || !m.tree) {  // waiting for a snapshot: keep it for after
      m.hold(std::move(*frame), text.size());
      request_snapshot(id, m);
      return;
    }
    if (frame->seq <= m.seq) {
      ++frames_stale;
      return;
    }
    if (frame->base != m.seq) {
      ++gaps;
      log(LogLevel::info, "ui/" + id + ": gap (mirror at seq " + std::to_string(m.seq) +
                              ", patch " + std::to_string(frame->seq) + " on base " +
                              std::to_string(frame->base) + "): resync");
      m.valid = false;
      m.hold(std::move(*frame), text.size());
      request_snapshot(id, m);
      return;
    }
    if (auto applied = ui::apply(*m.tree, frame->ops, limits); !applied) {
      ++frames_invalid;
      log(LogLevel::warn, "ui/" + id + ": patch " + std::to_string(frame->seq) +
                              " refused, dropped: " + applied.error().message + "; resync");
      m.valid = false;
      request_snapshot(id, m);
      return;
    }
    ++frames_applied;
    m.seq = frame->seq;
    m.t_ms = frame->t_ms;
    m.snapshot.reset();
    const std::uint64_t base = frame->base, seq = frame->seq;
    lock.unlock();
    broadcast_patch(id, base, seq, text_of(ui::encode(*frame)));
  }

  // The latest snapshot message of `id` and its seq (io thread; encoded once per change).
  std::optional<std::pair<Text, std::uint64_t>> snapshot_of(const std::string& id) {
    std::lock_guard lock(mutex);
    auto it = mirrors.find(id);
    if (it == mirrors.end() || !it->second.valid || !it->second.tree) return std::nullopt;
    Mirror& m = it->second;
    if (!m.snapshot) {
      ui::Frame f;
      f.kind = ui::Frame::Kind::snapshot;
      f.extension = id;
      f.seq = m.seq;
      f.t_ms = m.t_ms;
      f.tree = m.tree;
      m.snapshot = text_of(ui::encode(f));
    }
    return std::make_pair(m.snapshot, m.seq);
  }

  std::vector<std::string> extensions_with_ui() const {
    std::vector<std::string> ids;
    std::lock_guard lock(mutex);
    for (const auto& [id, m] : mirrors) {
      if (m.valid && m.tree) ids.push_back(id);
    }
    return ids;
  }

  // ---- to browsers (posted to the io thread) --------------------------------------------------

  void broadcast_snapshot(const std::string& id);
  void broadcast_patch(const std::string& id, std::uint64_t base, std::uint64_t seq, Text text);
  void broadcast_state(const std::string& key, Text text);
  void broadcast_gone(const std::string& id);

  // ---- threads ---------------------------------------------------------------------------------

  void start_threads();
  void accept();
  void tick();
  void bus_loop();
  void topics_loop();
  void poll_loop();
  void poll_host();
  void refresh_dashboard();
  void handle_event(const std::shared_ptr<Session>& session, std::uint64_t seq,
                    const std::string& id, const std::string& node, const std::string& event,
                    Json payload);
  void post_ack(const std::weak_ptr<Session>& session, std::string text);
};

// ---- a browser ----------------------------------------------------------------------------------

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Gateway::Impl& gw, beast::tcp_stream stream, std::string peer)
      : gw_(gw), ws_(std::move(stream)), peer_(std::move(peer)) {}

  void start(http::request<http::string_body> req) {
    request_ = std::move(req);
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout{std::chrono::seconds(30),
                                                   websocket::stream_base::none(), false});
    ws_.read_message_max(kReadLimit);
    ws_.auto_fragment(false);
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::server, "symphony-gateway");
    }));
    ws_.control_callback([this](websocket::frame_type, beast::string_view) {
      last_rx_ = Clock::now();
    });
    ws_.async_accept(request_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail("handshake", ec);
      self->attach();
    });
  }

  // -- from the gateway (io thread) --

  void mark_stale(const std::string& id) {
    if (!attached_) return;
    gone_.erase(id);
    stale_.insert(id);
    kick();
  }

  void offer_patch(const std::string& id, std::uint64_t base, std::uint64_t seq, const Text& text) {
    if (!attached_) return;
    if (stale_.count(id) != 0) {  // its next snapshot will have this one too
      ++stats_.coalesced;
      return;
    }
    const auto sent = sent_seq_.find(id);
    if (sent == sent_seq_.end()) {  // this browser has no tree of it yet
      stale_.insert(id);
      kick();
      return;
    }
    if (seq <= sent->second) return;  // the snapshot it got already had it
    if (writing_ || base != sent->second) {
      ++stats_.coalesced;
      stale_.insert(id);
      kick();
      return;
    }
    sent->second = seq;
    ++stats_.patches;
    write(text);
  }

  void queue_state(const std::string& key, const Text& text) {
    if (!attached_) return;
    auto [it, fresh] = states_.try_emplace(key, text);
    if (!fresh) {
      queued_bytes_ -= it->second->size();
      it->second = text;
    }
    queued_bytes_ += text->size();
    kick();
  }

  void queue_gone(const std::string& id) {
    if (!attached_) return;
    stale_.erase(id);
    sent_seq_.erase(id);
    for (auto it = states_.begin(); it != states_.end();) {
      if (it->first.compare(0, id.size() + 1, id + "/") == 0) {
        queued_bytes_ -= it->second->size();
        it = states_.erase(it);
      } else {
        ++it;
      }
    }
    gone_.insert(id);
    kick();
  }

  void queue_ack(std::string text) {
    if (events_in_flight_ > 0) --events_in_flight_;
    push_ack(std::move(text));
    kick();
    read();  // reading may have paused on a full ack queue
  }

  // Heartbeat and liveness, every ping_period.
  void tick(Clock::time_point now) {
    if (!attached_ || closed_) return;
    if (now - last_rx_ > gw_.opt.pong_timeout) {
      gw_.log(LogLevel::info, "browser " + peer_ + " silent for " +
                                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                     now - last_rx_)
                                                     .count()) +
                                  " s: dropped");
      close_now();
      return;
    }
    if (!ping_in_flight_) {
      ping_in_flight_ = true;
      ws_.async_ping({}, [self = shared_from_this()](beast::error_code ec) {
        self->ping_in_flight_ = false;
        if (ec) return self->fail("ping", ec);
        self->kick();
      });
    }
    heartbeat_ = true;
    kick();
  }

  void close_now() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).socket().close(ec);
    gw_.sessions.erase(shared_from_this());
    gw_.browsers = gw_.sessions.size();
  }

  const SessionStats& stats() {
    stats_.pending_bytes = (writing_ && out_ ? out_->size() : 0) + queued_bytes_;
    return stats_;
  }

 private:
  void attach() {
    attached_ = true;
    last_rx_ = Clock::now();
    hello_ = true;
    for (const auto& [key, text] : gw_.states) queue_state(key, text);
    for (const auto& id : gw_.extensions_with_ui()) stale_.insert(id);
    gw_.log(LogLevel::info, "browser " + peer_ + " attached (" +
                                std::to_string(gw_.sessions.size()) + " now)");
    kick();
    read();
  }

  void fail(const char* what, beast::error_code ec) {
    if (!closed_ && ec != net::error::operation_aborted && ec != websocket::error::closed) {
      gw_.log(LogLevel::debug, "browser " + peer_ + ": " + what + ": " + ec.message());
    }
    close_now();
  }

  void push_ack(std::string text) {
    queued_bytes_ += text.size();
    acks_.push_back(std::move(text));
  }

  void push_error(std::string text) {
    if (errors_.size() >= kMaxErrorsQueued) return;
    queued_bytes_ += text.size();
    errors_.push_back(std::move(text));
  }

  // The next message to write, in order: hello, errors, states, acks, snapshots of stale
  // extensions (their latest tree), gone, heartbeat.
  Text next() {
    if (hello_) {
      hello_ = false;
      return text_of(message(
          {{"v", 1}, {"kind", "hello"}, {"gateway", gw_.opt.id}, {"bus", gw_.opt.bus}}));
    }
    if (!errors_.empty()) {
      Text t = text_of(std::move(errors_.front()));
      errors_.pop_front();
      queued_bytes_ -= t->size();
      return t;
    }
    if (!states_.empty()) {
      Text t = std::move(states_.begin()->second);
      states_.erase(states_.begin());
      queued_bytes_ -= t->size();
      return t;
    }
    if (!acks_.empty()) {
      Text t = text_of(std::move(acks_.front()));
      acks_.pop_front();
      queued_bytes_ -= t->size();
      return t;
    }
    while (!stale_.empty()) {
      const std::string id = *stale_.begin();
      stale_.erase(stale_.begin());
      if (auto snap = gw_.snapshot_of(id)) {
        sent_seq_[id] = snap->second;
        ++stats_.snapshots;
        return snap->first;
      }
    }
    if (!gone_.empty()) {
      const std::string id = *gone_.begin();
      gone_.erase(gone_.begin());
      return text_of(message({{"v", 1}, {"kind", "gone"}, {"extension", id}}));
    }
    if (heartbeat_) {
      heartbeat_ = false;
      return text_of(R"({"v":1,"kind":"heartbeat"})");
    }
    return nullptr;
  }

  void kick() {
    if (writing_ || closed_ || !attached_) return;
    Text t = next();
    if (t) {
      write(std::move(t));
    } else if (close_after_ && !ping_in_flight_ && !closing_) {
      closing_ = true;
      ws_.async_close(websocket::close_code::protocol_error,
                      [self = shared_from_this()](beast::error_code) { self->close_now(); });
    }
  }

  void write(Text t) {
    writing_ = true;
    out_ = std::move(t);
    ++stats_.messages;
    stats_.peak_pending_bytes = std::max(stats_.peak_pending_bytes, out_->size() + queued_bytes_);
    ws_.text(true);
    ws_.async_write(net::buffer(*out_),
                    [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                      self->writing_ = false;
                      self->out_.reset();
                      if (ec) return self->fail("write", ec);
                      self->stats_.bytes += n;
                      self->kick();
                    });
  }

  void read() {
    if (reading_ || closed_ || closing_ || acks_.size() >= kMaxAcksQueued) return;
    reading_ = true;
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->reading_ = false;
      if (ec) return self->fail("read", ec);
      self->last_rx_ = Clock::now();
      std::string text = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      self->on_message(text);
      self->read();
    });
  }

  void refuse(std::uint64_t seq, const std::string& why) {
    ++gw_.events_refused;
    push_ack(ack_refused(seq, why));
    kick();
  }

  void on_message(const std::string& text) {
    const std::size_t limit = gw_.limits.max_message_bytes;
    if (text.size() > limit) {
      // Still read it to name the event in the refusal (bounded by kReadLimit).
      const Json j = Json::parse(text, nullptr, false);
      const std::string why = "message of " + std::to_string(text.size()) +
                              " bytes exceeds the limit of " + std::to_string(limit) + " bytes";
      if (j.is_object() && j.contains("seq") && j["seq"].is_number_unsigned()) {
        refuse(j["seq"].get<std::uint64_t>(), why);
      } else {
        push_error(error_message(why));
        kick();
      }
      return;
    }
    auto parsed = ui::parse_json(text, gw_.limits);
    if (!parsed) {
      push_error(error_message("message is not valid JSON: " + parsed.error().message));
      return kick();
    }
    const Json& j = *parsed;
    if (!j.is_object()) {
      push_error(error_message("a message must be a JSON object"));
      return kick();
    }
    const auto v = j.find("v");
    if (v == j.end()) {
      push_error(error_message("missing 'v' (protocol version 1)"));
      return kick();
    }
    if (!v->is_number_integer() || v->get<std::int64_t>() != ui::kProtocolVersion) {
      push_error(error_message("unsupported protocol version " + v->dump() +
                               " (this gateway speaks 1); closing"));
      close_after_ = true;
      return kick();
    }
    const auto kind = j.find("kind");
    if (kind == j.end() || !kind->is_string()) {
      push_error(error_message("missing 'kind' (a string)"));
      return kick();
    }
    const std::string k = kind->get<std::string>();
    if (k == "event") return on_event(j);
    if (k == "resync") return on_resync(j);
    push_error(error_message("unknown message kind '" + k + "'"));
    kick();
  }

  void on_resync(const Json& j) {
    const auto ext = j.find("extension");
    if (ext == j.end()) {
      for (const auto& id : gw_.extensions_with_ui()) stale_.insert(id);
      return kick();
    }
    if (!ext->is_string()) {
      push_error(error_message("resync: 'extension' must be a string"));
      return kick();
    }
    const std::string id = ext->get<std::string>();
    const auto all = gw_.extensions_with_ui();
    if (std::find(all.begin(), all.end(), id) == all.end()) {
      push_error(error_message("resync: unknown extension '" + id + "' (or it has no UI)"));
      return kick();
    }
    stale_.insert(id);
    kick();
  }

  void on_event(const Json& j) {
    const auto seq_it = j.find("seq");
    if (seq_it == j.end() || !seq_it->is_number_unsigned()) {
      ++gw_.events_refused;
      push_error(error_message("event: 'seq' must be a non-negative integer"));
      return kick();
    }
    const std::uint64_t seq = seq_it->get<std::uint64_t>();
    for (const char* field : {"extension", "node", "event"}) {
      const auto it = j.find(field);
      if (it == j.end()) return refuse(seq, std::string("missing '") + field + "'");
      if (!it->is_string()) return refuse(seq, std::string("'") + field + "' must be a string");
    }
    Json payload = Json::object();
    if (const auto p = j.find("payload"); p != j.end()) {
      if (!p->is_object()) return refuse(seq, "'payload' must be an object");
      payload = *p;
    }
    for (const auto& [key, value] : j.items()) {
      if (key != "v" && key != "kind" && key != "extension" && key != "node" && key != "event" &&
          key != "payload" && key != "seq") {
        return refuse(seq, "unknown field '" + key + "'");
      }
    }
    const std::string ext = j["extension"].get<std::string>();
    const std::string node = j["node"].get<std::string>();
    const std::string event = j["event"].get<std::string>();
    std::string why;  // decided under the mirror's lock, refused after it (refuse() writes)
    {
      std::lock_guard lock(gw_.mutex);
      const auto it = gw_.mirrors.find(ext);
      const ui::Node* n = nullptr;
      if (it == gw_.mirrors.end()) {
        why = "unknown extension '" + ext + "'";
      } else if (!it->second.tree) {
        why = "extension '" + ext + "' has no UI";
      } else if ((n = find_node(*it->second.tree, node)) == nullptr) {
        why = "extension '" + ext + "' has no node '" + node + "'";
      } else if (std::find(n->events.begin(), n->events.end(), event) == n->events.end()) {
        why = "node '" + node + "' has no event '" + event + "'";
      }
    }
    if (!why.empty()) return refuse(seq, why);
    if (events_in_flight_ >= gw_.opt.max_events_in_flight) {
      return refuse(seq, "too many events in flight (" +
                             std::to_string(gw_.opt.max_events_in_flight) + "): wait for acks");
    }
    ++events_in_flight_;
    gw_.handle_event(shared_from_this(), seq, ext, node, event, std::move(payload));
  }

  Gateway::Impl& gw_;
  websocket::stream<beast::tcp_stream> ws_;
  std::string peer_;
  http::request<http::string_body> request_;  // the upgrade's, alive during the handshake
  beast::flat_buffer buffer_;
  Text out_;
  bool attached_ = false, writing_ = false, reading_ = false, closed_ = false;
  bool close_after_ = false, closing_ = false, ping_in_flight_ = false;
  bool hello_ = false, heartbeat_ = false;
  std::deque<std::string> errors_, acks_;
  std::map<std::string, Text> states_;
  std::set<std::string> stale_, gone_;
  std::map<std::string, std::uint64_t> sent_seq_;
  std::size_t queued_bytes_ = 0;
  std::size_t events_in_flight_ = 0;
  Clock::time_point last_rx_ = Clock::now();
  SessionStats stats_;
};

// ---- HTTP ----------------------------------------------------------------------------------------

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(Gateway::Impl& gw, tcp::socket socket) : gw_(gw), stream_(std::move(socket)) {
    beast::error_code ec;
    const auto remote = stream_.socket().remote_endpoint(ec);
    peer_ = ec ? "?" : remote.address().to_string() + ":" + std::to_string(remote.port());
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(64 * 1024);
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->close();
                       self->on_request(self->parser_->release());
                     });
  }

 private:
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  template <class Body>
  void send(http::response<Body>&& res) {
    auto sp = std::make_shared<http::response<Body>>(std::move(res));
    held_ = sp;
    http::async_write(stream_, *sp,
                      [self = shared_from_this(), eof = sp->need_eof()](beast::error_code ec,
                                                                        std::size_t) {
                        self->held_.reset();
                        if (ec || eof) return self->close();
                        self->read();
                      });
  }

  void send_text(const http::request<http::string_body>& req, http::status status,
                 std::string body, bool close_after = false) {
    http::response<http::string_body> res{status, req.version()};
    res.set(http::field::server, "symphony-gateway");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive() && !close_after);
    res.body() = req.method() == http::verb::head ? std::string() : std::move(body);
    res.prepare_payload();
    send(std::move(res));
  }

  void on_request(http::request<http::string_body> req) {
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find_first_of("?#"));
    if (websocket::is_upgrade(req)) return upgrade(std::move(req), path);
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      return send_text(req, http::status::method_not_allowed, "GET or HEAD only\n");
    }
    if (path == "/ws") {
      return send_text(req, http::status::upgrade_required, "/ws is a WebSocket endpoint\n");
    }
    const fs::path& root = gw_.opt.static_dir;
    std::error_code ec;
    const bool built = !root.empty() && fs::is_regular_file(root / "index.html", ec);
    if (!built) {
      if (path == "/" || path == "/index.html") {
        return send_text(
            req, http::status::service_unavailable,
            "The Symphony UI is not built: no " +
                (root.empty() ? std::string("--static directory was given")
                              : (root / "index.html").string()) +
                ".\nBuild it with `npm ci && npm run build` in the repository's ui/ folder "
                "(it writes ui/dist), start the gateway with --static <repo>/ui/dist, and "
                "reload this page.\n");
      }
      return send_text(req, http::status::not_found, "not found\n");
    }
    const auto file = detail::resolve_static(root, target);
    if (!file || !fs::is_regular_file(*file, ec)) {
      return send_text(req, http::status::not_found, "not found\n");
    }
    http::file_body::value_type body;
    beast::error_code open_ec;
    body.open(file->c_str(), beast::file_mode::scan, open_ec);
    if (open_ec) return send_text(req, http::status::not_found, "not found\n");
    const auto size = body.size();
    const std::string type = detail::content_type(*file);
    const bool html = file->extension() == ".html";
    auto headers = [&](auto& res) {
      res.set(http::field::server, "symphony-gateway");
      res.set(http::field::content_type, type);
      res.set("X-Content-Type-Options", "nosniff");
      res.set(http::field::cache_control, html ? "no-cache" : "max-age=3600");
      res.content_length(size);
      res.keep_alive(req.keep_alive());
    };
    if (req.method() == http::verb::head) {
      http::response<http::empty_body> res{http::status::ok, req.version()};
      headers(res);
      return send(std::move(res));
    }
    http::response<http::file_body> res{std::piecewise_construct, std::make_tuple(std::move(body)),
                                        std::make_tuple(http::status::ok, req.version())};
    headers(res);
    send(std::move(res));
  }

  void upgrade(http::request<http::string_body> req, const std::string& path) {
    const std::string port = std::to_string(gw_.port);
    std::string why;
    http::status status = http::status::forbidden;
    const auto token = detail::query_param(req.target(), "token");
    const std::string origin(req[http::field::origin]);
    const std::string host(req[http::field::host]);
    if (path != "/ws") {
      why = "no WebSocket at " + path;
      status = http::status::not_found;
    } else if (!token || token->empty() || !detail::equal_constant_time(*token, gw_.token)) {
      why = token && !token->empty() ? "wrong token" : "missing token";
      status = http::status::unauthorized;
    } else if (origin != "http://127.0.0.1:" + port && origin != "http://localhost:" + port) {
      why = origin.empty() ? "no Origin header" : "Origin '" + origin + "' is not this gateway's";
    } else if (host != "127.0.0.1:" + port && host != "localhost:" + port) {
      why = "Host '" + host + "' is not this gateway's (DNS rebinding?)";
    } else if (gw_.sessions.size() >= gw_.opt.max_sessions) {
      why = "too many browsers (" + std::to_string(gw_.opt.max_sessions) + ")";
      status = http::status::service_unavailable;
    }
    if (!why.empty()) {
      ++gw_.upgrades_refused;
      gw_.log(LogLevel::warn, "refused a WebSocket upgrade from " + peer_ + ": " + why);
      return send_text(req, status, why + "\n", true);
    }
    if (gw_.opt.socket_send_buffer > 0) {
      beast::error_code ec;
      stream_.socket().set_option(net::socket_base::send_buffer_size(gw_.opt.socket_send_buffer),
                                  ec);
    }
    auto session = std::make_shared<Session>(gw_, std::move(stream_), peer_);
    gw_.sessions.insert(session);
    gw_.browsers = gw_.sessions.size();
    session->start(std::move(req));
  }

  Gateway::Impl& gw_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<void> held_;
  std::string peer_;
};

// ---- Impl: broadcasting -----------------------------------------------------------------------

void Gateway::Impl::broadcast_snapshot(const std::string& id) {
  net::post(ioc, [this, id] {
    for (const auto& s : std::vector(sessions.begin(), sessions.end())) s->mark_stale(id);
  });
}

void Gateway::Impl::broadcast_patch(const std::string& id, std::uint64_t base, std::uint64_t seq,
                                    Text text) {
  net::post(ioc, [this, id, base, seq, text = std::move(text)] {
    for (const auto& s : std::vector(sessions.begin(), sessions.end())) {
      s->offer_patch(id, base, seq, text);
    }
  });
}

void Gateway::Impl::broadcast_state(const std::string& key, Text text) {
  net::post(ioc, [this, key, text = std::move(text)] {
    states[key] = text;
    for (const auto& s : std::vector(sessions.begin(), sessions.end())) s->queue_state(key, text);
  });
}

void Gateway::Impl::broadcast_gone(const std::string& id) {
  net::post(ioc, [this, id] {
    for (auto it = states.begin(); it != states.end();) {
      it = it->first.compare(0, id.size() + 1, id + "/") == 0 ? states.erase(it) : std::next(it);
    }
    for (const auto& s : std::vector(sessions.begin(), sessions.end())) s->queue_gone(id);
  });
}

void Gateway::Impl::post_ack(const std::weak_ptr<Session>& session, std::string text) {
  net::post(ioc, [session, text = std::move(text)]() mutable {
    if (auto s = session.lock()) s->queue_ack(std::move(text));
  });
}

void Gateway::Impl::handle_event(const std::shared_ptr<Session>& session, std::uint64_t seq,
                                 const std::string& id, const std::string& node,
                                 const std::string& event, Json payload) {
  std::weak_ptr<Session> weak = session;
  ++events;
  std::function<void()> task;
  if (id == opt.id) {  // the dashboard's own buttons
    task = [this, weak, seq, node] {
      const std::string prefix = kRestartPrefix;
      if (node.compare(0, prefix.size(), prefix) != 0) {
        return post_ack(weak, ack_refused(seq, "node '" + node + "' does nothing"));
      }
      const std::string target = node.substr(prefix.size());
      log(LogLevel::info, "restart of '" + target + "' asked from a browser");
      auto done = link->restart(target);
      std::uint64_t tree_seq = 0;
      {
        std::lock_guard lock(mutex);
        if (auto it = mirrors.find(opt.id); it != mirrors.end()) tree_seq = it->second.seq;
      }
      post_ack(weak, done ? message({{"v", 1}, {"kind", "ack"}, {"seq", seq}, {"ok", true},
                                     {"tree_seq", tree_seq}})
                          : ack_refused(seq, "restart of '" + target +
                                                 "' failed: " + done.error().message));
    };
  } else {
    task = [this, weak, seq, id, node, event, payload = std::move(payload)] {
      const Json body = {{"node", node}, {"event", event}, {"payload", payload}, {"seq", seq}};
      auto reply = link->call(id, "symphony.ui.event", body.dump(), opt.call_timeout);
      if (!reply) return post_ack(weak, ack_refused(seq, reply.error().message));
      const Json r = Json::parse(*reply, nullptr, false);
      Json ack = {{"v", 1}, {"kind", "ack"}, {"seq", seq}, {"ok", true}};
      if (r.is_object() && r.contains("tree_seq") && r["tree_seq"].is_number_unsigned()) {
        ack["tree_seq"] = r["tree_seq"];
      } else if (!r.is_object() || r.value("handled", false) != true) {
        ack["ok"] = false;
        ack["error"] = "unexpected reply from '" + id + "': " + reply->substr(0, 200);
      }
      post_ack(weak, message(ack));
    };
  }
  if (!workers->submit(std::move(task))) {
    post_ack(weak, ack_refused(seq, "the gateway is busy: too many requests queued"));
  }
}

// ---- Impl: io thread ----------------------------------------------------------------------------

void Gateway::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted) return;
      log(LogLevel::warn, "accept: " + ec.message());
    } else {
      // Small frames (a patch, an ack) must leave at once: with Nagle's algorithm a write that
      // follows an unacknowledged one waits for the browser's delayed ACK (40 ms on Linux).
      beast::error_code nodelay_error;
      socket.set_option(tcp::no_delay(true), nodelay_error);
      std::make_shared<HttpConnection>(*this, std::move(socket))->read();
    }
    accept();
  });
}

void Gateway::Impl::tick() {
  ticker.expires_after(opt.ping_period);
  ticker.async_wait([this](beast::error_code ec) {
    if (ec) return;
    const auto now = Clock::now();
    for (const auto& s : std::vector(sessions.begin(), sessions.end())) s->tick(now);
    tick();
  });
}

// ---- Impl: the bus thread ----------------------------------------------------------------------

void Gateway::Impl::bus_loop() {
  ::pthread_setname_np(::pthread_self(), "sym-gw-bus");
  auto bus = Bus::open({.name = opt.bus, .runtime_dir = {}});
  if (!bus) {
    log(LogLevel::error, "cannot open bus '" + opt.bus + "': " + bus.error().message +
                             " (no extension UI will be shown)");
    return;
  }
  struct Followed {
    std::string id;
    engine::RawSubscriber subscriber;
    int fd = -1;
  };
  std::vector<Followed> followed;
  std::set<std::string> refused;  // topics observe() refused, logged once
  while (!stopping.load()) {
    std::vector<std::string> fresh;
    {
      std::lock_guard lock(figures_mutex);
      fresh.assign(ui_topics.begin(), ui_topics.end());
      ui_topics.clear();
    }
    for (const std::string& name : fresh) {
      const std::string id = name.substr(3);
      const bool known = std::any_of(followed.begin(), followed.end(),
                                     [&](const Followed& f) { return f.id == id; });
      if (known || refused.count(name) != 0) continue;
      cli::ObserveOptions o;
      o.topic = name;
      o.depth = 64;
      o.history = true;
      o.wait = std::chrono::milliseconds(0);
      auto sub = cli::observe(*bus, o);
      if (!sub) {
        refused.insert(name);
        log(LogLevel::warn, "cannot follow " + name + ": " + sub.error().message);
        continue;
      }
      auto fd = sub->notify_fd();
      log(LogLevel::info, "following " + name);
      followed.push_back({id, std::move(*sub), fd ? *fd : -1});
      std::lock_guard lock(mutex);
      Mirror& m = mirrors[id];
      m.has_topic = true;
      request_snapshot(id, m);  // a new subscription starts with a snapshot
    }
    std::vector<pollfd> fds;
    for (const auto& f : followed) {
      if (f.fd >= 0) fds.push_back({f.fd, POLLIN, 0});
    }
    ::poll(fds.data(), fds.size(), 50);
    for (auto& f : followed) {
      for (int i = 0; i < 256; ++i) {
        const engine::Frame frame = f.subscriber.try_take();
        if (!frame.ok()) break;
        on_frame(f.id, std::string_view(static_cast<const char*>(static_cast<const void*>(frame.data)),
                                        frame.size));
      }
      f.subscriber.release();
    }
  }
}

// Discovery on its own thread (and its own Bus): Bus::topics() maps every topic's segment,
// which takes milliseconds — never on the thread that reads frames.
void Gateway::Impl::topics_loop() {
  ::pthread_setname_np(::pthread_self(), "sym-gw-topics");
  auto bus = Bus::open({.name = opt.bus, .runtime_dir = {}});
  if (!bus) return;  // bus_loop says why
  struct Count {
    std::uint64_t published = 0, dropped = 0;
  };
  std::map<std::string, Count> before;
  Clock::time_point before_at{};
  std::set<std::string> seen_ui;
  do {
    auto topics = bus->topics();
    if (!topics) continue;
    const auto now = Clock::now();
    {
      std::lock_guard lock(figures_mutex);
      for (const TopicInfo& t : *topics) {
        if (t.name.rfind("ui/", 0) != 0 || t.name.size() <= 3 || t.name.substr(3) == opt.id) {
          continue;
        }
        if (seen_ui.insert(t.name).second) ui_topics.insert(t.name);
      }
    }
    // The dashboard's topic table: rates from the counters' differences over >= 1 s.
    if (before_at != Clock::time_point{} && now - before_at < std::chrono::seconds(1)) continue;
    const double dt =
        before_at == Clock::time_point{} ? 0 : std::chrono::duration<double>(now - before_at).count();
    std::map<std::string, Count> current;
    std::vector<TopicRow> rows;
    for (const TopicInfo& t : *topics) {
      TopicRow row;
      row.name = t.name;
      row.transport = engine::to_string(t.transport);
      row.publishers = t.publishers.size();
      row.subscribers = t.subscribers.size();
      for (const auto& p : t.publishers) row.published += p.published;
      for (const auto& sub : t.subscribers) row.dropped += sub.dropped;
      current[t.name] = {row.published, row.dropped};
      if (auto b = before.find(t.name); b != before.end() && dt > 0) {
        row.published_per_s =
            static_cast<double>(row.published - std::min(row.published, b->second.published)) / dt;
        row.dropped_per_s =
            static_cast<double>(row.dropped - std::min(row.dropped, b->second.dropped)) / dt;
      }
      if (t.name.rfind("ui/", 0) == 0) {
        std::lock_guard lock(mutex);
        if (auto m = mirrors.find(t.name.substr(3)); m != mirrors.end()) {
          row.frame_latency_ms = m->second.latency_ms;
        }
      }
      rows.push_back(std::move(row));
    }
    before = std::move(current);
    before_at = now;
    std::lock_guard lock(figures_mutex);
    topic_rows = std::move(rows);
  } while (sleep_for(opt.topic_period));
}

// ---- Impl: the poll thread ---------------------------------------------------------------------

void Gateway::Impl::poll_loop() {
  ::pthread_setname_np(::pthread_self(), "sym-gw-poll");
  do {
    poll_host();
    if (Clock::now() >= next_dashboard) {
      next_dashboard = Clock::now() + opt.dashboard_period;
      refresh_dashboard();
    }
  } while (sleep_until_poll(opt.poll_period));
}

void Gateway::lifecycle_changed(const InstanceStatus& s) {
  Impl& gw = *impl_;
  gw.broadcast_state(s.id + "/" + std::to_string(s.instance), state_message(s));
  {
    std::lock_guard lock(gw.stop_mutex);
    gw.poll_now = true;
  }
  gw.stop_cv.notify_all();
}

void Gateway::Impl::poll_host() {
  auto list = link->list();
  if (!list) {
    if (list.error().message != list_failure) {
      log(LogLevel::warn, "ext.list failed: " + list.error().message);
    }
    list_failure = list.error().message;
    return;
  }
  if (!list_failure.empty() || instances.empty()) {
    log(LogLevel::info, "ext.list: " + std::to_string(list->size()) + " instance(s)");
  }
  list_failure.clear();
  const auto now = Clock::now();
  std::set<std::string> ids, restarted;
  std::map<std::string, double> cpu;
  for (const InstanceStatus& s : *list) {
    ids.insert(s.id);
    const std::string key = s.id + "/" + std::to_string(s.instance);
    const auto prev = seen.find(key);
    if (prev == seen.end() || prev->second.status.state != s.state ||
        prev->second.status.reason != s.reason || prev->second.status.pid != s.pid) {
      broadcast_state(key, state_message(s));
    }
    if (prev != seen.end()) {
      const auto& p = prev->second.status;
      if (s.instance == 0 && p.pid != 0 && s.pid != 0 && p.pid != s.pid) restarted.insert(s.id);
      const double dt_ns = std::chrono::duration<double, std::nano>(now - prev->second.at).count();
      if (p.pid == s.pid && s.pid > 0 && dt_ns > 0) {
        cpu[key] = static_cast<double>(std::max<std::int64_t>(0, s.cpu_ns - p.cpu_ns)) / dt_ns * 100.0;
      }
    }
    seen[key] = {s, now};
  }
  // Gone: every instance of an id no longer listed.
  std::set<std::string> gone;
  for (auto it = seen.begin(); it != seen.end();) {
    const std::string id = it->first.substr(0, it->first.rfind('/'));
    if (ids.count(id) == 0) {
      gone.insert(id);
      it = seen.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& id : gone) {
    log(LogLevel::info, "extension '" + id + "' is gone");
    broadcast_gone(id);
  }
  {
    std::lock_guard lock(mutex);
    for (const auto& id : gone) {
      if (id != opt.id) mirrors.erase(id);
    }
    for (const auto& id : restarted) {
      auto it = mirrors.find(id);
      if (it == mirrors.end() || !it->second.has_topic) continue;
      log(LogLevel::info, "extension '" + id + "' restarted: resync");
      it->second.valid = false;
      request_snapshot(id, it->second);
    }
    // Retry snapshots that failed (the extension was starting, say), once a second at most.
    for (auto& [id, m] : mirrors) {
      if (!m.has_topic || m.valid || m.snapshot_pending || now - m.last_request < kSnapshotRetry) {
        continue;
      }
      const bool healthy = std::any_of(list->begin(), list->end(), [&](const InstanceStatus& s) {
        return s.id == id && s.state == "HEALTHY";
      });
      if (healthy) request_snapshot(id, m);
    }
  }
  cpu_percent = std::move(cpu);
  instances = std::move(*list);
}

void Gateway::Impl::refresh_dashboard() {
  DashboardInput in;
  in.bus = opt.bus;
  in.self_id = opt.id;
  for (const auto& s : instances) {
    InstanceRow row{s, std::nullopt};
    if (auto c = cpu_percent.find(s.id + "/" + std::to_string(s.instance));
        c != cpu_percent.end()) {
      row.cpu_percent = c->second;
    }
    in.instances.push_back(std::move(row));
  }
  {
    std::lock_guard lock(figures_mutex);
    in.topics = topic_rows;
  }
  in.browsers = browsers.load();
  ui::Node tree = build_dashboard(in);
  if (auto ok = ui::validate(tree, limits); !ok) {
    log(LogLevel::error, "dashboard tree refused: " + ok.error().message);
    return;
  }
  std::unique_lock lock(mutex);
  Mirror& m = mirrors[opt.id];
  if (!m.tree) {
    m.tree = std::move(tree);
    m.seq = 1;
    m.t_ms = ui::wall_clock_ms();
    m.valid = true;
    m.snapshot.reset();
    lock.unlock();
    broadcast_snapshot(opt.id);
    return;
  }
  ui::Patch patch = ui::diff(*m.tree, tree);
  if (patch.empty()) return;
  ui::Frame f;
  f.kind = ui::Frame::Kind::patch;
  f.extension = opt.id;
  f.seq = m.seq + 1;
  f.base = m.seq;
  f.t_ms = ui::wall_clock_ms();
  f.ops = std::move(patch);
  std::string text = ui::encode(f);
  m.tree = std::move(tree);
  m.seq = f.seq;
  m.t_ms = f.t_ms;
  m.snapshot.reset();
  ++frames_applied;
  lock.unlock();
  broadcast_patch(opt.id, f.base, f.seq, text_of(std::move(text)));
}

// ---- start / stop --------------------------------------------------------------------------------

void Gateway::Impl::start_threads() {
  workers = std::make_unique<Workers>(opt.workers, 1024);
  work.emplace(net::make_work_guard(ioc));
  accept();
  tick();
  io_thread = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "sym-gw-io");
    ioc.run();
  });
  bus_thread = std::thread([this] { bus_loop(); });
  topics_thread = std::thread([this] { topics_loop(); });
  poll_thread = std::thread([this] { poll_loop(); });
}

Gateway::Impl::~Impl() {
  {
    std::lock_guard lock(stop_mutex);
    stopping = true;
  }
  stop_cv.notify_all();
  if (bus_thread.joinable()) bus_thread.join();
  if (topics_thread.joinable()) topics_thread.join();
  if (poll_thread.joinable()) poll_thread.join();
  if (workers) workers->stop();
  if (io_thread.joinable()) {
    net::post(ioc, [this] {
      beast::error_code ec;
      acceptor.close(ec);
      ticker.cancel();
      for (const auto& s : std::vector(sessions.begin(), sessions.end())) s->close_now();
      // Not waiting for idle HTTP keep-alive connections (their read lasts up to 30 s): what is
      // left pending is destroyed with the io_context.
      work.reset();
      ioc.stop();
    });
    io_thread.join();
  }
  sessions.clear();
}

Gateway::Gateway(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Gateway::~Gateway() = default;

engine::Result<std::unique_ptr<Gateway>> Gateway::start(GatewayOptions options,
                                                        std::unique_ptr<HostLink> link) {
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  impl->link = std::move(link);
  const GatewayOptions& opt = impl->opt;
  auto dir = engine::ensure_runtime_dir(opt.bus, opt.runtime_dir);
  if (!dir) return tl::unexpected(dir.error());
  impl->ui_file = *dir / "ui.json";
  // A restarted gateway keeps its predecessor's token and port: open pages reconnect as they are.
  const auto previous = read_ui_file(impl->ui_file);
  impl->token = previous ? previous->token : random_token();
  std::vector<std::uint16_t> ports;
  if (opt.port != 0) {
    ports.push_back(opt.port);
  } else {
    if (previous && previous->port != 0) ports.push_back(previous->port);
    ports.push_back(0);
  }
  std::string why;
  for (const std::uint16_t p : ports) {
    beast::error_code ec;
    tcp::acceptor& a = impl->acceptor;
    if (a.is_open()) a.close(ec);
    a.open(tcp::v4(), ec);
    if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(tcp::endpoint(net::ip::address_v4::loopback(), p), ec);
    if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) {
      impl->port = a.local_endpoint(ec).port();
      if (!ec) break;
    }
    why = "cannot listen on 127.0.0.1:" + std::to_string(p) + ": " + ec.message();
    a.close(ec);
  }
  if (!impl->acceptor.is_open()) return tl::unexpected(Error{Errc::system_error, why});
  if (opt.write_ui_file) {
    const std::string text = message(
        {{"url", "http://127.0.0.1:" + std::to_string(impl->port) + "/?token=" + impl->token},
         {"port", impl->port},
         {"token", impl->token}});
    if (auto ok = write_ui_file(impl->ui_file, text + "\n"); !ok) return tl::unexpected(ok.error());
  }
  impl->start_threads();
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

std::uint16_t Gateway::port() const noexcept {
  return impl_->port;
}
const std::string& Gateway::token() const noexcept {
  return impl_->token;
}
std::string Gateway::url() const {
  return "http://127.0.0.1:" + std::to_string(impl_->port) + "/?token=" + impl_->token;
}
const fs::path& Gateway::ui_file() const noexcept {
  return impl_->ui_file;
}

GatewayStats Gateway::stats() const {
  GatewayStats s;
  const Impl& i = *impl_;
  s.frames = i.frames;
  s.frames_applied = i.frames_applied;
  s.frames_invalid = i.frames_invalid;
  s.frames_stale = i.frames_stale;
  s.gaps = i.gaps;
  s.snapshot_requests = i.snapshot_requests;
  s.upgrades_refused = i.upgrades_refused;
  s.events = i.events;
  s.events_refused = i.events_refused;
  auto sessions = std::make_shared<std::promise<std::vector<SessionStats>>>();
  auto got = sessions->get_future();
  net::post(impl_->ioc, [impl = impl_.get(), sessions] {
    std::vector<SessionStats> all;
    for (const auto& session : impl->sessions) all.push_back(session->stats());
    sessions->set_value(std::move(all));
  });
  if (got.wait_for(std::chrono::seconds(2)) == std::future_status::ready) s.sessions = got.get();
  return s;
}

std::string Gateway::stats_json() const {
  const GatewayStats s = stats();
  Json sessions = Json::array();
  for (const auto& x : s.sessions) {
    sessions.push_back({{"messages", x.messages},
                        {"bytes", x.bytes},
                        {"patches", x.patches},
                        {"snapshots", x.snapshots},
                        {"coalesced", x.coalesced},
                        {"pending_bytes", x.pending_bytes},
                        {"peak_pending_bytes", x.peak_pending_bytes}});
  }
  return message({{"frames", s.frames},
                  {"frames_applied", s.frames_applied},
                  {"frames_invalid", s.frames_invalid},
                  {"frames_stale", s.frames_stale},
                  {"gaps", s.gaps},
                  {"snapshot_requests", s.snapshot_requests},
                  {"upgrades_refused", s.upgrades_refused},
                  {"events", s.events},
                  {"events_refused", s.events_refused},
                  {"sessions", sessions}});
}

}  // namespace symphony::gateway
