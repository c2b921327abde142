#pragma once
// Topics: named, zero-copy publish/subscribe between processes, over one of two transports
// behind the same API (native: our broadcast ring in shared memory; iceoryx: iox::popo
// publishers and subscribers through RouDi). Created through symphony::Bus (bus.hpp).
//
// Publisher:  Loan loan = pub.try_loan(n);  write n bytes into loan.bytes();  pub.publish();
// Subscriber: Frame f = sub.try_take();  read f.bytes();  sub.release();
// Samples are written and read in place in shared memory: no copy on either side. Hot-path calls
// report through RingStatus (full / empty / oversize / corrupt), never by exception or Error.
// Each handle is used by one thread at a time.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <optional>
#include <string>
#include <type_traits>

#include "symphony/engine/error.hpp"
#include "symphony/engine/ring_status.hpp"
#include "symphony/engine/wait_strategy.hpp"

namespace symphony::engine {

enum class TopicTransport : std::uint8_t { native, iceoryx };
enum class Overflow : std::uint8_t {
  block,           // the publisher waits (or gets `full`) while this subscriber's queue is full
  discard_oldest,  // the publisher never waits for this subscriber; it loses the oldest samples
                   // and its `dropped` counter says how many
};

enum class Priority : std::uint8_t {
  normal,
  high,  // on the topic's priority lane: overtakes every queued normal sample, never dropped
};

// How a publisher hands samples to the ring (native topics; iceoryx supports `direct` only).
enum class Route : std::uint8_t {
  direct,   // publish() makes the samples visible at once and wakes sleepers
  batched,  // publish() coalesces: samples become visible (one index update, at most one
            // wake-up) once batch_size are pending or the oldest has waited batch_delay
};

// How samples are spread over a load-balancing group of subscribers (SubscriberOptions::group).
enum class Balance : std::uint8_t {
  round_robin,
  least_loaded,  // the member with the fewest routed-but-unreleased samples
};

// Topic names: 1-127 characters of letters, digits and -_./, not starting with '.';
// Errc::invalid_argument saying so otherwise.
Result<void> check_topic_name(std::string_view topic);

const char* to_string(TopicTransport transport) noexcept;
const char* to_string(Overflow overflow) noexcept;
const char* to_string(Route route) noexcept;
const char* to_string(Balance balance) noexcept;

// What a topic carries; every publisher and subscriber must agree (checked when attaching).
struct TopicType {
  std::string name = "bytes";  // typed topics: the name given to Bus::advertise<T>
  std::uint32_t size = 0;      // typed topics: sizeof(T), every sample exactly that; 0: any length
};

// Fixed when the topic is created by its first publisher or subscriber; later ones must match
// (transport, type, max_payload) or fit (history, depth), else Errc::qos_mismatch.
struct TopicOptions {
  TopicTransport transport = TopicTransport::native;
  std::uint64_t max_payload = 4096;  // typed topics: sizeof(T)
  std::uint32_t history = 0;         // last N samples a late subscriber starts with (iceoryx ≤ 16)
  // native: slots in the shared ring, a power of two; 0 picks 4 × (deepest depth + history),
  // at least 64. Every subscriber's depth + the history must fit.
  std::uint32_t capacity = 0;
  std::uint32_t max_subscribers = 16;  // native: entries in the topic's subscriber table
  // native: slots of the priority lane, a power of two (iceoryx: none; priority loans refused)
  std::uint32_t priority_capacity = 64;
};

struct PublisherOptions {
  Route route = Route::direct;
  std::chrono::microseconds batch_delay{50};  // batched: the longest a sample waits
  std::uint32_t batch_size = 64;              // batched: publish once this many are pending
  Balance balance = Balance::round_robin;     // for the topic's load-balancing group, if any
};

struct SubscriberOptions {
  // Native: samples published but not yet released. iceoryx (≤ 256): samples queued but not yet
  // taken (taken ones are held until release(), up to 256 more).
  std::uint32_t depth = 64;
  Overflow overflow = Overflow::block;
  bool history = true;  // start with the topic's last `history` samples, if any
  // Non-empty: join this load-balancing group; each sample goes to one member of it (others
  // outside the group still get every sample). One group per topic; 1-23 characters.
  std::string group;
  // Native only: start at this sample position (a position() another subscriber reported)
  // instead of the head, so that a successor takes exactly the samples its predecessor did not
  // (hot update). The samples must still be in the ring: while the predecessor stays attached
  // as a `block` subscriber it gates the publisher, so they are. Refused for a position past
  // the head, one already overwritten, with `group`, and on iceoryx. `history` is ignored.
  std::optional<std::uint64_t> start_at;
};

// Counters are read through the API at any time (by the owner thread of the handle).
struct PublisherCounters {
  std::uint64_t published = 0;
  std::uint64_t full = 0;      // times a loan found a `block` subscriber's queue full
  std::uint64_t subscribers = 0;  // attached now
  std::uint64_t flushes = 0;   // commits (index updates): below `published` when batched
  std::uint64_t wakeups = 0;   // wake-up syscalls made for sleeping subscribers
  std::uint64_t priority = 0;  // samples sent on the priority lane
  std::uint64_t routed = 0;    // samples addressed to one member of a load-balancing group
};

struct SubscriberCounters {
  std::uint64_t delivered = 0;  // samples taken
  std::uint64_t dropped = 0;    // samples lost to `discard_oldest` (never seen)
  std::uint64_t overruns = 0;   // times the publisher overtook this subscriber (each dropped ≥ 1)
};

namespace detail {
class PublisherBackend;
class SubscriberBackend;
}  // namespace detail

class RawPublisher {
 public:
  explicit RawPublisher(std::unique_ptr<detail::PublisherBackend> backend) noexcept;
  RawPublisher(RawPublisher&&) noexcept;
  RawPublisher& operator=(RawPublisher&&) noexcept;
  ~RawPublisher();

