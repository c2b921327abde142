// ring-mpmc: engine::MpmcRing across processes. Ping-pong uses two rings (one producer and one
// consumer each); throughput one ring with --producers P and --consumers C, each its own process.
// Slots are sized to the payload (max_payload = payload). Busy mode polls try_loan / try_take;
// blocking mode uses loan / take with WaitStrategy::sleeping().

#include <bit>

#include "drivers.hpp"
#include "engine_endpoints.hpp"
#include "shm_region.hpp"
#include "symphony/engine/mpmc_ring.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

using engine::WaitStrategy;

engine::Result<engine::MpmcRing> open_ring(const std::string& name) {
  auto ring = engine::MpmcRing::open(name);
  if (ring) prefault(ring->segment().base(), ring->segment().size());
  return ring;
}

SideReport failed(const char* what, const std::string& name, const engine::Error& error) {
  SideReport report;
  return fail(report, "%s '%s': %s", what, name.c_str(), error.message.c_str());
}

class MpmcSession final : public Session {
 public:
  explicit MpmcSession(std::vector<engine::MpmcRing> rings) noexcept : rings_(std::move(rings)) {}

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&]() -> SideReport {
      // Ping-pong: ring 0 carries pings, ring 1 pongs. Throughput: ring 0.
      const bool pingpong = side.spec->pattern == Pattern::pingpong;
      const bool sends_on_first = side.role == Role::initiator || side.role == Role::producer;
      std::optional<engine::MpmcRing> out_ring;
      std::optional<engine::MpmcRing> in_ring;
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
      std::optional<engine::MpmcProducer> producer;
      std::optional<engine::MpmcConsumer> consumer;
      if (out_ring) {
        auto attached = engine::MpmcProducer::attach(*out_ring);
        if (!attached)
          return failed("cannot produce on", out_ring->segment().name(), attached.error());
        producer.emplace(std::move(*attached));
      }
      if (in_ring) {
        auto attached = engine::MpmcConsumer::attach(*in_ring);
        if (!attached)
          return failed("cannot consume from", in_ring->segment().name(), attached.error());
        consumer.emplace(std::move(*attached));
      }
      std::optional<LoanSender<engine::MpmcProducer>> tx;
      std::optional<FrameReceiver<engine::MpmcConsumer>> rx;
      if (producer) tx.emplace(*producer, "ring-mpmc");
      if (consumer) rx.emplace(*consumer, "ring-mpmc");
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
  std::vector<engine::MpmcRing> rings_;
};

class MpmcTransport final : public Transport {
 public:
  std::string_view name() const noexcept override { return "ring-mpmc"; }
  std::string_view summary() const noexcept override {
    return "engine::MpmcRing (ours): fixed slots sized to the payload, in place; ping-pong over "
           "two rings; busy or blocking; throughput also P -> C with --producers/--consumers";
  }
  std::string_view description() const noexcept override {
    return "Ours: engine::MpmcRing, fixed slots sized to the payload (the queue bytes / slot "
           "stride, at least 4, a power of two), one ring per direction. The payload is written "
           "in place into a claimed slot and read in place from it: zero copies. Busy mode polls "
           "try_loan/try_read; blocking mode waits with WaitStrategy::sleeping() (spin, yield, "
           "futex). Throughput can also run P producers to C consumers (--producers, "
           "--consumers).";
  }

  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.pattern == Pattern::pingpong && (spec.producers != 1 || spec.consumers != 1)) {
      return "ping-pong is one initiator and one echoer";
    }
    if (spec.payload > (std::size_t{1} << 31)) return "slots carry at most 2 GiB";
    if (spec.batch != 1) return "each slot is claimed and published on its own (no batching)";
    return {};
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec& spec,
                                                   const std::string& name_prefix) override {
    engine::MpmcRingOptions options;
    options.max_payload = spec.payload;
    const std::uint64_t stride = layouts::mpmc_slot_stride(spec.payload);
    // The same bytes as every other queue, and at least 4 slots.
    options.capacity = std::max<std::uint64_t>(4, std::bit_floor(spec.queue_bytes / stride));
    options.max_participants = std::max(4U, spec.producers + spec.consumers);
    std::vector<engine::MpmcRing> rings;
    const int count = spec.pattern == Pattern::pingpong ? 2 : 1;
    for (int i = 0; i < count; ++i) {
      auto ring = engine::MpmcRing::create(name_prefix + "mpmc" + std::to_string(i), options);
      if (!ring) return tl::unexpected(std::move(ring.error()));
      rings.push_back(std::move(*ring));
    }
    return std::unique_ptr<Session>(new MpmcSession(std::move(rings)));
  }
};

}  // namespace

std::unique_ptr<Transport> make_ring_mpmc_transport() {
  return std::make_unique<MpmcTransport>();
}

}  // namespace symphony::perf
