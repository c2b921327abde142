#pragma once
// What a ring's hot-path call reports. No exceptions, no allocation.

#include <cstddef>
#include <cstdint>
#include <span>

namespace symphony::engine {

enum class RingStatus : std::uint8_t {
  ok,
  full,      // producer: no room now (nothing was overwritten)
  empty,     // consumer: nothing published yet
  oversize,  // producer: the frame is larger than the ring's max_payload (refused)
  corrupt,   // shared memory holds an impossible index or frame, never followed: an SPSC ring
             // is quarantined from then on; an MPMC consumer hands that one slot back
  busy,      // producer/consumer already holds a loan/take; publish or release it first
  refused,   // not possible on this queue (e.g. a priority loan on a topic without a priority
             // lane)
};

const char* to_string(RingStatus status) noexcept;

// Loan and Frame are 16 bytes (pointer, 32-bit length, status) so that they come back in two
// registers: a 24-byte {span, status} is returned through memory, and a caller that copies it
// as a whole waits on a store-forwarding stall behind the ring's own stores (~35 ns measured).
// Frame lengths are 32-bit in the layouts, so nothing is lost.

// A writable span inside the mapped segment, valid until publish().
struct Loan {
  std::byte* data = nullptr;
  std::uint32_t size = 0;
  RingStatus status = RingStatus::ok;

  static Loan of(std::byte* data, std::uint64_t size) noexcept {
    return {data, static_cast<std::uint32_t>(size), RingStatus::ok};
  }
  static Loan failed(RingStatus status) noexcept { return {nullptr, 0, status}; }
  std::span<std::byte> bytes() const noexcept { return {data, size}; }
  bool ok() const noexcept { return status == RingStatus::ok; }
  bool would_block() const noexcept { return status == RingStatus::full; }
};

// A read-only view inside the mapped segment, valid until release(). A peer with write access to
// the segment could still change these bytes: copy before validating anything read from them.
struct Frame {
  const std::byte* data = nullptr;
  std::uint32_t size = 0;
  RingStatus status = RingStatus::ok;

  static Frame of(const std::byte* data, std::uint64_t size) noexcept {
    return {data, static_cast<std::uint32_t>(size), RingStatus::ok};
  }
  static Frame failed(RingStatus status) noexcept { return {nullptr, 0, status}; }
  std::span<const std::byte> bytes() const noexcept { return {data, size}; }
  bool ok() const noexcept { return status == RingStatus::ok; }
  bool would_block() const noexcept { return status == RingStatus::empty; }
};

static_assert(sizeof(Loan) == 16 && sizeof(Frame) == 16, "returned in registers");

}  // namespace symphony::engine
