#include "symphony/layouts/verify.hpp"

#include <atomic>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "symphony/layouts/mpmc_ring.hpp"
#include "symphony/layouts/spsc_ring.hpp"
#include "symphony/layouts/topic.hpp"

namespace symphony::layouts {
namespace {

tl::unexpected<LayoutError> fail(LayoutErrc code, std::string message) {
  return tl::unexpected(LayoutError{code, std::move(message)});
}

std::string num(std::uint64_t v) { return std::to_string(v); }

template <typename T>
T copy_of(const std::byte* at) {
  T copy;
  std::memcpy(&copy, at, sizeof(T));
  return copy;
}

std::uint64_t load_index(const std::byte* at) {
  // Indices are written concurrently by live peers: read them the way the rings do.
  return std::atomic_ref<const std::uint64_t>(*reinterpret_cast<const std::uint64_t*>(at))
      .load(std::memory_order_acquire);
}

}  // namespace

const char* to_string(LayoutErrc code) noexcept {
  switch (code) {
    case LayoutErrc::too_small: return "segment too small";
    case LayoutErrc::bad_magic: return "bad magic";
    case LayoutErrc::version_mismatch: return "layout version mismatch";
    case LayoutErrc::wrong_kind: return "wrong segment kind";
    case LayoutErrc::not_ready: return "segment not ready";
    case LayoutErrc::size_mismatch: return "size mismatch";
    case LayoutErrc::bad_geometry: return "bad ring geometry";
    case LayoutErrc::index_out_of_range: return "ring index out of range";
  }
  return "unknown layout error";
}

tl::expected<SegmentHeader, LayoutError> verify_segment_header(const std::byte* base,
                                                               std::size_t mapped_size,
                                                               SegmentKind expected_kind) {
  if (mapped_size < kSegmentHeaderSize) {
    return fail(LayoutErrc::too_small, "mapping of " + num(mapped_size) +
                                           " bytes cannot hold the " + num(kSegmentHeaderSize) +
                                           "-byte segment header");
  }
  const auto state = std::atomic_ref<const std::uint32_t>(
                         *reinterpret_cast<const std::uint32_t*>(
                             base + offsetof(SegmentHeader, state)))
                         .load(std::memory_order_acquire);
  const auto header = copy_of<SegmentHeader>(base);
  if (header.magic != kSegmentMagic) {
    return fail(LayoutErrc::bad_magic, "magic is 0x" + [&] {
      char buf[17];
      std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(header.magic));
      return std::string(buf);
    }() + ", not a Symphony segment");
  }
  if (header.layout_version != kLayoutVersion) {
    return fail(LayoutErrc::version_mismatch,
                "layout_version is " + num(header.layout_version) + ", this build reads " +
                    num(kLayoutVersion));
  }
  if (state != kSegmentReady) {
    return fail(LayoutErrc::not_ready, "state is " + num(state) + ": creator pid " +
                                           num(header.creator_pid) + " has not finished it");
  }
  if (header.kind != static_cast<std::uint32_t>(expected_kind)) {
    return fail(LayoutErrc::wrong_kind, "kind is " + num(header.kind) + ", expected " +
                                            num(static_cast<std::uint32_t>(expected_kind)));
  }
  if (header.total_size != mapped_size) {
    return fail(LayoutErrc::size_mismatch, "total_size is " + num(header.total_size) +
                                               " but " + num(mapped_size) + " bytes are mapped");
  }
  if (header.body_offset < kSegmentHeaderSize || header.body_offset % kCacheLine != 0 ||
      header.body_offset > mapped_size || header.body_size > mapped_size - header.body_offset) {
    return fail(LayoutErrc::size_mismatch,
                "body (offset " + num(header.body_offset) + ", size " + num(header.body_size) +
                    ") does not fit in " + num(mapped_size) + " bytes");
  }
  return header;
}

