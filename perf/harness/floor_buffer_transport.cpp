// floor-buffer: the machine's floor for a payload of N bytes — what any shared-memory transport
// must at least pay to hand N freshly written bytes to the other core. One N-byte buffer each way
// and one 64-byte-aligned flag word each way; the sender writes the buffer, then stores the
// sequence number into the flag (release); the receiver spins on the flag (acquire) and reads the
// buffer in place. No index, no slot header, no frame, no reuse check: in a ping-pong each buffer
// is written again only after the peer has answered, so one buffer each way is enough. At 8 B it
// costs what `floor` costs plus one more line; at 64 MiB it shows what the touch leaves behind
// (caches and TLBs full of the payload) even though the touch itself is timed out.

#include <atomic>
#include <cstring>

#include "drivers.hpp"
#include "floor_lines.hpp"
#include "shm_region.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

// [flags: one page][ping buffer][pong buffer], buffers page-aligned.
constexpr std::size_t kFlagsBytes = 4096;

std::size_t buffer_stride(std::size_t payload) noexcept {
  return (payload + kFlagsBytes - 1) / kFlagsBytes * kFlagsBytes;
}

class BufferSender {
 public:
  BufferSender(std::uint64_t& flag, std::byte* buffer, std::size_t capacity) noexcept
      : flag_(flag), buffer_(buffer), capacity_(capacity) {}
  Poll try_loan(std::size_t size, std::span<std::byte>& out) noexcept {
    if (size > capacity_) return Poll::failed;
    out = std::span<std::byte>(buffer_, size);
    size_ = size;
    return Poll::ready;
  }
  Poll wait_loan(std::size_t size, std::span<std::byte>& out, SteadyClock::time_point) noexcept {
    return try_loan(size, out);
  }
  void publish() noexcept {
    // The size travels in the upper bits: payloads are < 2^40, sequences < 2^24 per run are
    // plenty for a flag that only has to differ from its last value.
    ++sent_;
    std::atomic_ref<std::uint64_t>(flag_).store((sent_ << 40) | size_, std::memory_order_release);
  }
  std::string failure() const { return "the payload is larger than the buffer"; }

 private:
  std::uint64_t& flag_;
  std::byte* buffer_;
  std::size_t capacity_;
  std::uint64_t size_ = 0;
  std::uint64_t sent_ = 0;
};

class BufferReceiver {
 public:
  BufferReceiver(std::uint64_t& flag, const std::byte* buffer) noexcept
      : flag_(flag), buffer_(buffer) {}
  Poll try_receive(std::span<const std::byte>& in) noexcept {
    const std::uint64_t value =
        std::atomic_ref<std::uint64_t>(flag_).load(std::memory_order_acquire);
    if (value == last_) return Poll::would_block;
    last_ = value;
    in = std::span<const std::byte>(buffer_, value & ((std::uint64_t{1} << 40) - 1));
    return Poll::ready;
  }
  Poll wait_receive(std::span<const std::byte>& in, SteadyClock::time_point) noexcept {
    return try_receive(in);  // never called: busy spin only
  }
  void release() noexcept {}
  std::string failure() const { return "the floor buffer cannot fail"; }

 private:
  std::uint64_t& flag_;
  const std::byte* buffer_;
  std::uint64_t last_ = 0;
};

class FloorBufferSession final : public Session {
 public:
  FloorBufferSession(ShmRegion region, std::size_t stride) noexcept
      : region_(std::move(region)), stride_(stride) {}

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&] {
      auto region = ShmRegion::open(region_.name(), region_.size());
      if (!region) {
        SideReport report;
        return fail(report, "%s", region.error().message.c_str());
      }
      prefault(region->base(), region->size());
      auto* flags = reinterpret_cast<FloorLines*>(region->base());
      std::byte* ping = region->base() + kFlagsBytes;
      std::byte* pong = ping + stride_;
      if (side.role == Role::initiator) {
        BufferSender tx(flags->ping, ping, stride_);
        BufferReceiver rx(flags->pong, pong);
        return pingpong_initiator(tx, rx, side);
      }
      BufferSender tx(flags->pong, pong, stride_);
      BufferReceiver rx(flags->ping, ping);
      return pingpong_echoer(tx, rx, side);
    });
  }

 private:
  ShmRegion region_;
  std::size_t stride_;
};

class FloorBufferTransport final : public Transport {
 public:
  std::string_view name() const noexcept override { return "floor-buffer"; }
  std::string_view summary() const noexcept override {
    return "the machine's floor for N bytes: one N-byte buffer and one flag word each way, the "
           "payload written and read in place, busy spin; ping-pong only (a reference, not a "
           "transport)";
  }
  std::string_view description() const noexcept override {
    return "The machine's floor for a payload of N bytes, not a transport: one page-aligned "
           "N-byte buffer and one 64-byte-aligned flag word each way in a private shared "
           "mapping. The sender writes the payload into its buffer and stores a new value into "
           "its flag (release); the receiver spins on the flag (acquire, pause instruction) and "
           "reads the payload in place. Nothing else: no index, slot header or reuse check. It "
           "is what any shared-memory transport pays at least for that payload size, including "
           "what writing and reading N bytes leaves behind in the caches and TLBs. Ping-pong, "
           "busy only.";
  }

  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.pattern != Pattern::pingpong) return "floor-buffer is a ping-pong only";
    if (spec.mode != Mode::busy) return "floor-buffer is busy spin only";
    return {};
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec& spec,
                                                   const std::string& name_prefix) override {
    const std::size_t stride = buffer_stride(spec.payload);
    auto region = ShmRegion::create(name_prefix + "floor-buffer", kFlagsBytes + 2 * stride);
    if (!region) return tl::unexpected(std::move(region.error()));
    std::memset(region->base(), 0, kFlagsBytes);
    return std::unique_ptr<Session>(new FloorBufferSession(std::move(*region), stride));
  }
};

}  // namespace

std::unique_ptr<Transport> make_floor_buffer_transport() {
  return std::make_unique<FloorBufferTransport>();
}

}  // namespace symphony::perf
