// The iceoryx publisher backend.
//
// A publisher is an iox::popo::UntypedPublisher with ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER
// (so that block subscribers, which ask for QueueFullPolicy::BLOCK_PRODUCER, can connect). In
// iceoryx such a publisher blocks inside publish() while a blocking subscriber's queue is full.
// We never let it: try_loan looks at every connected queue first (iceoryx 2.0's port data, in
// shared memory, under the same distributor lock iceoryx takes) and refuses the loan with
// RingStatus::full when a BLOCK_PRODUCER queue has no room for it and the loans not yet
// published. Only our own publish() fills the queues of our topic, so the room it saw is still
// there when publish() delivers; it is kept as a credit, recomputed under the lock at every
// publish and whenever it runs out. (A plain iceoryx publisher on the same service could fill
// them meanwhile, or a block subscriber join with history filling its queue; then that publish()
// waits, as iceoryx does, until the subscriber takes.)

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "iceoryx_internal.hpp"

namespace symphony::engine::detail {
namespace {

using iox::popo::PublisherPortData;
using Clock = std::chrono::steady_clock;
using ChunkQueueData = PublisherPortData::ChunkSenderData_t::ChunkQueueData_t;

std::atomic_ref<std::uint64_t> ref64(std::uint64_t& v) noexcept {
  return std::atomic_ref<std::uint64_t>(v);
}

void store_counter(layouts::TopicCounterBlock* block, std::uint64_t layouts::TopicCounterBlock::*field,
                   std::uint64_t value) noexcept {
  if (block != nullptr) ref64(block->*field).store(value, std::memory_order_relaxed);
}

// UntypedPublisher with access to its port's data (protected in iceoryx).
class PortPublisher : public iox::popo::UntypedPublisher {
 public:
  using UntypedPublisher::UntypedPublisher;
  PublisherPortData* data() noexcept {
    return static_cast<PublisherPortData*>(port_members(port()));
  }
};

class IceoryxPublisher final : public PublisherBackend {
 public:
  IceoryxPublisher(std::shared_ptr<IceoryxSession> session, std::string topic,
                   std::unique_ptr<PortPublisher> publisher, PublisherPortData* data,
                   std::uint32_t type_size, std::uint64_t max_payload,
                   layouts::TopicCounterBlock* counters) noexcept
      : session_(std::move(session)),
        topic_(std::move(topic)),
        publisher_(std::move(publisher)),
        data_(data),
        distributor_(data->m_chunkSenderData),
        memory_(data->m_chunkSenderData.m_memoryMgr.get()),
        type_size_(type_size),
        max_payload_(max_payload),
        counters_(counters) {
    if (counters_ != nullptr) {
      published_ = ref64(counters_->published).load(std::memory_order_relaxed);
      full_ = ref64(counters_->full).load(std::memory_order_relaxed);
    }
  }

  ~IceoryxPublisher() override {
    for (std::uint32_t i = 0; i < pending_count_; ++i) publisher_->release(pending_[i]);
    if (status_ != nullptr) publisher_->release(status_);
    publisher_.reset();  // stops offering; RouDi disconnects the subscribers
  }

  // Loans the status chunk and publishes nothing: see PublisherStatus.
  Result<void> init_status() {
    auto chunk = publisher_->loan(sizeof(PublisherStatus), alignof(PublisherStatus));
    if (chunk.has_error()) {
      return tl::unexpected(Error{Errc::unavailable,
                                  "iceoryx topic '" + topic_ +
                                      "': cannot loan the publisher's status chunk (allocation "
                                      "error " +
                                      std::to_string(static_cast<int>(chunk.get_error())) + ")"});
    }
    status_ = chunk.value();
    auto* status = static_cast<PublisherStatus*>(status_);
    std::memset(status, 0, sizeof *status);
    status->origin = static_cast<std::uint64_t>(iox::mepoo::ChunkHeader::fromUserPayload(status_)->originId());
    status->history_capacity = distributor_.m_historyCapacity;
    ref64(status->magic).store(PublisherStatus::kMagic, std::memory_order_release);
    status_header_ = reinterpret_cast<const std::byte*>(iox::mepoo::ChunkHeader::fromUserPayload(status_));
    return {};
  }

