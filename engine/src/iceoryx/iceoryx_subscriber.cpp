// The iceoryx subscriber backend.
//
// An iox::popo::UntypedSubscriber with queueCapacity = depth and QueueFullPolicy BLOCK_PRODUCER
// (Overflow::block) or DISCARD_OLDEST_DATA (Overflow::discard_oldest). Samples are taken in
// place and held until release().
//
// Drops are counted exactly from iceoryx's per-publisher sequence numbers (chunk headers): a gap
// between two samples of one publisher is that many dropped samples and one overrun. Drops
// before the first sample we take are found through the publisher's status chunk
// (iceoryx_internal.hpp: PublisherStatus), which says which sequence number our queue joined at.
//
// notify_fd(): an eventfd fed by the process's iox::popo::Listener (ListenerHub): iceoryx calls
// back on its thread for every sample pushed into our queue. A try_take() that finds nothing
// drains the eventfd and arms it; the first callback after that writes it (one write per idle
// period, not per sample). After arming, the subscriber looks at its queue once more and fires
// itself if a sample slipped in, so no wake-up is lost.

#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "iceoryx_internal.hpp"

namespace symphony::engine::detail {
namespace {

using iox::popo::SubscriberPortData;
using Clock = std::chrono::steady_clock;

std::atomic_ref<std::uint64_t> ref64(std::uint64_t& v) noexcept {
  return std::atomic_ref<std::uint64_t>(v);
}

class PortSubscriber : public iox::popo::UntypedSubscriber {
 public:
  using UntypedSubscriber::UntypedSubscriber;
  SubscriberPortData* data() noexcept {
    return static_cast<SubscriberPortData*>(port_members(port()));
  }
};

const char* state_name(iox::SubscribeState state) {
  switch (state) {
    case iox::SubscribeState::NOT_SUBSCRIBED: return "NOT_SUBSCRIBED";
    case iox::SubscribeState::SUBSCRIBE_REQUESTED: return "SUBSCRIBE_REQUESTED";
    case iox::SubscribeState::SUBSCRIBED: return "SUBSCRIBED";
    case iox::SubscribeState::UNSUBSCRIBE_REQUESTED: return "UNSUBSCRIBE_REQUESTED";
    case iox::SubscribeState::WAIT_FOR_OFFER: return "WAIT_FOR_OFFER";
  }
  return "unknown";
}

class IceoryxSubscriber final : public SubscriberBackend {
 public:
  IceoryxSubscriber(std::shared_ptr<IceoryxSession> session, std::string topic,
                    std::unique_ptr<PortSubscriber> subscriber, std::uint64_t queue_id,
                    std::uint64_t history_request, std::uint32_t type_size,
                    std::uint64_t max_payload, layouts::TopicCounterBlock* counters) noexcept
      : session_(std::move(session)),
        topic_(std::move(topic)),
        subscriber_(std::move(subscriber)),
        queue_id_(queue_id),
        history_request_(history_request),
        type_size_(type_size),
        max_payload_(max_payload),
        counters_(counters) {}

  ~IceoryxSubscriber() override {
    if (hub_) hub_->detach(*subscriber_);
    release();
    subscriber_.reset();
    if (notify_ && notify_->fd >= 0) ::close(notify_->fd);
  }

  Frame try_take() noexcept override {
    if (held_count_ == kIoxMaxHeld) return Frame::failed(RingStatus::busy);
    auto taken = subscriber_->take();
    if (taken.has_error()) {
      if (taken.get_error() == iox::popo::ChunkReceiveResult::TOO_MANY_CHUNKS_HELD_IN_PARALLEL) {
        return Frame::failed(RingStatus::busy);
      }
      return on_empty();
    }
    const void* payload = taken.value();
    const auto* header = iox::mepoo::ChunkHeader::fromUserPayload(payload);
    account(header);
    const std::uint32_t size = header->userPayloadSize();
    if (size > max_payload_ || (type_size_ != 0 && size != type_size_)) {
      // Not a sample of this topic's type: hand it back at once, count it, report it.
      subscriber_->release(payload);
      ++rejected_;
      return Frame::failed(RingStatus::corrupt);
    }
    held_[held_count_++] = payload;
    ++delivered_;
    store(&layouts::TopicCounterBlock::delivered, delivered_);
    return Frame::of(static_cast<const std::byte*>(payload), size);
  }

