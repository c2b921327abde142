#include "topic/native_topic.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <cerrno>
#include <utility>
#include <vector>

#include "symphony/engine/doorbell.hpp"
#include "symphony/engine/process_identity.hpp"
#include "topic/batch_flusher.hpp"

namespace symphony::engine::detail {
namespace {

using layouts::kTopicNotHolding;
using layouts::TopicEntryState;
using layouts::TopicHeader;
using layouts::TopicSlotHeader;
using layouts::TopicSubscriberEntry;

std::atomic_ref<std::uint64_t> ref64(std::uint64_t& value) noexcept {
  return std::atomic_ref<std::uint64_t>(value);
}
std::atomic_ref<std::uint32_t> ref32(std::uint32_t& value) noexcept {
  return std::atomic_ref<std::uint32_t>(value);
}
// Counters have one writer: a relaxed store, no read-modify-write.
void store_counter(std::uint64_t& counter, std::uint64_t value) noexcept {
  ref64(counter).store(value, std::memory_order_relaxed);
}

TopicSlotHeader* slot_header(std::byte* slot) noexcept {
  return reinterpret_cast<TopicSlotHeader*>(slot);
}

constexpr std::uint32_t state_code(TopicEntryState state) noexcept {
  return static_cast<std::uint32_t>(state);
}
constexpr std::uint32_t kBlock = static_cast<std::uint32_t>(layouts::OverflowCode::block);
constexpr std::uint32_t kDiscard =
    static_cast<std::uint32_t>(layouts::OverflowCode::discard_oldest);

// Frees the entry of a dead subscriber so that it stops gating the publisher (and can be
// reused). Safe against racing reclaimers and joiners: claim_identity takes over a dead holder's
// record atomically, and only one caller can win it.
bool reclaim_if_dead(TopicHeader* header, TopicSubscriberEntry* entry) noexcept {
  if (ref32(entry->state).load(std::memory_order_acquire) == state_code(TopicEntryState::free)) {
    return false;
  }
  if (is_alive(load_identity(entry->owner))) return false;
  if (claim_identity(entry->owner) != ClaimOutcome::took_over) return false;
  ref32(entry->state).store(state_code(TopicEntryState::free), std::memory_order_seq_cst);
  if (ref32(entry->notify_armed).exchange(0, std::memory_order_acq_rel) == 1) {
    ref32(header->notify_armed_count).fetch_sub(1, std::memory_order_acq_rel);
    DoorbellRef(&header->data_available).finish_wait();
  }
  ref64(entry->held_from).store(kTopicNotHolding, std::memory_order_seq_cst);
  ref64(entry->priority_release).store(kTopicNotHolding, std::memory_order_seq_cst);
  ref64(header->subscribers_reclaimed).fetch_add(1, std::memory_order_relaxed);
  if (ref32(entry->group).exchange(0, std::memory_order_acq_rel) != 0) {
    ref64(header->group_epoch).fetch_add(1, std::memory_order_seq_cst);
  }
  release_identity(entry->owner);
  return true;
}

// ---- publisher --------------------------------------------------------------------------------

// One lane of samples: the normal ring or the priority ring. Positions only grow.
struct Lane {
  std::uint64_t head = 0;         // committed: every sample below it is visible
  std::uint64_t ready = 0;        // published by the caller, not yet committed (batched)
  std::uint64_t pending = 0;      // after the loaned samples
  std::uint64_t write_limit = 0;  // may loan below it without looking at the subscribers
};

class NativePublisher final : public PublisherBackend, public BatchFlusher::Client {
 public:
  NativePublisher(std::shared_ptr<TopicSegment> topic, const PublisherOptions& options,
                  std::filesystem::path runtime_dir, std::shared_ptr<BatchFlusher> flusher)
      : topic_(std::move(topic)),
        header_(topic_->header()),
        geometry_(topic_->geometry()),
        options_(options),
        runtime_dir_(std::move(runtime_dir)),
        flusher_(std::move(flusher)),
        fifos_(geometry_.max_subscribers),
        routed_to_(geometry_.max_subscribers, 0),
        member_generation_(geometry_.max_subscribers, 0) {}

  ~NativePublisher() override {
    if (flusher_) {
      flush();
      flusher_->remove(this);
    }
    for (const FifoCache& fifo : fifos_) {
      if (fifo.fd >= 0) ::close(fifo.fd);
    }
    if (attached_) release_identity(header_->publisher);
  }

  Result<void> attach() {
    switch (claim_identity(header_->publisher)) {
      case ClaimOutcome::claimed: break;
      case ClaimOutcome::took_over:
        ref64(header_->publisher_takeovers).fetch_add(1, std::memory_order_relaxed);
        break;
      case ClaimOutcome::held_by_live: {
        const ProcessIdentity holder = load_identity(header_->publisher);
        return tl::unexpected(Error{Errc::role_taken,
                                    "topic '" + topic_->topic() +
                                        "' already has a live publisher (pid " +
                                        std::to_string(holder.pid) + ")"});
      }
    }
    attached_ = true;
    ref64(header_->publisher_generation).fetch_add(1, std::memory_order_relaxed);
    register_ringer();
    resume(normal_, header_->head, geometry_.capacity, [&](std::uint64_t s) { return slot(s); });
    resume(priority_, header_->priority_head, geometry_.priority_capacity,
           [&](std::uint64_t s) { return priority_slot(s); });
    floor_ = ref64(header_->overwrite_floor).load(std::memory_order_seq_cst);
    // Counters go on from a predecessor's.
    published_ = ref64(header_->publisher_counters.published).load(std::memory_order_relaxed);
    full_ = ref64(header_->publisher_counters.full).load(std::memory_order_relaxed);
    if (flusher_) flusher_->add(this);
    return {};
  }

