// symphony_ipc: the Python module over the engine (pybind11).
//
// IPCBus owns a supervisor::Supervisor (which owns the control plane's ControlHost) and a
// symphony::Bus of the same name. Everything a native thread produces for Python — lifecycle
// transitions (supervisor thread), peer events and messages (control-plane I/O thread),
// replies to asynchronous requests (I/O thread, or our request worker) — goes into an Inbox: a
// mutex-protected queue plus an eventfd per kind. Native threads never take the GIL (a
// callback that waited for the GIL would stall the supervisor or the control plane behind
// Python code); the asyncio layer (symphony_conductor.aio) watches the eventfds with
// loop.add_reader and drains the queues on the loop's thread.
//
// The GIL is released around every call that can block: spawning, stopping, synchronous
// requests, waiting for events or samples, figures and topic listings (they run on the
// supervisor thread or scan /dev/shm).
//
// Zero-copy samples: Sample and Loan implement the buffer protocol themselves (their
// PyBufferProcs are set on the pybind11 type), count live exports, and refuse to end while one
// is alive (BufferError), so Python can never read memory that went back to the ring.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "symphony/controlplane/host.hpp"
#include "symphony/engine/bus.hpp"
#include "symphony/engine/topic.hpp"
#include "symphony/supervisor/manifest.hpp"
#include "symphony/supervisor/supervisor.hpp"

namespace py = pybind11;
using namespace std::chrono_literals;
using symphony::engine::Errc;
using symphony::engine::Error;
using symphony::engine::RingStatus;
namespace sup = symphony::supervisor;
namespace cp = symphony::controlplane;

namespace {

using Clock = std::chrono::steady_clock;

// ---- errors ------------------------------------------------------------------------------

py::handle& error_type_slot() {  // set once in the module init; the module keeps it alive
  static py::handle type;
  return type;
}

// Raises symphony_ipc.SymphonyError(message) with .code = the engine's error code name.
[[noreturn]] void raise_error(const std::string& code, const std::string& message) {
  py::object type = py::reinterpret_borrow<py::object>(error_type_slot());
  py::object exc = type(message);
  exc.attr("code") = code;
  PyErr_SetObject(type.ptr(), exc.ptr());
  throw py::error_already_set();
}
// The engine's Errc as an identifier: "type mismatch" -> "type_mismatch".
std::string code_name(Errc code) {
  std::string name = symphony::engine::to_string(code);
  for (char& ch : name)
    if (ch == ' ' || ch == '-') ch = '_';
  return name;
}
[[noreturn]] void raise_error(const Error& e) {
  if (e.code == Errc::invalid_argument) throw py::value_error(e.message);
  raise_error(code_name(e.code), e.message);
}
[[noreturn]] void raise_buffer_error(const std::string& message) {
  PyErr_SetString(PyExc_BufferError, message.c_str());
  throw py::error_already_set();
}

std::chrono::milliseconds to_ms(double seconds) {
  if (!(seconds >= 0)) throw py::value_error("a timeout must be a non-negative number of seconds");
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0 + 0.5));
}

double seconds_since_epoch(Clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// JSON text from a str (as is), bytes (UTF-8), or anything json.dumps takes (dict, list, ...).
std::string json_text(py::handle value) {
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (py::isinstance<py::bytes>(value)) return value.cast<std::string>();
  if (value.is_none()) return "{}";
  return py::module_::import("json").attr("dumps")(value).cast<std::string>();
}

// ---- the inbox: native threads -> Python --------------------------------------------------

class EventFd {
 public:
  EventFd() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  }
  ~EventFd() { ::close(fd_); }
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;
  int fd() const noexcept { return fd_; }
  void signal() const noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof one);  // EAGAIN: already set
  }
  void drain() const noexcept {
    std::uint64_t value = 0;
    [[maybe_unused]] const ssize_t n = ::read(fd_, &value, sizeof value);
  }

 private:
  int fd_;
};

struct Completion {
  std::uint64_t token = 0;
  bool ok = false;
  std::string text;  // the reply's payload (JSON text) or the error message
  std::string code;  // the error code name when !ok
  std::string route;
};

struct Event {
  enum class Kind { lifecycle, peer, message } kind = Kind::lifecycle;
  sup::LifecycleEvent lifecycle;
  cp::PeerEvent peer;
  std::string route;
  cp::Envelope message;
};

struct InstanceView {
  sup::LifecycleState state = sup::LifecycleState::created;
  std::string reason;
};

class Inbox {
 public:
  explicit Inbox(std::size_t max_events) : max_events_(max_events) {}

  void complete(Completion c) {
    {
      std::lock_guard lock(mutex_);
      completions_.push_back(std::move(c));
    }
    completion_fd_.signal();
    cv_.notify_all();
  }

  void push(Event e) {
    {
      std::lock_guard lock(mutex_);
      if (e.kind == Event::Kind::lifecycle) {
        const auto& l = e.lifecycle;
        auto& v = instances_[l.extension][l.instance];
        v.state = l.to;
        v.reason = l.reason;
        ++transitions_;
      }
      if (events_.size() >= max_events_) {
        events_.pop_front();  // the oldest goes: the view of states above stays exact
        ++dropped_;
      }
      events_.push_back(std::move(e));
      ++published_;
    }
    event_fd_.signal();
    cv_.notify_all();
  }

  std::vector<Completion> take_completions() {
    completion_fd_.drain();
    std::lock_guard lock(mutex_);
    std::vector<Completion> out(std::make_move_iterator(completions_.begin()),
                                std::make_move_iterator(completions_.end()));
    completions_.clear();
    return out;
  }

  std::vector<Event> take_events(std::size_t max) {
    std::lock_guard lock(mutex_);
    std::vector<Event> out;
    while (!events_.empty() && out.size() < max) {
      out.push_back(std::move(events_.front()));
      events_.pop_front();
    }
    if (events_.empty()) event_fd_.drain();
    return out;
  }