  Frame take(const WaitStrategy& strategy, Clock::time_point deadline) noexcept override {
    Frame frame = try_take();
    std::uint32_t polls = 0;
    while (frame.would_block()) {
      ++polls;
      const bool spinning = polls <= strategy.spin_iterations || strategy.kind == WaitKind::busy_spin;
      if (spinning) {
        cpu_relax();
        if ((polls & 1023) == 0 && Clock::now() >= deadline) return frame;
      } else {
        if (Clock::now() >= deadline) return frame;
        if (strategy.kind == WaitKind::spin_then_yield ||
            polls <= strategy.spin_iterations + strategy.yield_iterations) {
          std::this_thread::yield();
        } else if (!sleep_until_notified(deadline)) {
          return frame;
        }
      }
      frame = try_take();
    }
    return frame;
  }

  void release() noexcept override {
    for (std::uint32_t i = 0; i < held_count_; ++i) subscriber_->release(held_[i]);
    held_count_ = 0;
  }

  Result<int> notify_fd() override {
    if (auto armed = ensure_notify(); !armed) return tl::unexpected(std::move(armed.error()));
    return notify_->fd;
  }

  SubscriberCounters counters() const noexcept override {
    return SubscriberCounters{delivered_, dropped_, overruns_};
  }
  const std::string& topic() const noexcept override { return topic_; }
  TopicTransport transport() const noexcept override { return TopicTransport::iceoryx; }

  std::uint64_t rejected() const noexcept { return rejected_; }

 private:
  struct OriginState {
    std::uint64_t origin = 0;
    std::uint64_t next = 0;  // the sequence number expected next from it
    std::uint64_t last_used = 0;
  };
  static constexpr std::size_t kOrigins = 8;

  void store(std::uint64_t layouts::TopicCounterBlock::*field, std::uint64_t value) noexcept {
    if (counters_ != nullptr) ref64(counters_->*field).store(value, std::memory_order_relaxed);
  }

  void count_drops(std::uint64_t n) noexcept {
    if (n == 0) return;
    dropped_ += n;
    ++overruns_;
    store(&layouts::TopicCounterBlock::dropped, dropped_);
    store(&layouts::TopicCounterBlock::overruns, overruns_);
  }

  void account(const iox::mepoo::ChunkHeader* header) noexcept {
    const auto origin = static_cast<std::uint64_t>(header->originId());
    const std::uint64_t sequence = header->sequenceNumber();
    ++clock_;
    OriginState* slot = nullptr;
    for (auto& o : origins_) {
      if (o.last_used != 0 && o.origin == origin) slot = &o;
    }
    if (slot == nullptr) {
      slot = &*std::min_element(origins_, origins_ + kOrigins,
                                [](const OriginState& a, const OriginState& b) {
                                  return a.last_used < b.last_used;
                                });
      slot->origin = origin;
      const std::uint64_t first = first_expected(header, origin, sequence);
      slot->next = first;
    }
    slot->last_used = clock_;
    if (sequence > slot->next) count_drops(sequence - slot->next);
    if (sequence >= slot->next) slot->next = sequence + 1;
  }

