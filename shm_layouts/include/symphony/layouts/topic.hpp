#pragma once
// A topic segment: the directory entry of one topic on one bus (type, QoS, who publishes and who
// subscribes, their counters) and, for the native transport, the broadcast ring that carries its
// samples. Topics on the iceoryx transport have the same segment with no slots: the samples go
// through iceoryx, the segment serves discovery, type/QoS checks and counters.
//
// Segment: [SegmentHeader 128 B][TopicHeader][subscriber entries][slots]
//
// The broadcast ring (Disruptor-style): one publisher writes sample s into slot s % capacity and
// commits it by storing s + 1 in the slot's sequence word (release, after the payload). Every
// subscriber reads the same slots with its own cursor: the publisher's cost does not grow with
// the number of subscribers. The publisher may write sample p (overwriting p - capacity) only
// below its write limit, which it recomputes once per half ring, not per sample:
//   - a `block` subscriber gates it at release_position + depth;
//   - a `discard_oldest` subscriber gates it only while it holds samples, at held_from + capacity.
// Before each recomputation the publisher announces overwrite_floor (seq_cst): samples below it
// may be overwritten, and no subscriber starts holding one. A subscriber that starts holding
// stores held_from (seq_cst) and then reads overwrite_floor (seq_cst); the publisher stores the
// floor and then reads every held_from: one of the two sees the other (Dekker).
//
// The priority lane: a second, smaller ring of slots after the normal ones, with its own head.
// Subscribers look at it before the normal ring, so a priority sample overtakes every queued
// normal one. Every subscriber gates it like a block subscriber (priority_release): priority
// samples are never dropped.
//
// Load balancing: subscribers that share a group (entry.group, one group per topic) each take
// only the samples the publisher routed to them (slot route = their entry index + 1); the
// others take every sample. group_epoch tells the publisher to re-read the membership.
//
//  slot:  +------------------+-------------+-------------+----------------------+--------+
//         | sequence u64     | length u32  | route u32   | payload              | pad..64|
//         +------------------+-------------+-------------+----------------------+--------+

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "symphony/layouts/common.hpp"
#include "symphony/layouts/doorbell.hpp"
#include "symphony/layouts/process_identity.hpp"
#include "symphony/layouts/segment_header.hpp"