  Loan try_loan(std::size_t length) noexcept override {
    if (!fits(length)) return Loan::failed(RingStatus::oversize);
    if (normal_.pending >= normal_.write_limit && !refresh_limit()) [[unlikely]] {
      note_full();
      return Loan::failed(RingStatus::full);
    }
    was_full_ = false;
    std::byte* s = slot(normal_.pending);
    ref32(slot_header(s)->length).store(static_cast<std::uint32_t>(length),
                                        std::memory_order_relaxed);
    ref32(slot_header(s)->route).store(route_next(), std::memory_order_relaxed);
    ++normal_.pending;
    return Loan::of(s + sizeof(TopicSlotHeader), length);
  }

  Loan try_loan_priority(std::size_t length) noexcept override {
    if (geometry_.priority_capacity == 0) return Loan::failed(RingStatus::refused);
    if (!fits(length)) return Loan::failed(RingStatus::oversize);
    if (priority_.pending >= priority_.write_limit && !refresh_priority_limit()) {
      note_full();
      return Loan::failed(RingStatus::full);
    }
    was_full_ = false;
    std::byte* s = priority_slot(priority_.pending);
    ref32(slot_header(s)->length).store(static_cast<std::uint32_t>(length),
                                        std::memory_order_relaxed);
    ref32(slot_header(s)->route).store(0, std::memory_order_relaxed);
    ++priority_.pending;
    return Loan::of(s + sizeof(TopicSlotHeader), length);
  }

  Loan loan(std::size_t length, const WaitStrategy& strategy,
            std::chrono::steady_clock::time_point deadline) noexcept override {
    return wait_until([&] { return try_loan(length); },
                      DoorbellRef(&header_->space_available), strategy, deadline, &wait_stats_);
  }

  void publish() noexcept override {
    if (!flusher_) {
      normal_.ready = normal_.pending;
      priority_.ready = priority_.pending;
      commit();
      return;
    }
    bool start_timer = false;
    {
      SpinGuard guard(lock_);
      normal_.ready = normal_.pending;
      priority_.ready = priority_.pending;
      const std::uint64_t waiting =
          (normal_.ready - normal_.head) + (priority_.ready - priority_.head);
      if (waiting == 0) return;
      if (waiting >= options_.batch_size || priority_.ready != priority_.head) {
        commit();  // a full batch, or a priority sample: neither waits
      } else if (!deadline_set_) {
        deadline_ = BatchFlusher::Clock::now() + options_.batch_delay;
        deadline_set_ = true;
        start_timer = true;
      }
    }
    // Outside our lock: the flusher holds its own lock while it calls flush_if_due().
    if (start_timer) flusher_->wake_by(deadline_);
  }

  void flush() noexcept override {
    if (!flusher_) return;  // direct: everything published is already visible
    SpinGuard guard(lock_);
    commit();
  }

  BatchFlusher::Clock::time_point flush_if_due(BatchFlusher::Clock::time_point now) noexcept
      override {
    SpinGuard guard(lock_);
    if (!deadline_set_) return BatchFlusher::Clock::time_point::max();
    if (now < deadline_) return deadline_;
    commit();
    return BatchFlusher::Clock::time_point::max();
  }

  PublisherCounters counters() const noexcept override {
    PublisherCounters c;
    c.published = published_.load(std::memory_order_relaxed);
    c.full = full_;
    c.flushes = flushes_.load(std::memory_order_relaxed);
    c.wakeups = wakeups_.load(std::memory_order_relaxed);
    c.priority = priority_sent_.load(std::memory_order_relaxed);
    c.routed = routed_;
    for (std::uint32_t i = 0; i < geometry_.max_subscribers; ++i) {
      if (ref32(topic_->entry(i)->state).load(std::memory_order_acquire) ==
          state_code(TopicEntryState::active)) {
        ++c.subscribers;
      }
    }
    return c;
  }
  const std::string& topic() const noexcept override { return topic_->topic(); }
  TopicTransport transport() const noexcept override { return TopicTransport::native; }

 private:
  struct FifoCache {
    std::uint64_t generation = 0;
    int fd = -1;
  };

  // Batched publishers share their state with the flusher thread; loans stay lock-free (they
  // touch only samples after `ready`, which commits never read).
  class SpinGuard {
   public:
    explicit SpinGuard(std::atomic_flag& flag) noexcept : flag_(flag) {
      while (flag_.test_and_set(std::memory_order_acquire)) cpu_relax();
    }
    ~SpinGuard() { flag_.clear(std::memory_order_release); }
    SpinGuard(const SpinGuard&) = delete;
    SpinGuard& operator=(const SpinGuard&) = delete;

   private:
    std::atomic_flag& flag_;
  };

  std::byte* slot(std::uint64_t sample) const noexcept { return topic_->slot(sample); }
  std::byte* priority_slot(std::uint64_t sample) const noexcept {
    return topic_->priority_slot(sample);
  }
  bool fits(std::size_t length) const noexcept {
    return length <= geometry_.max_payload &&
           (geometry_.type_size == 0 || length == geometry_.type_size);
  }

  // A publisher killed inside a commit may have committed samples without advancing the head:
  // resume after the last committed one (subscribers may already have read them).
  template <typename SlotOf>
  static void resume(Lane& lane, std::uint64_t& shared_head, std::uint64_t capacity,
                     SlotOf&& slot_of) noexcept {
    std::uint64_t head = ref64(shared_head).load(std::memory_order_seq_cst);
    for (std::uint64_t walked = 0; walked < capacity; ++walked) {
      auto& sequence = slot_header(slot_of(head))->sequence;
      if (ref64(sequence).load(std::memory_order_acquire) != head + 1) break;
      ++head;
    }
    ref64(shared_head).store(head, std::memory_order_seq_cst);
    lane.head = lane.ready = lane.pending = head;
  }