  Loan try_loan(std::size_t length) noexcept override {
    if (length > max_payload_ || (type_size_ != 0 && length != type_size_)) {
      return Loan::failed(RingStatus::oversize);
    }
    if (pending_count_ == kMaxPendingLoans) return Loan::failed(RingStatus::busy);
    if ((pending_count_ + 1 > credit_ && !refresh_credit(pending_count_ + 1)) ||
        pool_exhausted(length)) {
      note_full();
      return Loan::failed(RingStatus::full);
    }
    auto chunk = publisher_->loan(static_cast<std::uint32_t>(length), kPayloadAlignment,
                                  sizeof(SampleUserHeader), kUserHeaderAlignment);
    if (chunk.has_error()) {
      switch (chunk.get_error()) {
        case iox::popo::AllocationError::TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL:
          return Loan::failed(RingStatus::busy);
        case iox::popo::AllocationError::NO_MEMPOOLS_AVAILABLE:
        case iox::popo::AllocationError::INVALID_PARAMETER_FOR_USER_PAYLOAD_OR_USER_HEADER:
          return Loan::failed(RingStatus::oversize);
        default:
          note_full();
          return Loan::failed(RingStatus::full);
      }
    }
    was_full_ = false;
    void* payload = chunk.value();
    auto* header = iox::mepoo::ChunkHeader::fromUserPayload(payload);
    auto* user = static_cast<SampleUserHeader*>(header->userHeader());
    user->magic = SampleUserHeader::kMagic;
    user->version = 1;
    user->status_offset = status_header_ - reinterpret_cast<const std::byte*>(header);
    pending_[pending_count_++] = payload;
    return Loan::of(static_cast<std::byte*>(payload), length);
  }

  Loan loan(std::size_t length, const WaitStrategy& strategy,
            Clock::time_point deadline) noexcept override {
    // No doorbell rings when a subscriber takes (iceoryx has none for publishers): spin and
    // yield as the strategy says, then sleep in growing steps (20 us .. 1 ms), never past the
    // deadline.
    Loan result = try_loan(length);
    std::uint32_t polls = 0;
    auto nap = std::chrono::microseconds(20);
    while (result.would_block()) {
      const auto now = Clock::now();
      if (now >= deadline) break;
      ++polls;
      if (polls <= strategy.spin_iterations || strategy.kind == WaitKind::busy_spin) {
        cpu_relax();
      } else if (strategy.kind == WaitKind::spin_then_yield ||
                 polls <= strategy.spin_iterations + strategy.yield_iterations) {
        std::this_thread::yield();
      } else {
        const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
        std::this_thread::sleep_for(std::min(nap, left));
        nap = std::min(nap * 2, std::chrono::microseconds(1000));
      }
      result = try_loan(length);
    }
    return result;
  }

  void publish() noexcept override {
    if (pending_count_ == 0) return;
    {
      // Held across the sends (the mutex is recursive; iceoryx's publish takes it again): no
      // queue can connect between recording joins and delivering.
      std::lock_guard lock(distributor_);
      sync_queues();
      for (std::uint32_t i = 0; i < pending_count_; ++i) publisher_->publish(pending_[i]);
      credit_ = compute_credit();
    }
    published_ += pending_count_;
    pending_count_ = 0;
    store_counter(counters_, &layouts::TopicCounterBlock::published, published_);
  }

  PublisherCounters counters() const noexcept override {
    PublisherCounters c;
    c.published = published_;
    c.full = full_;
    std::lock_guard lock(distributor_);
    c.subscribers = distributor_.m_queues.size();
    return c;
  }
  const std::string& topic() const noexcept override { return topic_; }
  TopicTransport transport() const noexcept override { return TopicTransport::iceoryx; }

