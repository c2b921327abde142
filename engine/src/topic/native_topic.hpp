#pragma once
// The native transport: our broadcast ring in the topic segment (layout and protocol:
// shm_layouts/.../topic.hpp).

#include <filesystem>
#include <memory>

#include "topic/backend.hpp"
#include "topic/batch_flusher.hpp"
#include "topic/topic_segment.hpp"

namespace symphony::engine::detail {

// Errc::role_taken if a live process already publishes on the topic.
// `flusher` serves Route::batched (ignored otherwise).
Result<std::unique_ptr<PublisherBackend>> make_native_publisher(
    std::shared_ptr<TopicSegment> topic, const PublisherOptions& options,
    std::filesystem::path runtime_dir, std::shared_ptr<BatchFlusher> flusher);
// Errc::table_full if every subscriber entry belongs to a live process.
Result<std::unique_ptr<SubscriberBackend>> make_native_subscriber(
    std::shared_ptr<TopicSegment> topic, const SubscriberOptions& options,
    std::filesystem::path runtime_dir);

// The FIFO a subscriber's notify fd reads: one per entry occupant.
std::filesystem::path notify_fifo_path(const std::filesystem::path& runtime_dir,
                                       const TopicSegment& topic, std::uint32_t entry,
                                       std::uint64_t generation);

// Registers a holder of the topic's identity record for counters/discovery (iceoryx topics):
// claims the publisher record, or a subscriber entry. Released on destruction.
class DirectoryMembership {
 public:
  static Result<DirectoryMembership> publisher(std::shared_ptr<TopicSegment> topic);
  static Result<DirectoryMembership> subscriber(std::shared_ptr<TopicSegment> topic,
                                                const SubscriberOptions& options);
  DirectoryMembership(DirectoryMembership&&) noexcept;
  DirectoryMembership& operator=(DirectoryMembership&&) = delete;
  ~DirectoryMembership();
  layouts::TopicCounterBlock* counters() const noexcept { return counters_; }

 private:
  DirectoryMembership(std::shared_ptr<TopicSegment> topic, layouts::ProcessIdentityRecord* record,
                      layouts::TopicCounterBlock* counters) noexcept
      : topic_(std::move(topic)), record_(record), counters_(counters) {}
  std::shared_ptr<TopicSegment> topic_;
  layouts::ProcessIdentityRecord* record_;
  layouts::TopicCounterBlock* counters_;
};

}  // namespace symphony::engine::detail
