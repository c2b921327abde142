#include "symphony/engine/spsc_ring.hpp"

#include <atomic>
#include <cstring>
#include <utility>

#include "symphony/engine/process_identity.hpp"

namespace symphony::engine {
namespace {

using layouts::SpscFrameHeader;
using layouts::SpscRingHeader;

// Indices and counters in shared memory are plain u64s, accessed atomically.
std::atomic_ref<std::uint64_t> ref64(std::uint64_t& value) noexcept {
  return std::atomic_ref<std::uint64_t>(value);
}

std::atomic_ref<std::uint32_t> commit_ref(std::byte* frame) noexcept {
  return std::atomic_ref<std::uint32_t>(reinterpret_cast<SpscFrameHeader*>(frame)->commit);
}

std::uint32_t load_length(const std::byte* frame) noexcept {
  return std::atomic_ref<const std::uint32_t>(
             reinterpret_cast<const SpscFrameHeader*>(frame)->length)
      .load(std::memory_order_relaxed);
}

// Bytes from `position` to the end of the committed frame there (data or padding), or 0 if no
// committed, well-formed frame starts at `position`.
std::uint64_t committed_frame_size(std::byte* data, const layouts::SpscGeometry& geometry,
                                   std::uint64_t position) noexcept {
  const std::uint64_t offset = position & (geometry.capacity - 1);
  const std::uint64_t tail = geometry.capacity - offset;
  const std::uint32_t commit = commit_ref(data + offset).load(std::memory_order_acquire);
  const std::uint32_t length = load_length(data + offset);
  if (commit == layouts::spsc_commit_word(layouts::kFramePadding, position)) {
    return offset != 0 && length == tail - sizeof(SpscFrameHeader) ? tail : 0;
  }
  if (commit == layouts::spsc_commit_word(layouts::kFrameData, position) &&
      length <= geometry.max_payload && layouts::spsc_frame_size(length) <= tail) {
    return layouts::spsc_frame_size(length);
  }
  return 0;
}

// Claims a role record; on takeover from a dead holder, counts it.
Result<void> claim_role(layouts::ProcessIdentityRecord& record, std::uint64_t& takeovers,
                        const char* role) {
  switch (claim_identity(record)) {
    case ClaimOutcome::claimed: return {};
    case ClaimOutcome::took_over:
      ref64(takeovers).fetch_add(1, std::memory_order_relaxed);
      return {};
    case ClaimOutcome::held_by_live: break;
  }
  const ProcessIdentity holder = load_identity(record);
  return tl::unexpected(Error{Errc::role_taken, std::string("the ring already has a live ") +
                                                    role + " (pid " +
                                                    std::to_string(holder.pid) + ")"});
}

Error corrupt_at_attach(const char* what, std::uint64_t write_index, std::uint64_t read_index) {
  return Error{Errc::invalid_layout, std::string(what) + ": write_index " +
                                         std::to_string(write_index) + " and read_index " +
                                         std::to_string(read_index) + " are impossible"};
}

}  // namespace

// ---- SpscRing ---------------------------------------------------------------------------------

SpscRing::SpscRing(ShmSegment segment, layouts::SpscGeometry geometry) noexcept
    : segment_(std::move(segment)),
      geometry_(geometry),
      header_(reinterpret_cast<SpscRingHeader*>(segment_.body())),
      data_(segment_.base() + geometry.data_offset) {}

Result<SpscRing> SpscRing::create(std::string_view name, const SpscRingOptions& options) {
  const std::uint64_t capacity = options.capacity;
  if (!layouts::is_power_of_two(capacity) || capacity < layouts::kSpscMinCapacity ||
      capacity > layouts::kSpscMaxCapacity) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "SPSC capacity " + std::to_string(capacity) +
                                    " must be a power of two between " +
                                    std::to_string(layouts::kSpscMinCapacity) + " and 2^34"});
  }
  const std::uint64_t largest = layouts::spsc_max_payload_for(capacity);
  const std::uint64_t max_payload = options.max_payload == 0 ? largest : options.max_payload;
  if (max_payload > largest) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "SPSC max_payload " + std::to_string(max_payload) +
                                    " exceeds " + std::to_string(largest) +
                                    " (half the capacity, minus the frame header)"});
  }
  auto segment = ShmSegment::create(name, layouts::SegmentKind::spsc_ring,
                                    layouts::spsc_body_size(capacity), options.segment);
  if (!segment) return tl::unexpected(std::move(segment.error()));
  auto* header = reinterpret_cast<SpscRingHeader*>(segment->body());
  std::memset(static_cast<void*>(header), 0, sizeof(SpscRingHeader));
  header->capacity = capacity;
  header->max_payload = max_payload;
  header->data_offset = layouts::kSegmentHeaderSize + layouts::kSpscRingHeaderSize;
  segment->mark_ready();
  const layouts::SpscGeometry geometry{capacity, max_payload, header->data_offset};
  return SpscRing(std::move(*segment), geometry);
}