 private:
  // How many more samples every BLOCK_PRODUCER queue takes without making iceoryx wait. Called
  // with the distributor locked. The queues only empty between our publishes (subscribers take;
  // only we push), so the credit stays a lower bound until our next publish, which recomputes it.
  // (A block subscriber that joins in between, with history filling its queue, is the exception:
  // then that one publish may wait until it takes.)
  std::uint64_t compute_credit() noexcept {
    std::uint64_t credit = ~std::uint64_t{0};
    for (std::size_t i = 0; i < known_count_; ++i) {
      ChunkQueueData* q = known_[i];
      if (q->m_queueFullPolicy != iox::popo::QueueFullPolicy::BLOCK_PRODUCER) continue;
      const std::uint64_t size = q->m_queue.size();
      const std::uint64_t capacity = q->m_queue.capacity();
      credit = std::min(credit, capacity > size ? capacity - size : 0);
    }
    return credit;
  }

  // True if every block queue has room for `samples` (the credit is recomputed first).
  bool refresh_credit(std::uint64_t samples) noexcept {
    std::lock_guard lock(distributor_);
    sync_queues();
    credit_ = compute_credit();
    return samples <= credit_;
  }

  // iceoryx logs an error for every loan that finds its mempool empty: look first. (The pool a
  // length maps to is remembered for the last length asked.)
  bool pool_exhausted(std::size_t length) noexcept {
    const iox::mepoo::MemoryManager* memory = memory_;
    if (length != pool_length_) {
      const std::uint64_t need = required_chunk_size(length);
      const std::uint32_t pools = memory->getNumberOfMemPools();
      pool_index_ = pools;
      for (std::uint32_t i = 0; i < pools; ++i) {
        if (memory->getMemPoolInfo(i).m_chunkSize >= need) {
          pool_index_ = i;
          break;
        }
      }
      pool_length_ = length;
    }
    if (pool_index_ >= memory->getNumberOfMemPools()) return true;
    const auto info = memory->getMemPoolInfo(pool_index_);
    return info.m_usedChunks >= info.m_numChunks;
  }

  // Called with the distributor locked: brings our copy of the connected queues up to date
  // (resolving iceoryx's relative pointers only when the list changed), and gives a queue seen
  // for the first time our next sequence number as its join (before it is sent anything fresh);
  // entries of queues that left are freed.
  void sync_queues() noexcept {
    auto& queues = distributor_.m_queues;
    const std::size_t count = std::min<std::size_t>(queues.size(), kIoxMaxKnown);
    bool same = count == known_count_;
    for (std::size_t i = 0; i < count && same; ++i) {
      same = queues[i].getOffset() == known_offset_[i] && queues[i].getId() == known_id_[i];
    }
    if (same) return;
    ChunkQueueData* fresh[kIoxMaxKnown];
    for (std::size_t i = 0; i < count; ++i) fresh[i] = queues[i].get();
    auto* status = static_cast<PublisherStatus*>(status_);
    const std::uint64_t next = data_->m_chunkSenderData.m_sequenceNumber;
    // Free the entries of queues that are gone.
    for (auto& entry : status->entries) {
      const std::uint64_t id = ref64(entry.queue_id).load(std::memory_order_relaxed);
      if (id == 0) continue;
      const bool present = std::any_of(fresh, fresh + count, [&](ChunkQueueData* q) {
        return static_cast<std::uint64_t>(q->m_uniqueId) == id;
      });
      if (!present) ref64(entry.queue_id).store(0, std::memory_order_release);
    }
    // New queues get an entry (if one is free: else their subscriber counts drops only from its
    // first sample on).
    for (std::size_t i = 0; i < count; ++i) {
      if (std::find(known_, known_ + known_count_, fresh[i]) != known_ + known_count_) continue;
      const std::uint64_t id = static_cast<std::uint64_t>(fresh[i]->m_uniqueId);
      for (auto& entry : status->entries) {
        if (ref64(entry.queue_id).load(std::memory_order_relaxed) != 0) continue;
        ref64(entry.join).store(next, std::memory_order_relaxed);
        ref64(entry.queue_id).store(id, std::memory_order_release);
        break;
      }
    }
    for (std::size_t i = 0; i < count; ++i) {
      known_[i] = fresh[i];
      known_offset_[i] = queues[i].getOffset();
      known_id_[i] = queues[i].getId();
    }
    known_count_ = count;
  }

  void note_full() noexcept {
    if (was_full_) return;
    was_full_ = true;
    store_counter(counters_, &layouts::TopicCounterBlock::full, ++full_);
  }