  std::optional<Event> wait_event(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    cv_.wait_until(lock, deadline, [&] { return !events_.empty(); });
    if (events_.empty()) return std::nullopt;
    Event e = std::move(events_.front());
    events_.pop_front();
    if (events_.empty()) event_fd_.drain();
    return e;
  }

  // A HEALTHY instance of `extension`, round robin; nullopt if none.
  std::optional<int> pick_healthy(const std::string& extension) {
    std::lock_guard lock(mutex_);
    auto it = instances_.find(extension);
    if (it == instances_.end() || it->second.empty()) return std::nullopt;
    std::vector<int> healthy;
    for (const auto& [n, v] : it->second)
      if (v.state == sup::LifecycleState::healthy) healthy.push_back(n);
    if (healthy.empty()) return std::nullopt;
    std::size_t& next = round_robin_[extension];
    const int chosen = healthy[next % healthy.size()];
    ++next;
    return chosen;
  }

  std::map<int, InstanceView> instances(const std::string& extension) {
    std::lock_guard lock(mutex_);
    auto it = instances_.find(extension);
    return it == instances_.end() ? std::map<int, InstanceView>{} : it->second;
  }

  // Waits until `done(instances of extension)` holds, or the deadline; true if it held.
  template <typename Pred>
  bool wait_for(const std::string& extension, Clock::time_point deadline, Pred done) {
    std::unique_lock lock(mutex_);
    return cv_.wait_until(lock, deadline, [&] { return done(instances_[extension]); });
  }

  void forget(const std::string& extension) {
    std::lock_guard lock(mutex_);
    instances_.erase(extension);
  }

  int completion_fd() const noexcept { return completion_fd_.fd(); }
  int event_fd() const noexcept { return event_fd_.fd(); }
  std::uint64_t dropped() {
    std::lock_guard lock(mutex_);
    return dropped_;
  }
  std::uint64_t published() {
    std::lock_guard lock(mutex_);
    return published_;
  }
  std::size_t queued() {
    std::lock_guard lock(mutex_);
    return events_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Completion> completions_;
  std::deque<Event> events_;
  std::size_t max_events_;
  std::uint64_t dropped_ = 0, published_ = 0, transitions_ = 0;
  std::map<std::string, std::map<int, InstanceView>> instances_;
  std::map<std::string, std::size_t> round_robin_;
  EventFd completion_fd_, event_fd_;
};

py::dict event_to_dict(const Event& e) {
  py::dict d;
  switch (e.kind) {
    case Event::Kind::lifecycle: {
      const auto& l = e.lifecycle;
      d["kind"] = "lifecycle";
      d["extension"] = l.extension;
      d["instance"] = l.instance;
      d["route"] = l.extension + "/" + std::to_string(l.instance);
      d["generation"] = l.generation;
      d["from"] = sup::to_string(l.from);
      d["state"] = sup::to_string(l.to);
      d["reason"] = l.reason;
      d["pid"] = static_cast<int>(l.pid);
      d["restarts"] = l.restarts;
      d["time"] = seconds_since_epoch(l.at);
      break;
    }
    case Event::Kind::peer:
      d["kind"] = "peer";
      d["route"] = e.peer.route;
      d["state"] = cp::to_string(e.peer.state);
      d["reason"] = e.peer.reason;
      break;
    case Event::Kind::message:
      d["kind"] = "message";
      d["route"] = e.route;
      d["type"] = cp::to_string(e.message.type);
      d["from"] = e.message.from;
      d["body"] = e.message.body;
      break;
  }
  return d;
}

// ---- samples and loans: zero-copy buffers ------------------------------------------------

// What a Subscriber and the Samples it handed out share: the handle (so a Sample keeps the
// mapping alive) and whether a sample is held.
struct SubscriberCore {
  std::optional<symphony::engine::RawSubscriber> raw;
  bool holding = false;
};

class Sample {
 public:
  Sample(std::shared_ptr<SubscriberCore> core, const std::byte* data, std::size_t size)
      : core_(std::move(core)), data_(data), size_(size) {}
  Sample(Sample&& other) noexcept
      : core_(std::move(other.core_)), data_(other.data_), size_(other.size_),
        exports_(other.exports_), held_(other.held_), release_pending_(other.release_pending_) {
    other.held_ = false;  // moved (into its Python object) before any export: nothing to carry
  }
  Sample(const Sample&) = delete;
  Sample& operator=(const Sample&) = delete;
  Sample& operator=(Sample&&) = delete;
  ~Sample() {
    // Never released by hand and no view alive (a view holds a reference to us): give it back.
    if (held_ && core_) release_now();
  }

  void release() {
    if (!held_) return;
    if (exports_ > 0) {
      release_pending_ = true;
      raise_buffer_error(
          "the sample is still exported to " + std::to_string(exports_) +
          " view(s) (memoryview / numpy array): release them before the sample; it stays "
          "valid until the last view is released, then it goes back to the ring");
    }
    release_now();
  }

  bool held() const noexcept { return held_; }
  std::size_t size() const noexcept { return size_; }
  int exports() const noexcept { return exports_; }
  py::bytes to_bytes() const {
    check_held();
    return {reinterpret_cast<const char*>(data_), size_};
  }

  static int get_buffer(PyObject* self, Py_buffer* view, int flags) {
    Sample* s = nullptr;
    try {
      s = py::handle(self).cast<Sample*>();
    } catch (...) {
      PyErr_SetString(PyExc_BufferError, "not a Sample");
      return -1;
    }
    if (!s->held_) {
      PyErr_SetString(PyExc_BufferError, "the sample was released: its memory is the ring's again");
      return -1;
    }
    if ((flags & PyBUF_WRITABLE) == PyBUF_WRITABLE) {
      PyErr_SetString(PyExc_BufferError, "a received sample is read-only");
      return -1;
    }
    if (PyBuffer_FillInfo(view, self, const_cast<std::byte*>(s->data_),
                          static_cast<Py_ssize_t>(s->size_), 1, flags) != 0)
      return -1;
    ++s->exports_;
    return 0;
  }
  static void release_buffer(PyObject* self, Py_buffer*) {
    Sample* s = py::handle(self).cast<Sample*>();
    if (--s->exports_ == 0 && s->release_pending_) s->release_now();
  }

