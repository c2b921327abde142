#pragma once
// The shared-memory segment of one topic (layout: shm_layouts/.../topic.hpp): created by the
// first publisher or subscriber with its options, checked against every later one, unlinked by
// the last one out. Both transports have one; only native topics have slots.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "symphony/engine/shm_segment.hpp"
#include "symphony/engine/topic.hpp"
#include "symphony/layouts/topic.hpp"
#include "symphony/layouts/verify.hpp"

namespace symphony::engine::detail {

// "symphony.<bus>.topic.<topic with '/' as '%'>"; Error if either name is not allowed.
Result<std::string> topic_segment_name(std::string_view bus, std::string_view topic);
// The prefix every topic segment name of `bus` starts with.
std::string topic_segment_prefix(std::string_view bus);
// The topic name back from a segment name (inverse of the '/' mapping).
std::string topic_from_segment_name(std::string_view bus, std::string_view segment_name);

// The capacity a new native topic gets for these options and the first subscriber's depth.
std::uint64_t auto_topic_capacity(const TopicOptions& options, std::uint32_t depth);

class TopicSegment {
 public:
  // Creates or attaches; Errc::type_mismatch / qos_mismatch with both sides' values if this
  // participant disagrees with the topic as created. `depth` is the subscriber's (0: publisher).
  static Result<std::shared_ptr<TopicSegment>> attach(std::string_view bus, std::string_view topic,
                                                      const TopicType& type,
                                                      const TopicOptions& options,
                                                      std::uint32_t depth);
  // Maps an existing topic for reading its directory (discovery); never creates.
  static Result<std::shared_ptr<TopicSegment>> inspect(std::string_view segment_name);

  const std::string& topic() const noexcept { return topic_; }
  const layouts::TopicGeometry& geometry() const noexcept { return geometry_; }
  layouts::TopicHeader* header() const noexcept { return header_; }
  layouts::TopicSubscriberEntry* entry(std::uint32_t index) const noexcept {
    return reinterpret_cast<layouts::TopicSubscriberEntry*>(segment_.base() +
                                                            geometry_.subscribers_offset) +
           index;
  }
  std::byte* slot(std::uint64_t sample) const noexcept {
    return segment_.base() + geometry_.slots_offset +
           (sample & (geometry_.capacity - 1)) * geometry_.slot_stride;
  }
  std::byte* priority_slot(std::uint64_t sample) const noexcept {
    return segment_.base() + layouts::topic_priority_slots_offset(geometry_) +
           (sample & (geometry_.priority_capacity - 1)) * geometry_.slot_stride;
  }
  TopicTransport transport() const noexcept {
    return geometry_.transport == static_cast<std::uint32_t>(layouts::TopicTransportCode::iceoryx)
               ? TopicTransport::iceoryx
               : TopicTransport::native;
  }
  std::string type_name() const;
  const std::string& segment_name() const noexcept { return segment_.name(); }

 private:
  TopicSegment(ShmSegment segment, layouts::TopicGeometry geometry, std::string topic) noexcept;
  ShmSegment segment_;
  layouts::TopicGeometry geometry_;
  layouts::TopicHeader* header_;
  std::string topic_;
};

}  // namespace symphony::engine::detail
