// boost-mq: the peer, boost::interprocess::message_queue (a named shm segment holding a
// process-shared mutex, two condition variables and max_num_msg slots of max_msg_size bytes).
// One queue per direction. The sender writes the payload into its buffer and send() copies it
// into a slot; the receiver's receive() copies the slot into its own buffer, where it is read.
// Busy mode spins on try_send / try_receive; blocking mode waits in timed_send / timed_receive
// (the queue's condition variables: a futex underneath).

#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <cstring>
#include <optional>
#include <vector>

#include "drivers.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

namespace bip = boost::interprocess;

// A blocking call wakes at least this often to look at the side's deadline.
constexpr auto kBlockingSlice = std::chrono::milliseconds(100);

class MqSender {
 public:
  MqSender(bip::message_queue& queue, const SideContext& side)
      : queue_(queue), side_(side), out_(side.spec->payload) {}
  Poll try_loan(std::size_t, std::span<std::byte>& out) noexcept {
    if (!failure_.empty()) return Poll::failed;
    out = std::span<std::byte>(out_.data(), out_.size());
    return Poll::ready;
  }
  Poll wait_loan(std::size_t size, std::span<std::byte>& out, SteadyClock::time_point) noexcept {
    return try_loan(size, out);
  }
  // Copies the message into the queue, waiting for room as the mode says; a failure or
  // time-out shows at the next loan.
  void publish() noexcept {
    try {
      if (side_.spec->mode == Mode::blocking) {
        while (!queue_.timed_send(out_.data(), out_.size(), 0, slice_end())) {
          if (SteadyClock::now() >= side_.deadline) {
            failure_ = "send: timed out (the queue stayed full)";
            return;
          }
        }
        return;
      }
      for (std::uint32_t polls = 1; !queue_.try_send(out_.data(), out_.size(), 0); ++polls) {
        if (side_.yield && polls > kSpinsBeforeYield) {
          ::sched_yield();
        } else if (side_.spec->pause_while_spinning) {
          engine::cpu_relax();
        }
        if ((polls & kDeadlineCheckMask) == 0 && SteadyClock::now() >= side_.deadline) {
          failure_ = "send: timed out (the queue stayed full)";
          return;
        }
      }
    } catch (const bip::interprocess_exception& e) {
      failure_ = std::string("send: ") + e.what();
    }
  }
  std::string failure() const { return "boost-mq: " + failure_; }

 private:
  boost::posix_time::ptime slice_end() const {
    return boost::posix_time::microsec_clock::universal_time() +
           boost::posix_time::milliseconds(kBlockingSlice.count());
  }
  bip::message_queue& queue_;
  const SideContext& side_;
  std::vector<std::byte> out_;
  std::string failure_;
};

class MqReceiver {
 public:
  MqReceiver(bip::message_queue& queue, std::size_t payload) : queue_(queue), in_(payload) {}
  Poll try_receive(std::span<const std::byte>& in) noexcept {
    return accept(
        [&](std::size_t& size, unsigned& priority) {
          return queue_.try_receive(in_.data(), in_.size(), size, priority);
        },
        in);
  }
  Poll wait_receive(std::span<const std::byte>& in, SteadyClock::time_point until) noexcept {
    const auto now = SteadyClock::now();
    const auto wait = std::min<SteadyClock::duration>(
        until > now ? until - now : SteadyClock::duration{}, kBlockingSlice);
    const auto end = boost::posix_time::microsec_clock::universal_time() +
                     boost::posix_time::microseconds(
                         std::chrono::duration_cast<std::chrono::microseconds>(wait).count());
    return accept(
        [&](std::size_t& size, unsigned& priority) {
          return queue_.timed_receive(in_.data(), in_.size(), size, priority, end);
        },
        in);
  }
  void release() noexcept {}
  std::string failure() const { return "boost-mq: " + failure_; }

