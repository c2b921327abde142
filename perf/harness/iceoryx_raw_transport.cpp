// iceoryx-raw: the peer, plain iceoryx 2.0 (iox::popo::UntypedPublisher / UntypedSubscriber),
// as an iceoryx application would use it; none of our transport code on the data path.
// Ping-pong uses two services, one each way; throughput one. Publishers WAIT_FOR_CONSUMER and
// subscribers BLOCK_PRODUCER, so that nothing is lost (a full queue makes iceoryx's publish()
// wait). Loans are written in place and samples read in place. Busy mode spins on take();
// blocking mode waits in an iox::popo::WaitSet attached to the subscriber's HAS_DATA state.
//
// iceoryx allows one runtime per process and must not be initialised before fork(): the parent
// only makes sure RouDi runs (run_roudi.hpp: the harness's own RouDi with 64 MiB chunks, or the
// one already running), and each side initialises its own runtime in its child.

#include <unistd.h>

#include <algorithm>
#include <optional>
#include <thread>

#include "drivers.hpp"
#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "roudi_lease.hpp"
#include "roudi_protocol.hpp"
#include "run_roudi.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

// iceoryx 2.0: a publisher holds at most 8 loans at once.
constexpr unsigned kMaxLoans = iox::MAX_CHUNKS_ALLOCATED_PER_PUBLISHER_SIMULTANEOUSLY;
constexpr std::uint64_t kChunkHeader = sizeof(iox::mepoo::ChunkHeader);

class RawSender {
 public:
  explicit RawSender(iox::popo::UntypedPublisher& publisher) noexcept : publisher_(publisher) {}
  Poll try_loan(std::size_t size, std::span<std::byte>& out) noexcept {
    if (pending_count_ == kMaxLoans) {
      failure_ = "more than 8 loans before a publish";
      return Poll::failed;
    }
    auto chunk = publisher_.loan(static_cast<std::uint32_t>(size));
    if (chunk.has_error()) {
      failure_ = "loan: allocation error " + std::to_string(static_cast<int>(chunk.get_error()));
      return Poll::failed;
    }
    pending_[pending_count_++] = chunk.value();
    out = std::span<std::byte>(static_cast<std::byte*>(chunk.value()), size);
    return Poll::ready;
  }
  // iceoryx has no waiting loan: a full queue makes publish() wait instead.
  Poll wait_loan(std::size_t size, std::span<std::byte>& out, SteadyClock::time_point) noexcept {
    return try_loan(size, out);
  }
  void publish() noexcept {
    for (unsigned i = 0; i < pending_count_; ++i) publisher_.publish(pending_[i]);
    pending_count_ = 0;
  }
  std::string failure() const { return "iceoryx-raw: " + failure_; }

 private:
  iox::popo::UntypedPublisher& publisher_;
  void* pending_[kMaxLoans] = {};
  unsigned pending_count_ = 0;
  std::string failure_;
};

class RawReceiver {
 public:
  RawReceiver(iox::popo::UntypedSubscriber& subscriber, iox::popo::WaitSet<>* waitset) noexcept
      : subscriber_(subscriber), waitset_(waitset) {}
  Poll try_receive(std::span<const std::byte>& in) noexcept {
    auto taken = subscriber_.take();
    if (taken.has_error()) [[unlikely]] {
      if (taken.get_error() == iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) {
        return Poll::would_block;
      }
      failure_ = "take: too many samples held";
      return Poll::failed;
    }
    const void* payload = taken.value();
    held_[held_count_++] = payload;
    const auto* header = iox::mepoo::ChunkHeader::fromUserPayload(payload);
    in = std::span<const std::byte>(static_cast<const std::byte*>(payload),
                                    header->userPayloadSize());
    return Poll::ready;
  }
  Poll wait_receive(std::span<const std::byte>& in, SteadyClock::time_point until) noexcept {
    for (;;) {
      const Poll poll = try_receive(in);
      if (poll != Poll::would_block) return poll;
      const auto now = SteadyClock::now();
      if (now >= until) return Poll::would_block;
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(until - now);
      waitset_->timedWait(iox::units::Duration::fromNanoseconds(left.count()));
    }
  }
  void release() noexcept {
    for (unsigned i = 0; i < held_count_; ++i) subscriber_.release(held_[i]);
    held_count_ = 0;
  }
  std::string failure() const { return "iceoryx-raw: " + failure_; }

 private:
  iox::popo::UntypedSubscriber& subscriber_;
  iox::popo::WaitSet<>* waitset_;
  const void* held_[iox::MAX_CHUNKS_HELD_PER_SUBSCRIBER_SIMULTANEOUSLY] = {};
  unsigned held_count_ = 0;
  std::string failure_;
};

iox::capro::ServiceDescription service(const std::string& instance, const char* event) {
  return {iox::capro::IdString_t("symphony-perf"),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, instance.c_str(), instance.size()),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, event)};
}

