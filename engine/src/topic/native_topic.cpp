#include "topic/native_topic.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <utility>
#include <vector>

#include "symphony/engine/doorbell.hpp"
#include "symphony/engine/process_identity.hpp"

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
  ref64(header->subscribers_reclaimed).fetch_add(1, std::memory_order_relaxed);
  release_identity(entry->owner);
  return true;
}

// ---- publisher --------------------------------------------------------------------------------

class NativePublisher final : public PublisherBackend {
 public:
  NativePublisher(std::shared_ptr<TopicSegment> topic, std::filesystem::path runtime_dir)
      : topic_(std::move(topic)),
        header_(topic_->header()),
        geometry_(topic_->geometry()),
        runtime_dir_(std::move(runtime_dir)),
        fifos_(geometry_.max_subscribers) {}

  ~NativePublisher() override {
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
    // A publisher killed inside publish() may have committed samples without advancing head:
    // resume after the last committed one (subscribers may already have read them).
    std::uint64_t head = ref64(header_->head).load(std::memory_order_seq_cst);
    for (std::uint64_t walked = 0; walked < geometry_.capacity; ++walked) {
      auto& sequence = slot_header(topic_->slot(head))->sequence;
      if (ref64(sequence).load(std::memory_order_acquire) != head + 1) break;
      ++head;
    }
    ref64(header_->head).store(head, std::memory_order_seq_cst);
    head_ = pending_ = head;
    floor_ = ref64(header_->overwrite_floor).load(std::memory_order_seq_cst);
    published_ = ref64(header_->publisher_counters.published).load(std::memory_order_relaxed);
    full_ = ref64(header_->publisher_counters.full).load(std::memory_order_relaxed);
    return {};
  }

  Loan try_loan(std::size_t length) noexcept override {
    if (length > geometry_.max_payload ||
        (geometry_.type_size != 0 && length != geometry_.type_size)) {
      return Loan::failed(RingStatus::oversize);
    }
    if (pending_ >= write_limit_ && !refresh_limit()) [[unlikely]] {
      note_full();
      return Loan::failed(RingStatus::full);
    }
    was_full_ = false;
    std::byte* slot = topic_->slot(pending_);
    ref32(slot_header(slot)->length).store(static_cast<std::uint32_t>(length),
                                           std::memory_order_relaxed);
    ++pending_;
    return Loan::of(slot + sizeof(TopicSlotHeader), length);
  }

  Loan loan(std::size_t length, const WaitStrategy& strategy,
            std::chrono::steady_clock::time_point deadline) noexcept override {
    return wait_until([&] { return try_loan(length); },
                      DoorbellRef(&header_->space_available), strategy, deadline, &wait_stats_);
  }

  void publish() noexcept override {
    if (pending_ == head_) return;
    for (std::uint64_t sample = head_; sample < pending_; ++sample) {
      // Release: the payload and length are visible before the sequence subscribers poll.
      ref64(slot_header(topic_->slot(sample))->sequence)
          .store(sample + 1, std::memory_order_release);
    }
    published_ += pending_ - head_;
    head_ = pending_;
    store_for_sleepers(ref64(header_->head), head_);
    store_counter(header_->publisher_counters.published, published_);
    if (DoorbellRef(&header_->data_available).ring()) notify_armed_subscribers();
  }

  PublisherCounters counters() const noexcept override {
    PublisherCounters c;
    c.published = published_;
    c.full = full_;
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

  // The publisher may write samples below its write limit (see topic.hpp). Runs once per half
  // ring (or per `depth` samples when a block subscriber keeps up), never per sample.
  bool refresh_limit() noexcept {
    const std::uint64_t capacity = geometry_.capacity;
    const std::uint64_t proposal = pending_ + capacity / 2;
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
    write_limit_ = limit;
    return pending_ < write_limit_;
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
        write_limit_ = 0;  // recompute without it
      }
    }
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
  std::filesystem::path runtime_dir_;
  std::vector<FifoCache> fifos_;
  std::uint64_t head_ = 0;     // published
  std::uint64_t pending_ = 0;  // after the loaned, unpublished samples
  std::uint64_t write_limit_ = 0;
  std::uint64_t floor_ = 0;
  std::uint64_t published_ = 0;
  std::uint64_t full_ = 0;
  std::uint64_t full_polls_ = 0;
  std::uint32_t gating_ = kNoEntry;
  bool was_full_ = false;
  bool attached_ = false;
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
        depth_(options.depth) {}

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
    release_identity(entry_->owner);
    // A publisher waiting for this subscriber's room can go on.
    DoorbellRef(&header_->space_available).ring();
  }

  Result<void> join(bool want_history) {
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
    for (std::uint64_t* counter : {&entry_->counters.delivered, &entry_->counters.dropped,
                                   &entry_->counters.overruns}) {
      store_counter(*counter, 0);
    }
    ref64(entry_->held_from).store(kTopicNotHolding, std::memory_order_seq_cst);
    const std::uint64_t head = ref64(header_->head).load(std::memory_order_seq_cst);
    const std::uint64_t history =
        want_history ? std::min<std::uint64_t>({geometry_.history, depth_, head}) : 0;
    std::uint64_t start = head - history;
    ref64(entry_->release_position)
        .store(block_ ? start : kTopicNotHolding, std::memory_order_seq_cst);
    ref32(entry_->state).store(state_code(TopicEntryState::active), std::memory_order_seq_cst);
    if (block_) {
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
      if (ref64(header_->head).load(std::memory_order_seq_cst) > cursor_) frame = try_take();
      return frame;
    };
    return wait_until([&] { return try_take(); }, confirm, DoorbellRef(&header_->data_available),
                      strategy, deadline, &wait_stats_);
  }

  void release() noexcept override {
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
  const std::string& topic() const noexcept override { return topic_->topic(); }
  TopicTransport transport() const noexcept override { return TopicTransport::native; }

 private:
  bool has_sample() const noexcept {
    return ref64(header_->head).load(std::memory_order_seq_cst) > cursor_;
  }

  Frame take_once() noexcept {
    if (corrupt_) return Frame::failed(RingStatus::corrupt);
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
    store_counter(entry_->counters.delivered, ++delivered_);
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
  bool block_;
  std::uint32_t depth_;
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
    std::shared_ptr<TopicSegment> topic, std::filesystem::path runtime_dir) {
  auto publisher = std::make_unique<NativePublisher>(std::move(topic), std::move(runtime_dir));
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