 private:
  void check_held() const {
    if (!held_) raise_buffer_error("the sample was released");
  }
  void release_now() {
    held_ = false;
    release_pending_ = false;
    if (core_->raw) core_->raw->release();
    core_->holding = false;
  }

  std::shared_ptr<SubscriberCore> core_;
  const std::byte* data_;
  std::size_t size_;
  int exports_ = 0;
  bool held_ = true;
  bool release_pending_ = false;
};

struct PublisherCore {
  std::optional<symphony::engine::RawPublisher> raw;
  bool loaning = false;
};

class LoanBuffer {
 public:
  LoanBuffer(std::shared_ptr<PublisherCore> core, std::byte* data, std::size_t size)
      : core_(std::move(core)), data_(data), size_(size) {}
  LoanBuffer(LoanBuffer&& other) noexcept
      : core_(std::move(other.core_)), data_(other.data_), size_(other.size_),
        exports_(other.exports_), open_(other.open_), publish_pending_(other.publish_pending_) {
    other.open_ = false;
  }
  LoanBuffer(const LoanBuffer&) = delete;
  LoanBuffer& operator=(const LoanBuffer&) = delete;
  LoanBuffer& operator=(LoanBuffer&&) = delete;
  ~LoanBuffer() {
    if (open_) publish_now();  // a loan cannot be taken back: an abandoned one is published
  }

  void publish() {
    if (!open_) return;
    if (exports_ > 0) {
      publish_pending_ = true;
      raise_buffer_error("the loan is still exported to " + std::to_string(exports_) +
                         " writable view(s): release them first; it is published when the "
                         "last one is released");
    }
    publish_now();
  }
  bool open() const noexcept { return open_; }
  std::size_t size() const noexcept { return size_; }
  int exports() const noexcept { return exports_; }

  static int get_buffer(PyObject* self, Py_buffer* view, int flags) {
    LoanBuffer* l = nullptr;
    try {
      l = py::handle(self).cast<LoanBuffer*>();
    } catch (...) {
      PyErr_SetString(PyExc_BufferError, "not a Loan");
      return -1;
    }
    if (!l->open_ || l->publish_pending_) {
      PyErr_SetString(PyExc_BufferError, "the loan was published: its memory is the ring's");
      return -1;
    }
    if (PyBuffer_FillInfo(view, self, l->data_, static_cast<Py_ssize_t>(l->size_), 0, flags) != 0)
      return -1;
    ++l->exports_;
    return 0;
  }
  static void release_buffer(PyObject* self, Py_buffer*) {
    LoanBuffer* l = py::handle(self).cast<LoanBuffer*>();
    if (--l->exports_ == 0 && l->publish_pending_) l->publish_now();
  }

 private:
  void publish_now() {
    open_ = false;
    publish_pending_ = false;
    if (core_->raw) core_->raw->publish();
    core_->loaning = false;
  }
  std::shared_ptr<PublisherCore> core_;
  std::byte* data_;
  std::size_t size_;
  int exports_ = 0;
  bool open_ = true;
  bool publish_pending_ = false;
};

PyBufferProcs g_sample_buffer{&Sample::get_buffer, &Sample::release_buffer};
PyBufferProcs g_loan_buffer{&LoanBuffer::get_buffer, &LoanBuffer::release_buffer};

class Publisher {
 public:
  explicit Publisher(symphony::engine::RawPublisher raw) : core_(std::make_shared<PublisherCore>()) {
    core_->raw.emplace(std::move(raw));
  }

