// zmq-ipc: the peer, raw cppzmq over ipc://. Ping-pong: the initiator's DEALER to the echoer's
// ROUTER, which answers to the identity it received from. Throughput: a DEALER pushing to a
// ROUTER. The payload is written into a message buffer before sending and read from the
// received message (zero-copy on neither side: that is how ZeroMQ is used). Busy mode polls
// with ZMQ_DONTWAIT and yields the core after each empty poll: libzmq's I/O thread, which moves
// the bytes between the socket and the pipe, runs on the spinning side's core (without the
// yield it waits for the scheduler to preempt the spinner); blocking mode waits in zmq::poll.

#include <unistd.h>

#include <cstring>
#include <optional>
#include <zmq.hpp>

#include "drivers.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

class ZmqEndpoint {
 public:
  // Sent messages sit in libzmq's queues and I/O threads after send() returns (drivers.hpp).
  static constexpr bool kInFlightAfterSend = true;

  ZmqEndpoint(zmq::socket_t& socket, bool router, bool busy)
      : socket_(socket), router_(router), busy_(busy) {}

  // Sender
  Poll try_loan(std::size_t size, std::span<std::byte>& out) noexcept {
    out_.rebuild(size);
    out = std::span<std::byte>(static_cast<std::byte*>(out_.data()), size);
    return Poll::ready;
  }
  Poll wait_loan(std::size_t size, std::span<std::byte>& out, SteadyClock::time_point) noexcept {
    return try_loan(size, out);
  }
  void publish() noexcept {
    try {
      if (router_) socket_.send(zmq::buffer(identity_), zmq::send_flags::sndmore);
      if (!socket_.send(out_, zmq::send_flags::none)) failure_ = "send would block";
    } catch (const zmq::error_t& e) {
      failure_ = e.what();
    }
  }

  // Receiver
  Poll try_receive(std::span<const std::byte>& in) noexcept {
    try {
      if (router_) {
        zmq::message_t identity;
        if (!socket_.recv(identity, zmq::recv_flags::dontwait)) return nothing_yet();
        identity_ = identity.to_string();
        if (!socket_.recv(in_, zmq::recv_flags::none)) return Poll::failed;
      } else if (!socket_.recv(in_, zmq::recv_flags::dontwait)) {
        return nothing_yet();
      }
    } catch (const zmq::error_t& e) {
      failure_ = e.what();
      return Poll::failed;
    }
    in = std::span<const std::byte>(static_cast<const std::byte*>(in_.data()), in_.size());
    return Poll::ready;
  }
  Poll wait_receive(std::span<const std::byte>& in, SteadyClock::time_point until) noexcept {
    const auto timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - SteadyClock::now());
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::max(timeout, std::chrono::milliseconds(0)));
    } catch (const zmq::error_t&) {
      return Poll::would_block;
    }
    return try_receive(in);
  }
  void release() noexcept {}
  std::string failure() const { return "zmq-ipc: " + failure_; }

 private:
  Poll nothing_yet() const noexcept {
    if (busy_) ::sched_yield();  // let this process's I/O thread run (see above)
    return Poll::would_block;
  }

  zmq::socket_t& socket_;
  bool router_;
  bool busy_;
  std::string identity_;
  zmq::message_t out_;
  zmq::message_t in_;
  std::string failure_ = "failed";
};

