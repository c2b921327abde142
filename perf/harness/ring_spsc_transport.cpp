// ring-spsc: engine::SpscRing across processes. Ping-pong uses two rings, one each way;
// throughput one ring. Messages are written in place into the producer's loan and read in place
// from the consumer's frame; every message is published and released on its own (no batching).
// Busy mode polls try_loan / try_read; blocking mode uses loan / read with
// WaitStrategy::sleeping() (spin, yield, then the ring's futex doorbell).

#include <bit>

#include "drivers.hpp"
#include "engine_endpoints.hpp"
#include "shm_region.hpp"
#include "symphony/engine/spsc_ring.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

using engine::WaitStrategy;

// A ring opened by name in the child, its pages mapped before the run starts.
engine::Result<engine::SpscRing> open_ring(const std::string& name) {
  auto ring = engine::SpscRing::open(name);
  if (ring) prefault(ring->segment().base(), ring->segment().size());
  return ring;
}

SideReport failed(const char* what, const std::string& name, const engine::Error& error) {
  SideReport report;
  return fail(report, "%s '%s': %s", what, name.c_str(), error.message.c_str());
}

class SpscSession final : public Session {
 public:
  explicit SpscSession(std::vector<engine::SpscRing> rings) noexcept : rings_(std::move(rings)) {}

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&]() -> SideReport {
      // Ping-pong: ring 0 carries pings, ring 1 pongs. Throughput: ring 0.
      const bool sends_on_first = side.role == Role::initiator || side.role == Role::producer;
      std::optional<engine::SpscRing> out_ring;
      std::optional<engine::SpscRing> in_ring;
      const bool pingpong = side.spec->pattern == Pattern::pingpong;
      if (pingpong || side.role == Role::producer) {
        const std::string& name = rings_[sends_on_first ? 0 : 1].segment().name();
        auto ring = open_ring(name);
        if (!ring) return failed("cannot open ring", name, ring.error());
        out_ring.emplace(std::move(*ring));
      }
      if (pingpong || side.role == Role::consumer) {
        const std::string& name = rings_[sends_on_first && pingpong ? 1 : 0].segment().name();
        auto ring = open_ring(name);
        if (!ring) return failed("cannot open ring", name, ring.error());
        in_ring.emplace(std::move(*ring));
      }
      std::optional<engine::SpscProducer> producer;
      std::optional<engine::SpscConsumer> consumer;
      if (out_ring) {
        auto attached = engine::SpscProducer::attach(*out_ring);
        if (!attached)
          return failed("cannot produce on", out_ring->segment().name(), attached.error());
        producer.emplace(std::move(*attached));
      }
      if (in_ring) {
        auto attached = engine::SpscConsumer::attach(*in_ring);
        if (!attached)
          return failed("cannot consume from", in_ring->segment().name(), attached.error());
        consumer.emplace(std::move(*attached));
      }
      std::optional<LoanSender<engine::SpscProducer>> tx;
      std::optional<FrameReceiver<engine::SpscConsumer>> rx;
      if (producer) tx.emplace(*producer, "ring-spsc");
      if (consumer) rx.emplace(*consumer, "ring-spsc");
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
  std::vector<engine::SpscRing> rings_;
};

class SpscTransport final : public Transport {
 public:
  std::string_view name() const noexcept override { return "ring-spsc"; }
  std::string_view summary() const noexcept override {
    return "engine::SpscRing (ours): variable-length frames written and read in place; "
           "ping-pong over two rings; busy or blocking (futex doorbell); 1 producer, 1 consumer";
  }
  std::string_view description() const noexcept override {
    return "Ours: engine::SpscRing, one named shm ring per direction (two for ping-pong). The "
           "sender loans a frame in the ring and writes the payload in place; the receiver reads "
           "it in place from the frame and releases it: zero copies. Each ring holds the "
           "queue bytes (default 64 KiB) and at least 4 frames, rounded up to a power of two. "
           "Busy mode polls try_loan/try_read; blocking mode uses loan/read with "
           "WaitStrategy::sleeping() (spin, yield, then the ring's futex doorbell). Every "
           "message is published and released on its own unless --batch.";
  }

  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.producers != 1 || spec.consumers != 1) {
      return "an SPSC ring has exactly one producer and one consumer";
    }
    return {};
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec& spec,
                                                   const std::string& name_prefix) override {
    engine::SpscRingOptions options;
    // The queue's bytes, and room for at least 4 frames (a frame may also need a padding frame
    // in front of it, so a ring must be twice the largest frame).
    const std::uint64_t frame = layouts::spsc_frame_size(spec.payload);
    options.capacity = std::bit_ceil(
        std::max({spec.queue_bytes, 4 * frame, std::uint64_t{layouts::kSpscMinCapacity}}));
    std::vector<engine::SpscRing> rings;
    const int count = spec.pattern == Pattern::pingpong ? 2 : 1;
    for (int i = 0; i < count; ++i) {
      auto ring = engine::SpscRing::create(name_prefix + "spsc" + std::to_string(i), options);
      if (!ring) return tl::unexpected(std::move(ring.error()));
      rings.push_back(std::move(*ring));
    }
    return std::unique_ptr<Session>(new SpscSession(std::move(rings)));
  }
};

}  // namespace

std::unique_ptr<Transport> make_ring_spsc_transport() {
  return std::make_unique<SpscTransport>();
}

}  // namespace symphony::perf
