// floor: the machine's floor for cross-core messaging — a bare cache-line ping-pong between the
// same two cores, in shared memory: one 64-byte aligned word each way, busy spin. No queue, no
// index, no frame: one release store and one acquire load per message, so one cache-line transfer
// each way is all a round trip costs. It runs through the same loop as every transport
// (drivers.hpp) with an 8-byte payload (the sequence number is the word), so its numbers differ
// from a transport's only by what the transport adds. The harness interleaves it with every
// latency measurement and reports each result's ratio to it.

#include <atomic>
#include <cstring>

#include "drivers.hpp"
#include "floor_lines.hpp"
#include "shm_region.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

constexpr std::size_t kWordBytes = sizeof(std::uint64_t);

// Publishes the 8 bytes written into its staging word with one release store.
class FloorSender {
 public:
  explicit FloorSender(std::uint64_t& word) noexcept : word_(word) {}
  Poll try_loan(std::size_t, std::span<std::byte>& out) noexcept {
    out = std::span<std::byte>(staging_, kWordBytes);
    return Poll::ready;
  }
  Poll wait_loan(std::size_t size, std::span<std::byte>& out, SteadyClock::time_point) noexcept {
    return try_loan(size, out);
  }
  void publish() noexcept {
    std::uint64_t value = 0;
    std::memcpy(&value, staging_, sizeof value);
    std::atomic_ref<std::uint64_t>(word_).store(value, std::memory_order_release);
  }
  std::string failure() const { return "the floor cannot fail"; }

 private:
  std::uint64_t& word_;
  alignas(8) std::byte staging_[kWordBytes] = {};
};

// A message is a value different from the last one seen (sequence numbers never repeat).
class FloorReceiver {
 public:
  explicit FloorReceiver(std::uint64_t& word) noexcept : word_(word) {}
  Poll try_receive(std::span<const std::byte>& in) noexcept {
    const std::uint64_t value =
        std::atomic_ref<std::uint64_t>(word_).load(std::memory_order_acquire);
    if (value == last_) return Poll::would_block;
    last_ = value;
    std::memcpy(staging_, &value, sizeof value);
    in = std::span<const std::byte>(staging_, kWordBytes);
    return Poll::ready;
  }
  Poll wait_receive(std::span<const std::byte>& in, SteadyClock::time_point) noexcept {
    return try_receive(in);  // never called: the floor is busy-spin only
  }
  void release() noexcept {}
  std::string failure() const { return "the floor cannot fail"; }

 private:
  std::uint64_t& word_;
  std::uint64_t last_ = 0;
  alignas(8) std::byte staging_[kWordBytes] = {};
};

class FloorSession final : public Session {
 public:
  explicit FloorSession(ShmRegion region) noexcept : region_(std::move(region)) {}

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&] {
      auto region = ShmRegion::open(region_.name(), region_.size());
      if (!region) {
        SideReport report;
        return fail(report, "%s", region.error().message.c_str());
      }
      prefault(region->base(), region->size());
      auto* lines = reinterpret_cast<FloorLines*>(region->base());
      if (side.role == Role::initiator) {
        FloorSender ping(lines->ping);
        FloorReceiver pong(lines->pong);
        return pingpong_initiator(ping, pong, side);
      }
      FloorSender pong(lines->pong);
      FloorReceiver ping(lines->ping);
      return pingpong_echoer(pong, ping, side);
    });
  }

 private:
  ShmRegion region_;
};

class FloorTransport final : public Transport {
 public:
  std::string_view name() const noexcept override { return kFloorName; }
  std::string_view summary() const noexcept override {
    return "the machine's floor: one 64-byte-aligned word each way between the two cores, busy "
           "spin; ping-pong only, always 8 B and busy (it is reported once per run, and every "
           "latency result's ratio_to_floor is relative to it)";
  }
  std::string_view description() const noexcept override {
    return "The machine's floor, not a transport: one 64-byte-aligned 8-byte word each way between "
           "the two pinned cores in a private shared mapping, one release store to send and one "
           "acquire load (busy spin with a pause instruction) to receive, through the same "
           "ping-pong loop as every transport. Ping-pong, 8 B and busy only; it runs before "
           "every ping-pong repeat of every subject, and ratio_to_floor is relative to the floor "
           "repeats interleaved with that subject.";
  }

  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.pattern != Pattern::pingpong) return "the floor is a ping-pong; it has no throughput";
    if (spec.mode != Mode::busy) return "the floor is busy spin only";
    if (spec.payload != kWordBytes) return "the floor moves one 8-byte word";
    return {};
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec&,
                                                   const std::string& name_prefix) override {
    auto region = ShmRegion::create(name_prefix + "floor", sizeof(FloorLines));
    if (!region) return tl::unexpected(std::move(region.error()));
    std::memset(region->base(), 0, region->size());
    return std::unique_ptr<Session>(new FloorSession(std::move(*region)));
  }
};

}  // namespace

std::unique_ptr<Transport> make_floor_transport() {
  return std::make_unique<FloorTransport>();
}

}  // namespace symphony::perf
