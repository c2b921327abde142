// topic-native and topic-iceoryx: a symphony::Bus topic, through the public API a host uses
// (advertise / subscribe, loan / publish / take / release), on the native transport (our
// broadcast ring) or the iceoryx one; the code is the same but for TopicOptions::transport.
// Ping-pong uses two topics, one each way; throughput one topic with one `block` subscriber, so
// that nothing is lost. Busy mode polls try_loan / try_take; blocking mode uses loan / take with
// WaitStrategy::sleeping() (native: spin, yield, then the topic's futex doorbell; iceoryx: the
// subscriber's notify eventfd).

#include <algorithm>
#include <bit>
#include <thread>

#include "drivers.hpp"
#include "engine_endpoints.hpp"
#include "symphony/engine/bus.hpp"
#include "transport.hpp"
#if defined(SYMPHONY_PERF_HAVE_ICEORYX)
#include "roudi_lease.hpp"
#include "run_roudi.hpp"
#endif

namespace symphony::perf {
namespace {

using engine::WaitStrategy;

const char* name_of(engine::TopicTransport transport) {
  return transport == engine::TopicTransport::native ? "topic-native" : "topic-iceoryx";
}

SideReport failed(const char* what, const engine::Error& error) {
  SideReport report;
  return fail(report, "%s: %s", what, error.message.c_str());
}

class TopicSession final : public Session {
 public:
  TopicSession(std::string bus, engine::TopicOptions topic, engine::SubscriberOptions subscriber)
      : bus_(std::move(bus)), topic_(topic), subscriber_(subscriber) {}

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&]() -> SideReport {
      BusOptions options;
      options.name = bus_;
      auto bus = Bus::open(options);
      if (!bus) return failed("cannot open the bus", bus.error());
      // Ping-pong: "ping" carries the initiator's messages, "pong" the echoes.
      const bool pingpong = side.spec->pattern == Pattern::pingpong;
      const bool first_sends = side.role == Role::initiator || side.role == Role::producer;
      std::optional<engine::RawSubscriber> subscriber;
      std::optional<engine::RawPublisher> publisher;
      // Subscribe before advertising: each side's subscription exists before the barrier, so
      // no message is published to a topic nobody reads yet.
      if (pingpong || side.role == Role::consumer) {
        auto sub =
            bus->subscribe(pingpong && first_sends ? "pong" : "ping", {}, topic_, subscriber_);
        if (!sub) return failed("cannot subscribe", sub.error());
        subscriber.emplace(std::move(*sub));
      }
      if (pingpong || side.role == Role::producer) {
        auto pub = bus->advertise(pingpong && !first_sends ? "pong" : "ping", {}, topic_);
        if (!pub) return failed("cannot advertise", pub.error());
        publisher.emplace(std::move(*pub));
      }
      // A one-way publisher waits until every subscriber is attached (iceoryx connects ports in
      // RouDi's discovery loop, ~100 ms): a sample published before would not reach it. The
      // subscribers attach before the barrier, so they are all coming.
      if (side.role == Role::producer) {
        while (publisher->counters().subscribers < side.spec->consumers) {
          if (SteadyClock::now() >= side.deadline) {
            SideReport report;
            return fail(report, "only %llu of %u subscribers attached",
                        static_cast<unsigned long long>(publisher->counters().subscribers),
                        side.spec->consumers);
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      }
      const char* transport = name_of(topic_.transport);
      std::optional<LoanSender<engine::RawPublisher>> tx;
      std::optional<FrameReceiver<engine::RawSubscriber>> rx;
      if (publisher) tx.emplace(*publisher, transport);
      if (subscriber) rx.emplace(*subscriber, transport);
      switch (side.role) {
        case Role::initiator:
          return pingpong_initiator(*tx, *rx, side);
        case Role::echoer:
          return pingpong_echoer(*tx, *rx, side);
        case Role::producer:
          return run_sender_side(*tx, side);
        case Role::consumer:
          return run_receiver_side(*rx, side);
      }
      SideReport report;
      return fail(report, "unknown role");
    });
  }