class RawSession final : public Session {
 public:
  RawSession(std::string instance, std::uint64_t depth)
      : instance_(std::move(instance)), depth_(depth) {}

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&]() -> SideReport {
      SideReport report;
      // This child's own runtime ("symphony-rt-<pid>": the keeper removes what a child that
      // _exit()s leaves in /tmp). RouDi is up: the parent holds a lease.
      iox::log::LogManager::GetLogManager().SetDefaultLogLevel(
          iox::log::LogLevel::kWarn, iox::log::LogLevelOutput::kHideLogLevel);
      const std::string name =
          std::string(engine::roudi::kRuntimeNamePrefix) + std::to_string(::getpid());
      iox::runtime::PoshRuntime::initRuntime(
          iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name));

      const bool pingpong = side.spec->pattern == Pattern::pingpong;
      const bool first_sends = side.role == Role::initiator || side.role == Role::producer;
      std::optional<iox::popo::UntypedSubscriber> subscriber;
      std::optional<iox::popo::UntypedPublisher> publisher;
      // Subscribe first, then offer, then wait until both directions are connected: RouDi
      // connects ports in its discovery loop (~100 ms), and a sample published before that is
      // lost.
      if (pingpong || side.role == Role::consumer) {
        iox::popo::SubscriberOptions options;
        options.queueCapacity = depth_;
        options.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
        subscriber.emplace(service(instance_, pingpong && first_sends ? "pong" : "ping"), options);
      }
      if (pingpong || side.role == Role::producer) {
        iox::popo::PublisherOptions options;
        options.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
        publisher.emplace(service(instance_, pingpong && !first_sends ? "pong" : "ping"), options);
      }
      const auto connected = [&] {
        return (!subscriber ||
                subscriber->getSubscriptionState() == iox::SubscribeState::SUBSCRIBED) &&
               (!publisher || publisher->hasSubscribers());
      };
      const auto connect_deadline = std::min(side.deadline, SteadyClock::now() + std::chrono::seconds(10));
      while (!connected()) {
        if (SteadyClock::now() >= connect_deadline) {
          return fail(report, "iceoryx ports not connected within 10 s (RouDi: %s)",
                      engine::roudi::kRoudiSocketPath);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      std::optional<iox::popo::WaitSet<>> waitset;
      if (subscriber && side.spec->mode == Mode::blocking) {
        waitset.emplace();
        if (waitset->attachState(*subscriber, iox::popo::SubscriberState::HAS_DATA).has_error()) {
          return fail(report, "cannot attach the subscriber to a WaitSet");
        }
      }
      std::optional<RawSender> tx;
      std::optional<RawReceiver> rx;
      if (publisher) tx.emplace(*publisher);
      if (subscriber) rx.emplace(*subscriber, waitset ? &*waitset : nullptr);
      switch (side.role) {
        case Role::initiator: return pingpong_initiator(*tx, *rx, side);
        case Role::echoer: return pingpong_echoer(*tx, *rx, side);
        case Role::producer: return run_sender_side(*tx, side);
        case Role::consumer: return run_receiver_side(*rx, side);
      }
      return fail(report, "unknown role");
    });
  }

 private:
  std::string instance_;
  std::uint64_t depth_;
};

class IceoryxRawTransport final : public Transport {
 public:
  std::string_view name() const noexcept override { return "iceoryx-raw"; }
  std::string_view summary() const noexcept override {
    return "plain iceoryx 2.0 (peer): UntypedPublisher/UntypedSubscriber through RouDi, "
           "WAIT_FOR_CONSUMER + BLOCK_PRODUCER; busy (spin on take) or blocking (WaitSet); "
           "1 -> 1, at most 8 loans per publish, queues of at most 256";
  }
  std::string_view description() const noexcept override {
    return "Peer: plain iceoryx 2.0 (iox::popo::UntypedPublisher/UntypedSubscriber), one service "
           "per direction, through the RouDi the harness runs with its own pool config (chunks "
           "up to 64 MiB; an already running RouDi is used as it is, and payloads its pools "
           "cannot hold are skipped). The sender loans a chunk and writes the payload in place; "
           "the receiver reads it in place and releases it: zero copies. Publisher "
           "WAIT_FOR_CONSUMER, subscriber BLOCK_PRODUCER (nothing is lost), history 0, queue "
           "capacity = the queue bytes / chunk (4 to 256). Busy mode spins on take(); blocking "
           "mode waits in an iox::popo::WaitSet on the subscriber's HAS_DATA state.";
  }

  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.producers != 1 || spec.consumers != 1) return "measured 1 -> 1 only";
    if (spec.batch > kMaxLoans) return "iceoryx 2.0 holds at most 8 loans per publisher";
    return run_roudi().unsupported(spec.payload);
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec& spec,
                                                   const std::string& name_prefix) override {
    // RouDi up for the whole run (the lease is held until this process exits); no runtime here.
    auto lease = engine::roudi::acquire_lease();
    if (!lease) return tl::unexpected(std::move(lease.error()));
    // The same bytes as every other queue, and at least 4 samples; iceoryx allows 256.
    const std::uint64_t chunk = spec.payload + kChunkHeader;
    const std::uint64_t depth = std::clamp<std::uint64_t>(spec.queue_bytes / chunk, 4, 256);
    std::string instance = name_prefix;
    while (!instance.empty() && instance.back() == '.') instance.pop_back();
    if (instance.size() > iox::capro::IdString_t::capacity()) {
      instance = instance.substr(instance.size() - iox::capro::IdString_t::capacity());
    }
    return std::unique_ptr<Session>(new RawSession(std::move(instance), depth));
  }
};

}  // namespace

std::unique_ptr<Transport> make_iceoryx_raw_transport() {
  return std::make_unique<IceoryxRawTransport>();
}

}  // namespace symphony::perf