Result<SpscRing> SpscRing::open(std::string_view name) {
  auto segment = ShmSegment::open(name, layouts::SegmentKind::spsc_ring);
  if (!segment) return tl::unexpected(std::move(segment.error()));
  auto geometry = layouts::verify_spsc_ring(segment->base(), segment->size());
  if (!geometry) return tl::unexpected(Error::from_layout(name, geometry.error()));
  return SpscRing(std::move(*segment), *geometry);
}

// ---- SpscProducer -----------------------------------------------------------------------------

SpscProducer::SpscProducer(SpscRing& ring) noexcept
    : header_(ring.header()), data_(ring.data()), geometry_(ring.geometry()) {}

SpscProducer::SpscProducer(SpscProducer&& other) noexcept
    : header_(other.header_),
      data_(other.data_),
      geometry_(other.geometry_),
      write_index_(other.write_index_),
      pending_index_(other.pending_index_),
      read_index_cache_(other.read_index_cache_),
      frames_pending_(other.frames_pending_),
      frames_published_(other.frames_published_),
      corrupt_(other.corrupt_),
      attached_(std::exchange(other.attached_, false)),
      wait_stats_(other.wait_stats_) {}

SpscProducer::~SpscProducer() {
  if (attached_) release_identity(header_->producer);
}

Result<SpscProducer> SpscProducer::attach(SpscRing& ring) {
  SpscRingHeader* header = ring.header();
  if (auto claimed = claim_role(header->producer, header->producer_takeovers, "producer");
      !claimed) {
    return tl::unexpected(std::move(claimed.error()));
  }
  register_ringer();
  SpscProducer producer(ring);
  producer.attached_ = true;
  // A previous producer's loaned-but-unpublished frames were never visible: resume from the
  // published index.
  const std::uint64_t capacity = ring.geometry().capacity;
  const std::uint64_t read_index = ref64(header->read_index).load(std::memory_order_seq_cst);
  const std::uint64_t write_index = ref64(header->write_index).load(std::memory_order_seq_cst);
  // A producer killed inside publish() may have committed frames (which the consumer may
  // already have read, so read_index can be past write_index) without storing write_index:
  // resume after the last committed frame. The walk is bounded by one ring.
  std::uint64_t end = write_index;
  if (write_index % layouts::kFrameAlignment == 0 && write_index + capacity >= read_index) {
    for (std::uint64_t walked = 0; walked < capacity;) {
      const std::uint64_t size = committed_frame_size(ring.data(), ring.geometry(), end);
      if (size == 0) break;
      end += size;
      walked += size;
    }
  }
  if (!layouts::spsc_indices_consistent(end, read_index, capacity)) {
    return tl::unexpected(corrupt_at_attach("cannot produce", end, read_index));
  }
  if (end != write_index) ref64(header->write_index).store(end, std::memory_order_seq_cst);
  producer.write_index_ = producer.pending_index_ = end;
  producer.read_index_cache_ = read_index;
  return producer;
}

bool SpscProducer::refresh_read_index() noexcept {
  // seq_cst: a producer about to sleep on space_available must not miss a release (doorbell.hpp).
  const std::uint64_t read_index = ref64(header_->read_index).load(std::memory_order_seq_cst);
  // The consumer can never be ahead of what we published, nor more than a ring behind.
  if (read_index < read_index_cache_ ||
      !layouts::spsc_indices_consistent(write_index_, read_index, geometry_.capacity)) {
    corrupt_ = true;
    return false;
  }
  read_index_cache_ = read_index;
  return true;
}