  // Makes every ready sample visible: priority lane first, so a subscriber woken for either
  // finds the priority samples before the normal ones.
  void commit() noexcept {
    const std::uint64_t priority = priority_.ready - priority_.head;
    const std::uint64_t normal = normal_.ready - normal_.head;
    deadline_set_ = false;
    if (priority + normal == 0) return;
    for (std::uint64_t s = priority_.head; s < priority_.ready; ++s) {
      ref64(slot_header(priority_slot(s))->sequence).store(s + 1, std::memory_order_release);
    }
    for (std::uint64_t s = normal_.head; s < normal_.ready; ++s) {
      // Release: the payload and length are visible before the sequence subscribers poll.
      ref64(slot_header(slot(s))->sequence).store(s + 1, std::memory_order_release);
    }
    if (priority != 0) {
      priority_.head = priority_.ready;
      store_for_sleepers(ref64(header_->priority_head), priority_.head);
      priority_sent_.store(priority_sent_.load(std::memory_order_relaxed) + priority,
                           std::memory_order_relaxed);
      store_counter(header_->publisher_counters.priority,
                    priority_sent_.load(std::memory_order_relaxed));
    }
    if (normal != 0) {
      normal_.head = normal_.ready;
      store_for_sleepers(ref64(header_->head), normal_.head);
    }
    const std::uint64_t published = published_.load(std::memory_order_relaxed) + priority + normal;
    published_.store(published, std::memory_order_relaxed);
    store_counter(header_->publisher_counters.published, published);
    const std::uint64_t flushes = flushes_.load(std::memory_order_relaxed) + 1;
    flushes_.store(flushes, std::memory_order_relaxed);
    store_counter(header_->publisher_counters.flushes, flushes);
    if (DoorbellRef(&header_->data_available).ring()) {
      const std::uint64_t wakeups = wakeups_.load(std::memory_order_relaxed) + 1;
      wakeups_.store(wakeups, std::memory_order_relaxed);
      store_counter(header_->publisher_counters.wakeups, wakeups);
      notify_armed_subscribers();
    }
  }

  // The publisher may write samples below its write limit (see topic.hpp). Runs once per half
  // ring (or per `depth` samples when a block subscriber keeps up), never per sample.
  bool refresh_limit() noexcept {
    const std::uint64_t capacity = geometry_.capacity;
    const std::uint64_t proposal = normal_.pending + capacity / 2;
    // Block subscribers first: their release positions only grow, so this bound stays true, and
    // the floor announced from it never exceeds what we may really overwrite.
    std::uint64_t block_limit = proposal;
    for (std::uint32_t i = 0; i < geometry_.max_subscribers; ++i) {
      TopicSubscriberEntry* entry = topic_->entry(i);
      if (ref32(entry->state).load(std::memory_order_acquire) !=
              state_code(TopicEntryState::active) ||
          ref32(entry->overflow).load(std::memory_order_relaxed) != kBlock) {
        continue;
      }
      block_limit = std::min(block_limit, gate_of_block(entry));
    }
    const std::uint64_t reach = std::min(proposal, block_limit);
    const std::uint64_t floor = reach > capacity ? reach - capacity : 0;
    if (floor > floor_) {
      floor_ = floor;
      // seq_cst, then seq_cst loads of every entry: the Dekker pair of a subscriber's
      // "store held_from, load floor".
      ref64(header_->overwrite_floor).store(floor_, std::memory_order_seq_cst);
    }
    std::uint64_t limit = std::min(proposal, floor_ + capacity);
    gating_ = kNoEntry;
    for (std::uint32_t i = 0; i < geometry_.max_subscribers; ++i) {
      TopicSubscriberEntry* entry = topic_->entry(i);
      if (ref32(entry->state).load(std::memory_order_seq_cst) !=
          state_code(TopicEntryState::active)) {
        continue;
      }
      std::uint64_t gate = ~std::uint64_t{0};
      if (ref32(entry->overflow).load(std::memory_order_relaxed) == kBlock) {
        gate = gate_of_block(entry);
      } else {
        const std::uint64_t held = ref64(entry->held_from).load(std::memory_order_seq_cst);
        if (held != kTopicNotHolding) gate = held + capacity;
      }
      if (gate < limit) {
        limit = gate;
        gating_ = i;
      }
    }
    normal_.write_limit = limit;
    return normal_.pending < normal_.write_limit;
  }

  // Every subscriber gates the priority lane, block-style.
  bool refresh_priority_limit() noexcept {
    const std::uint64_t capacity = geometry_.priority_capacity;
    std::uint64_t limit = priority_.pending + capacity / 2;
    gating_ = kNoEntry;
    for (std::uint32_t i = 0; i < geometry_.max_subscribers; ++i) {
      TopicSubscriberEntry* entry = topic_->entry(i);
      if (ref32(entry->state).load(std::memory_order_seq_cst) !=
          state_code(TopicEntryState::active)) {
        continue;
      }
      const std::uint64_t released =
          ref64(entry->priority_release).load(std::memory_order_seq_cst);
      if (released != kTopicNotHolding && released + capacity < limit) {
        limit = released + capacity;
        gating_ = i;
      }
    }
    priority_.write_limit = limit;
    return priority_.pending < priority_.write_limit;
  }

  std::uint64_t gate_of_block(TopicSubscriberEntry* entry) const noexcept {
    const std::uint64_t released =
        ref64(entry->release_position).load(std::memory_order_seq_cst);
    const std::uint64_t depth = ref32(entry->depth).load(std::memory_order_relaxed);
    return released == kTopicNotHolding ? ~std::uint64_t{0}
                                        : released + std::min(depth, geometry_.capacity);
  }

