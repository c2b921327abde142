#include "topic/topic_segment.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace symphony::engine::detail {
namespace {

using layouts::TopicHeader;

constexpr std::string_view kSegmentInfix = ".topic.";
// A topic name cannot hold '%': it stands for '/' in segment names, which cannot hold '/'.
constexpr char kSlashStandIn = '%';

bool valid_topic_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_' || c == '.' || c == '/';
}

Error mismatch(Errc code, std::string_view topic, const std::string& what) {
  return Error{code, "topic '" + std::string(topic) + "': " + what};
}

std::string fixed_string(const char* chars, std::size_t capacity) {
  return std::string(chars, strnlen(chars, capacity));
}

}  // namespace

std::string topic_segment_prefix(std::string_view bus) {
  return "symphony." + std::string(bus) + std::string(kSegmentInfix);
}

Result<std::string> topic_segment_name(std::string_view bus, std::string_view topic) {
  if (auto valid = engine::check_topic_name(topic); !valid) return tl::unexpected(valid.error());
  std::string name = topic_segment_prefix(bus) + std::string(topic);
  std::replace(name.end() - static_cast<std::ptrdiff_t>(topic.size()), name.end(), '/',
               kSlashStandIn);
  return name;
}

std::string topic_from_segment_name(std::string_view bus, std::string_view segment_name) {
  std::string topic(segment_name.substr(topic_segment_prefix(bus).size()));
  std::replace(topic.begin(), topic.end(), kSlashStandIn, '/');
  return topic;
}

std::uint64_t auto_topic_capacity(const TopicOptions& options, std::uint32_t depth) {
  if (options.capacity != 0) return options.capacity;
  const std::uint64_t wanted =
      4 * (std::uint64_t{std::max<std::uint32_t>(depth, 64)} + options.history);
  return std::bit_ceil(std::max<std::uint64_t>(wanted, 64));
}

TopicSegment::TopicSegment(ShmSegment segment, layouts::TopicGeometry geometry,
                           std::string topic) noexcept
    : segment_(std::move(segment)),
      geometry_(geometry),
      header_(reinterpret_cast<TopicHeader*>(segment_.body())),
      topic_(std::move(topic)) {}

std::string TopicSegment::type_name() const {
  return fixed_string(header_->type_name, sizeof header_->type_name);
}