Loan SpscProducer::try_loan(std::size_t length) noexcept {
  if (corrupt_) return {nullptr, 0, RingStatus::corrupt};
  if (length > geometry_.max_payload) return {nullptr, 0, RingStatus::oversize};
  const std::uint64_t capacity = geometry_.capacity;
  const std::uint64_t frame = layouts::spsc_frame_size(length);
  std::uint64_t offset = pending_index_ & (capacity - 1);
  const std::uint64_t tail = capacity - offset;
  const std::uint64_t needed = frame <= tail ? frame : tail + frame;
  if (pending_index_ + needed - read_index_cache_ > capacity) {
    if (!refresh_read_index()) return {nullptr, 0, RingStatus::corrupt};
    if (pending_index_ + needed - read_index_cache_ > capacity) return {nullptr, 0, RingStatus::full};
  }
  if (frame > tail) {
    // Frames never split: cover the tail with padding and start again at offset 0.
    write_loaned_header(offset, static_cast<std::uint32_t>(tail - sizeof(SpscFrameHeader)),
                        layouts::kFramePadding);
    pending_index_ += tail;
    offset = 0;
  }
  write_loaned_header(offset, static_cast<std::uint32_t>(length), layouts::kFrameData);
  pending_index_ += frame;
  ++frames_pending_;
  return Loan::of(data_ + offset + sizeof(SpscFrameHeader), length);
}

void SpscProducer::write_loaned_header(std::uint64_t offset, std::uint32_t length,
                                       std::uint32_t kind) noexcept {
  std::atomic_ref<std::uint32_t>(reinterpret_cast<SpscFrameHeader*>(data_ + offset)->length)
      .store(length, std::memory_order_relaxed);
  // The complement of the committed word: never equal to it, and it remembers the kind.
  commit_ref(data_ + offset)
      .store(~layouts::spsc_commit_word(kind, pending_index_), std::memory_order_relaxed);
}

void SpscProducer::publish() noexcept {
  if (pending_index_ == write_index_ || corrupt_) return;
  const std::uint64_t capacity = geometry_.capacity;
  for (std::uint64_t position = write_index_; position < pending_index_;) {
    const std::uint64_t offset = position & (capacity - 1);
    std::byte* frame = data_ + offset;
    const std::uint32_t committed = ~commit_ref(frame).load(std::memory_order_relaxed);
    std::uint64_t size = 0;
    if (committed == layouts::spsc_commit_word(layouts::kFramePadding, position)) {
      size = capacity - offset;
    } else if (committed == layouts::spsc_commit_word(layouts::kFrameData, position)) {
      size = layouts::spsc_frame_size(load_length(frame));
    }
    if (size == 0 || size > pending_index_ - position) {
      corrupt_ = true;  // someone overwrote our loaned frames
      return;
    }
    // Release: the payload is visible before the commit word that the consumer polls.
    commit_ref(frame).store(committed, std::memory_order_release);
    position += size;
  }
  write_index_ = pending_index_;
  // Paired with a consumer's prepare_wait, so the doorbell check below cannot miss a sleeper
  // (doorbell.hpp); a consumer about to sleep reads write_index, not commit words.
  store_for_sleepers(ref64(header_->write_index), write_index_);
  frames_published_ += frames_pending_;
  frames_pending_ = 0;
  DoorbellRef(&header_->data_available).ring();
}

RingStatus SpscProducer::try_write(std::span<const std::byte> payload) noexcept {
  const Loan loan = try_loan(payload.size());
  if (!loan.ok()) return loan.status;
  if (!payload.empty()) std::memcpy(loan.bytes().data(), payload.data(), payload.size());
  publish();
  return RingStatus::ok;
}

Loan SpscProducer::loan(std::size_t length, const WaitStrategy& strategy,
                        std::chrono::steady_clock::time_point deadline) noexcept {
  return wait_until([&] { return try_loan(length); }, DoorbellRef(&header_->space_available),
                    strategy, deadline, &wait_stats_);
}

// ---- SpscConsumer -----------------------------------------------------------------------------

SpscConsumer::SpscConsumer(SpscRing& ring) noexcept
    : header_(ring.header()), data_(ring.data()), geometry_(ring.geometry()) {}

SpscConsumer::SpscConsumer(SpscConsumer&& other) noexcept
    : header_(other.header_),
      data_(other.data_),
      geometry_(other.geometry_),
      read_index_(other.read_index_),
      pending_index_(other.pending_index_),
      write_index_cache_(other.write_index_cache_),
      frames_read_(other.frames_read_),
      corrupt_(other.corrupt_),
      attached_(std::exchange(other.attached_, false)),
      wait_stats_(other.wait_stats_) {}

SpscConsumer::~SpscConsumer() {
  if (!attached_) return;
  if (!corrupt_) release();
  release_identity(header_->consumer);
}