  // Counted once per episode (a waiting loan() retries many times), and every so often the
  // subscriber that gates us is checked for life: a dead one must not block the topic forever.
  void note_full() noexcept {
    if (!was_full_) {
      was_full_ = true;
      store_counter(header_->publisher_counters.full, ++full_);
    }
    if ((++full_polls_ & kLivenessCheckMask) == 0 && gating_ != kNoEntry) {
      if (reclaim_if_dead(header_, topic_->entry(gating_))) {
        normal_.write_limit = priority_.write_limit = 0;  // recompute without it
      }
    }
  }

  // The route of the next normal sample: 0 (everyone), or one member of the load-balancing
  // group + 1. The membership is re-read only when group_epoch moves.
  std::uint32_t route_next() noexcept {
    const std::uint64_t epoch = ref64(header_->group_epoch).load(std::memory_order_acquire);
    if (epoch != known_epoch_) read_members(epoch);
    if (members_.empty()) return 0;
    if ((++routed_ & kLivenessCheckMask) == 0) check_members_alive();
    std::uint32_t chosen = members_[0];
    if (options_.balance == Balance::round_robin) {
      chosen = members_[next_member_++ % members_.size()];
    } else {
      std::uint64_t least = ~std::uint64_t{0};
      for (const std::uint32_t member : members_) {
        const std::uint64_t released =
            ref64(topic_->entry(member)->routed_released).load(std::memory_order_relaxed);
        const std::uint64_t unreleased = routed_to_[member] - std::min(released,
                                                                        routed_to_[member]);
        if (unreleased < least) {
          least = unreleased;
          chosen = member;
        }
      }
    }
    ++routed_to_[chosen];
    return chosen + 1;
  }

  void read_members(std::uint64_t epoch) noexcept {
    known_epoch_ = epoch;
    std::vector<std::uint32_t> members;
    for (std::uint32_t i = 0; i < geometry_.max_subscribers; ++i) {
      TopicSubscriberEntry* entry = topic_->entry(i);
      if (ref32(entry->state).load(std::memory_order_acquire) !=
              state_code(TopicEntryState::active) ||
          ref32(entry->group).load(std::memory_order_relaxed) == 0) {
        continue;
      }
      // A new occupant starts from its own count (0 at join).
      const std::uint64_t generation = ref64(entry->generation).load(std::memory_order_acquire);
      if (std::find(members_.begin(), members_.end(), i) == members_.end() ||
          member_generation_[i] != generation) {
        routed_to_[i] = ref64(entry->routed_released).load(std::memory_order_relaxed);
        member_generation_[i] = generation;
      }
      members.push_back(i);
    }
    members_ = std::move(members);
  }

  // Samples routed to a dead member would never be taken: stop routing to it.
  void check_members_alive() noexcept {
    for (const std::uint32_t member : members_) reclaim_if_dead(header_, topic_->entry(member));
  }

  void notify_armed_subscribers() noexcept {
    if (ref32(header_->notify_armed_count).load(std::memory_order_seq_cst) == 0) return;
    for (std::uint32_t i = 0; i < geometry_.max_subscribers; ++i) {
      TopicSubscriberEntry* entry = topic_->entry(i);
      if (ref32(entry->notify_armed).load(std::memory_order_relaxed) == 0 ||
          ref32(entry->notify_armed).exchange(0, std::memory_order_acq_rel) != 1) {
        continue;
      }
      ref32(header_->notify_armed_count).fetch_sub(1, std::memory_order_acq_rel);
      DoorbellRef(&header_->data_available).finish_wait();
      const std::uint64_t generation = ref64(entry->generation).load(std::memory_order_acquire);
      FifoCache& fifo = fifos_[i];
      if (fifo.fd < 0 || fifo.generation != generation) {
        if (fifo.fd >= 0) ::close(fifo.fd);
        // O_RDWR: we are a reader too, so a write never raises SIGPIPE, even if the subscriber
        // died; O_NONBLOCK: a full pipe is already readable, nothing to add.
        fifo.fd = ::open(notify_fifo_path(runtime_dir_, *topic_, i, generation).c_str(),
                         O_RDWR | O_NONBLOCK | O_CLOEXEC);
        fifo.generation = generation;
      }
      if (fifo.fd >= 0) {
        const char byte = 1;
        [[maybe_unused]] const ssize_t written = ::write(fifo.fd, &byte, 1);
      }
    }
  }

  static constexpr std::uint32_t kNoEntry = ~std::uint32_t{0};
  static constexpr std::uint64_t kLivenessCheckMask = 1023;

  std::shared_ptr<TopicSegment> topic_;
  TopicHeader* header_;
  layouts::TopicGeometry geometry_;
  PublisherOptions options_;
  std::filesystem::path runtime_dir_;
  std::shared_ptr<BatchFlusher> flusher_;  // batched only
  std::vector<FifoCache> fifos_;
  Lane normal_;
  Lane priority_;
  std::uint64_t floor_ = 0;
  // Written under lock_ by whichever thread commits, read by counters().
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> flushes_{0};
  std::atomic<std::uint64_t> wakeups_{0};
  std::atomic<std::uint64_t> priority_sent_{0};
  std::uint64_t full_ = 0;
  std::uint64_t full_polls_ = 0;
  std::uint32_t gating_ = kNoEntry;
  bool was_full_ = false;
  bool attached_ = false;
  // Batched.
  std::atomic_flag lock_ = ATOMIC_FLAG_INIT;
  bool deadline_set_ = false;
  BatchFlusher::Clock::time_point deadline_{};
  // Load balancing.
  std::uint64_t known_epoch_ = 0;
  std::vector<std::uint32_t> members_;
  std::vector<std::uint64_t> routed_to_;
  std::vector<std::uint64_t> member_generation_;
  std::uint64_t next_member_ = 0;
  std::uint64_t routed_ = 0;
  WaitStats wait_stats_;
};

// ---- subscriber -------------------------------------------------------------------------------

class NativeSubscriber final : public SubscriberBackend {
 public:
  NativeSubscriber(std::shared_ptr<TopicSegment> topic, const SubscriberOptions& options,
                   std::filesystem::path runtime_dir)
      : topic_(std::move(topic)),
        header_(topic_->header()),
        geometry_(topic_->geometry()),
        runtime_dir_(std::move(runtime_dir)),
        block_(options.overflow == Overflow::block),
        depth_(options.depth),
        group_(options.group),
        start_at_(options.start_at) {}

