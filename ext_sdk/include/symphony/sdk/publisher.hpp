#pragma once
// Publishers of the extension SDK: handles on shared-memory topics that an Extension binds
// (engine::RawPublisher underneath) and unbinds (stop, hand-over drain).
//
// Contract. A handle is cheap to copy (all copies share one binding) and may be used from any
// thread: calls on one topic are serialised by a lock (uncontended: ~20 ns), so request workers,
// subscription threads and timers can publish on the same topic. publish() never blocks unless
// given a wait, never throws and never allocates; what went wrong is its PublishStatus, and the
// first misuse of each kind is also logged with the details (sizes, topic) to the extension's
// log. Samples are written in place in shared memory (publish_with) or copied in (publish).

#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include "symphony/engine/topic.hpp"

namespace symphony::sdk {

enum class PublishStatus : std::uint8_t {
  ok,
  full,         // a `block` subscriber's queue is full (nothing was overwritten); try again
  oversize,     // larger than the topic's max_payload: refused (logged once)
  not_bound,    // not (yet) bound: before run(), while awaiting a hand-over, or after a drain
  stopped,      // the extension has stopped: publishing after stop is a bug (logged once)
  error,        // the shared memory refused the loan (corrupt, refused): logged once
};

const char* to_string(PublishStatus status) noexcept;

namespace detail {

// One topic's publisher state, shared by every handle and the Extension that binds it.
class PublisherCore {
 public:
  PublisherCore(std::string topic, engine::TopicType type, engine::TopicOptions topic_options,
                engine::PublisherOptions publisher_options);
  ~PublisherCore();

  const std::string& topic() const noexcept { return topic_; }
  const engine::TopicType& type() const noexcept { return type_; }
  const engine::TopicOptions& topic_options() const noexcept { return topic_options_; }
  const engine::PublisherOptions& publisher_options() const noexcept {
    return publisher_options_;
  }

  // Locks, loans `length` bytes (waiting up to `wait` for room); on ok the lock stays held
  // until finish(). On anything else it is released and the reason is returned.
  std::byte* begin(std::size_t length, std::chrono::nanoseconds wait, PublishStatus& status);
  void finish() noexcept;  // publishes the loan and unlocks

  PublishStatus publish(std::span<const std::byte> bytes, std::chrono::nanoseconds wait);
  std::optional<engine::PublisherCounters> counters() const;
  bool bound() const;

  // The Extension's side.
  void bind(engine::RawPublisher publisher);
  void unbind();           // drain: the role is given up (a successor may take it)
  void stop();             // for good: publish() says `stopped` from now on
  bool stopped() const;

 private:
  void log_once(PublishStatus status, const std::string& detail);

  const std::string topic_;
  const engine::TopicType type_;
  const engine::TopicOptions topic_options_;
  const engine::PublisherOptions publisher_options_;
  mutable std::mutex mutex_;
  std::optional<engine::RawPublisher> publisher_;
  bool stopped_ = false;
  unsigned logged_ = 0;  // bit per PublishStatus already logged
};

}  // namespace detail

// Bytes of any length up to the topic's max_payload.
class RawPublisher {
 public:
  explicit RawPublisher(std::shared_ptr<detail::PublisherCore> core) noexcept
      : core_(std::move(core)) {}

  // Copies `bytes` into the next sample and publishes it. `wait`: how long to wait for room
  // when a `block` subscriber is full (0: not at all, `full` at once).
  PublishStatus publish(std::span<const std::byte> bytes,
                        std::chrono::nanoseconds wait = std::chrono::nanoseconds::zero()) {
    return core_->publish(bytes, wait);
  }
  PublishStatus publish(std::string_view text,
                        std::chrono::nanoseconds wait = std::chrono::nanoseconds::zero()) {
    return publish(std::as_bytes(std::span<const char>(text.data(), text.size())), wait);
  }
  // Zero copy: fill(std::span<std::byte>) writes the `length` bytes in place in shared memory.
  // It runs under the topic's lock and must not throw.
  template <typename Fill>
  PublishStatus publish_with(std::size_t length, Fill&& fill,
                             std::chrono::nanoseconds wait = std::chrono::nanoseconds::zero()) {
    PublishStatus status = PublishStatus::ok;
    std::byte* at = core_->begin(length, wait, status);
    if (at == nullptr) return status;
    fill(std::span<std::byte>(at, length));
    core_->finish();
    return status;
  }

  const std::string& topic() const noexcept { return core_->topic(); }
  bool bound() const { return core_->bound(); }
  // nullopt while not bound.
  std::optional<engine::PublisherCounters> counters() const { return core_->counters(); }

 private:
  std::shared_ptr<detail::PublisherCore> core_;
};

// Every sample is exactly one T (trivially copyable: it lives in shared memory).
template <typename T>
class Publisher {
  static_assert(std::is_trivially_copyable_v<T>,
                "a topic's sample type lives in shared memory: it must be trivially copyable "
                "(no pointers, no std::string)");

 public:
  explicit Publisher(std::shared_ptr<detail::PublisherCore> core) noexcept
      : raw_(std::move(core)) {}

  PublishStatus publish(const T& value,
                        std::chrono::nanoseconds wait = std::chrono::nanoseconds::zero()) {
    return raw_.publish(std::as_bytes(std::span<const T, 1>(&value, 1)), wait);
  }
  // Zero copy: fill(T&) writes the sample in place (a default-initialised T). Must not throw.
  template <typename Fill>
  PublishStatus publish_with(Fill&& fill,
                             std::chrono::nanoseconds wait = std::chrono::nanoseconds::zero()) {
    return raw_.publish_with(
        sizeof(T),
        [&](std::span<std::byte> bytes) {
          T* value = ::new (static_cast<void*>(bytes.data())) T{};
          fill(*value);
        },
        wait);
  }

  const std::string& topic() const noexcept { return raw_.topic(); }
  bool bound() const { return raw_.bound(); }
  std::optional<engine::PublisherCounters> counters() const { return raw_.counters(); }
  RawPublisher& raw() noexcept { return raw_; }

 private:
  RawPublisher raw_;
};

}  // namespace symphony::sdk