Result<std::shared_ptr<TopicSegment>> TopicSegment::attach(std::string_view bus,
                                                           std::string_view topic,
                                                           const TopicType& type,
                                                           const TopicOptions& options,
                                                           std::uint32_t depth) {
  auto name = topic_segment_name(bus, topic);
  if (!name) return tl::unexpected(name.error());
  if (type.name.empty() || type.name.size() >= layouts::kTopicTypeNameCapacity) {
    return tl::unexpected(Error{Errc::invalid_argument, "type name '" + type.name +
                                                            "' must be 1-63 characters"});
  }
  const bool native = options.transport == TopicTransport::native;
  const std::uint64_t max_payload = type.size != 0 ? type.size : options.max_payload;
  if (max_payload == 0 || max_payload > layouts::kTopicMaxPayload) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "max_payload " + std::to_string(max_payload) +
                                    " must be between 1 byte and 2 GiB"});
  }
  if (options.max_subscribers == 0 || options.max_subscribers > layouts::kTopicMaxSubscribers) {
    return tl::unexpected(Error{Errc::invalid_argument, "max_subscribers must be 1-1024"});
  }
  const std::uint64_t capacity = native ? auto_topic_capacity(options, depth) : 0;
  if (native && (!std::has_single_bit(capacity) || capacity > layouts::kTopicMaxCapacity ||
                 capacity <= options.history)) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "capacity " + std::to_string(capacity) +
                                    " must be a power of two up to 2^24 and exceed the history " +
                                    std::to_string(options.history)});
  }
  const std::uint64_t priority_capacity = native ? options.priority_capacity : 0;
  if (native && (!std::has_single_bit(priority_capacity) ||
                 priority_capacity > layouts::kTopicMaxCapacity)) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "priority_capacity " + std::to_string(priority_capacity) +
                                    " must be a power of two up to 2^24"});
  }
  const layouts::TopicGeometry wanted = layouts::topic_geometry(
      capacity, priority_capacity, max_payload, options.max_subscribers, options.history,
      native ? layouts::TopicTransportCode::native : layouts::TopicTransportCode::iceoryx,
      type.size);
  const std::uint64_t body = layouts::topic_segment_end(wanted) - layouts::kSegmentHeaderSize;

  auto segment = ShmSegment::attach_shared(
      *name, layouts::SegmentKind::topic, body, [&](ShmSegment& created) -> Result<void> {
        auto* h = reinterpret_cast<TopicHeader*>(created.body());
        std::memset(static_cast<void*>(h), 0, sizeof(TopicHeader));
        h->capacity = wanted.capacity;
        h->priority_capacity = wanted.priority_capacity;
        h->slot_stride = wanted.slot_stride;
        h->max_payload = wanted.max_payload;
        h->subscribers_offset = wanted.subscribers_offset;
        h->slots_offset = wanted.slots_offset;
        h->max_subscribers = wanted.max_subscribers;
        h->history = wanted.history;
        h->transport = wanted.transport;
        h->type_size = wanted.type_size;
        std::memcpy(h->type_name, type.name.data(), type.name.size());
        std::memcpy(h->topic_name, topic.data(), topic.size());
        // Subscriber entries and slot headers are zero from ftruncate: free and never written.
        return {};
      });
  if (!segment) return tl::unexpected(std::move(segment.error()));
  auto geometry = layouts::verify_topic(segment->base(), segment->size());
  if (!geometry) return tl::unexpected(Error::from_layout(*name, geometry.error()));
  std::shared_ptr<TopicSegment> result(
      new TopicSegment(std::move(*segment), *geometry, std::string(topic)));

  // The topic as created must serve this participant.
  const layouts::TopicGeometry& g = *geometry;
  if (g.transport != wanted.transport) {
    return tl::unexpected(mismatch(
        Errc::qos_mismatch, topic,
        std::string("it uses the ") + to_string(result->transport()) + " transport, not " +
            to_string(options.transport)));
  }
  const std::string existing_type = result->type_name();
  if (existing_type != type.name || g.type_size != type.size) {
    return tl::unexpected(mismatch(
        Errc::type_mismatch, topic,
        "it carries '" + existing_type + "' (" +
            (g.type_size == 0 ? std::string("any length") : std::to_string(g.type_size) + " B") +
            "), not '" + type.name + "' (" +
            (type.size == 0 ? std::string("any length") : std::to_string(type.size) + " B") +
            ")"));
  }
  if (g.max_payload < max_payload && type.size == 0 && depth == 0) {
    // A publisher that wants to send more than the topic carries.
    return tl::unexpected(mismatch(Errc::qos_mismatch, topic,
                                   "its max_payload is " + std::to_string(g.max_payload) +
                                       " B, this publisher asks for " +
                                       std::to_string(max_payload) + " B"));
  }
  if (native && depth != 0 && std::uint64_t{depth} + g.history > g.capacity) {
    return tl::unexpected(mismatch(Errc::qos_mismatch, topic,
                                   "a depth of " + std::to_string(depth) + " plus its history " +
                                       std::to_string(g.history) + " exceeds its capacity of " +
                                       std::to_string(g.capacity) +
                                       " samples (set TopicOptions::capacity when creating it)"));
  }
  return result;
}

Result<std::shared_ptr<TopicSegment>> TopicSegment::inspect(std::string_view segment_name) {
  auto segment = ShmSegment::open(segment_name, layouts::SegmentKind::topic);
  if (!segment) return tl::unexpected(std::move(segment.error()));
  auto geometry = layouts::verify_topic(segment->base(), segment->size());
  if (!geometry) return tl::unexpected(Error::from_layout(segment_name, geometry.error()));
  const auto* h = reinterpret_cast<const TopicHeader*>(segment->body());
  std::string topic = fixed_string(h->topic_name, sizeof h->topic_name);
  return std::shared_ptr<TopicSegment>(
      new TopicSegment(std::move(*segment), *geometry, std::move(topic)));
}

}  // namespace symphony::engine::detail

namespace symphony::engine {

Result<void> check_topic_name(std::string_view topic) {
  if (topic.empty() || topic.size() > layouts::kTopicNameCapacity - 1 ||
      !std::all_of(topic.begin(), topic.end(), detail::valid_topic_char) || topic.front() == '.') {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "topic name '" + std::string(topic) +
                                    "' must be 1-127 characters of letters, digits and -_./, "
                                    "not starting with '.'"});
  }
  return {};
}

}  // namespace symphony::engine