  ~NativeSubscriber() override {
    if (entry_ == nullptr) return;
    release();
    disarm();
    if (notify_fd_ >= 0) {
      ::close(notify_fd_);
      std::error_code ignored;
      std::filesystem::remove(notify_path_, ignored);
    }
    ref32(entry_->state).store(state_code(TopicEntryState::free), std::memory_order_seq_cst);
    ref64(entry_->held_from).store(kTopicNotHolding, std::memory_order_seq_cst);
    ref64(entry_->priority_release).store(kTopicNotHolding, std::memory_order_seq_cst);
    if (ref32(entry_->group).exchange(0, std::memory_order_acq_rel) != 0) {
      ref64(header_->group_epoch).fetch_add(1, std::memory_order_seq_cst);
    }
    release_identity(entry_->owner);
    // A publisher waiting for this subscriber's room can go on.
    DoorbellRef(&header_->space_available).ring();
  }

  Result<void> join(bool want_history) {
    if (start_at_ && !group_.empty()) {
      return tl::unexpected(Error{Errc::invalid_argument,
                                  "start_at cannot be combined with a load-balancing group"});
    }
    if (!group_.empty()) {
      if (group_.size() >= layouts::kTopicGroupNameCapacity) {
        return tl::unexpected(Error{Errc::invalid_argument,
                                    "group name '" + group_ + "' must be 1-23 characters"});
      }
      if (auto other = other_group(); !other.empty()) {
        return tl::unexpected(Error{Errc::qos_mismatch,
                                    "topic '" + topic_->topic() + "' already balances over group '" +
                                        other + "' (one group per topic), not '" + group_ + "'"});
      }
    }
    for (std::uint32_t i = 0; i < geometry_.max_subscribers && entry_ == nullptr; ++i) {
      TopicSubscriberEntry* entry = topic_->entry(i);
      switch (claim_identity(entry->owner)) {
        case ClaimOutcome::took_over:
          ref64(header_->subscribers_reclaimed).fetch_add(1, std::memory_order_relaxed);
          [[fallthrough]];
        case ClaimOutcome::claimed:
          entry_ = entry;
          index_ = i;
          break;
        case ClaimOutcome::held_by_live: break;
      }
    }
    if (entry_ == nullptr) {
      return tl::unexpected(Error{Errc::table_full,
                                  "topic '" + topic_->topic() + "' already has " +
                                      std::to_string(geometry_.max_subscribers) +
                                      " live subscribers (TopicOptions::max_subscribers)"});
    }
    register_ringer();
    // A dead occupant's left-overs: it may have died armed (its FIFO is gone with it).
    if (ref32(entry_->notify_armed).exchange(0, std::memory_order_acq_rel) == 1) {
      ref32(header_->notify_armed_count).fetch_sub(1, std::memory_order_acq_rel);
      DoorbellRef(&header_->data_available).finish_wait();
    }
    generation_ = ref64(entry_->generation).load(std::memory_order_relaxed) + 1;
    ref64(entry_->generation).store(generation_, std::memory_order_release);
    ref32(entry_->overflow).store(block_ ? kBlock : kDiscard, std::memory_order_relaxed);
    ref32(entry_->depth).store(depth_, std::memory_order_relaxed);
    std::memset(entry_->group_name, 0, sizeof entry_->group_name);
    std::memcpy(entry_->group_name, group_.data(), group_.size());
    ref32(entry_->group).store(group_.empty() ? 0 : group_hash(group_), std::memory_order_relaxed);
    ref64(entry_->routed_released).store(0, std::memory_order_relaxed);
    ref64(entry_->priority_release).store(kTopicNotHolding, std::memory_order_seq_cst);
    for (std::uint64_t* counter : {&entry_->counters.delivered, &entry_->counters.dropped,
                                   &entry_->counters.overruns}) {
      store_counter(*counter, 0);
    }
    ref64(entry_->held_from).store(kTopicNotHolding, std::memory_order_seq_cst);
    const std::uint64_t head = ref64(header_->head).load(std::memory_order_seq_cst);
    const std::uint64_t history =
        want_history ? std::min<std::uint64_t>({geometry_.history, depth_, head}) : 0;
    std::uint64_t start = head - history;
    if (start_at_) {
      if (*start_at_ > head) {
        return tl::unexpected(Error{Errc::invalid_argument,
                                    "start_at " + std::to_string(*start_at_) +
                                        " is past the head of topic '" + topic_->topic() + "' (" +
                                        std::to_string(head) + ")"});
      }
      start = *start_at_;
    }
    ref64(entry_->release_position)
        .store(block_ ? start : kTopicNotHolding, std::memory_order_seq_cst);
    ref32(entry_->state).store(state_code(TopicEntryState::active), std::memory_order_seq_cst);
    if (start_at_) {
      // Gating from here (block), or nothing to gate (discard_oldest): the samples from start_at
      // on are in the ring only if nothing may have overwritten them yet.
      const std::uint64_t floor = ref64(header_->overwrite_floor).load(std::memory_order_seq_cst);
      if (start < floor) {
        return tl::unexpected(Error{Errc::invalid_argument,
                                    "start_at " + std::to_string(start) + " of topic '" +
                                        topic_->topic() + "' was already overwritten (samples "
                                        "below " + std::to_string(floor) + " may be gone)"});
      }
    } else if (block_) {
      // From here the publisher gates on us; samples below the floor may already be gone.
      for (;;) {
        const std::uint64_t floor =
            ref64(header_->overwrite_floor).load(std::memory_order_seq_cst);
        if (start >= floor) break;
        start = floor;
        ref64(entry_->release_position).store(start, std::memory_order_seq_cst);
      }
    }
    cursor_ = released_ = start;
    // The priority lane: from its head on (no history), gated by us from here (see topic.hpp).
    if (geometry_.priority_capacity != 0) {
      pcursor_ = preleased_ = ref64(header_->priority_head).load(std::memory_order_seq_cst);
      ref64(entry_->priority_release).store(pcursor_, std::memory_order_seq_cst);
    }
    if (!group_.empty()) ref64(header_->group_epoch).fetch_add(1, std::memory_order_seq_cst);
    return {};
  }