  static constexpr std::size_t kIoxMaxKnown = iox::MAX_SUBSCRIBERS_PER_PUBLISHER;

  std::shared_ptr<IceoryxSession> session_;
  std::string topic_;
  std::unique_ptr<PortPublisher> publisher_;
  PublisherPortData* data_;
  PublisherPortData::ChunkSenderData_t& distributor_;
  const iox::mepoo::MemoryManager* memory_;
  std::uint32_t type_size_;
  std::uint64_t max_payload_;
  layouts::TopicCounterBlock* counters_;
  void* status_ = nullptr;
  const std::byte* status_header_ = nullptr;
  void* pending_[kMaxPendingLoans] = {};
  std::uint32_t pending_count_ = 0;
  std::uint64_t published_ = 0;
  std::uint64_t full_ = 0;
  bool was_full_ = false;
  std::uint64_t credit_ = 0;  // samples every block queue can still take (see compute_credit)
  std::size_t pool_length_ = ~std::size_t{0};
  std::uint32_t pool_index_ = 0;
  // The connected queues as of our last look (under the lock), and their relative pointers.
  ChunkQueueData* known_[kIoxMaxKnown] = {};
  std::uint64_t known_offset_[kIoxMaxKnown] = {};
  std::uint64_t known_id_[kIoxMaxKnown] = {};
  std::size_t known_count_ = 0;
};

}  // namespace

Result<std::unique_ptr<PublisherBackend>> make_iceoryx_publisher(
    std::shared_ptr<IceoryxSession> session, std::string_view bus_name, std::string_view topic,
    const TopicType& type, const TopicOptions& options, layouts::TopicCounterBlock* counters) {
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
  if (options.history > kIoxMaxHistory) {
    return tl::unexpected(unsupported(
        topic, "history " + std::to_string(options.history) + " exceeds iceoryx 2.0's limit of " +
                   std::to_string(kIoxMaxHistory) + " samples (IOX_MAX_PUBLISHER_HISTORY)"));
  }
  if (auto fits = check_max_payload(*session, topic, type, options); !fits) {
    return tl::unexpected(std::move(fits.error()));
  }

  iox::popo::PublisherOptions pub_options;
  pub_options.historyCapacity = options.history;
  pub_options.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
  auto publisher = std::make_unique<PortPublisher>(
      iox::capro::ServiceDescription(iox::capro::IdString_t(kServiceName), *instance, *event),
      pub_options);
  PublisherPortData* data = publisher->data();
  if (data == nullptr) {
    // RouDi refused the port (iceoryx logged why). Such a publisher cannot even be destroyed
    // safely: leak it.
    [[maybe_unused]] auto* leaked = publisher.release();
    return tl::unexpected(Error{Errc::unavailable, "iceoryx topic '" + std::string(topic) +
                                                       "': RouDi refused the publisher port "
                                                       "(too many publishers?)"});
  }
  // With someone else's RouDi we do not know its pools: ask the port's memory manager (a loan
  // larger than every pool would abort the process inside iceoryx).
  const iox::mepoo::MemoryManager* memory = data->m_chunkSenderData.m_memoryMgr.get();
  std::uint64_t largest_chunk = 0;
  for (std::uint32_t i = 0; i < memory->getNumberOfMemPools(); ++i) {
    largest_chunk = std::max<std::uint64_t>(largest_chunk, memory->getMemPoolInfo(i).m_chunkSize);
  }
  const std::uint64_t need = required_chunk_size(options.max_payload);
  if (need == 0 || need > largest_chunk) {
    return tl::unexpected(unsupported(
        topic, "max_payload " + std::to_string(options.max_payload) +
                   " needs a chunk of " + std::to_string(need) +
                   " bytes; RouDi's largest holds " + std::to_string(largest_chunk)));
  }
  auto backend = std::make_unique<IceoryxPublisher>(
      std::move(session), std::string(topic), std::move(publisher), data, type.size,
      options.max_payload, counters);
  if (auto status = backend->init_status(); !status) return tl::unexpected(std::move(status.error()));
  return std::unique_ptr<PublisherBackend>(std::move(backend));
}

}  // namespace symphony::engine::detail