  // `length` bytes to write in place; full (a block subscriber's queue is full), oversize;
  // refused for Priority::high on a topic without a priority lane.
  [[nodiscard]] Loan try_loan(std::size_t length, Priority priority = Priority::normal) noexcept;
  // Waits for room per `strategy` until `deadline`; `full` if it passed.
  [[nodiscard]] Loan loan(std::size_t length, const WaitStrategy& strategy,
                          std::chrono::steady_clock::time_point deadline) noexcept;
  // Makes every loan since the last publish visible to every subscriber (batched: soon).
  void publish() noexcept;
  // Batched: makes everything published so far visible now.
  void flush() noexcept;
  // try_loan + copy + publish.
  [[nodiscard]] RingStatus try_publish(std::span<const std::byte> payload) noexcept;

  PublisherCounters counters() const noexcept;
  const std::string& topic() const noexcept;
  TopicTransport transport() const noexcept;

 private:
  std::unique_ptr<detail::PublisherBackend> backend_;
};

class RawSubscriber {
 public:
  explicit RawSubscriber(std::unique_ptr<detail::SubscriberBackend> backend) noexcept;
  RawSubscriber(RawSubscriber&&) noexcept;
  RawSubscriber& operator=(RawSubscriber&&) noexcept;
  ~RawSubscriber();

  // The next sample in place, or empty. Samples taken stay valid until release().
  [[nodiscard]] Frame try_take() noexcept;
  [[nodiscard]] Frame take(const WaitStrategy& strategy,
                           std::chrono::steady_clock::time_point deadline) noexcept;
  // Returns every sample taken so far.
  void release() noexcept;

  // A file descriptor that is readable while samples may be waiting: for epoll or asyncio. It
  // becomes readable when a publisher in any process publishes, and stops being readable once a
  // try_take() finds nothing. Owned by the subscriber; Error if it cannot be set up.
  Result<int> notify_fd();

  SubscriberCounters counters() const noexcept;
  // Native: the position of the next sample take() returns (every sample below it was taken);
  // hand it to a successor as SubscriberOptions::start_at. nullopt on iceoryx.
  std::optional<std::uint64_t> position() const noexcept;
  const std::string& topic() const noexcept;
  TopicTransport transport() const noexcept;

 private:
  std::unique_ptr<detail::SubscriberBackend> backend_;
};

// Typed forms over the raw ones: every sample is exactly one T, written and read in place.
template <typename T>
class Publisher {
  static_assert(std::is_trivially_copyable_v<T>, "samples live in shared memory: no pointers");

 public:
  explicit Publisher(RawPublisher raw) noexcept : raw_(std::move(raw)) {}
  // Where to construct the next sample, or nullptr with the reason in `status`.
  [[nodiscard]] T* try_loan(RingStatus* status = nullptr) noexcept {
    const Loan loan = raw_.try_loan(sizeof(T));
    if (status != nullptr) *status = loan.status;
    return loan.ok() ? static_cast<T*>(static_cast<void*>(loan.data)) : nullptr;
  }
  void publish() noexcept { raw_.publish(); }
  [[nodiscard]] RingStatus try_publish(const T& value) noexcept {
    return raw_.try_publish(std::as_bytes(std::span<const T, 1>(&value, 1)));
  }
  PublisherCounters counters() const noexcept { return raw_.counters(); }
  RawPublisher& raw() noexcept { return raw_; }

 private:
  RawPublisher raw_;
};

template <typename T>
class Subscriber {
  static_assert(std::is_trivially_copyable_v<T>, "samples live in shared memory: no pointers");

 public:
  explicit Subscriber(RawSubscriber raw) noexcept : raw_(std::move(raw)) {}
  // The next sample in place (valid until release()), or nullptr with the reason in `status`.
  [[nodiscard]] const T* try_take(RingStatus* status = nullptr) noexcept {
    const Frame frame = raw_.try_take();
    if (status != nullptr) *status = frame.status;
    return frame.ok() ? static_cast<const T*>(static_cast<const void*>(frame.data)) : nullptr;
  }
  void release() noexcept { raw_.release(); }
  Result<int> notify_fd() { return raw_.notify_fd(); }
  SubscriberCounters counters() const noexcept { return raw_.counters(); }
  RawSubscriber& raw() noexcept { return raw_; }

 private:
  RawSubscriber raw_;
};

}  // namespace symphony::engine
