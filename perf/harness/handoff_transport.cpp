// handoff: ours, the control plane's handoff of payloads by reference
// (symphony/controlplane/handoff.hpp). For every message the sender allocates a fresh memfd
// (HandoffOwner::allocate), writes the payload into it, seals it and sends the small descriptor
// (JSON) on an engine::SpscRing; the receiver parses the descriptor, fetches the memfd over the
// owner's Unix socket (SCM_RIGHTS), checks its seals, maps it read-only (HandoffReceiver::open,
// without the checksum: the harness reads every byte anyway) and reads the payload there. Its
// release() tells the owner; the owner retires a payload once it has been fetched, and closes it
// when every fetch is released. Ping-pong runs one ring per direction, each side owning the
// payloads it sends.
//
// Latency = seal + descriptor + fetch + checks + mmap; the write into the fresh memfd (page
// faults included) and the read through the fresh mapping (its faults included) are the touch.
// Busy mode spins on the descriptor ring's try_read, yielding the core after each empty poll: the
// owner's "sym-handoff" thread, which serves the other side's fetch, runs on the same core as the
// spinning side. Blocking mode sleeps on the ring's futex doorbell.

#include <unistd.h>

#include <bit>
#include <cstring>
#include <algorithm>
#include <deque>
#include <optional>
#include <thread>

#include "drivers.hpp"
#include "engine_endpoints.hpp"
#include "shm_region.hpp"
#include "symphony/controlplane/handoff.hpp"
#include "symphony/engine/spsc_ring.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

namespace cp = controlplane;
using engine::WaitStrategy;

// One bus (runtime directory) per direction, shared by every run; each owner's socket is named by
// its pid. (One would do since HandoffOwner::create binds under a temporary name and renames the
// socket into place once it listens; two keep each direction's sockets apart when debugging.)
constexpr const char* kBus[2] = {"symphony-perf-a", "symphony-perf-b"};

// How long the initiator's owner waits for the echoer to fetch the stop message.
constexpr auto kStopFetchWait = std::chrono::seconds(2);

class HandoffSender {
 public:
  HandoffSender(cp::HandoffOwner& owner, engine::SpscProducer& ring, const SideContext& side)
      : owner_(owner), ring_(ring), side_(side) {}

  Poll try_loan(std::size_t size, std::span<std::byte>& out) noexcept {
    if (!failure_.empty()) return Poll::failed;
    retire_fetched();
    auto writer = owner_.allocate(size);
    if (!writer) {
      failure_ = "allocate: " + writer.error().message;
      return Poll::failed;
    }
    writer_ = std::move(*writer);
    out = writer_.bytes();
    return Poll::ready;
  }
  Poll wait_loan(std::size_t size, std::span<std::byte>& out, SteadyClock::time_point) noexcept {
    return try_loan(size, out);
  }
  // Seals the payload and sends its descriptor; a failure shows at the next loan.
  void publish() noexcept {
    auto descriptor =
        owner_.seal(std::move(writer_), {.offset = 0, .length = std::nullopt, .checksum = false});
    if (!descriptor) {
      failure_ = "seal: " + descriptor.error().message;
      return;
    }
    const std::string json = descriptor->to_json();
    engine::Loan loan = ring_.try_loan(json.size());
    if (loan.would_block()) {
      loan = ring_.loan(
          json.size(),
          side_.spec->mode == Mode::blocking ? WaitStrategy::sleeping() : WaitStrategy::yielding(),
          side_.deadline);
    }
    if (!loan.ok()) {
      failure_ = std::string("descriptor ring: ") + engine::to_string(loan.status);
      return;
    }
    std::memcpy(loan.bytes().data(), json.data(), json.size());
    ring_.publish();
    pending_.push_back(descriptor->id);
  }
  std::string failure() const { return "handoff: " + failure_; }