  // Copies `data` (any contiguous buffer) into a loan and publishes it. True: published;
  // False: full (a `block` subscriber's queue is full; nothing was overwritten).
  bool publish(py::handle data) {
    Py_buffer view;
    if (PyObject_GetBuffer(data.ptr(), &view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
    const RingStatus status = core_->loaning
                                  ? RingStatus::busy
                                  : raw().try_publish({static_cast<const std::byte*>(view.buf),
                                                       static_cast<std::size_t>(view.len)});
    const Py_ssize_t length = view.len;
    PyBuffer_Release(&view);
    return check(status, static_cast<std::size_t>(length));
  }

  std::optional<LoanBuffer> loan(std::size_t length) {
    if (core_->loaning) raise_buffer_error("a loan of this publisher is still open: publish it first");
    const symphony::engine::Loan l = raw().try_loan(length);
    if (!check(l.status, length)) return std::nullopt;
    core_->loaning = true;
    return std::optional<LoanBuffer>(std::in_place, core_, l.data, l.size);
  }

  void flush() { raw().flush(); }
  py::dict counters() const {
    const auto c = core_->raw->counters();
    py::dict d;
    d["published"] = c.published;
    d["full"] = c.full;
    d["subscribers"] = c.subscribers;
    d["flushes"] = c.flushes;
    d["wakeups"] = c.wakeups;
    d["priority"] = c.priority;
    d["routed"] = c.routed;
    return d;
  }
  std::string topic() const { return core_->raw->topic(); }
  void close() {
    if (core_->loaning) raise_buffer_error("a loan of this publisher is still open");
    core_->raw.reset();
  }

 private:
  symphony::engine::RawPublisher& raw() {
    if (!core_->raw) throw std::runtime_error("the publisher is closed");
    return *core_->raw;
  }
  static bool check(RingStatus status, std::size_t length) {
    switch (status) {
      case RingStatus::ok: return true;
      case RingStatus::full: return false;
      case RingStatus::oversize:
        throw py::value_error("a sample of " + std::to_string(length) +
                              " bytes is larger than the topic's max_payload");
      case RingStatus::busy: raise_buffer_error("a loan of this publisher is still open");
      default: raise_error(symphony::engine::to_string(status), "publish failed: " +
                                                                    std::string(symphony::engine::to_string(status)));
    }
  }
  std::shared_ptr<PublisherCore> core_;
};

class Subscriber {
 public:
  explicit Subscriber(symphony::engine::RawSubscriber raw)
      : core_(std::make_shared<SubscriberCore>()) {
    core_->raw.emplace(std::move(raw));
  }

  std::optional<Sample> take() {
    check_free();
    return wrap(raw().try_take());
  }

  std::optional<Sample> take_wait(double timeout_s) {
    check_free();
    const auto deadline = Clock::now() + to_ms(timeout_s);
    symphony::engine::Frame f;
    {
      py::gil_scoped_release unlocked;
      f = raw().take(symphony::engine::WaitStrategy::sleeping(), deadline);
    }
    return wrap(f);
  }

  int notify_fd() {
    auto fd = raw().notify_fd();
    if (!fd) raise_error(fd.error());
    return *fd;
  }
  bool holding() const noexcept { return core_->holding; }
  py::dict counters() const {
    const auto c = core_->raw->counters();
    py::dict d;
    d["delivered"] = c.delivered;
    d["dropped"] = c.dropped;
    d["overruns"] = c.overruns;
    return d;
  }
  std::optional<std::uint64_t> position() const { return core_->raw->position(); }
  std::string topic() const { return core_->raw->topic(); }
  void close() {
    if (core_->holding) raise_buffer_error("a sample of this subscriber is still held");
    core_->raw.reset();
  }

 private:
  symphony::engine::RawSubscriber& raw() {
    if (!core_->raw) throw std::runtime_error("the subscriber is closed");
    return *core_->raw;
  }
  void check_free() {
    if (core_->holding)
      raise_buffer_error(
          "the previous sample is still held: leave its `with` block (or call release()) "
          "before taking the next");
  }
  std::optional<Sample> wrap(const symphony::engine::Frame& f) {
    if (f.status == RingStatus::empty) return std::nullopt;
    if (f.status != RingStatus::ok)
      raise_error(symphony::engine::to_string(f.status),
                  "take on '" + core_->raw->topic() + "': " + symphony::engine::to_string(f.status));
    core_->holding = true;
    return std::optional<Sample>(std::in_place, core_, f.data, f.size);
  }
  std::shared_ptr<SubscriberCore> core_;
};

// ---- the bus -----------------------------------------------------------------------------

struct BusConfig {
  std::string bus = "default";
  std::string runtime_dir;
  std::string log_dir;
  int heartbeat_interval_ms = 250;
  int unresponsive_after_ms = 1500;
  int stop_grace_ms = 2000;
  int kill_grace_ms = 500;
  bool cgroups = true;
  std::size_t max_events = 65536;
  int request_timeout_ms = 5000;
};

BusConfig parse_config(py::handle config) {
  BusConfig c;
  if (config.is_none()) return c;
  if (py::isinstance<py::str>(config)) {
    c.bus = config.cast<std::string>();
    return c;
  }
  if (!py::isinstance<py::dict>(config))
    throw py::type_error("IPCBus(config): a bus name (str) or a dict");
  for (auto [key_h, value] : config.cast<py::dict>()) {
    const std::string key = py::str(key_h);
    if (key == "bus") c.bus = value.cast<std::string>();
    else if (key == "runtime_dir") c.runtime_dir = py::str(value).cast<std::string>();
    else if (key == "log_dir") c.log_dir = py::str(value).cast<std::string>();
    else if (key == "heartbeat_interval_ms") c.heartbeat_interval_ms = value.cast<int>();
    else if (key == "unresponsive_after_ms") c.unresponsive_after_ms = value.cast<int>();
    else if (key == "stop_grace_ms") c.stop_grace_ms = value.cast<int>();
    else if (key == "kill_grace_ms") c.kill_grace_ms = value.cast<int>();
    else if (key == "cgroups") c.cgroups = value.cast<bool>();
    else if (key == "max_events") c.max_events = value.cast<std::size_t>();
    else if (key == "request_timeout_ms") c.request_timeout_ms = value.cast<int>();
    else
      throw py::value_error("IPCBus config: unknown key '" + key +
                            "' (known: bus, runtime_dir, log_dir, heartbeat_interval_ms, "
                            "unresponsive_after_ms, stop_grace_ms, kill_grace_ms, cgroups, "
                            "max_events, request_timeout_ms)");
  }
  if (c.max_events == 0) throw py::value_error("IPCBus config: max_events must be at least 1");
  return c;
}

py::dict figures_to_dict(const sup::ExtensionFigures& f) {
  py::dict d;
  d["extension"] = f.extension;
  d["instance"] = f.instance;
  d["route"] = f.extension + "/" + std::to_string(f.instance);
  d["version"] = f.version;
  d["state"] = sup::to_string(f.state);
  d["reason"] = f.reason;
  d["pid"] = static_cast<int>(f.pid);
  d["generation"] = f.generation;
  d["restarts"] = f.restarts;
  d["cpu_time_s"] = std::chrono::duration<double>(f.cpu_time).count();
  d["rss_bytes"] = f.rss_bytes;
  d["uptime_s"] = std::chrono::duration<double>(f.uptime).count();
  if (f.last_heartbeat_age)
    d["last_heartbeat_age_s"] = std::chrono::duration<double>(*f.last_heartbeat_age).count();
  else
    d["last_heartbeat_age_s"] = py::none();
  d["memory_limit_bytes"] = f.memory_limit_bytes;
  d["cpu_limit_cores"] = f.cpu_limit_cores;
  d["memory_usage_bytes"] = f.memory_usage_bytes;
  d["oom_kills"] = f.oom_kills;
  d["cpu_throttled"] = f.cpu_throttled;
  d["log_file"] = f.log_file.string();
  return d;
}

py::dict participant_to_dict(const symphony::TopicParticipant& p, bool publisher) {
  py::dict d;
  d["pid"] = p.pid;
  d["alive"] = p.alive;
  if (publisher) {
    d["published"] = p.published;
    d["full"] = p.full;
    d["flushes"] = p.flushes;
    d["wakeups"] = p.wakeups;
    d["priority"] = p.priority;
  } else {
    d["overflow"] = symphony::engine::to_string(p.overflow);
    d["depth"] = p.depth;
    d["group"] = p.group;
    d["delivered"] = p.delivered;
    d["dropped"] = p.dropped;
    d["overruns"] = p.overruns;
  }
  return d;
}

symphony::engine::TopicTransport parse_transport(const std::string& s) {
  if (s == "native") return symphony::engine::TopicTransport::native;
  if (s == "iceoryx") return symphony::engine::TopicTransport::iceoryx;
  throw py::value_error("transport: 'native' or 'iceoryx' (got '" + s + "')");
}

class IPCBus {
 public:
  explicit IPCBus(py::handle config_handle) {
    const BusConfig config = parse_config(config_handle);
    request_timeout_ = std::chrono::milliseconds(config.request_timeout_ms);
    inbox_ = std::make_shared<Inbox>(config.max_events);
    sup::SupervisorOptions options;
    options.host.bus = config.bus;
    options.host.runtime_dir = config.runtime_dir;
    options.host.heartbeat_interval = std::chrono::milliseconds(config.heartbeat_interval_ms);
    options.host.unresponsive_after = std::chrono::milliseconds(config.unresponsive_after_ms);
    options.log_dir = config.log_dir;
    options.stop_grace = std::chrono::milliseconds(config.stop_grace_ms);
    options.kill_grace = std::chrono::milliseconds(config.kill_grace_ms);
    options.cgroups = config.cgroups ? sup::CgroupUse::automatic : sup::CgroupUse::disabled;
    // The callbacks hold the inbox, never `this`: they may run while we are being destroyed.
    std::weak_ptr<Inbox> weak = inbox_;
    options.on_lifecycle = [weak](const sup::LifecycleEvent& e) {
      if (auto inbox = weak.lock()) inbox->push(Event{Event::Kind::lifecycle, e, {}, {}, {}});
    };
    options.on_peer_event = [weak](const cp::PeerEvent& e) {
      if (auto inbox = weak.lock()) inbox->push(Event{Event::Kind::peer, {}, e, {}, {}});
    };
    options.on_message = [weak](const std::string& route, const cp::Envelope& message) {
      if (auto inbox = weak.lock())
        inbox->push(Event{Event::Kind::message, {}, {}, route, message});
    };
    {
      py::gil_scoped_release unlocked;
      auto bus = symphony::Bus::open({.name = config.bus, .runtime_dir = config.runtime_dir});
      if (!bus) {
        py::gil_scoped_acquire locked;
        raise_error(bus.error());
      }
      bus_.emplace(std::move(*bus));
      auto supervisor = sup::Supervisor::start(std::move(options));
      if (!supervisor) {
        py::gil_scoped_acquire locked;
        raise_error(supervisor.error());
      }
      supervisor_ = std::move(*supervisor);
    }
    worker_ = std::thread([this] { work(); });
  }

  ~IPCBus() {
    if (PyGILState_Check()) {
      py::gil_scoped_release unlocked;
      shutdown();
    } else {
      shutdown();
    }
  }

  void close() {
    py::gil_scoped_release unlocked;
    shutdown();
  }
  bool closed() const noexcept { return supervisor_ == nullptr; }

  std::string name() const { return bus().name(); }
  std::string runtime_dir() const { return bus().runtime_dir().string(); }

  // -- extensions --------------------------------------------------------------------------
  std::string spawn_extension(py::handle manifest, bool wait, double timeout_s) {
    sup::ManifestResult<sup::Manifest> parsed = parse(manifest);
    if (!parsed) raise_error(parsed.error().to_error());
    const std::string id = parsed->id;
    {
      py::gil_scoped_release unlocked;
      auto added = sup().add(std::move(*parsed));
      if (!added) {
        py::gil_scoped_acquire locked;
        raise_error(added.error());
      }
    }
    if (wait) wait_healthy(id, timeout_s);
    return id;
  }

  // Waits until every instance of `id` is HEALTHY; SymphonyError if one is FAILED, TimeoutError
  // (with each instance's state and reason) when the timeout passes.
  void wait_healthy(const std::string& id, double timeout_s) {
    const auto deadline = Clock::now() + to_ms(timeout_s);
    std::size_t expected = 0;
    {
      py::gil_scoped_release unlocked;
      for (const auto& f : sup().figures())
        if (f.extension == id) ++expected;
    }
    if (expected == 0) raise_error("not_found", "no extension '" + id + "'");
    bool ok = false;
    std::string failed;
    {
      py::gil_scoped_release unlocked;
      ok = inbox_->wait_for(id, deadline, [&](const std::map<int, InstanceView>& m) {
        std::size_t healthy = 0;
        for (const auto& [n, v] : m) {
          if (v.state == sup::LifecycleState::failed) {
            failed = id + "/" + std::to_string(n) + " FAILED: " + v.reason;
            return true;
          }
          if (v.state == sup::LifecycleState::healthy) ++healthy;
        }
        return healthy >= expected;
      });
    }
    if (!failed.empty()) raise_error("unavailable", failed);
    if (!ok) {
      std::string states;
      for (const auto& [n, v] : inbox_->instances(id))
        states += (states.empty() ? "" : "; ") + id + "/" + std::to_string(n) + " " +
                  sup::to_string(v.state) + (v.reason.empty() ? "" : " (" + v.reason + ")");
      PyErr_SetString(PyExc_TimeoutError,
                      (id + " not HEALTHY within " + std::to_string(timeout_s) + " s: " +
                       (states.empty() ? "no transition yet" : states))
                          .c_str());
      throw py::error_already_set();
    }
  }

  void stop_extension(const std::string& id) { blocking([&] { return sup().stop(id); }); }
  void start_extension(const std::string& id) { blocking([&] { return sup().start(id); }); }
  void restart_extension(const std::string& id) { blocking([&] { return sup().restart(id); }); }
  void remove_extension(const std::string& id) {
    blocking([&] { return sup().remove(id); });
    inbox_->forget(id);
  }

  // -- requests ----------------------------------------------------------------------------
  // Synchronous: Supervisor::request (round robin over HEALTHY instances, on-demand start).
  std::string send_message(const std::string& extension, const std::string& method,
                           py::handle payload, std::optional<double> timeout_s) {
    std::string body = json_text(payload);
    const auto timeout = timeout_s ? to_ms(*timeout_s) : request_timeout_;
    symphony::engine::Result<std::string> reply;
    {
      py::gil_scoped_release unlocked;
      if (extension.find('/') != std::string::npos)
        reply = sup().control().request(extension, method, std::move(body), timeout).get();
      else
        reply = sup().request(extension, method, std::move(body), timeout);
    }
    if (!reply) raise_error(reply.error());
    return std::move(*reply);
  }

  // Asynchronous: returns a token; the reply arrives in completions(). `target`:
  // "<extension>/<instance>" goes to that instance; "<extension>" to a HEALTHY instance (round
  // robin), or — none HEALTHY now (on-demand, restarting) — through Supervisor::request on our
  // request worker thread, which starts or waits for one.
  std::uint64_t request_async(const std::string& target, const std::string& method,
                              py::handle payload, std::optional<double> timeout_s) {
    std::string body = json_text(payload);
    const auto timeout = timeout_s ? to_ms(*timeout_s) : request_timeout_;
    const std::uint64_t token = next_token_.fetch_add(1) + 1;
    std::string route = target;
    if (target.find('/') == std::string::npos) {
      if (auto n = inbox_->pick_healthy(target)) {
        route = target + "/" + std::to_string(*n);
      } else {
        std::lock_guard lock(jobs_mutex_);
        jobs_.push_back([this, token, target, method, body = std::move(body), timeout]() mutable {
          auto reply = sup().request(target, method, std::move(body), timeout);
          inbox_->complete(to_completion(token, target, std::move(reply)));
        });
        jobs_cv_.notify_one();
        return token;
      }
    }
    std::weak_ptr<Inbox> weak = inbox_;
    sup().control().request(route, method, std::move(body), timeout,
                            [weak, token, route](symphony::engine::Result<std::string> reply) {
                              if (auto inbox = weak.lock())
                                inbox->complete(to_completion(token, route, std::move(reply)));
                            });
    return token;
  }

  std::vector<py::tuple> completions() {
    std::vector<py::tuple> out;
    for (auto& c : inbox_->take_completions())
      out.push_back(py::make_tuple(c.token, c.ok, c.text, c.code, c.route));
    return out;
  }
  int completion_fd() const { return inbox_->completion_fd(); }

  // -- events ------------------------------------------------------------------------------
  int event_fd() const { return inbox_->event_fd(); }
  py::list poll_events(std::size_t max) {
    py::list out;
    for (const auto& e : inbox_->take_events(max)) out.append(event_to_dict(e));
    return out;
  }
  py::object wait_event(double timeout_s) {
    std::optional<Event> e;
    {
      py::gil_scoped_release unlocked;
      e = inbox_->wait_event(Clock::now() + to_ms(timeout_s));
    }
    if (!e) return py::none();
    return event_to_dict(*e);
  }

  // -- listings ----------------------------------------------------------------------------
  py::list figures(std::optional<std::string> extension) {
    std::vector<sup::ExtensionFigures> all;
    {
      py::gil_scoped_release unlocked;
      all = sup().figures();
    }
    py::list out;
    for (const auto& f : all)
      if (!extension || f.extension == *extension) out.append(figures_to_dict(f));
    return out;
  }

  py::list topics() {
    symphony::engine::Result<std::vector<symphony::TopicInfo>> all;
    {
      py::gil_scoped_release unlocked;
      all = bus().topics();
    }
    if (!all) raise_error(all.error());
    py::list out;
    for (const auto& t : *all) {
      py::dict d;
      d["name"] = t.name;
      d["transport"] = symphony::engine::to_string(t.transport);
      d["type"] = t.type.name;
      d["type_size"] = t.type.size;
      d["max_payload"] = t.max_payload;
      d["history"] = t.history;
      d["capacity"] = t.capacity;
      d["priority_capacity"] = t.priority_capacity;
      py::list pubs, subs;
      for (const auto& p : t.publishers) pubs.append(participant_to_dict(p, true));
      for (const auto& s : t.subscribers) subs.append(participant_to_dict(s, false));
      d["publishers"] = pubs;
      d["subscribers"] = subs;
      out.append(d);
    }
    return out;
  }

  py::dict counters() {
    const cp::HostCounters c = sup().control().counters();
    py::dict d;
    d["requests_sent"] = c.requests_sent;
    d["replies"] = c.replies;
    d["failed_fast"] = c.failed_fast;
    d["timeouts"] = c.timeouts;
    d["cancelled"] = c.cancelled;
    d["late_replies"] = c.late_replies;
    d["refused_unregistered"] = c.refused_unregistered;
    d["refused_bad_token"] = c.refused_bad_token;
    d["malformed"] = c.malformed;
    d["wrong_version"] = c.wrong_version;
    d["events_published"] = c.events_published;
    d["events_delivered"] = inbox_->published();
    d["events_dropped"] = inbox_->dropped();
    d["events_queued"] = inbox_->queued();
    return d;
  }

  py::dict limits() {
    const sup::LimitReport& r = sup().limits();
    py::dict d;
    d["memory"] = sup::to_string(r.memory);
    d["cpu"] = sup::to_string(r.cpu);
    d["why"] = r.why;
    return d;
  }

  // -- topics ------------------------------------------------------------------------------
  Publisher advertise(const std::string& topic, const std::string& type, std::uint32_t size,
                      std::uint64_t max_payload, std::uint32_t history, std::uint32_t capacity,
                      const std::string& transport, bool batched) {
    symphony::engine::TopicOptions options;
    options.transport = parse_transport(transport);
    options.max_payload = size > 0 ? size : max_payload;
    options.history = history;
    options.capacity = capacity;
    symphony::engine::PublisherOptions po;
    po.route = batched ? symphony::engine::Route::batched : symphony::engine::Route::direct;
    std::optional<symphony::engine::Result<symphony::engine::RawPublisher>> raw;
    {
      py::gil_scoped_release unlocked;
      raw.emplace(bus().advertise(topic, {type, size}, options, po));
    }
    if (!*raw) raise_error(raw->error());
    return Publisher(std::move(**raw));
  }

  Subscriber subscribe(const std::string& topic, const std::string& type, std::uint32_t size,
                       std::uint64_t max_payload, std::uint32_t depth, const std::string& overflow,
                       bool history, const std::string& group, std::uint32_t topic_history,
                       std::uint32_t capacity, const std::string& transport) {
    symphony::engine::TopicOptions options;
    options.transport = parse_transport(transport);
    options.max_payload = size > 0 ? size : max_payload;
    options.history = topic_history;
    options.capacity = capacity;
    symphony::engine::SubscriberOptions so;
    so.depth = depth;
    if (overflow == "block") so.overflow = symphony::engine::Overflow::block;
    else if (overflow == "discard_oldest") so.overflow = symphony::engine::Overflow::discard_oldest;
    else throw py::value_error("overflow: 'block' or 'discard_oldest' (got '" + overflow + "')");
    so.history = history;
    so.group = group;
    std::optional<symphony::engine::Result<symphony::engine::RawSubscriber>> raw;
    {
      py::gil_scoped_release unlocked;
      raw.emplace(bus().subscribe(topic, {type, size}, options, so));
    }
    if (!*raw) raise_error(raw->error());
    return Subscriber(std::move(**raw));
  }

 private:
  static Completion to_completion(std::uint64_t token, const std::string& route,
                                  symphony::engine::Result<std::string> reply) {
    Completion c;
    c.token = token;
    c.route = route;
    c.ok = reply.has_value();
    if (reply) {
      c.text = std::move(*reply);
    } else {
      c.text = std::move(reply.error().message);
      c.code = code_name(reply.error().code);
    }
    return c;
  }

  sup::ManifestResult<sup::Manifest> parse(py::handle manifest) {
    py::object pathlike = py::module_::import("os").attr("PathLike");
    if (py::isinstance(manifest, pathlike))
      return sup::load_manifest(py::str(manifest).cast<std::string>());
    if (py::isinstance<py::str>(manifest)) {
      const std::string text = manifest.cast<std::string>();
      const auto first = text.find_first_not_of(" \t\r\n");
      if (first == std::string::npos || text[first] != '{') return sup::load_manifest(text);
      return sup::parse_manifest(text);
    }
    return sup::parse_manifest(json_text(manifest));
  }

  template <typename F>
  void blocking(F call) {
    symphony::engine::Result<void> result;
    {
      py::gil_scoped_release unlocked;
      result = call();
    }
    if (!result) raise_error(result.error());
  }

  sup::Supervisor& sup() const {
    if (!supervisor_) throw std::runtime_error("the IPCBus is closed");
    return *supervisor_;
  }
  const symphony::Bus& bus() const {
    if (!bus_) throw std::runtime_error("the IPCBus is closed");
    return *bus_;
  }
  symphony::Bus& bus() {
    if (!bus_) throw std::runtime_error("the IPCBus is closed");
    return *bus_;
  }

  void work() {
    std::unique_lock lock(jobs_mutex_);
    for (;;) {
      jobs_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and nothing left
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  void shutdown() {
    {
      std::lock_guard lock(jobs_mutex_);
      if (stopping_ && !worker_.joinable() && !supervisor_) return;
      stopping_ = true;
    }
    jobs_cv_.notify_all();
    // Jobs still queued run (each fails fast or at its timeout) before the supervisor goes.
    if (worker_.joinable()) worker_.join();
    supervisor_.reset();  // stops every extension; pending requests fail with "host stopped"
    bus_.reset();
  }

  std::shared_ptr<Inbox> inbox_;
  std::optional<symphony::Bus> bus_;
  std::unique_ptr<sup::Supervisor> supervisor_;
  std::chrono::milliseconds request_timeout_{5000};
  std::atomic<std::uint64_t> next_token_{0};
  std::mutex jobs_mutex_;
  std::condition_variable jobs_cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace

PYBIND11_MODULE(symphony_ipc, m) {
  m.doc() = "Symphony's engine from Python: an IPCBus (supervisor + control plane + topics), "
            "zero-copy samples and loans. The asyncio layer is symphony_conductor.aio.";

  static py::exception<std::runtime_error> error(m, "SymphonyError", PyExc_RuntimeError);
  error_type_slot() = error;
  error.attr("code") = "";
  error.doc() = "An engine error; .code names it (unavailable, not_found, system_error, ...).";

  py::class_<Sample> sample(m, "Sample", R"doc(
A received sample, read in place in shared memory. Export it with memoryview(sample) (read-only)
or numpy.frombuffer(sample, dtype); it stays valid until it is released: at the end of its
`with` block, by release(), or when the Sample is garbage collected. Releasing while a view is
alive raises BufferError; the sample then stays held until the last view is gone.)doc");
  reinterpret_cast<PyTypeObject*>(sample.ptr())->tp_as_buffer = &g_sample_buffer;
  sample.def("release", &Sample::release)
      .def("tobytes", &Sample::to_bytes, "A copy of the payload.")
      .def("__len__", &Sample::size)
      .def_property_readonly("held", &Sample::held)
      .def_property_readonly("exports", &Sample::exports, "Live buffer exports (views).")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Sample& s, py::handle, py::handle, py::handle) {
        s.release();
        return false;
      });

  py::class_<LoanBuffer> loan(m, "Loan", R"doc(
Writable bytes inside the topic's shared memory. Write through memoryview(loan) (or numpy), then
publish(): at the end of its `with` block, by publish(), or when garbage collected (a loan
cannot be taken back). Publishing while a view is alive raises BufferError; it is then published
when the last view is released.)doc");
  reinterpret_cast<PyTypeObject*>(loan.ptr())->tp_as_buffer = &g_loan_buffer;
  loan.def("publish", &LoanBuffer::publish)
      .def("__len__", &LoanBuffer::size)
      .def_property_readonly("open", &LoanBuffer::open)
      .def_property_readonly("exports", &LoanBuffer::exports)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](LoanBuffer& l, py::handle, py::handle, py::handle) {
        l.publish();
        return false;
      });

  py::class_<Publisher>(m, "Publisher")
      .def("publish", &Publisher::publish, py::arg("data"),
           "Copies a bytes-like object into the topic. True: published; False: full.")
      .def("loan", &Publisher::loan, py::arg("size"),
           "A Loan of `size` writable bytes in shared memory, or None when full.")
      .def("flush", &Publisher::flush)
      .def("counters", &Publisher::counters)
      .def("close", &Publisher::close)
      .def_property_readonly("topic", &Publisher::topic);

  py::class_<Subscriber>(m, "Subscriber")
      .def("take", &Subscriber::take, "The next Sample, or None if none is waiting.")
      .def("take_wait", &Subscriber::take_wait, py::arg("timeout"),
           "Waits (GIL released) up to `timeout` seconds for the next Sample; None if none.")
      .def("notify_fd", &Subscriber::notify_fd,
           "An fd readable while samples may be waiting (for loop.add_reader).")
      .def("counters", &Subscriber::counters)
      .def("close", &Subscriber::close)
      .def_property_readonly("holding", &Subscriber::holding)
      .def_property_readonly("position", &Subscriber::position)
      .def_property_readonly("topic", &Subscriber::topic);

  py::class_<IPCBus>(m, "IPCBus", R"doc(
A bus with a supervisor: IPCBus(config), config a bus name or a dict with keys bus,
runtime_dir, log_dir, heartbeat_interval_ms, unresponsive_after_ms, stop_grace_ms,
kill_grace_ms, cgroups, max_events, request_timeout_ms. close() (or leaving its `with` block)
stops every extension.)doc")
      .def(py::init<py::handle>(), py::arg("config") = py::none())
      .def("close", &IPCBus::close)
      .def_property_readonly("closed", &IPCBus::closed)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](IPCBus& b, py::handle, py::handle, py::handle) {
        b.close();
        return false;
      })
      .def_property_readonly("name", &IPCBus::name)
      .def_property_readonly("runtime_dir", &IPCBus::runtime_dir)
      .def("spawn_extension", &IPCBus::spawn_extension, py::arg("manifest"),
           py::arg("wait") = true, py::arg("timeout") = 10.0,
           "Adds a manifest (JSON text, a dict, or a file path); eager extensions start. With "
           "wait, returns once every instance is HEALTHY. Returns the extension id.")
      .def("wait_healthy", &IPCBus::wait_healthy, py::arg("extension"), py::arg("timeout") = 10.0)
      .def("stop_extension", &IPCBus::stop_extension, py::arg("extension"))
      .def("start_extension", &IPCBus::start_extension, py::arg("extension"))
      .def("restart_extension", &IPCBus::restart_extension, py::arg("extension"))
      .def("remove_extension", &IPCBus::remove_extension, py::arg("extension"))
      .def("send_message", &IPCBus::send_message, py::arg("extension_id"),
           py::arg("message_type"), py::arg("payload") = py::none(),
           py::arg("timeout") = py::none(),
           "A request, waited for (GIL released): the reply's JSON text, or SymphonyError.")
      .def("request_async", &IPCBus::request_async, py::arg("target"), py::arg("method"),
           py::arg("payload") = py::none(), py::arg("timeout") = py::none(),
           "Sends a request; returns a token whose reply comes out of completions().")
      .def("completions", &IPCBus::completions,
           "Replies that arrived: [(token, ok, text, code, route)]; drains completion_fd.")
      .def_property_readonly("completion_fd", &IPCBus::completion_fd)
      .def_property_readonly("event_fd", &IPCBus::event_fd)
      .def("poll_events", &IPCBus::poll_events, py::arg("max") = 1024)
      .def("wait_event", &IPCBus::wait_event, py::arg("timeout"))
      .def("figures", &IPCBus::figures, py::arg("extension") = py::none())
      .def("topics", &IPCBus::topics)
      .def("counters", &IPCBus::counters)
      .def("limits", &IPCBus::limits)
      .def("advertise", &IPCBus::advertise, py::arg("topic"), py::arg("type") = "bytes",
           py::arg("size") = 0, py::arg("max_payload") = 4096, py::arg("history") = 0,
           py::arg("capacity") = 0, py::arg("transport") = "native", py::arg("batched") = false)
      .def("subscribe", &IPCBus::subscribe, py::arg("topic"), py::arg("type") = "bytes",
           py::arg("size") = 0, py::arg("max_payload") = 4096, py::arg("depth") = 64,
           py::arg("overflow") = "block", py::arg("history") = true, py::arg("group") = "",
           py::arg("topic_history") = 0, py::arg("capacity") = 0,
           py::arg("transport") = "native");
}