 private:
  template <typename Receive>
  Poll accept(Receive&& receive, std::span<const std::byte>& in) noexcept {
    std::size_t size = 0;
    unsigned priority = 0;
    try {
      if (!receive(size, priority)) return Poll::would_block;
    } catch (const bip::interprocess_exception& e) {
      failure_ = std::string("receive: ") + e.what();
      return Poll::failed;
    }
    in = std::span<const std::byte>(in_.data(), size);
    return Poll::ready;
  }
  bip::message_queue& queue_;
  std::vector<std::byte> in_;
  std::string failure_;
};

class MqSession final : public Session {
 public:
  explicit MqSession(std::vector<std::string> names) noexcept : names_(std::move(names)) {}
  ~MqSession() override {
    for (const std::string& name : names_) bip::message_queue::remove(name.c_str());
  }

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&]() -> SideReport {
      // Ping-pong: queue 0 carries pings, queue 1 pongs. One-way patterns: queue 0.
      std::vector<std::unique_ptr<bip::message_queue>> queues;
      for (const std::string& name : names_) {
        queues.push_back(std::make_unique<bip::message_queue>(bip::open_only, name.c_str()));
      }
      const std::size_t payload = side.spec->payload;
      switch (side.role) {
        case Role::initiator: {
          MqSender ping(*queues[0], side);
          MqReceiver pong(*queues[1], payload);
          return pingpong_initiator(ping, pong, side);
        }
        case Role::echoer: {
          MqSender pong(*queues[1], side);
          MqReceiver ping(*queues[0], payload);
          return pingpong_echoer(pong, ping, side);
        }
        case Role::producer: {
          MqSender tx(*queues[0], side);
          return run_sender_side(tx, side);
        }
        case Role::consumer: {
          MqReceiver rx(*queues[0], payload);
          return run_receiver_side(rx, side);
        }
      }
      SideReport report;
      return fail(report, "unknown role");
    });
  }

 private:
  std::vector<std::string> names_;
};

class BoostMqTransport final : public Transport {
 public:
  std::string_view name() const noexcept override { return "boost-mq"; }
  std::string_view summary() const noexcept override {
    return "peer: boost::interprocess::message_queue in shm; payload copied in by send and out "
           "by receive; busy (try_receive spin) or blocking (receive); 1 -> 1";
  }
  std::string_view description() const noexcept override {
    return "Peer: boost::interprocess::message_queue (Boost 1.74), one named queue per "
           "direction in a shm segment holding a process-shared mutex, two condition variables "
           "and max_num_msg = the queue bytes / payload (at least 4) slots of max_msg_size = "
           "the payload. The sender writes the payload into its buffer and send() copies it "
           "into a slot under the mutex; receive() copies the slot into the receiver's buffer, "
           "where it is read. Busy mode spins on try_send/try_receive; blocking mode waits in "
           "timed_send/timed_receive (the queue's condition variables, a futex underneath).";
  }
  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.producers != 1 || spec.consumers != 1) return "measured 1 -> 1 only";
    if (spec.batch != 1) return "each message is sent on its own (no batching)";
    return {};
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec& spec,
                                                   const std::string& name_prefix) override {
    const std::size_t messages =
        std::max<std::uint64_t>(4, spec.queue_bytes / std::max<std::size_t>(spec.payload, 1));
    std::vector<std::string> names;
    const int count = spec.pattern == Pattern::pingpong ? 2 : 1;
    try {
      for (int i = 0; i < count; ++i) {
        names.push_back(name_prefix + "mq" + std::to_string(i));
        bip::message_queue::remove(names.back().c_str());
        bip::message_queue queue(bip::create_only, names.back().c_str(), messages, spec.payload);
      }
    } catch (const bip::interprocess_exception& e) {
      for (const std::string& name : names) bip::message_queue::remove(name.c_str());
      return tl::unexpected(
          engine::Error{engine::Errc::system_error, std::string("message_queue: ") + e.what()});
    }
    return std::unique_ptr<Session>(new MqSession(std::move(names)));
  }
};

}  // namespace

std::unique_ptr<Transport> make_boost_mq_transport() {
  return std::make_unique<BoostMqTransport>();
}

}  // namespace symphony::perf