  // Waits (bounded) until the other side has fetched everything sent: the owner serves those
  // fetches and must outlive them — the ping-pong's last message (the stop) is sent just before
  // the initiator returns.
  void wait_until_fetched(SteadyClock::time_point deadline) noexcept {
    while (!pending_.empty() && SteadyClock::now() < deadline) {
      const auto status = owner_.status(pending_.back());
      if (!status || status->fetched > 0) return;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

 private:
  // The receiver fetches in order: every payload fetched is retired (closed once released).
  void retire_fetched() noexcept {
    while (!pending_.empty()) {
      const auto status = owner_.status(pending_.front());
      if (status && status->fetched == 0) return;
      if (status) (void)owner_.retire(pending_.front());
      pending_.pop_front();
    }
  }

  cp::HandoffOwner& owner_;
  engine::SpscProducer& ring_;
  const SideContext& side_;
  cp::PayloadWriter writer_;
  std::deque<cp::PayloadId> pending_;
  std::string failure_;
};

class HandoffReceiverEnd {
 public:
  HandoffReceiverEnd(cp::HandoffReceiver& receiver, engine::SpscConsumer& ring,
                     const SideContext& side)
      : receiver_(receiver), ring_(ring), side_(side) {}

  Poll try_receive(std::span<const std::byte>& in) noexcept {
    const engine::Frame frame = ring_.try_read();
    if (frame.would_block()) {
      ::sched_yield();  // let this core's sym-handoff thread serve the other side (see above)
      return Poll::would_block;
    }
    return open(frame, in);
  }
  Poll wait_receive(std::span<const std::byte>& in, SteadyClock::time_point until) noexcept {
    const engine::Frame frame = ring_.read(WaitStrategy::sleeping(), until);
    if (frame.would_block()) return Poll::would_block;
    return open(frame, in);
  }
  void release() noexcept { mapped_.release(); }
  std::string failure() const { return "handoff: " + failure_; }

 private:
  Poll open(const engine::Frame& frame, std::span<const std::byte>& in) noexcept {
    if (!frame.ok()) {
      failure_ = std::string("descriptor ring: ") + engine::to_string(frame.status);
      return Poll::failed;
    }
    const std::span<const std::byte> bytes = frame.bytes();
    auto descriptor = cp::HandoffDescriptor::from_json(
        std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    ring_.release();
    if (!descriptor) {
      failure_ = "descriptor: " + descriptor.error().message;
      return Poll::failed;
    }
    auto mapped = receiver_.open(
        *descriptor, {.verify = cp::Verify::skip, .timeout = std::chrono::milliseconds(2000)});
    if (!mapped) {
      failure_ = "open: " + mapped.error().message;
      return Poll::failed;
    }
    mapped_ = std::move(*mapped);
    in = mapped_.bytes();
    return Poll::ready;
  }

  cp::HandoffReceiver& receiver_;
  engine::SpscConsumer& ring_;
  [[maybe_unused]] const SideContext& side_;
  cp::MappedPayload mapped_;
  std::string failure_;
};

SideReport failed(const char* what, const engine::Error& error) {
  SideReport report;
  return fail(report, "%s: %s", what, error.message.c_str());
}

class HandoffSession final : public Session {
 public:
  explicit HandoffSession(std::vector<engine::SpscRing> rings) noexcept
      : rings_(std::move(rings)) {}

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&]() -> SideReport {
      const bool pingpong = side.spec->pattern == Pattern::pingpong;
      const bool sends_on_first = side.role == Role::initiator || side.role == Role::producer;
      const bool sends = pingpong || side.role == Role::producer;
      const bool receives = pingpong || side.role == Role::consumer;
      // Ring 0 carries the first side's descriptors, ring 1 (ping-pong) the echoes'.
      std::optional<engine::SpscRing> out_ring;
      std::optional<engine::SpscRing> in_ring;
      std::optional<engine::SpscProducer> producer;
      std::optional<engine::SpscConsumer> consumer;
      std::optional<cp::HandoffOwner> owner;
      std::optional<cp::HandoffReceiver> receiver;
      if (sends) {
        auto ring = engine::SpscRing::open(rings_[sends_on_first ? 0 : 1].segment().name());
        if (!ring) return failed("cannot open the descriptor ring", ring.error());
        out_ring.emplace(std::move(*ring));
        auto attached = engine::SpscProducer::attach(*out_ring);
        if (!attached) return failed("cannot produce on the descriptor ring", attached.error());
        producer.emplace(std::move(*attached));
        auto created = cp::HandoffOwner::create(kBus[sends_on_first ? 0 : 1], "perf");
        if (!created) return failed("cannot create the handoff owner", created.error());
        owner.emplace(std::move(*created));
      }
      if (receives) {
        auto ring =
            engine::SpscRing::open(rings_[sends_on_first && pingpong ? 1 : 0].segment().name());
        if (!ring) return failed("cannot open the descriptor ring", ring.error());
        in_ring.emplace(std::move(*ring));
        auto attached = engine::SpscConsumer::attach(*in_ring);
        if (!attached) return failed("cannot consume from the descriptor ring", attached.error());
        consumer.emplace(std::move(*attached));
        // The descriptors come from the other side's owner, in its directory.
        auto created = cp::HandoffReceiver::create(kBus[sends_on_first && pingpong ? 1 : 0]);
        if (!created) return failed("cannot create the handoff receiver", created.error());
        receiver.emplace(std::move(*created));
      }
      std::optional<HandoffSender> tx;
      std::optional<HandoffReceiverEnd> rx;
      if (sends) tx.emplace(*owner, *producer, side);
      if (receives) rx.emplace(*receiver, *consumer, side);
      switch (side.role) {
        case Role::initiator: {
          SideReport report = pingpong_initiator(*tx, *rx, side);
          tx->wait_until_fetched(std::min(side.deadline, SteadyClock::now() + kStopFetchWait));
          return report;
        }
        case Role::echoer:
          return pingpong_echoer(*tx, *rx, side);
        case Role::producer: {
          SideReport report = run_sender_side(*tx, side);
          // The owner serves the fetches of what is still in the ring: it must outlive them.
          wait_for_consumers(side);
          return report;
        }
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

class HandoffTransport final : public Transport {
 public:
  std::string_view name() const noexcept override { return "handoff"; }
  std::string_view summary() const noexcept override {
    return "ours: controlplane handoff, each payload in a fresh sealed memfd passed by "
           "reference (descriptor on a ring, fd over the owner's socket, read-only mmap); busy "
           "(ring spin, yielding) or blocking (futex); 1 -> 1";
  }
  std::string_view description() const noexcept override {
    return "Ours: the control plane's handoff of payloads by reference. For every message the "
           "sender allocates a fresh memfd (HandoffOwner::allocate), writes the payload into it, "
           "seals it (no checksum) and sends the descriptor JSON on an engine::SpscRing (one per "
           "direction, the queue bytes); the receiver parses it, fetches the memfd over the "
           "owner's SOCK_SEQPACKET socket (SCM_RIGHTS), checks the seals, maps it read-only "
           "(HandoffReceiver::open with Verify::skip) and reads the payload through that "
           "mapping; release() tells the owner, which retires each payload once fetched. No "
           "copy of the payload; latency = seal + descriptor + fetch + mmap, while the write "
           "into the fresh memfd and the read through the fresh mapping (page faults included) "
           "are the touch. Busy mode spins on the ring's try_read, yielding after each empty "
           "poll (the owner's sym-handoff thread serving the other side's fetch shares the "
           "spinning side's core); blocking mode sleeps on the ring's futex doorbell.";
  }
  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.producers != 1 || spec.consumers != 1) return "one owner, one receiver";
    if (spec.batch != 1) return "each payload is handed off on its own (no batching)";
    return {};
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec& spec,
                                                   const std::string& name_prefix) override {
    engine::SpscRingOptions options;
    const std::uint64_t frame = layouts::spsc_frame_size(cp::HandoffDescriptor::kMaxJson);
    options.capacity = std::bit_ceil(
        std::max({spec.queue_bytes, 4 * frame, std::uint64_t{layouts::kSpscMinCapacity}}));
    std::vector<engine::SpscRing> rings;
    const int count = spec.pattern == Pattern::pingpong ? 2 : 1;
    for (int i = 0; i < count; ++i) {
      auto ring = engine::SpscRing::create(name_prefix + "handoff" + std::to_string(i), options);
      if (!ring) return tl::unexpected(std::move(ring.error()));
      rings.push_back(std::move(*ring));
    }
    return std::unique_ptr<Session>(new HandoffSession(std::move(rings)));
  }
};

}  // namespace

std::unique_ptr<Transport> make_handoff_transport() {
  return std::make_unique<HandoffTransport>();
}

}  // namespace symphony::perf
