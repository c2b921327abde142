// control-rr: our control plane's request/reply (controlplane::ControlHost::request to an
// ExtensionChannel that echoes), over ipc://, as a host uses it: asynchronously, the reply's
// callback sending the next request from the host's I/O thread. The payload is written (hex, in
// a JSON string) before each request and compared whole with the reply; both are timed as the
// touch and kept out of the latency (the extension's echo is the control plane's own work: it
// parses and copies the JSON). Ping-pong only, and only in blocking mode: both I/O threads
// always wait in zmq_poll, and a busy mode would need a polling I/O loop in the control plane.

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <condition_variable>
#include <mutex>

#include "drivers.hpp"
#include "symphony/controlplane/extension.hpp"
#include "symphony/controlplane/host.hpp"
#include "symphony/engine/latency_histogram.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

using namespace std::chrono_literals;

std::string hex_payload(const PayloadPattern& pattern, std::uint64_t sequence,
                        std::vector<std::byte>& scratch) {
  static constexpr char kHex[] = "0123456789abcdef";
  pattern.write(scratch, sequence);
  std::string json;
  json.reserve(scratch.size() * 2 + 2);
  json += '"';
  for (const std::byte b : scratch) {
    json += kHex[std::to_integer<unsigned>(b) >> 4];
    json += kHex[std::to_integer<unsigned>(b) & 15];
  }
  json += '"';
  return json;
}

class ControlSession final : public Session {
 public:
  ControlSession(std::string bus, std::string control, std::string events,
                 controlplane::Registration registration)
      : bus_(std::move(bus)),
        control_(std::move(control)),
        events_(std::move(events)),
        registration_(std::move(registration)) {}
  // The sides _exit() without closing their sockets: the bound socket files stay.
  ~ControlSession() override {
    for (const std::string* endpoint : {&control_, &events_}) {
      ::unlink(endpoint->substr(std::strlen("ipc://")).c_str());
    }
  }

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&]() -> SideReport {
      return side.role == Role::initiator ? run_host(side) : run_extension(side);
    });
  }

 private:
  SideReport run_host(const SideContext& side) {
    SideReport report;
    controlplane::HostOptions options;
    options.bus = bus_;
    options.control_endpoint = control_;
    options.events_endpoint = events_;
    auto host = controlplane::ControlHost::start(options);
    if (!host) return fail(report, "cannot start the host: %s", host.error().message.c_str());
    (*host)->register_extension(registration_);
    const std::string route = registration_.route();
    while (true) {
      bool connected = false;
      for (const auto& peer : (*host)->peers()) {
        connected |= peer.state == controlplane::PeerState::connected;
      }
      if (connected) break;
      if (SteadyClock::now() >= side.deadline) return fail(report, "the extension never said hello");
      std::this_thread::sleep_for(1ms);
    }
    if (!arrive_and_wait(side, report)) return report;

    const MeasureSpec& spec = *side.spec;
    const TickClock& clock = *side.clock;
    const PayloadPattern pattern(spec.payload);
    std::vector<std::byte> scratch(spec.payload);
    LatencyRecorder recorder;
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false;
    std::string failure;
    std::uint64_t sequence = 0;
    std::uint64_t measured = 0;
    bool measuring = false;
    const std::uint64_t warmup_end = clock.now() + clock.from_ns(kWarmupNs);
    std::uint64_t run_end = 0;
    NoiseMeter noise;
    const auto timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(spec.timeout);

    // Runs on the host's I/O thread: each reply sends the next request.
    std::function<void()> send_next;
    send_next = [&] {
      ++sequence;
      const std::uint64_t write_start = clock.now();
      auto payload = std::make_shared<std::string>(hex_payload(pattern, sequence, scratch));
      const std::uint64_t sent = clock.now();
      (*host)->request(route, "echo", *payload, timeout,
                       [&, payload, sent, write_start](engine::Result<std::string> reply) {
                         const std::uint64_t received = clock.now();
                         std::string why;
                         if (!reply) {
                           why = reply.error().message;
                         } else if (*reply != *payload) {
                           why = "the reply is not the request's echo";
                         }
                         const std::uint64_t read_end = clock.now();
                         if (why.empty() && measuring) {
                           // One way: half the round trip; touch: the hex write and the compare,
                           // halved like the round trip (one write and one read per message).
                           recorder.record(
                               clock.to_ns(received - sent) / 2,
                               clock.to_ns((sent - write_start) + (read_end - received)) / 2);
                           ++measured;
                         }
                         if (why.empty() && !measuring && sequence >= kMinWarmupRoundTrips &&
                             received >= warmup_end) {
                           measuring = true;
                           noise.start();
                           run_end = received + clock.from_ns(
                                                    static_cast<std::uint64_t>(spec.seconds * 1e9));
                         }
                         const bool over =
                             measuring && (spec.messages != 0 ? measured == spec.messages
                                                              : received >= run_end);
                         if (!why.empty() || over) {
                           std::lock_guard lock(mutex);
                           failure = why;
                           done = true;
                           finished.notify_all();
                           return;
                         }
                         send_next();
                       });
    };
    (*host)->request(route, "noop", "null", timeout, [&](engine::Result<std::string>) {
      send_next();  // start the chain on the I/O thread
    });
    {
      std::unique_lock lock(mutex);
      if (!finished.wait_until(lock, side.deadline, [&] { return done; })) {
        return fail(report, "timed out after %llu round trips",
                    static_cast<unsigned long long>(sequence));
      }
      if (!failure.empty()) {
        return fail(report, "request %llu: %s", static_cast<unsigned long long>(sequence),
                    failure.c_str());
      }
    }
    noise.stop(report);
    (*host)->request(route, "stop", "null", 1s).wait();
    return recorder.report(report, *side.control);
  }

  SideReport run_extension(const SideContext& side) {
    SideReport report;
    controlplane::ExtensionOptions options;
    options.bus = bus_;
    options.extension = registration_.extension;
    options.instance = registration_.instance;
    options.generation = registration_.generation;
    options.token = registration_.token;
    options.control_endpoint = control_;
    // The main thread sleeps until "stop" arrives: a polling loop here woke up on the
    // extension's core 1000 times a second and showed up in the I/O thread's latency.
    std::mutex stop_mutex;
    std::condition_variable stop_requested;
    bool stop = false;
    std::atomic<std::uint64_t> served{0};
    controlplane::ExtensionHandlers handlers;
    handlers.on_request = [&](const std::string& method,
                              const std::string& payload) -> engine::Result<std::string> {
      if (method == "stop") {
        std::lock_guard lock(stop_mutex);
        stop = true;
        stop_requested.notify_all();
      }
      served.fetch_add(1, std::memory_order_relaxed);
      return payload;  // read whole (it was parsed and copied) and sent back
    };
    auto channel = controlplane::ExtensionChannel::connect(options, handlers);
    if (!channel) return fail(report, "cannot connect: %s", channel.error().message.c_str());
    if (!arrive_and_wait(side, report)) return report;
    NoiseMeter noise;
    noise.start();
    {
      std::unique_lock lock(stop_mutex);
      if (!stop_requested.wait_until(lock, side.deadline, [&] { return stop; })) {
        return fail(report, "never told to stop");
      }
    }
    noise.stop(report);
    report.messages = served.load();
    report.ok = 1;
    return report;
  }

  std::string bus_;
  std::string control_;
  std::string events_;
  controlplane::Registration registration_;
};