  // The first sequence number our queue got from this publisher: from its status chunk if it is
  // one of ours, else (a plain iceoryx publisher) the sample itself.
  std::uint64_t first_expected(const iox::mepoo::ChunkHeader* header, std::uint64_t origin,
                               std::uint64_t sequence) noexcept {
    if (header->userHeaderSize() < sizeof(SampleUserHeader)) return sequence;
    const auto* user = static_cast<const SampleUserHeader*>(header->userHeader());
    if (user->magic != SampleUserHeader::kMagic || user->version != 1) return sequence;
    const auto* status_header = reinterpret_cast<const iox::mepoo::ChunkHeader*>(
        reinterpret_cast<const std::byte*>(header) + user->status_offset);
    if (status_header->userPayloadSize() < sizeof(PublisherStatus)) return sequence;
    auto* status = static_cast<PublisherStatus*>(const_cast<void*>(status_header->userPayload()));
    if (ref64(status->magic).load(std::memory_order_acquire) != PublisherStatus::kMagic ||
        ref64(status->origin).load(std::memory_order_relaxed) != origin) {
      return sequence;
    }
    for (auto& entry : status->entries) {
      if (ref64(entry.queue_id).load(std::memory_order_acquire) != queue_id_) continue;
      const std::uint64_t join = ref64(entry.join).load(std::memory_order_relaxed);
      if (ref64(entry.queue_id).load(std::memory_order_acquire) != queue_id_) break;
      const std::uint64_t capacity = ref64(status->history_capacity).load(std::memory_order_relaxed);
      const std::uint64_t history = std::min({history_request_, join, capacity});
      const std::uint64_t first = join - history;
      return std::min(first, sequence);
    }
    // Not recorded yet: the publisher records a queue before it sends it anything fresh, so this
    // is a history sample and nothing can have been dropped before it.
    return sequence;
  }

  // Nothing to take: make sure the notify fd (if any) is drained and armed, so that it is not
  // readable now and becomes readable with the next sample. Costs two atomic loads while it is
  // already armed and nothing was written since the last drain.
  Frame on_empty() noexcept {
    if (notify_) arm();
    return Frame::failed(RingStatus::empty);
  }

  void arm() noexcept {
    const std::uint64_t written = notify_->written.load(std::memory_order_acquire);
    if (notify_->armed.load(std::memory_order_relaxed) && written == drained_) return;
    std::uint64_t value = 0;
    [[maybe_unused]] const ssize_t r = ::read(notify_->fd, &value, sizeof value);
    drained_ = written;  // a write counted later than this is drained by a later call
    // seq_cst store, then look at the queue: a sample pushed before we armed, whose callback
    // found us disarmed, is seen here (its push came before that callback's exchange).
    notify_->armed.store(true, std::memory_order_seq_cst);
    if (subscriber_->hasData()) ListenerHub::fire(*notify_);
  }

  Result<void> ensure_notify() {
    if (notify_) return {};
    auto state = std::make_unique<ListenerHub::NotifyState>();
    state->fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (state->fd < 0) return tl::unexpected(Error::from_errno("eventfd", errno));
    auto hub = ListenerHub::get();
    if (!hub) {
      ::close(state->fd);
      return tl::unexpected(std::move(hub.error()));
    }
    if (auto attached = (*hub)->attach(*subscriber_, *state); !attached) {
      ::close(state->fd);
      return tl::unexpected(std::move(attached.error()));
    }
    hub_ = std::move(*hub);
    notify_ = std::move(state);
    arm();  // (readable at once if samples are already waiting)
    return {};
  }

