#pragma once
// A checkpoint segment: an extension instance's saved state (opaque bytes), owned by the host so
// that it outlives the instance, written by the instance.
//
// Segment: [SegmentHeader 128 B][CheckpointHeader 64 B][slot 0][slot 1]
//   slot:  [CheckpointSlotHeader 64 B][data: slot_capacity bytes, a multiple of 64]
//
// Two slots, committed by one atomic store. The writer of generation g (g = committed + 1)
// fills slot g % 2 — never the committed one — with the data, its length and XXH3-64 checksum
// and the slot's generation, then stores committed = g (release). A writer killed at any point
// before that store leaves `committed` and its slot as they were. A reader loads `committed`
// (acquire), copies the slot out and checks generation, length and checksum on its copy, so a
// writer that scribbles on the slot meanwhile cannot make it accept torn or foreign bytes; if
// the committed slot fails, the other slot (generation g - 1) is the fallback.
//
//  CheckpointHeader:          CheckpointSlotHeader:
//    0  slot_capacity  u64      0  generation  u64   (0: never written)
//    8  committed      u64      8  length      u64
//   16  commits        u64     16  checksum    u64   XXH3-64 of data[0, length)
//   24  reserved[5]    u64     24  written_at_ns u64 CLOCK_REALTIME, for people
//                              32  reserved[4] u64

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "symphony/layouts/common.hpp"
#include "symphony/layouts/segment_header.hpp"

namespace symphony::layouts {

inline constexpr std::uint64_t kCheckpointMaxCapacity = 1ULL << 30;  // bytes per slot

struct CheckpointHeader {
  std::uint64_t slot_capacity;
  std::uint64_t committed;  // atomic_ref: the generation of the last committed slot
  std::uint64_t commits;    // atomic_ref: commits made, for figures
  std::uint64_t reserved[5];
};

struct CheckpointSlotHeader {
  std::uint64_t generation;  // atomic_ref (release after the data, length and checksum)
  std::uint64_t length;
  std::uint64_t checksum;
  std::uint64_t written_at_ns;
  std::uint64_t reserved[4];
};

inline constexpr std::size_t kCheckpointHeaderSize = 64;
inline constexpr std::size_t kCheckpointSlotHeaderSize = 64;

static_assert(sizeof(CheckpointHeader) == kCheckpointHeaderSize);
static_assert(offsetof(CheckpointHeader, slot_capacity) == 0);
static_assert(offsetof(CheckpointHeader, committed) == 8);
static_assert(offsetof(CheckpointHeader, commits) == 16);
static_assert(sizeof(CheckpointSlotHeader) == kCheckpointSlotHeaderSize);
static_assert(offsetof(CheckpointSlotHeader, generation) == 0);
static_assert(offsetof(CheckpointSlotHeader, length) == 8);
static_assert(offsetof(CheckpointSlotHeader, checksum) == 16);
static_assert(offsetof(CheckpointSlotHeader, written_at_ns) == 24);
static_assert(std::is_standard_layout_v<CheckpointHeader>);
static_assert(std::is_standard_layout_v<CheckpointSlotHeader>);
static_assert(std::is_trivially_copyable_v<CheckpointSlotHeader>);

// Bytes per slot (header + data) for a capacity already rounded to a cache line.
constexpr std::uint64_t checkpoint_slot_stride(std::uint64_t slot_capacity) noexcept {
  return kCheckpointSlotHeaderSize + slot_capacity;
}
// The segment body for `slot_capacity` bytes per slot (rounded up to a cache line).
constexpr std::uint64_t checkpoint_body_size(std::uint64_t slot_capacity) noexcept {
  const std::uint64_t rounded = (slot_capacity + kCacheLine - 1) / kCacheLine * kCacheLine;
  return kCheckpointHeaderSize + 2 * checkpoint_slot_stride(rounded);
}
// Where slot `index` (0 or 1) starts, from the checkpoint header.
constexpr std::uint64_t checkpoint_slot_offset(std::uint64_t slot_capacity,
                                               std::uint64_t index) noexcept {
  return kCheckpointHeaderSize + index * checkpoint_slot_stride(slot_capacity);
}

}  // namespace symphony::layouts
