#pragma once
// The first 128 bytes of every Symphony shared-memory segment.

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "symphony/layouts/common.hpp"

namespace symphony::layouts {

//  offset  field                 written by / when
//  ------  --------------------  -------------------------------------------------------------
//     0    magic         u64     creator, before state becomes ready
//     8    layout_version u32    creator
//    12    kind          u32     creator (SegmentKind)
//    16    total_size    u64     creator: bytes mapped, header included
//    24    creator_pid   u32     creator
//    28    state         u32     creator, last, with release order (kSegmentReady)
//    32    creator_start_time u64  creator (clock ticks since boot, /proc/<pid>/stat field 22)
//    40    generation    u64     creator: the replaced stale segment's generation + 1
//    48    body_offset   u64     creator: where the kind-specific header starts
//    56    body_size     u64     creator
//    64    reserved[8]   u64     zero
//   128    body ...
struct SegmentHeader {
  std::uint64_t magic;
  std::uint32_t layout_version;
  std::uint32_t kind;
  std::uint64_t total_size;
  std::uint32_t creator_pid;
  std::uint32_t state;  // accessed through std::atomic_ref
  std::uint64_t creator_start_time;
  std::uint64_t generation;
  std::uint64_t body_offset;
  std::uint64_t body_size;
  std::uint64_t reserved[8];
};

inline constexpr std::uint32_t kSegmentInitializing = 0;
inline constexpr std::uint32_t kSegmentReady = 0x52454459;  // "YDER": not a value zeroed memory has

inline constexpr std::size_t kSegmentHeaderSize = 128;

static_assert(sizeof(SegmentHeader) == kSegmentHeaderSize);
static_assert(alignof(SegmentHeader) == 8);
static_assert(offsetof(SegmentHeader, magic) == 0);
static_assert(offsetof(SegmentHeader, layout_version) == 8);
static_assert(offsetof(SegmentHeader, kind) == 12);
static_assert(offsetof(SegmentHeader, total_size) == 16);
static_assert(offsetof(SegmentHeader, creator_pid) == 24);
static_assert(offsetof(SegmentHeader, state) == 28);
static_assert(offsetof(SegmentHeader, creator_start_time) == 32);
static_assert(offsetof(SegmentHeader, generation) == 40);
static_assert(offsetof(SegmentHeader, body_offset) == 48);
static_assert(offsetof(SegmentHeader, body_size) == 56);
static_assert(std::is_standard_layout_v<SegmentHeader>);
static_assert(std::is_trivially_copyable_v<SegmentHeader>);
static_assert(kSegmentHeaderSize % kCacheLine == 0, "bodies start on a cache line");

}  // namespace symphony::layouts
