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
};

const char* to_string(RingStatus status) noexcept;

// A writable span inside the mapped segment, valid until publish().
struct Loan {
  std::span<std::byte> bytes;
  RingStatus status = RingStatus::ok;
  bool ok() const noexcept { return status == RingStatus::ok; }
  bool would_block() const noexcept { return status == RingStatus::full; }
};

// A read-only view inside the mapped segment, valid until release(). A peer with write access to
// the segment could still change these bytes: copy before validating anything read from them.
struct Frame {
  std::span<const std::byte> bytes;
  RingStatus status = RingStatus::ok;
  bool ok() const noexcept { return status == RingStatus::ok; }
  bool would_block() const noexcept { return status == RingStatus::empty; }
};

}  // namespace symphony::engine
