#pragma once
// The single-producer single-consumer ring of variable-length frames.
//
// Segment:  [SegmentHeader 128 B][SpscRingHeader 384 B][data: capacity bytes]
//
// Indices are byte positions that only grow (u64 never wraps in practice); the data offset of
// a position is position & (capacity - 1). Frames are 8-byte aligned and never split at the end
// of the data area: a frame that would not fit in the tail is preceded by a padding frame that
// covers the tail, and starts again at offset 0.
//
//  frame:  +-----------------+-----------------+------------------------------+--------+
//          | length u32      | commit u32      | payload (length bytes)       | pad..8 |
//          +-----------------+-----------------+------------------------------+--------+
//
// A frame at position p is committed when its commit word equals spsc_commit_word(kind, p),
// stored with release order after the payload. The consumer polls that word, in the same cache
// line as the data, instead of the producer's write_index: one cache-line transfer per message,
// as in the floor ping-pong. Because p is in the word, a frame left from an earlier lap (p minus
// a multiple of the capacity) never looks committed. While loaned, a frame's commit word holds
// the bitwise complement of its committed value, which also records its kind.
// write_index is still stored at every publish: the producer's restart point, the verifier's
// bound, and the consumer's check before it sleeps.

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "symphony/layouts/common.hpp"
#include "symphony/layouts/doorbell.hpp"
#include "symphony/layouts/process_identity.hpp"
#include "symphony/layouts/segment_header.hpp"

namespace symphony::layouts {

struct SpscFrameHeader {
  std::uint32_t length;  // payload bytes; for padding, the bytes after this header to the end
  std::uint32_t commit;  // spsc_commit_word(kFrameData or kFramePadding, position)
};

inline constexpr std::uint32_t kFrameData = 0x41544144;     // "DATA"
inline constexpr std::uint32_t kFramePadding = 0x44444150;  // "PADD"
inline constexpr std::uint64_t kFrameAlignment = 8;
inline constexpr std::uint64_t kSpscMinCapacity = 256;

// The commit word of a frame of `kind` at byte position `position`: distinct for every position
// in a window of 2^35 bytes, so capacities up to 2^34 never confuse laps.
constexpr std::uint32_t spsc_commit_word(std::uint32_t kind, std::uint64_t position) noexcept {
  return kind ^ static_cast<std::uint32_t>(position >> 3);
}
inline constexpr std::uint64_t kSpscMaxCapacity = 1ULL << 34;

static_assert(sizeof(SpscFrameHeader) == 8);
static_assert(sizeof(SpscFrameHeader) == kFrameAlignment, "payloads start 8-byte aligned");
static_assert(std::is_standard_layout_v<SpscFrameHeader>);
static_assert(std::is_trivially_copyable_v<SpscFrameHeader>);

// Cache line 0: written once by the creator, then read-only (readers copy and verify it).
// Cache line 1: the producer's; the consumer reads write_index.
// Cache line 2: the consumer's; the producer reads read_index.
// Cache lines 3-4: doorbells, each on its own line so that ringing one does not disturb the
// other side's index.
// Cache line 5: counters, written rarely.
struct SpscRingHeader {
  // line 0
  std::uint64_t capacity;        // bytes of data area, power of two
  std::uint64_t max_payload;     // largest payload a frame may carry
  std::uint64_t data_offset;     // from the segment base, cache-line aligned
  std::uint64_t reserved0[5];
  // line 1
  std::uint64_t write_index;  // bytes published, release-stored by the producer
  ProcessIdentityRecord producer;  // who holds the producer role (0 = nobody)
  std::uint64_t reserved1[5];
  // line 2
  std::uint64_t read_index;  // bytes released, release-stored by the consumer
  ProcessIdentityRecord consumer;
  std::uint64_t reserved2[5];
  // lines 3, 4
  Doorbell data_available;   // rung by the producer for a sleeping consumer
  Doorbell space_available;  // rung by the consumer for a producer blocked on a full ring
  // line 5
  std::uint64_t producer_takeovers;  // a producer role taken from a dead holder
  std::uint64_t consumer_takeovers;
  std::uint64_t reserved5[6];
};

inline constexpr std::size_t kSpscRingHeaderSize = 6 * kCacheLine;

static_assert(sizeof(SpscRingHeader) == kSpscRingHeaderSize);
static_assert(offsetof(SpscRingHeader, capacity) == 0);
static_assert(offsetof(SpscRingHeader, max_payload) == 8);
static_assert(offsetof(SpscRingHeader, data_offset) == 16);
static_assert(offsetof(SpscRingHeader, write_index) == 1 * kCacheLine);
static_assert(offsetof(SpscRingHeader, producer) == 1 * kCacheLine + 8);
static_assert(offsetof(SpscRingHeader, read_index) == 2 * kCacheLine);
static_assert(offsetof(SpscRingHeader, consumer) == 2 * kCacheLine + 8);
static_assert(offsetof(SpscRingHeader, read_index) - offsetof(SpscRingHeader, write_index) ==
                  kCacheLine,
              "write and read indices must be a cache line apart to prevent false sharing");
static_assert(offsetof(SpscRingHeader, data_available) == 3 * kCacheLine);
static_assert(offsetof(SpscRingHeader, space_available) == 4 * kCacheLine);
static_assert(offsetof(SpscRingHeader, producer_takeovers) == 5 * kCacheLine);
static_assert(std::is_standard_layout_v<SpscRingHeader>);
static_assert(std::is_trivially_copyable_v<SpscRingHeader>);

// Bytes a frame with `payload` bytes occupies in the data area.
constexpr std::uint64_t spsc_frame_size(std::uint64_t payload) noexcept {
  return align_up(sizeof(SpscFrameHeader) + payload, kFrameAlignment);
}

// The largest payload a ring of `capacity` bytes accepts: a frame may need a padding frame in
// front of it, so at most half the ring (minus the header) is always placeable.
constexpr std::uint64_t spsc_max_payload_for(std::uint64_t capacity) noexcept {
  return capacity / 2 - sizeof(SpscFrameHeader);
}

// The only index pairs a ring can be in: the consumer at most `capacity` behind the producer,
// never ahead, both on frame boundaries. Checked on every refresh from shared memory.
constexpr bool spsc_indices_consistent(std::uint64_t write_index, std::uint64_t read_index,
                                       std::uint64_t capacity) noexcept {
  return write_index >= read_index && write_index - read_index <= capacity &&
         write_index % kFrameAlignment == 0 && read_index % kFrameAlignment == 0;
}

// What an observer other than the producer can rely on: the consumer may be ahead of
// write_index when a producer died (or is) inside publish(), after committing frames and before
// storing write_index, but never by more than a ring, and both stay on frame boundaries.
constexpr bool spsc_indices_plausible(std::uint64_t write_index, std::uint64_t read_index,
                                      std::uint64_t capacity) noexcept {
  const std::uint64_t gap =
      write_index >= read_index ? write_index - read_index : read_index - write_index;
  return gap <= capacity && write_index % kFrameAlignment == 0 &&
         read_index % kFrameAlignment == 0;
}

// Segment body size (ring header + data) for a ring of `capacity` bytes.
constexpr std::uint64_t spsc_body_size(std::uint64_t capacity) noexcept {
  return kSpscRingHeaderSize + capacity;
}

}  // namespace symphony::layouts