 private:
  std::string bus_;
  engine::TopicOptions topic_;
  engine::SubscriberOptions subscriber_;
};

class TopicTransport final : public Transport {
 public:
  explicit TopicTransport(engine::TopicTransport transport) : transport_(transport) {}
  std::string_view name() const noexcept override { return name_of(transport_); }
  std::string_view summary() const noexcept override {
    return transport_ == engine::TopicTransport::native
               ? "symphony::Bus topic, native transport (ours): the public loan/publish/take API "
                 "over the broadcast ring; block subscribers; busy or blocking (futex); fan-out"
               : "symphony::Bus topic, iceoryx transport (ours over iceoryx 2.0): the same code "
                 "as topic-native; depth <= 256; busy or blocking (notify eventfd); fan-out";
  }
  std::string_view description() const noexcept override {
    return transport_ == engine::TopicTransport::native
               ? "Ours: a symphony::Bus topic on the native transport (our broadcast ring in "
                 "shm), through the public API a host uses: advertise/subscribe, "
                 "loan/publish/take/release. Two topics for ping-pong (one each way), one for "
                 "the other patterns. The publisher loans a slot and writes the payload in "
                 "place; each subscriber reads it in place and releases it: zero copies. "
                 "Subscribers are Overflow::block (nothing is lost) with depth = the queue bytes "
                 "/ slot stride (at least 4); ring capacity 2 x depth (a power of two, at least "
                 "8), history 0, priority lane 1 slot. Busy mode polls try_loan/try_take; "
                 "blocking mode uses loan/take with WaitStrategy::sleeping() (spin, yield, then "
                 "the topic's futex doorbell). Fan-out: one publisher, N subscriber processes."
               : "Ours: a symphony::Bus topic on the iceoryx transport (iceoryx 2.0 underneath, "
                 "through the RouDi the harness runs with its own pool config, chunks up to 64 "
                 "MiB), the same code as topic-native. The publisher loans an iceoryx chunk and "
                 "writes the payload in place; each subscriber reads it in place: zero copies. "
                 "Block subscribers (WAIT_FOR_CONSUMER + BLOCK_PRODUCER), depth = the queue "
                 "bytes / slot stride (4 to 256), history 0. Busy mode polls try_loan/try_take; "
                 "blocking mode sleeps on the subscriber's notify eventfd (an iceoryx Listener "
                 "thread writes it). Fan-out: one publisher, N subscriber processes.";
  }
  bool broadcasts() const noexcept override { return true; }
  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.producers != 1) return "a topic is measured with one publisher";
    if (spec.pattern != Pattern::fanout && spec.consumers != 1) {
      return "one subscriber, except in the fan-out pattern";
    }
    if (spec.payload > (std::size_t{1} << 31)) return "samples carry at most 2 GiB";
#if defined(SYMPHONY_PERF_HAVE_ICEORYX)
    if (transport_ == engine::TopicTransport::iceoryx) {
      if (spec.batch > 7) return "an iceoryx publisher holds at most 7 unpublished loans";
      // Our samples carry a 16-byte user header, aligned: 64 bytes cover it.
      if (auto why = run_roudi().unsupported(spec.payload + 64); !why.empty()) return why;
    }
#endif
    return {};
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec& spec,
                                                   const std::string& name_prefix) override {
#if defined(SYMPHONY_PERF_HAVE_ICEORYX)
    if (transport_ == engine::TopicTransport::iceoryx) {
      // RouDi up for the whole run (the lease lives until this process exits); no runtime here:
      // each child starts its own after the fork.
      auto lease = engine::roudi::acquire_lease();
      if (!lease) return tl::unexpected(std::move(lease.error()));
    }
#endif
    // Bus names allow no '.': "symphony-perf.<pid>.<n>." becomes "symphony-perf-<pid>-<n>".
    std::string bus = name_prefix;
    std::replace(bus.begin(), bus.end(), '.', '-');
    while (!bus.empty() && bus.back() == '-') bus.pop_back();
    engine::TopicOptions topic;
    topic.transport = transport_;
    topic.max_payload = std::max<std::size_t>(spec.payload, 1);
    // The same bytes as every other queue (and at least 4 samples) as the subscriber's depth.
    const std::uint64_t stride = layouts::topic_slot_stride(topic.max_payload);
    engine::SubscriberOptions subscriber;
    subscriber.depth = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(
        spec.queue_bytes / stride, 4,
        transport_ == engine::TopicTransport::iceoryx ? 256 : (1U << 20)));
    topic.max_subscribers = std::max(16U, spec.consumers + 1);
    if (transport_ == engine::TopicTransport::native) {
      // Twice the depth, so a publisher never waits for a slot a subscriber has released; no
      // more (a 64 MiB payload's slots are 64 MiB each), and a one-slot priority lane that the
      // harness never uses.
      topic.capacity = static_cast<std::uint32_t>(
          std::max<std::uint64_t>(8, std::bit_ceil(2 * std::uint64_t{subscriber.depth})));
      topic.priority_capacity = 1;
    }
    return std::unique_ptr<Session>(new TopicSession(std::move(bus), topic, subscriber));
  }

 private:
  engine::TopicTransport transport_;
};

}  // namespace

std::unique_ptr<Transport> make_topic_native_transport() {
  return std::make_unique<TopicTransport>(engine::TopicTransport::native);
}

std::unique_ptr<Transport> make_topic_iceoryx_transport() {
  return std::make_unique<TopicTransport>(engine::TopicTransport::iceoryx);
}

}  // namespace symphony::perf