  // Sleeps until the notify fd fires or the deadline passes; false if the deadline passed.
  bool sleep_until_notified(Clock::time_point deadline) noexcept {
    const auto now = Clock::now();
    if (now >= deadline) return false;
    if (!notify_ && !ensure_notify()) {
      // No listener: sleep in short steps instead.
      std::this_thread::sleep_for(std::min<Clock::duration>(deadline - now, std::chrono::milliseconds(1)));
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now).count();
    timespec ts{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
    pollfd pfd{notify_->fd, POLLIN, 0};
    ::ppoll(&pfd, 1, &ts, nullptr);
    return true;
  }

  std::shared_ptr<IceoryxSession> session_;
  std::string topic_;
  std::unique_ptr<PortSubscriber> subscriber_;
  std::uint64_t queue_id_;
  std::uint64_t history_request_;
  std::uint32_t type_size_;
  std::uint64_t max_payload_;
  layouts::TopicCounterBlock* counters_;
  const void* held_[kIoxMaxHeld] = {};
  std::uint32_t held_count_ = 0;
  std::uint64_t delivered_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t overruns_ = 0;
  std::uint64_t rejected_ = 0;
  OriginState origins_[kOrigins];
  std::uint64_t clock_ = 0;
  std::shared_ptr<ListenerHub> hub_;
  std::unique_ptr<ListenerHub::NotifyState> notify_;
  std::uint64_t drained_ = 0;  // notify_->written when we last drained the eventfd
};

}  // namespace

Result<std::unique_ptr<SubscriberBackend>> make_iceoryx_subscriber(
    std::shared_ptr<IceoryxSession> session, std::string_view bus_name, std::string_view topic,
    const TopicType& type, const TopicOptions& options, const SubscriberOptions& subscriber,
    layouts::TopicCounterBlock* counters) {
  if (!session) return tl::unexpected(Error{Errc::invalid_argument, "iceoryx: no session"});
  auto instance = to_id("bus", bus_name);
  if (!instance) return tl::unexpected(std::move(instance.error()));
  auto event = to_id("topic", topic);
  if (!event) return tl::unexpected(std::move(event.error()));
  if (options.transport != TopicTransport::iceoryx) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "iceoryx topic '" + std::string(topic) +
                                    "': options.transport is not iceoryx"});
  }
  if (subscriber.depth == 0) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "iceoryx topic '" + std::string(topic) + "': depth 0"});
  }
  if (subscriber.depth > kIoxMaxDepth) {
    return tl::unexpected(unsupported(
        topic, "depth " + std::to_string(subscriber.depth) + " exceeds iceoryx 2.0's limit of " +
                   std::to_string(kIoxMaxDepth) + " queued samples (MAX_SUBSCRIBER_QUEUE_CAPACITY)"));
  }
  if (options.history > kIoxMaxHistory) {
    return tl::unexpected(unsupported(
        topic, "history " + std::to_string(options.history) + " exceeds iceoryx 2.0's limit of " +
                   std::to_string(kIoxMaxHistory) + " samples (IOX_MAX_PUBLISHER_HISTORY)"));
  }
  const std::uint64_t history_request = subscriber.history ? options.history : 0;
  if (history_request > subscriber.depth) {
    return tl::unexpected(unsupported(
        topic, "history " + std::to_string(history_request) + " does not fit depth " +
                   std::to_string(subscriber.depth) +
                   " (iceoryx would silently deliver only `depth` of them)"));
  }
  if (auto fits = check_max_payload(*session, topic, type, options); !fits) {
    return tl::unexpected(std::move(fits.error()));
  }

  iox::popo::SubscriberOptions sub_options;
  sub_options.queueCapacity = subscriber.depth;
  sub_options.historyRequest = history_request;
  sub_options.queueFullPolicy = subscriber.overflow == Overflow::block
                                    ? iox::popo::QueueFullPolicy::BLOCK_PRODUCER
                                    : iox::popo::QueueFullPolicy::DISCARD_OLDEST_DATA;
  auto port = std::make_unique<PortSubscriber>(
      iox::capro::ServiceDescription(iox::capro::IdString_t(kServiceName), *instance, *event),
      sub_options);
  SubscriberPortData* data = port->data();
  if (data == nullptr) {
    [[maybe_unused]] auto* leaked = port.release();  // cannot be destroyed safely
    return tl::unexpected(Error{Errc::unavailable, "iceoryx topic '" + std::string(topic) +
                                                       "': RouDi refused the subscriber port "
                                                       "(too many subscribers?)"});
  }
  // RouDi connects subscriptions in its discovery loop (every ~100 ms): wait until it has
  // answered (connected to a publisher, or none offers yet).
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  for (;;) {
    const auto state = port->getSubscriptionState();
    if (state == iox::SubscribeState::SUBSCRIBED || state == iox::SubscribeState::WAIT_FOR_OFFER) {
      break;
    }
    if (Clock::now() >= deadline) {
      return tl::unexpected(Error{Errc::unavailable,
                                  "iceoryx topic '" + std::string(topic) +
                                      "': RouDi did not process the subscription within 5 s "
                                      "(state " + state_name(state) + ")"});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const auto queue_id = static_cast<std::uint64_t>(data->m_chunkReceiverData.m_uniqueId);
  return std::unique_ptr<SubscriberBackend>(std::make_unique<IceoryxSubscriber>(
      std::move(session), std::string(topic), std::move(port), queue_id, history_request,
      type.size, options.max_payload, counters));
}

}  // namespace symphony::engine::detail