  Frame try_take() noexcept override {
    Frame frame = take_once();
    if (!frame.would_block() || notify_fd_ < 0 ||
        ref32(entry_->notify_armed).load(std::memory_order_relaxed) != 0) {
      return frame;
    }
    // Nothing to read and the notify fd is not armed (it fired, or was never armed): arm it,
    // then look again, so that a publish between the two cannot be missed.
    arm();
    return take_once();
  }

  Frame take(const WaitStrategy& strategy,
             std::chrono::steady_clock::time_point deadline) noexcept override {
    auto confirm = [&] {
      Frame frame = try_take();
      if (!frame.would_block()) return frame;
      // seq_cst, paired with publish()'s store of head: if head is past us, the sample is
      // committed and take_once() sees it.
      if (has_sample()) frame = try_take();
      return frame;
    };
    return wait_until([&] { return try_take(); }, confirm, DoorbellRef(&header_->data_available),
                      strategy, deadline, &wait_stats_);
  }

  void release() noexcept override {
    if (pcursor_ != preleased_) {
      preleased_ = pcursor_;
      store_for_sleepers(ref64(entry_->priority_release), preleased_);
    }
    if (routed_taken_ != 0) {
      routed_released_ += routed_taken_;
      routed_taken_ = 0;
      ref64(entry_->routed_released).store(routed_released_, std::memory_order_relaxed);
    }
    taken_ = 0;
    if (block_) {
      if (cursor_ == released_) return;
      released_ = cursor_;
      store_for_sleepers(ref64(entry_->release_position), released_);
    } else {
      if (!holding_) return;
      holding_ = false;
      store_for_sleepers(ref64(entry_->held_from), kTopicNotHolding);
      ref64(entry_->release_position).store(cursor_, std::memory_order_relaxed);
    }
    DoorbellRef(&header_->space_available).ring();
  }