Result<SpscConsumer> SpscConsumer::attach(SpscRing& ring) {
  SpscRingHeader* header = ring.header();
  if (auto claimed = claim_role(header->consumer, header->consumer_takeovers, "consumer");
      !claimed) {
    return tl::unexpected(std::move(claimed.error()));
  }
  register_ringer();
  SpscConsumer consumer(ring);
  consumer.attached_ = true;
  const std::uint64_t read_index = ref64(header->read_index).load(std::memory_order_seq_cst);
  const std::uint64_t write_index = ref64(header->write_index).load(std::memory_order_seq_cst);
  if (!layouts::spsc_indices_plausible(write_index, read_index, ring.geometry().capacity)) {
    return tl::unexpected(corrupt_at_attach("cannot consume", write_index, read_index));
  }
  consumer.read_index_ = consumer.pending_index_ = read_index;
  consumer.write_index_cache_ = write_index;
  return consumer;
}

bool SpscConsumer::producer_alive() const noexcept {
  return is_alive(load_identity(header_->producer));
}

bool SpscProducer::consumer_alive() const noexcept {
  return is_alive(load_identity(header_->consumer));
}

bool SpscConsumer::refresh_write_index() noexcept {
  // seq_cst: paired with the producer's seq_cst publish for the sleep handshake.
  const std::uint64_t write_index =
      ref64(header_->write_index).load(std::memory_order_seq_cst);
  // We may be ahead of write_index (frames committed in a publish still in progress).
  if (write_index < write_index_cache_ ||
      !layouts::spsc_indices_plausible(write_index, read_index_, geometry_.capacity)) {
    corrupt_ = true;
    return false;
  }
  write_index_cache_ = write_index;
  return true;
}

Frame SpscConsumer::try_read() noexcept {
  if (corrupt_) return {nullptr, 0, RingStatus::corrupt};
  const std::uint64_t capacity = geometry_.capacity;
  std::uint64_t offset = pending_index_ & (capacity - 1);
  // Poll the commit word in the frame itself (see spsc_ring.hpp): the data comes with it.
  std::uint32_t commit = commit_ref(data_ + offset).load(std::memory_order_acquire);
  if (commit == layouts::spsc_commit_word(layouts::kFramePadding, pending_index_)) {
    // Only a tail is ever padded, and never from offset 0 (a frame fits in half the ring).
    const std::uint64_t tail = capacity - offset;
    if (offset == 0 || load_length(data_ + offset) != tail - sizeof(SpscFrameHeader)) {
      corrupt_ = true;
      return {nullptr, 0, RingStatus::corrupt};
    }
    pending_index_ += tail;
    offset = 0;
    commit = commit_ref(data_).load(std::memory_order_acquire);
  }
  if (commit != layouts::spsc_commit_word(layouts::kFrameData, pending_index_)) {
    return {nullptr, 0, RingStatus::empty};
  }
  // Read the length once: a hostile writer cannot change it between check and use.
  const std::uint32_t length = load_length(data_ + offset);
  const std::uint64_t frame = layouts::spsc_frame_size(length);
  if (length > geometry_.max_payload || frame > capacity - offset ||
      pending_index_ + frame - read_index_ > capacity) {
    corrupt_ = true;
    return {nullptr, 0, RingStatus::corrupt};
  }
  pending_index_ += frame;
  ++frames_read_;
  return Frame::of(data_ + offset + sizeof(SpscFrameHeader), length);
}

void SpscConsumer::release() noexcept {
  if (pending_index_ == read_index_) return;
  read_index_ = pending_index_;
  store_for_sleepers(ref64(header_->read_index), read_index_);
  DoorbellRef(&header_->space_available).ring();
}

Frame SpscConsumer::read(const WaitStrategy& strategy,
                         std::chrono::steady_clock::time_point deadline) noexcept {
  // Before sleeping, write_index (stored seq_cst by publish) is the authority: if it is past us,
  // the commit words it covers are visible too.
  auto confirm = [&] {
    Frame frame = try_read();
    if (!frame.would_block()) return frame;
    if (!refresh_write_index()) return Frame::failed(RingStatus::corrupt);
    if (write_index_cache_ <= pending_index_) return frame;
    // Every frame below a write_index loaded seq_cst is committed: if it still does not look
    // it, the commit word was overwritten.
    frame = try_read();
    if (frame.would_block()) {
      corrupt_ = true;
      return Frame::failed(RingStatus::corrupt);
    }
    return frame;
  };
  return wait_until([&] { return try_read(); }, confirm, DoorbellRef(&header_->data_available),
                    strategy, deadline, &wait_stats_);
}

}  // namespace symphony::engine