namespace symphony::layouts {

inline constexpr std::size_t kTopicNameCapacity = 128;  // bytes, NUL-padded
inline constexpr std::size_t kTopicTypeNameCapacity = 64;
inline constexpr std::size_t kTopicGroupNameCapacity = 24;
inline constexpr std::uint32_t kTopicMaxSubscribers = 1024;
inline constexpr std::uint32_t kTopicMaxCapacity = 1U << 24;  // slots
inline constexpr std::uint64_t kTopicMaxPayload = 1ULL << 31;

enum class TopicTransportCode : std::uint32_t { native = 1, iceoryx = 2 };
enum class OverflowCode : std::uint32_t { block = 1, discard_oldest = 2 };

// Per publisher and per subscriber; one writer each (the holder), read by anyone.
struct TopicCounterBlock {
  std::uint64_t published;  // publisher
  std::uint64_t full;       // publisher: times a loan found a block subscriber full
  std::uint64_t delivered;  // subscriber: samples taken
  std::uint64_t dropped;    // subscriber: samples lost to discard_oldest
  std::uint64_t overruns;   // subscriber: times it was overtaken
  std::uint64_t flushes;    // publisher: commits (index updates); fewer than published if batched
  std::uint64_t wakeups;    // publisher: futex wakes made for sleeping subscribers
  std::uint64_t priority;   // publisher: samples sent on the priority lane
};
static_assert(sizeof(TopicCounterBlock) == kCacheLine);

inline constexpr std::uint64_t kTopicNotHolding = ~std::uint64_t{0};

enum class TopicEntryState : std::uint32_t { free = 0, joining = 1, active = 2 };

// Two cache lines: the first written by the subscriber as it reads, the second at join.
struct TopicSubscriberEntry {
  // line 0: the subscriber's moving parts
  std::uint64_t release_position;  // every sample below it is released (block: the gate)
  std::uint64_t held_from;         // discard_oldest: lowest sample held, or kTopicNotHolding
  std::uint32_t notify_armed;      // 1: its notify fd waits for a publish (see native_topic.cpp)
  std::uint32_t reserved0;
  std::uint64_t priority_release;  // priority lane: every sample below it is released
  std::uint64_t routed_released;   // group member: samples routed to it and released since join
  std::uint64_t reserved1[3];
  // line 1: identity and QoS, set at join
  ProcessIdentityRecord owner;
  std::uint32_t state;     // TopicEntryState; free -> joining by CAS, -> active once filled in
  std::uint32_t overflow;  // OverflowCode
  std::uint32_t depth;
  std::uint32_t group;  // 0: takes every sample; else the hash of its load-balancing group
  std::uint64_t generation;  // bumped at every join: names the notify FIFO of this occupant
  char group_name[kTopicGroupNameCapacity];  // NUL-padded; empty when group == 0
  // line 2: counters
  TopicCounterBlock counters;
};
static_assert(sizeof(TopicSubscriberEntry) == 3 * kCacheLine);
static_assert(offsetof(TopicSubscriberEntry, priority_release) == 24);
static_assert(offsetof(TopicSubscriberEntry, group) == kCacheLine + 28);
static_assert(offsetof(TopicSubscriberEntry, owner) == kCacheLine);
static_assert(offsetof(TopicSubscriberEntry, counters) == 2 * kCacheLine);
static_assert(std::is_standard_layout_v<TopicSubscriberEntry>);

struct TopicSlotHeader {
  std::uint64_t sequence;  // s + 1 once sample s is committed here; 0: never written
  std::uint32_t length;
  std::uint32_t route;     // 0: every subscriber; i + 1: only entry i of the topic's group
                           // (subscribers outside the group take every sample)
};
static_assert(sizeof(TopicSlotHeader) == 16);

// Lines 0-3 are written once by the creator, then read-only (readers verify a copy).
struct TopicHeader {
  // line 0: geometry
  std::uint64_t capacity;        // slots, a power of two; 0 for iceoryx topics
  std::uint64_t slot_stride;     // bytes per slot, a multiple of the cache line
  std::uint64_t max_payload;
  std::uint64_t subscribers_offset;  // from the segment base
  std::uint64_t slots_offset;        // from the segment base
  std::uint32_t max_subscribers;
  std::uint32_t history;
  std::uint32_t transport;  // TopicTransportCode
  std::uint32_t type_size;  // 0: any length
  std::uint64_t priority_capacity;  // slots of the priority lane (after the normal slots)
  // line 1
  char type_name[kTopicTypeNameCapacity];
  // lines 2-3
  char topic_name[kTopicNameCapacity];
  // line 4: the publisher's
  std::uint64_t head;  // next sample to publish; every sample below it is committed
  ProcessIdentityRecord publisher;
  std::uint64_t publisher_takeovers;
  std::uint64_t publisher_generation;  // bumped at every publisher attach
  std::uint64_t priority_head;  // the priority lane's head
  std::uint64_t reserved4[2];
  // line 5
  std::uint64_t overwrite_floor;  // samples below it may be overwritten (see above)
  std::uint64_t subscribers_reclaimed;  // entries freed from dead subscribers
  std::uint32_t notify_armed_count;     // subscribers whose notify fd is armed
  std::uint32_t reserved5a;
  std::uint64_t group_epoch;  // bumped whenever a load-balancing group gains or loses a member
  std::uint64_t reserved5[4];
  // line 6, 7: doorbells
  Doorbell data_available;   // for subscribers sleeping in take()
  Doorbell space_available;  // for a publisher waiting on a full block subscriber
  // line 8: the publisher's counters
  TopicCounterBlock publisher_counters;
};

inline constexpr std::size_t kTopicHeaderSize = 9 * kCacheLine;
static_assert(sizeof(TopicHeader) == kTopicHeaderSize);
static_assert(offsetof(TopicHeader, priority_capacity) == 56);
static_assert(offsetof(TopicHeader, priority_head) == 4 * kCacheLine + 40);
static_assert(offsetof(TopicHeader, group_epoch) == 5 * kCacheLine + 24);
static_assert(offsetof(TopicHeader, type_name) == 1 * kCacheLine);
static_assert(offsetof(TopicHeader, topic_name) == 2 * kCacheLine);
static_assert(offsetof(TopicHeader, head) == 4 * kCacheLine);
static_assert(offsetof(TopicHeader, overwrite_floor) == 5 * kCacheLine);
static_assert(offsetof(TopicHeader, data_available) == 6 * kCacheLine);
static_assert(offsetof(TopicHeader, space_available) == 7 * kCacheLine);
static_assert(offsetof(TopicHeader, publisher_counters) == 8 * kCacheLine);
static_assert(std::is_standard_layout_v<TopicHeader>);
static_assert(std::is_trivially_copyable_v<TopicHeader>);

constexpr std::uint64_t topic_slot_stride(std::uint64_t max_payload) noexcept {
  return align_up(sizeof(TopicSlotHeader) + max_payload, kCacheLine);
}

struct TopicGeometry {
  std::uint64_t capacity;
  std::uint64_t priority_capacity;
  std::uint64_t slot_stride;
  std::uint64_t max_payload;
  std::uint64_t subscribers_offset;
  std::uint64_t slots_offset;
  std::uint32_t max_subscribers;
  std::uint32_t history;
  std::uint32_t transport;
  std::uint32_t type_size;
};

// Where everything goes for a topic of this geometry; body size = end - kSegmentHeaderSize.
constexpr TopicGeometry topic_geometry(std::uint64_t capacity, std::uint64_t priority_capacity,
                                       std::uint64_t max_payload,
                                       std::uint32_t max_subscribers, std::uint32_t history,
                                       TopicTransportCode transport,
                                       std::uint32_t type_size) noexcept {
  TopicGeometry g{};
  g.capacity = capacity;
  g.priority_capacity = priority_capacity;
  g.slot_stride = topic_slot_stride(max_payload);
  g.max_payload = max_payload;
  g.subscribers_offset = kSegmentHeaderSize + kTopicHeaderSize;
  g.slots_offset = g.subscribers_offset + std::uint64_t{max_subscribers} *
                                              sizeof(TopicSubscriberEntry);
  g.max_subscribers = max_subscribers;
  g.history = history;
  g.transport = static_cast<std::uint32_t>(transport);
  g.type_size = type_size;
  return g;
}

// The priority lane's slots follow the normal ones, with the same stride.
constexpr std::uint64_t topic_priority_slots_offset(const TopicGeometry& g) noexcept {
  return g.slots_offset + g.capacity * g.slot_stride;
}

constexpr std::uint64_t topic_segment_end(const TopicGeometry& g) noexcept {
  return topic_priority_slots_offset(g) + g.priority_capacity * g.slot_stride;
}

}  // namespace symphony::layouts