class ControlRrTransport final : public Transport {
 public:
  std::string_view name() const noexcept override { return "control-rr"; }
  std::string_view summary() const noexcept override {
    return "ours: controlplane::ControlHost::request to an ExtensionChannel (JSON envelope, "
           "ZeroMQ ROUTER/DEALER over ipc://); ping-pong in blocking mode only, <= 64 KiB";
  }
  std::string_view description() const noexcept override {
    return "Ours: the control plane's request/reply, controlplane::ControlHost::request to an "
           "ExtensionChannel that echoes, over ZeroMQ ROUTER/DEALER on ipc:// with a JSON "
           "envelope, as a host uses it: each reply's callback sends the next request on the "
           "host's I/O thread. The payload travels as hex in a JSON string: the sender writes "
           "it (hex-encodes) and compares the reply with it; the extension parses and copies "
           "it back. Ping-pong, blocking only (the I/O threads always wait in zmq_poll), at most "
           "64 KiB per message.";
  }

  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.pattern != Pattern::pingpong) return "request/reply: ping-pong only";
    if (spec.mode != Mode::blocking) {
      return "blocking only: the control plane's I/O threads always wait in zmq_poll (a busy "
             "mode would need a polling I/O loop in controlplane/)";
    }
    if (spec.payload > 64 * 1024) return "control messages carry at most 64 KiB (use a handoff)";
    return {};
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec&,
                                                   const std::string& name_prefix) override {
    std::string bus = name_prefix;
    std::replace(bus.begin(), bus.end(), '.', '-');
    while (!bus.empty() && bus.back() == '-') bus.pop_back();
    const std::string base = "ipc:///tmp/" + name_prefix;
    controlplane::Registration registration{"echo", 0, 1, controlplane::make_token()};
    return std::unique_ptr<Session>(new ControlSession(bus, base + "control", base + "events",
                                                       std::move(registration)));
  }
};

}  // namespace

std::unique_ptr<Transport> make_control_rr_transport() {
  return std::make_unique<ControlRrTransport>();
}

}  // namespace symphony::perf