class ZmqSession final : public Session {
 public:
  explicit ZmqSession(std::string endpoint) : endpoint_(std::move(endpoint)) {}
  // The sides _exit() without closing their sockets: the ROUTER's socket file stays.
  ~ZmqSession() override { ::unlink(endpoint_.substr(std::strlen("ipc://")).c_str()); }

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&]() -> SideReport {
      // The initiator and the producer connect a DEALER; the other side binds a ROUTER.
      const bool dealer = side.role == Role::initiator || side.role == Role::producer;
      zmq::context_t context(1);
      zmq::socket_t socket(context, dealer ? zmq::socket_type::dealer : zmq::socket_type::router);
      // The sender's close waits (bounded) until its queue has gone out: nothing is dropped.
      socket.set(zmq::sockopt::linger, dealer ? 10'000 : 0);
      // As much slack as the other queues get (a message per kDefaultQueueBytes / payload).
      const int hwm = static_cast<int>(std::max<std::uint64_t>(
          4, side.spec->queue_bytes / std::max<std::size_t>(side.spec->payload, 1)));
      socket.set(zmq::sockopt::sndhwm, hwm);
      socket.set(zmq::sockopt::rcvhwm, hwm);
      if (dealer) {
        socket.set(zmq::sockopt::routing_id, "initiator");
        socket.connect(endpoint_);
      } else {
        socket.bind(endpoint_);
      }
      // The connection must be up before the barrier: a DEALER that connects before the ROUTER
      // has bound retries only after ZMQ_RECONNECT_IVL (100 ms), which a throughput or open-loop
      // run, having no warm-up, would count. The DEALER says hello; the ROUTER waits for it.
      if (dealer) {
        socket.send(zmq::str_buffer("hello"), zmq::send_flags::none);
      } else {
        zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
        zmq::message_t identity;
        zmq::message_t hello;
        for (;;) {
          if (SteadyClock::now() >= side.deadline) {
            SideReport report;
            return fail(report, "zmq-ipc: the DEALER never connected");
          }
          zmq::poll(&item, 1, std::chrono::milliseconds(10));
          if (socket.recv(identity, zmq::recv_flags::dontwait)) break;
        }
        if (!socket.recv(hello, zmq::recv_flags::none) || hello.to_string_view() != "hello") {
          SideReport report;
          return fail(report, "zmq-ipc: the DEALER's first message is not its hello");
        }
      }
      ZmqEndpoint endpoint(socket, !dealer, side.spec->mode == Mode::busy);
      switch (side.role) {
        case Role::initiator:
          return pingpong_initiator(endpoint, endpoint, side);
        case Role::echoer:
          return pingpong_echoer(endpoint, endpoint, side);
        case Role::producer: {
          SideReport report = run_sender_side(endpoint, side);
          wait_for_consumers(side);  // closing now could drop what the ROUTER has not read
          return report;
        }
        case Role::consumer:
          return run_receiver_side(endpoint, side);
      }
      SideReport report;
      return fail(report, "unknown role");
    });
  }

 private:
  std::string endpoint_;
};

class ZmqIpcTransport final : public Transport {
 public:
  std::string_view name() const noexcept override { return "zmq-ipc"; }
  std::string_view summary() const noexcept override {
    return "peer: raw cppzmq DEALER/ROUTER over ipc:// (libzmq 4.3.4); payload copied into and "
           "out of messages; 1 producer, 1 consumer";
  }
  std::string_view description() const noexcept override {
    return "Peer: raw cppzmq (libzmq 4.3) DEALER to ROUTER over ipc:// in /tmp, one context with "
           "one I/O thread per process. The sender writes the payload into a zmq::message_t it "
           "sends (libzmq copies it through its pipe and the Unix socket); the receiver reads "
           "it from the received message. SNDHWM and RCVHWM are the queue bytes / payload (at "
           "least 4); the DEALER lingers up to 10 s so that nothing in flight is dropped. Busy "
           "mode polls recv with ZMQ_DONTWAIT, yielding the core after each empty poll (libzmq's "
           "I/O "
           "thread shares the spinning side's core); blocking mode waits in zmq_poll, then "
           "receives.";
  }

  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.producers != 1 || spec.consumers != 1) return "one DEALER, one ROUTER";
    if (spec.batch != 1) return "each message is sent on its own (no batching)";
    return {};
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec&,
                                                   const std::string& name_prefix) override {
    return std::unique_ptr<Session>(
        new ZmqSession("ipc:///tmp/" + name_prefix + "zmq." + std::to_string(::getpid())));
  }
};

}  // namespace

std::unique_ptr<Transport> make_zmq_ipc_transport() {
  return std::make_unique<ZmqIpcTransport>();
}

}  // namespace symphony::perf
