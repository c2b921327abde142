#pragma once
// The multi-producer multi-consumer ring of fixed-size slots (Vyukov's bounded queue with a
// sequence word per slot), extended so that a participant that dies mid-claim cannot stall it.
//
// Segment: [SegmentHeader 128 B][MpmcRingHeader 384 B][participants][slots]
//
// Slot sequence protocol, for the position p that maps to slot p & (capacity - 1):
//   sequence == p                 free: the producer that claims p may write
//   sequence == p + 1             full: the consumer that claims p may read
//   sequence == (p + 1) | kMpmcTombstone
//                                 abandoned: p's producer died after claiming; consumers skip it
//   sequence == p + capacity      released: free for position p + capacity (the next lap)
// Producers claim p by a CAS on tail, consumers by a CAS on head. Before its CAS each
// participant stores p in its `intent`, so whoever finds a slot stuck can tell whether the
// claimer is still alive (see engine/src/mpmc_ring.cpp for the recovery rules).
//
//  slot:  +---------------------+------------------+-------------+-------------------+
//         | sequence u64        | length u32       | reserved u32| payload (max)     |
//         +---------------------+------------------+-------------+-------------------+
//         slot_stride = align_up(16 + max_payload, 64)

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "symphony/layouts/common.hpp"
#include "symphony/layouts/doorbell.hpp"
#include "symphony/layouts/process_identity.hpp"
#include "symphony/layouts/segment_header.hpp"

namespace symphony::layouts {

inline constexpr std::uint64_t kMpmcTombstone = 1ULL << 63;
inline constexpr std::uint64_t kMpmcNoIntent = ~0ULL;
// Written over a dead participant's pid while its entry is being cleaned up, so that only one
// process cleans it.
inline constexpr std::uint32_t kMpmcRecoveringPid = 0xFFFFFFFFu;

struct MpmcSlotHeader {
  std::uint64_t sequence;
  std::uint32_t length;  // payload bytes in this slot
  std::uint32_t reserved;
};
inline constexpr std::size_t kMpmcSlotHeaderSize = 16;
static_assert(sizeof(MpmcSlotHeader) == kMpmcSlotHeaderSize);
static_assert(offsetof(MpmcSlotHeader, length) == 8);
static_assert(std::is_standard_layout_v<MpmcSlotHeader>);
static_assert(std::is_trivially_copyable_v<MpmcSlotHeader>);

enum class MpmcRole : std::uint32_t { none = 0, producer = 1, consumer = 2 };

// One per attached producer or consumer handle; a cache line each, since `intent` is written
// on every claim.
struct alignas(kCacheLine) MpmcParticipant {
  ProcessIdentityRecord owner;  // pid 0: free entry; claimed by CAS 0 -> pid
  std::uint64_t intent;         // position being claimed or held, kMpmcNoIntent when idle
  std::uint32_t role;           // MpmcRole
  std::uint32_t reserved0;
  std::uint64_t reserved[4];
};
static_assert(sizeof(MpmcParticipant) == kCacheLine);
static_assert(offsetof(MpmcParticipant, owner) == 0);
static_assert(offsetof(MpmcParticipant, intent) == 16);
static_assert(offsetof(MpmcParticipant, role) == 24);
static_assert(std::is_standard_layout_v<MpmcParticipant>);
static_assert(std::is_trivially_copyable_v<MpmcParticipant>);

struct MpmcRingHeader {
  // line 0: written once by the creator, then read-only (readers copy and verify it)
  std::uint64_t capacity;          // slots, power of two
  std::uint64_t slot_stride;       // bytes per slot, multiple of kCacheLine
  std::uint64_t max_payload;       // bytes a slot can carry
  std::uint64_t slots_offset;      // from the segment base
  std::uint64_t participants_offset;
  std::uint64_t max_participants;
  std::uint64_t reserved0[2];
  // line 1: producers' claim position
  std::uint64_t tail;
  std::uint64_t reserved1[7];
  // line 2: consumers' claim position
  std::uint64_t head;
  std::uint64_t reserved2[7];
  // lines 3, 4
  Doorbell items_available;  // rung by producers for sleeping consumers
  Doorbell space_available;  // rung by consumers for producers blocked on a full ring
  // line 5: counters, updated only on the rare recovery paths
  std::uint64_t abandoned_by_producers;  // claimed slots never published: skipped by consumers
  std::uint64_t reclaimed_from_consumers;  // taken slots never released: freed for producers
  std::uint64_t reserved5[6];
};

inline constexpr std::size_t kMpmcRingHeaderSize = 6 * kCacheLine;
static_assert(sizeof(MpmcRingHeader) == kMpmcRingHeaderSize);
static_assert(offsetof(MpmcRingHeader, tail) == 1 * kCacheLine);
static_assert(offsetof(MpmcRingHeader, head) == 2 * kCacheLine);
static_assert(offsetof(MpmcRingHeader, head) - offsetof(MpmcRingHeader, tail) == kCacheLine,
              "head and tail must be a cache line apart to prevent false sharing");
static_assert(offsetof(MpmcRingHeader, items_available) == 3 * kCacheLine);
static_assert(offsetof(MpmcRingHeader, space_available) == 4 * kCacheLine);
static_assert(offsetof(MpmcRingHeader, abandoned_by_producers) == 5 * kCacheLine);
static_assert(std::is_standard_layout_v<MpmcRingHeader>);
static_assert(std::is_trivially_copyable_v<MpmcRingHeader>);

constexpr std::uint64_t mpmc_slot_stride(std::uint64_t max_payload) noexcept {
  return align_up(kMpmcSlotHeaderSize + max_payload, kCacheLine);
}

// Segment body size (ring header + participants + slots).
constexpr std::uint64_t mpmc_body_size(std::uint64_t capacity, std::uint64_t max_payload,
                                       std::uint64_t max_participants) noexcept {
  return kMpmcRingHeaderSize + max_participants * sizeof(MpmcParticipant) +
         capacity * mpmc_slot_stride(max_payload);
}

}  // namespace symphony::layouts
