// uds: the peer, a Unix domain stream socket. The parent makes an AF_UNIX SOCK_STREAM
// socketpair before the fork; each side keeps its end (one bidirectional stream: pings one way,
// pongs the other). Messages are fixed-size (the payload size), so the stream needs no framing:
// the sender writes the payload into its buffer and send()s all of it (the kernel copies it into
// the peer's receive queue); the receiver recv()s exactly one payload into its buffer and reads
// it there. Busy mode uses MSG_DONTWAIT in a spin; blocking mode blocking recv(MSG_WAITALL) and
// send(), woken by the kernel.

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "drivers.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

// A blocking call wakes at least this often to look at the side's deadline (SO_RCVTIMEO,
// SO_SNDTIMEO).
constexpr timeval kBlockingSlice{0, 100'000};

class UdsEndpoint {
 public:
  UdsEndpoint(int fd, const SideContext& side)
      : fd_(fd),
        side_(side),
        busy_(side.spec->mode == Mode::busy),
        out_(side.spec->payload),
        in_(side.spec->payload) {}

  // Sender
  Poll try_loan(std::size_t, std::span<std::byte>& out) noexcept {
    if (!failure_.empty()) return Poll::failed;
    out = std::span<std::byte>(out_.data(), out_.size());
    return Poll::ready;
  }
  Poll wait_loan(std::size_t size, std::span<std::byte>& out, SteadyClock::time_point) noexcept {
    return try_loan(size, out);
  }
  // Sends the whole message; a failure or time-out shows at the next loan.
  void publish() noexcept {
    std::size_t sent = 0;
    for (std::uint32_t polls = 1; sent < out_.size(); ++polls) {
      const ssize_t n = ::send(fd_, out_.data() + sent, out_.size() - sent,
                               MSG_NOSIGNAL | (busy_ ? MSG_DONTWAIT : 0));
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        failure_ = std::string("send: ") + std::strerror(errno);
        return;
      }
      if (busy_) pause(polls);
      if (((polls & kDeadlineCheckMask) == 0 || !busy_) && SteadyClock::now() >= side_.deadline) {
        failure_ = "send: timed out (the receiver stopped reading)";
        return;
      }
    }
  }

  // Receiver: one whole message, or would_block if none has started to arrive.
  Poll try_receive(std::span<const std::byte>& in) noexcept { return receive(in, MSG_DONTWAIT); }
  Poll wait_receive(std::span<const std::byte>& in, SteadyClock::time_point) noexcept {
    return receive(in, MSG_WAITALL);
  }
  void release() noexcept { received_ = 0; }
  std::string failure() const { return "uds: " + failure_; }

 private:
  Poll receive(std::span<const std::byte>& in, int flags) noexcept {
    for (std::uint32_t polls = 1; received_ < in_.size(); ++polls) {
      const ssize_t n = ::recv(fd_, in_.data() + received_, in_.size() - received_, flags);
      if (n > 0) {
        received_ += static_cast<std::size_t>(n);
        continue;
      }
      if (n == 0) {
        failure_ = "recv: the other side closed the socket";
        return Poll::failed;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        failure_ = std::string("recv: ") + std::strerror(errno);
        return Poll::failed;
      }
      // Nothing of this message yet: the caller's wait loop decides (and checks its deadline).
      if (received_ == 0) return Poll::would_block;
      // Part of it: the rest is on its way; finish it here.
      if (flags == MSG_DONTWAIT) pause(polls);
      if ((polls & kDeadlineCheckMask) == 0 && SteadyClock::now() >= side_.deadline) {
        failure_ = "recv: timed out in the middle of a message";
        return Poll::failed;
      }
    }
    in = std::span<const std::byte>(in_.data(), in_.size());
    return Poll::ready;
  }

  void pause(std::uint32_t polls) const noexcept {
    if (side_.yield && polls > kSpinsBeforeYield) {
      ::sched_yield();
    } else if (side_.spec->pause_while_spinning) {
      engine::cpu_relax();
    }
  }

  int fd_;
  const SideContext& side_;
  bool busy_;
  std::vector<std::byte> out_;
  std::vector<std::byte> in_;
  std::size_t received_ = 0;
  std::string failure_;
};

class UdsSession final : public Session {
 public:
  UdsSession(int first, int second) noexcept : fds_{first, second} {}
  ~UdsSession() override {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&]() -> SideReport {
      // The initiator and producer use the first end; echoer and consumer the second.
      const bool first = side.role == Role::initiator || side.role == Role::producer;
      const int fd = fds_[first ? 0 : 1];
      ::close(fds_[first ? 1 : 0]);  // this child's copy of the other end
      if (side.spec->mode == Mode::blocking) {
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &kBlockingSlice, sizeof kBlockingSlice);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &kBlockingSlice, sizeof kBlockingSlice);
      }
      UdsEndpoint endpoint(fd, side);
      switch (side.role) {
        case Role::initiator:
          return pingpong_initiator(endpoint, endpoint, side);
        case Role::echoer:
          return pingpong_echoer(endpoint, endpoint, side);
        case Role::producer:
          return run_sender_side(endpoint, side);
        case Role::consumer:
          return run_receiver_side(endpoint, side);
      }
      SideReport report;
      return fail(report, "unknown role");
    });
  }

 private:
  int fds_[2];
};

class UdsTransport final : public Transport {
 public:
  std::string_view name() const noexcept override { return "uds"; }
  std::string_view summary() const noexcept override {
    return "peer: an AF_UNIX SOCK_STREAM socketpair; payload copied into and out of the "
           "socket; busy (MSG_DONTWAIT spin) or blocking (blocking recv/send); 1 -> 1";
  }
  std::string_view description() const noexcept override {
    return "Peer: a Unix domain stream socket (AF_UNIX SOCK_STREAM socketpair made by the "
           "parent before the fork, one bidirectional stream; SO_SNDBUF and SO_RCVBUF = the "
           "queue bytes, which the kernel doubles). Messages are fixed-size, so there is no "
           "framing: the sender writes the payload into its buffer and send()s it all (the "
           "kernel copies it into the peer's receive queue); the receiver recv()s exactly one "
           "payload into its own buffer and reads it there. Busy mode: recv and send with "
           "MSG_DONTWAIT in a spin; blocking mode: blocking recv(MSG_WAITALL) and send, woken by "
           "the kernel.";
  }
  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.producers != 1 || spec.consumers != 1) return "one stream, one sender, one receiver";
    if (spec.batch != 1) return "each message is sent on its own (no batching)";
    return {};
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec& spec,
                                                   const std::string&) override {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return tl::unexpected(engine::Error{engine::Errc::system_error,
                                          std::string("socketpair: ") + std::strerror(errno)});
    }
    // As much slack as the other queues get.
    const int bytes = static_cast<int>(std::min<std::uint64_t>(spec.queue_bytes, 1U << 30));
    for (const int fd : fds) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    }
    return std::unique_ptr<Session>(new UdsSession(fds[0], fds[1]));
  }
};

}  // namespace

std::unique_ptr<Transport> make_uds_transport() {
  return std::make_unique<UdsTransport>();
}

}  // namespace symphony::perf