tl::expected<SpscGeometry, LayoutError> verify_spsc_ring(const std::byte* base,
                                                         std::size_t mapped_size) {
  auto segment = verify_segment_header(base, mapped_size, SegmentKind::spsc_ring);
  if (!segment) return tl::unexpected(std::move(segment.error()));
  if (segment->body_size < kSpscRingHeaderSize) {
    return fail(LayoutErrc::too_small, "body of " + num(segment->body_size) +
                                           " bytes cannot hold the SPSC ring header");
  }
  const std::byte* ring = base + segment->body_offset;
  const auto header = copy_of<SpscRingHeader>(ring);
  const SpscGeometry geometry{header.capacity, header.max_payload, header.data_offset};
  if (!is_power_of_two(geometry.capacity) || geometry.capacity < kSpscMinCapacity ||
      geometry.capacity > kSpscMaxCapacity) {
    return fail(LayoutErrc::bad_geometry, "capacity " + num(geometry.capacity) +
                                              " is not a power of two in " +
                                              num(kSpscMinCapacity) + ".." +
                                              num(kSpscMaxCapacity));
  }
  if (geometry.max_payload > spsc_max_payload_for(geometry.capacity)) {
    return fail(LayoutErrc::bad_geometry, "max_payload " + num(geometry.max_payload) +
                                              " exceeds half of capacity " +
                                              num(geometry.capacity));
  }
  const std::uint64_t ring_offset = segment->body_offset;
  if (geometry.data_offset != ring_offset + kSpscRingHeaderSize ||
      geometry.data_offset + geometry.capacity > mapped_size) {
    return fail(LayoutErrc::bad_geometry, "data (offset " + num(geometry.data_offset) +
                                              ", capacity " + num(geometry.capacity) +
                                              ") is not where the header says or overruns " +
                                              num(mapped_size) + " bytes");
  }
  const auto write_index = load_index(ring + offsetof(SpscRingHeader, write_index));
  const auto read_index = load_index(ring + offsetof(SpscRingHeader, read_index));
  if (!spsc_indices_plausible(write_index, read_index, geometry.capacity)) {
    return fail(LayoutErrc::index_out_of_range,
                "write_index " + num(write_index) + " and read_index " + num(read_index) +
                    " are impossible for capacity " + num(geometry.capacity));
  }
  return geometry;
}

tl::expected<MpmcGeometry, LayoutError> verify_mpmc_ring(const std::byte* base,
                                                         std::size_t mapped_size) {
  auto segment = verify_segment_header(base, mapped_size, SegmentKind::mpmc_ring);
  if (!segment) return tl::unexpected(std::move(segment.error()));
  if (segment->body_size < kMpmcRingHeaderSize) {
    return fail(LayoutErrc::too_small, "body of " + num(segment->body_size) +
                                           " bytes cannot hold the MPMC ring header");
  }
  const std::byte* ring = base + segment->body_offset;
  const auto header = copy_of<MpmcRingHeader>(ring);
  const MpmcGeometry g{header.capacity,     header.slot_stride,        header.max_payload,
                       header.slots_offset, header.participants_offset, header.max_participants};
  if (!is_power_of_two(g.capacity) || g.capacity > (1ULL << 32)) {
    return fail(LayoutErrc::bad_geometry,
                "capacity " + num(g.capacity) + " is not a power of two <= 2^32");
  }
  if (g.max_payload == 0 || g.max_payload > (1ULL << 31) ||
      g.slot_stride != mpmc_slot_stride(g.max_payload)) {
    return fail(LayoutErrc::bad_geometry, "slot_stride " + num(g.slot_stride) +
                                              " does not match max_payload " +
                                              num(g.max_payload));
  }
  if (g.max_participants == 0 || g.max_participants > 4096) {
    return fail(LayoutErrc::bad_geometry,
                "max_participants " + num(g.max_participants) + " is not in 1..4096");
  }
  const std::uint64_t expected_participants = segment->body_offset + kMpmcRingHeaderSize;
  const std::uint64_t expected_slots =
      expected_participants + g.max_participants * sizeof(MpmcParticipant);
  if (g.participants_offset != expected_participants || g.slots_offset != expected_slots ||
      g.capacity * g.slot_stride > mapped_size - std::min<std::uint64_t>(expected_slots, mapped_size) ) {
    return fail(LayoutErrc::bad_geometry,
                "participants at " + num(g.participants_offset) + " and slots at " +
                    num(g.slots_offset) + " (" + num(g.capacity) + " x " + num(g.slot_stride) +
                    " bytes) do not fit the " + num(mapped_size) + "-byte segment");
  }
  // As for SPSC: head read before and after tail gives one pair for each bound.
  const auto head_before = load_index(ring + offsetof(MpmcRingHeader, head));
  const auto tail = load_index(ring + offsetof(MpmcRingHeader, tail));
  const auto head = load_index(ring + offsetof(MpmcRingHeader, head));
  if (head_before > tail || tail - std::min(head, tail) > g.capacity) {
    return fail(LayoutErrc::index_out_of_range, "head " + num(head) + " and tail " + num(tail) +
                                                    " are impossible for capacity " +
                                                    num(g.capacity));
  }
  return g;
}