  Result<int> notify_fd() override {
    if (notify_fd_ >= 0) return notify_fd_;
    notify_path_ = notify_fifo_path(runtime_dir_, *topic_, index_, generation_);
    std::error_code ignored;
    std::filesystem::remove(notify_path_, ignored);  // a dead occupant's
    if (::mkfifo(notify_path_.c_str(), 0600) != 0) {
      return tl::unexpected(Error::from_errno("mkfifo " + notify_path_.string(), errno));
    }
    // O_RDWR: with a writer always open (ourselves), the fd never reports a hang-up.
    notify_fd_ = ::open(notify_path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (notify_fd_ < 0) {
      const int err = errno;
      std::filesystem::remove(notify_path_, ignored);
      return tl::unexpected(Error::from_errno("open " + notify_path_.string(), err));
    }
    // Readable at once if samples wait; else armed.
    if (has_sample()) {
      const char byte = 1;
      [[maybe_unused]] const ssize_t written = ::write(notify_fd_, &byte, 1);
    } else {
      arm();
      if (has_sample()) {
        const char byte = 1;
        [[maybe_unused]] const ssize_t written = ::write(notify_fd_, &byte, 1);
      }
    }
    return notify_fd_;
  }

  SubscriberCounters counters() const noexcept override {
    return {delivered_, dropped_, overruns_};
  }
  std::optional<std::uint64_t> position() const noexcept override { return cursor_; }
  const std::string& topic() const noexcept override { return topic_->topic(); }
  TopicTransport transport() const noexcept override { return TopicTransport::native; }

 private:
  bool has_sample() const noexcept {
    return ref64(header_->head).load(std::memory_order_seq_cst) > cursor_ ||
           (geometry_.priority_capacity != 0 &&
            ref64(header_->priority_head).load(std::memory_order_seq_cst) > pcursor_);
  }

  std::string other_group() const {
    for (std::uint32_t i = 0; i < geometry_.max_subscribers; ++i) {
      TopicSubscriberEntry* entry = topic_->entry(i);
      if (ref32(entry->state).load(std::memory_order_acquire) !=
              state_code(TopicEntryState::active) ||
          ref32(entry->group).load(std::memory_order_relaxed) == 0 ||
          !is_alive(load_identity(entry->owner))) {
        continue;
      }
      char name[layouts::kTopicGroupNameCapacity + 1] = {};
      std::memcpy(name, entry->group_name, sizeof entry->group_name);
      if (name != group_) return name;
    }
    return {};
  }

  static std::uint32_t group_hash(std::string_view name) noexcept {
    std::uint32_t hash = 2166136261u;  // FNV-1a
    for (const char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
    return hash == 0 ? 1 : hash;
  }

  // The priority lane first: a priority sample overtakes every queued normal one.
  bool take_priority(Frame& frame) noexcept {
    std::byte* slot = topic_->priority_slot(pcursor_);
    const std::uint64_t sequence =
        ref64(slot_header(slot)->sequence).load(std::memory_order_acquire);
    if (sequence != pcursor_ + 1) {
      if (sequence > pcursor_ + 1) {
        // Overwritten before our gate was seen, only possible while we were joining: catch up.
        pcursor_ = ref64(header_->priority_head).load(std::memory_order_acquire);
      }
      return false;
    }
    const std::uint32_t length = ref32(slot_header(slot)->length).load(std::memory_order_relaxed);
    if (length > geometry_.max_payload ||
        (geometry_.type_size != 0 && length != geometry_.type_size)) {
      corrupt_ = true;
      frame = Frame::failed(RingStatus::corrupt);
      return true;
    }
    ++pcursor_;
    ++taken_;
    store_counter(entry_->counters.delivered, ++delivered_);
    frame = Frame::of(slot + sizeof(TopicSlotHeader), length);
    return true;
  }

  Frame take_once() noexcept {
    if (corrupt_) return Frame::failed(RingStatus::corrupt);
    if (geometry_.priority_capacity != 0) {
      Frame frame;
      if (take_priority(frame)) return frame;
    }
    // A group member skips the samples routed to other members (a bounded number per call).
    for (std::uint32_t skipped = 0;; ++skipped) {
      std::uint32_t route = 0;
      Frame frame = take_normal(route);
      if (!frame.ok()) return frame;
      if (group_.empty() || route == 0 || route == index_ + 1) {
        if (!group_.empty() && route != 0) ++routed_taken_;
        ++taken_;
        store_counter(entry_->counters.delivered, ++delivered_);
        return frame;
      }
      // Not ours, so never taken: hand it back at once if we hold nothing else, so that a member
      // never gates the publisher with other members' samples.
      if (taken_ == 0) release();
      if (skipped == kMaxSkipsPerTake) return Frame::failed(RingStatus::empty);
    }
  }

  // The next normal sample and its route; the caller counts it as taken (or skips it).
  Frame take_normal(std::uint32_t& route) noexcept {
    std::uint64_t sample = cursor_;
    std::byte* slot = topic_->slot(sample);
    std::uint64_t sequence = ref64(slot_header(slot)->sequence).load(std::memory_order_acquire);
    if (!block_ && !holding_) {
      // Not yet published (and not lapped): nothing to do without holding anything.
      if (sequence <= sample) return Frame::failed(RingStatus::empty);
      sample = start_holding(sample);
      slot = topic_->slot(sample);
      sequence = ref64(slot_header(slot)->sequence).load(std::memory_order_acquire);
      if (sequence <= sample) {
        stop_holding();
        return Frame::failed(RingStatus::empty);
      }
    }
    if (sequence != sample + 1) {
      if (sequence <= sample) return Frame::failed(RingStatus::empty);
      // Overwritten while it was ours (a block subscriber's unreleased sample, or a held one):
      // the publisher broke the protocol or the memory was written by someone else.
      corrupt_ = true;
      return Frame::failed(RingStatus::corrupt);
    }
    const std::uint32_t length =
        ref32(slot_header(slot)->length).load(std::memory_order_relaxed);
    if (length > geometry_.max_payload ||
        (geometry_.type_size != 0 && length != geometry_.type_size)) {
      corrupt_ = true;
      return Frame::failed(RingStatus::corrupt);
    }
    cursor_ = sample + 1;
    route = ref32(slot_header(slot)->route).load(std::memory_order_relaxed);
    return Frame::of(slot + sizeof(TopicSlotHeader), length);
  }

  // discard_oldest: before reading sample `from`, make what we will read safe from overwriting
  // (see topic.hpp), skipping what is already lost or beyond our depth. Returns the first sample
  // we may read.
  std::uint64_t start_holding(std::uint64_t from) noexcept {
    std::uint64_t sample = from;
    const std::uint64_t head = ref64(header_->head).load(std::memory_order_acquire);
    if (head > sample + depth_) sample = head - depth_;
    for (;;) {
      ref64(entry_->held_from).store(sample, std::memory_order_seq_cst);
      const std::uint64_t floor = ref64(header_->overwrite_floor).load(std::memory_order_seq_cst);
      if (sample >= floor) break;
      sample = floor;
    }
    holding_ = true;
    if (sample != from) {
      dropped_ += sample - from;
      ++overruns_;
      store_counter(entry_->counters.dropped, dropped_);
      store_counter(entry_->counters.overruns, overruns_);
      cursor_ = sample;
    }
    return sample;
  }

  void stop_holding() noexcept {
    holding_ = false;
    store_for_sleepers(ref64(entry_->held_from), kTopicNotHolding);
  }

  void arm() noexcept {
    char drain[64];
    while (::read(notify_fd_, drain, sizeof drain) > 0) {
    }
    ref32(entry_->notify_armed).store(1, std::memory_order_seq_cst);
    ref32(header_->notify_armed_count).fetch_add(1, std::memory_order_seq_cst);
    // waiters++ and the StoreLoad barrier of the sleep handshake (doorbell.hpp): a publisher
    // that committed before it does not see us waiting, and we see its sample.
    [[maybe_unused]] const std::uint32_t ticket =
        DoorbellRef(&header_->data_available).prepare_wait();
  }

  void disarm() noexcept {
    if (ref32(entry_->notify_armed).exchange(0, std::memory_order_acq_rel) == 1) {
      ref32(header_->notify_armed_count).fetch_sub(1, std::memory_order_acq_rel);
      DoorbellRef(&header_->data_available).finish_wait();
    }
  }

  friend Result<std::unique_ptr<SubscriberBackend>> make_native_subscriber(
      std::shared_ptr<TopicSegment>, const SubscriberOptions&, std::filesystem::path);

  std::shared_ptr<TopicSegment> topic_;
  TopicHeader* header_;
  layouts::TopicGeometry geometry_;
  std::filesystem::path runtime_dir_;
  static constexpr std::uint32_t kMaxSkipsPerTake = 4096;

  bool block_;
  std::uint32_t depth_;
  std::string group_;
  std::optional<std::uint64_t> start_at_;
  std::uint64_t pcursor_ = 0;    // priority lane: next sample to read
  std::uint64_t preleased_ = 0;  // priority lane: every sample below it is released
  std::uint64_t taken_ = 0;      // samples taken since the last release
  std::uint64_t routed_taken_ = 0;     // of those, routed to us by the group's publisher
  std::uint64_t routed_released_ = 0;
  TopicSubscriberEntry* entry_ = nullptr;
  std::uint32_t index_ = 0;
  std::uint64_t generation_ = 0;
  std::uint64_t cursor_ = 0;    // next sample to read
  std::uint64_t released_ = 0;  // block: every sample below it is released
  bool holding_ = false;        // discard_oldest: held_from is set
  bool corrupt_ = false;
  std::uint64_t delivered_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t overruns_ = 0;
  int notify_fd_ = -1;
  std::filesystem::path notify_path_;
  WaitStats wait_stats_;
};

}  // namespace

std::filesystem::path notify_fifo_path(const std::filesystem::path& runtime_dir,
                                       const TopicSegment& topic, std::uint32_t entry,
                                       std::uint64_t generation) {
  return runtime_dir / (topic.segment_name() + ".sub" + std::to_string(entry) + "." +
                        std::to_string(generation) + ".notify");
}

Result<std::unique_ptr<PublisherBackend>> make_native_publisher(
    std::shared_ptr<TopicSegment> topic, const PublisherOptions& options,
    std::filesystem::path runtime_dir, std::shared_ptr<BatchFlusher> flusher) {
  if (options.route == Route::batched) {
    if (!flusher) {
      return tl::unexpected(Error{Errc::invalid_argument, "a batched publisher needs a flusher"});
    }
    if (options.batch_size == 0 || options.batch_delay.count() <= 0) {
      return tl::unexpected(Error{Errc::invalid_argument,
                                  "batched: batch_size and batch_delay must be positive"});
    }
  } else {
    flusher.reset();
  }
  auto publisher = std::make_unique<NativePublisher>(std::move(topic), options,
                                                     std::move(runtime_dir), std::move(flusher));
  if (auto attached = publisher->attach(); !attached) {
    return tl::unexpected(std::move(attached.error()));
  }
  return publisher;
}

Result<std::unique_ptr<SubscriberBackend>> make_native_subscriber(
    std::shared_ptr<TopicSegment> topic, const SubscriberOptions& options,
    std::filesystem::path runtime_dir) {
  if (options.depth == 0) {
    return tl::unexpected(Error{Errc::invalid_argument, "subscriber depth must be at least 1"});
  }
  auto subscriber =
      std::make_unique<NativeSubscriber>(std::move(topic), options, std::move(runtime_dir));
  if (auto joined = subscriber->join(options.history); !joined) {
    return tl::unexpected(std::move(joined.error()));
  }
  return subscriber;
}

// ---- directory membership (iceoryx topics) ----------------------------------------------------

Result<DirectoryMembership> DirectoryMembership::publisher(std::shared_ptr<TopicSegment> topic) {
  TopicHeader* header = topic->header();
  if (claim_identity(header->publisher) == ClaimOutcome::held_by_live) {
    return tl::unexpected(Error{Errc::role_taken,
                                "topic '" + topic->topic() +
                                    "' already has a live publisher (pid " +
                                    std::to_string(load_identity(header->publisher).pid) + ")"});
  }
  return DirectoryMembership(topic, &header->publisher, &header->publisher_counters);
}

Result<DirectoryMembership> DirectoryMembership::subscriber(std::shared_ptr<TopicSegment> topic,
                                                            const SubscriberOptions& options) {
  const layouts::TopicGeometry& g = topic->geometry();
  for (std::uint32_t i = 0; i < g.max_subscribers; ++i) {
    TopicSubscriberEntry* entry = topic->entry(i);
    if (claim_identity(entry->owner) == ClaimOutcome::held_by_live) continue;
    ref32(entry->overflow).store(options.overflow == Overflow::block ? kBlock : kDiscard,
                                 std::memory_order_relaxed);
    ref32(entry->depth).store(options.depth, std::memory_order_relaxed);
    for (std::uint64_t* counter :
         {&entry->counters.delivered, &entry->counters.dropped, &entry->counters.overruns}) {
      store_counter(*counter, 0);
    }
    ref32(entry->state).store(state_code(TopicEntryState::active), std::memory_order_seq_cst);
    return DirectoryMembership(topic, &entry->owner, &entry->counters);
  }
  return tl::unexpected(Error{Errc::table_full, "topic '" + topic->topic() + "' already has " +
                                                    std::to_string(g.max_subscribers) +
                                                    " live subscribers"});
}

DirectoryMembership::DirectoryMembership(DirectoryMembership&& other) noexcept
    : topic_(std::move(other.topic_)),
      record_(std::exchange(other.record_, nullptr)),
      counters_(other.counters_) {}

DirectoryMembership::~DirectoryMembership() {
  if (record_ == nullptr) return;
  if (record_ != &topic_->header()->publisher) {
    // A subscriber entry: the record is its first field after line 0.
    auto* entry = reinterpret_cast<TopicSubscriberEntry*>(
        reinterpret_cast<std::byte*>(record_) - offsetof(TopicSubscriberEntry, owner));
    ref32(entry->state).store(state_code(TopicEntryState::free), std::memory_order_seq_cst);
  }
  release_identity(*record_);
}

}  // namespace symphony::engine::detail