tl::expected<TopicGeometry, LayoutError> verify_topic(const std::byte* base,
                                                      std::size_t mapped_size) {
  auto segment = verify_segment_header(base, mapped_size, SegmentKind::topic);
  if (!segment) return tl::unexpected(std::move(segment.error()));
  if (segment->body_size < kTopicHeaderSize) {
    return fail(LayoutErrc::too_small, "body of " + num(segment->body_size) +
                                           " bytes cannot hold the topic header");
  }
  const std::byte* topic = base + segment->body_offset;
  const auto h = copy_of<TopicHeader>(topic);
  if (h.transport != static_cast<std::uint32_t>(TopicTransportCode::native) &&
      h.transport != static_cast<std::uint32_t>(TopicTransportCode::iceoryx)) {
    return fail(LayoutErrc::bad_geometry, "transport code " + num(h.transport) + " is unknown");
  }
  const bool native = h.transport == static_cast<std::uint32_t>(TopicTransportCode::native);
  if (native ? (!is_power_of_two(h.capacity) || h.capacity > kTopicMaxCapacity)
             : h.capacity != 0) {
    return fail(LayoutErrc::bad_geometry,
                "capacity " + num(h.capacity) +
                    (native ? " is not a power of two <= 2^24" : " must be 0 for iceoryx"));
  }
  if (h.max_payload == 0 || h.max_payload > kTopicMaxPayload ||
      (h.type_size != 0 && h.type_size != h.max_payload)) {
    return fail(LayoutErrc::bad_geometry, "max_payload " + num(h.max_payload) +
                                              " (type size " + num(h.type_size) +
                                              ") is impossible");
  }
  if (h.max_subscribers == 0 || h.max_subscribers > kTopicMaxSubscribers) {
    return fail(LayoutErrc::bad_geometry,
                "max_subscribers " + num(h.max_subscribers) + " is not in 1..1024");
  }
  if (native ? (!is_power_of_two(h.priority_capacity) || h.priority_capacity > kTopicMaxCapacity)
             : h.priority_capacity != 0) {
    return fail(LayoutErrc::bad_geometry, "priority_capacity " + num(h.priority_capacity) +
                                              (native ? " is not a power of two <= 2^24"
                                                      : " must be 0 for iceoryx"));
  }
  const TopicGeometry expected =
      topic_geometry(h.capacity, h.priority_capacity, h.max_payload, h.max_subscribers,
                     h.history, static_cast<TopicTransportCode>(h.transport), h.type_size);
  if (h.slot_stride != expected.slot_stride || h.subscribers_offset != expected.subscribers_offset ||
      h.slots_offset != expected.slots_offset || topic_segment_end(expected) > mapped_size) {
    return fail(LayoutErrc::bad_geometry,
                "slots (" + num(h.capacity) + " x " + num(h.slot_stride) + " bytes at " +
                    num(h.slots_offset) + ") and subscribers (at " +
                    num(h.subscribers_offset) + ") do not fit the " + num(mapped_size) +
                    "-byte segment");
  }
  if (native && h.history >= h.capacity) {
    return fail(LayoutErrc::bad_geometry,
                "history " + num(h.history) + " does not fit capacity " + num(h.capacity));
  }
  if (std::memchr(h.type_name, 0, sizeof h.type_name) == nullptr ||
      std::memchr(h.topic_name, 0, sizeof h.topic_name) == nullptr) {
    return fail(LayoutErrc::bad_geometry, "type or topic name is not NUL-terminated");
  }
  const auto floor = load_index(topic + offsetof(TopicHeader, overwrite_floor));
  const auto head = load_index(topic + offsetof(TopicHeader, head));
  if (native && floor > head) {
    return fail(LayoutErrc::index_out_of_range,
                "overwrite_floor " + num(floor) + " is past head " + num(head));
  }
  return expected;
}

tl::expected<CheckpointGeometry, LayoutError> verify_checkpoint(const std::byte* base,
                                                                std::size_t mapped_size) {
  auto segment = verify_segment_header(base, mapped_size, SegmentKind::checkpoint);
  if (!segment) return tl::unexpected(std::move(segment.error()));
  if (segment->body_size < kCheckpointHeaderSize) {
    return fail(LayoutErrc::too_small, "body of " + num(segment->body_size) +
                                           " bytes cannot hold the checkpoint header");
  }
  const auto h = copy_of<CheckpointHeader>(base + segment->body_offset);
  if (h.slot_capacity == 0 || h.slot_capacity % kCacheLine != 0 ||
      h.slot_capacity > kCheckpointMaxCapacity) {
    return fail(LayoutErrc::bad_geometry, "slot_capacity " + num(h.slot_capacity) +
                                              " is not a multiple of 64 in 64..2^30");
  }
  if (checkpoint_body_size(h.slot_capacity) != segment->body_size) {
    return fail(LayoutErrc::size_mismatch,
                "two slots of " + num(h.slot_capacity) + " bytes need a body of " +
                    num(checkpoint_body_size(h.slot_capacity)) + " bytes, the header says " +
                    num(segment->body_size));
  }
  return CheckpointGeometry{h.slot_capacity, segment->body_offset};
}

}  // namespace symphony::layouts
