// Recovery rules (see mpmc_ring.hpp for the contract):
// A position p is "held" by the participant whose CAS moved tail (producer) or head (consumer)
// from p to p + 1, until it publishes (sequence = p + 1) or releases (sequence = p + capacity).
// Each participant stores p in its intent before that CAS and changes it only for its next
// claim, so while p is held its holder's intent is p. Whoever acquires tail/head > p then
// sees that intent (the CAS released it). So if tail > p, the slot is unpublished, and no live
// producer has intent p, the holder is dead and the slot may be tombstoned; the tombstone is a
// CAS from exactly p, so it cannot overwrite a publish that raced with the scan. The same for
// consumers with head, p + 1 and p + capacity.

#include "symphony/engine/mpmc_ring.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>

namespace symphony::engine {
namespace {

using layouts::kMpmcNoIntent;
using layouts::kMpmcRecoveringPid;
using layouts::kMpmcTombstone;
using layouts::MpmcParticipant;
using layouts::MpmcRingHeader;
using layouts::MpmcRole;
using layouts::MpmcSlotHeader;

using Ref64 = std::atomic_ref<std::uint64_t>;
using Ref32 = std::atomic_ref<std::uint32_t>;

// Bounds every CAS retry loop: a hostile writer moving indices under us cannot keep us here.
constexpr int kMaxClaimAttempts = 1 << 12;
// A stuck slot is blamed on a dead participant only after this long, and /proc is scanned at
// most this often while it stays stuck.
constexpr auto kStuckScanInterval = std::chrono::milliseconds(5);
constexpr std::uint32_t kEmptyPollsPerStuckCheck = 64;

std::int64_t distance(std::uint64_t from, std::uint64_t to) noexcept {
  return static_cast<std::int64_t>(to - from);
}

}  // namespace

// ---- MpmcRing ---------------------------------------------------------------------------------

MpmcRing::MpmcRing(ShmSegment segment, layouts::MpmcGeometry geometry) noexcept
    : segment_(std::move(segment)),
      geometry_(geometry),
      header_(reinterpret_cast<MpmcRingHeader*>(segment_.body())),
      participants_(reinterpret_cast<MpmcParticipant*>(segment_.base() +
                                                        geometry.participants_offset)),
      slots_(segment_.base() + geometry.slots_offset) {}

Result<MpmcRing> MpmcRing::create(std::string_view name, const MpmcRingOptions& options) {
  if (!layouts::is_power_of_two(options.capacity) || options.capacity < 2 ||
      options.capacity > (1ULL << 32)) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "MPMC capacity " + std::to_string(options.capacity) +
                                    " must be a power of two between 2 and 2^32"});
  }
  if (options.max_payload == 0 || options.max_payload > (1ULL << 31)) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "MPMC max_payload " + std::to_string(options.max_payload) +
                                    " must be between 1 and 2^31"});
  }
  if (options.max_participants == 0 || options.max_participants > 4096) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "MPMC max_participants " +
                                    std::to_string(options.max_participants) +
                                    " must be between 1 and 4096"});
  }
  auto segment = ShmSegment::create(
      name, layouts::SegmentKind::mpmc_ring,
      layouts::mpmc_body_size(options.capacity, options.max_payload, options.max_participants),
      options.segment);
  if (!segment) return tl::unexpected(std::move(segment.error()));
  layouts::MpmcGeometry g{};
  g.capacity = options.capacity;
  g.max_payload = options.max_payload;
  g.slot_stride = layouts::mpmc_slot_stride(options.max_payload);
  g.max_participants = options.max_participants;
  g.participants_offset = layouts::kSegmentHeaderSize + layouts::kMpmcRingHeaderSize;
  g.slots_offset = g.participants_offset + g.max_participants * sizeof(MpmcParticipant);

  auto* header = reinterpret_cast<MpmcRingHeader*>(segment->body());
  std::memset(static_cast<void*>(header), 0, sizeof(MpmcRingHeader));
  header->capacity = g.capacity;
  header->slot_stride = g.slot_stride;
  header->max_payload = g.max_payload;
  header->slots_offset = g.slots_offset;
  header->participants_offset = g.participants_offset;
  header->max_participants = g.max_participants;
  MpmcRing ring(std::move(*segment), g);
  for (std::uint64_t i = 0; i < g.max_participants; ++i) {
    ring.participants_[i].intent = kMpmcNoIntent;
  }
  for (std::uint64_t position = 0; position < g.capacity; ++position) {
    ring.slot(position)->sequence = position;  // free for lap 0
  }
  ring.segment_.mark_ready();
  return ring;
}

Result<MpmcRing> MpmcRing::open(std::string_view name) {
  auto segment = ShmSegment::open(name, layouts::SegmentKind::mpmc_ring);
  if (!segment) return tl::unexpected(std::move(segment.error()));
  auto geometry = layouts::verify_mpmc_ring(segment->base(), segment->size());
  if (!geometry) return tl::unexpected(Error::from_layout(name, geometry.error()));
  return MpmcRing(std::move(*segment), *geometry);
}

MpmcCounters MpmcRing::counters() const noexcept {
  return {Ref64(header_->abandoned_by_producers).load(std::memory_order_relaxed),
          Ref64(header_->reclaimed_from_consumers).load(std::memory_order_relaxed)};
}

bool MpmcRing::live_claimer(MpmcRole role, std::uint64_t position,
                            std::uint64_t ignore_entry) const noexcept {
  for (std::uint64_t i = 0; i < geometry_.max_participants; ++i) {
    if (i == ignore_entry) continue;
    MpmcParticipant& p = participants_[i];
    const std::uint32_t pid = Ref32(p.owner.pid).load(std::memory_order_acquire);
    if (pid == 0 || pid == kMpmcRecoveringPid) continue;
    if (Ref32(p.role).load(std::memory_order_acquire) != static_cast<std::uint32_t>(role)) continue;
    if (Ref64(p.intent).load(std::memory_order_acquire) != position) continue;
    if (is_alive(load_identity(p.owner))) return true;
  }
  return false;
}

bool MpmcRing::resolve_position(MpmcRole role, std::uint64_t position,
                                std::uint64_t ignore_entry) noexcept {
  if (position == kMpmcNoIntent) return false;
  std::uint64_t& claim_index = role == MpmcRole::producer ? header_->tail : header_->head;
  if (distance(position, Ref64(claim_index).load(std::memory_order_seq_cst)) <= 0) {
    return false;  // nobody claimed it: the intent was never acted on
  }
  if (live_claimer(role, position, ignore_entry)) return false;
  Ref64 sequence(slot(position)->sequence);
  if (role == MpmcRole::producer) {
    std::uint64_t expected = position;  // claimed, never published
    if (!sequence.compare_exchange_strong(expected, (position + 1) | kMpmcTombstone,
                                          std::memory_order_seq_cst)) {
      return false;
    }
    Ref64(header_->abandoned_by_producers).fetch_add(1, std::memory_order_relaxed);
    DoorbellRef(&header_->items_available).ring();
    return true;
  }
  for (std::uint64_t taken : {position + 1, (position + 1) | kMpmcTombstone}) {
    if (sequence.compare_exchange_strong(taken, position + geometry_.capacity,
                                         std::memory_order_seq_cst)) {
      Ref64(header_->reclaimed_from_consumers).fetch_add(1, std::memory_order_relaxed);
      DoorbellRef(&header_->space_available).ring();
      return true;
    }
  }
  return false;
}

std::size_t MpmcRing::recover_dead_participants() noexcept {
  std::size_t freed = 0;
  for (std::uint64_t i = 0; i < geometry_.max_participants; ++i) {
    MpmcParticipant& p = participants_[i];
    const ProcessIdentity owner = load_identity(p.owner);
    if (owner.pid == 0 || static_cast<std::uint32_t>(owner.pid) == kMpmcRecoveringPid ||
        is_alive(owner)) {
      continue;
    }
    // Only one process cleans an entry: the one whose CAS replaces the dead pid.
    std::uint32_t expected = static_cast<std::uint32_t>(owner.pid);
    if (!Ref32(p.owner.pid).compare_exchange_strong(expected, kMpmcRecoveringPid,
                                                    std::memory_order_acq_rel)) {
      continue;
    }
    const auto role = static_cast<MpmcRole>(Ref32(p.role).load(std::memory_order_acquire));
    const std::uint64_t intent = Ref64(p.intent).load(std::memory_order_acquire);
    if (role == MpmcRole::producer || role == MpmcRole::consumer) {
      resolve_position(role, intent, i);
    }
    Ref64(p.intent).store(kMpmcNoIntent, std::memory_order_release);
    Ref32(p.role).store(0, std::memory_order_release);
    Ref64(p.owner.start_time).store(0, std::memory_order_release);
    Ref32(p.owner.pid).store(0, std::memory_order_release);
    ++freed;
  }
  return freed;
}

// ---- MpmcHandle -------------------------------------------------------------------------------

MpmcHandle::MpmcHandle(MpmcHandle&& other) noexcept
    : ring_(std::exchange(other.ring_, nullptr)),
      entry_(other.entry_),
      role_(other.role_),
      held_(std::exchange(other.held_, kMpmcNoIntent)),
      stuck_position_(other.stuck_position_),
      stuck_since_(other.stuck_since_) {}

MpmcHandle::~MpmcHandle() {
  if (ring_ == nullptr) return;
  if (held_ != kMpmcNoIntent) {
    if (role_ == MpmcRole::consumer) {
      Ref64(ring_->slot(held_)->sequence)
          .store(held_ + ring_->geometry().capacity, std::memory_order_seq_cst);
      DoorbellRef(&ring_->header()->space_available).ring();
    } else {
      // An unpublished loan is abandoned exactly as a dead producer's is.
      ring_->resolve_position(role_, held_, entry_);
    }
  }
  MpmcParticipant* p = ring_->participant(entry_);
  Ref64(p->intent).store(kMpmcNoIntent, std::memory_order_release);
  release_identity(p->owner);
}

Result<std::uint64_t> MpmcHandle::register_participant(MpmcRing& ring, MpmcRole role) {
  register_ringer();
  const ProcessIdentity self = self_identity();
  for (int pass = 0; pass < 2; ++pass) {
    for (std::uint64_t i = 0; i < ring.geometry().max_participants; ++i) {
      MpmcParticipant* p = ring.participant(i);
      std::uint32_t expected = 0;
      if (!Ref32(p->owner.pid).compare_exchange_strong(
              expected, static_cast<std::uint32_t>(self.pid), std::memory_order_acq_rel)) {
        continue;
      }
      Ref64(p->owner.start_time).store(self.start_time, std::memory_order_release);
      Ref64(p->intent).store(kMpmcNoIntent, std::memory_order_release);
      Ref32(p->role).store(static_cast<std::uint32_t>(role), std::memory_order_release);
      return i;
    }
    // Full: entries of dead participants are freed (and their slots resolved) on the way.
    if (ring.recover_dead_participants() == 0) break;
  }
  return tl::unexpected(Error{Errc::table_full,
                              "all " + std::to_string(ring.geometry().max_participants) +
                                  " participant entries of the MPMC ring are in use by live "
                                  "processes"});
}

void MpmcHandle::set_intent(std::uint64_t position) noexcept {
  // Release: whoever later sees our claim (by acquiring tail/head) also sees this intent.
  Ref64(ring_->participant(entry_)->intent).store(position, std::memory_order_release);
}

void MpmcHandle::clear_intent() noexcept {
  Ref64(ring_->participant(entry_)->intent).store(kMpmcNoIntent, std::memory_order_release);
}

void MpmcHandle::note_stuck(std::uint64_t position) noexcept {
  if (position != stuck_position_) {
    stuck_position_ = position;
    stuck_since_ = std::chrono::steady_clock::now();
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now - stuck_since_ < kStuckScanInterval) return;
  stuck_since_ = now;
  ring_->recover_dead_participants();
}

// ---- MpmcProducer -----------------------------------------------------------------------------

Result<MpmcProducer> MpmcProducer::attach(MpmcRing& ring) {
  auto entry = register_participant(ring, MpmcRole::producer);
  if (!entry) return tl::unexpected(std::move(entry.error()));
  return MpmcProducer(ring, *entry, MpmcRole::producer);
}

Loan MpmcProducer::try_loan(std::size_t length) noexcept {
  if (held_ != kMpmcNoIntent) return {nullptr, 0, RingStatus::busy};
  if (length > ring_->max_payload()) return {nullptr, 0, RingStatus::oversize};
  const std::uint64_t capacity = ring_->geometry().capacity;
  Ref64 tail(ring_->header()->tail);
  std::uint64_t position = tail.load(std::memory_order_relaxed);
  for (int attempt = 0; attempt < kMaxClaimAttempts; ++attempt) {
    MpmcSlotHeader* slot = ring_->slot(position);
    const std::uint64_t sequence =
        Ref64(slot->sequence).load(std::memory_order_seq_cst) & ~kMpmcTombstone;
    const std::int64_t lag = distance(position, sequence);
    if (lag == 0) {
      set_intent(position);
      if (tail.compare_exchange_weak(position, position + 1, std::memory_order_seq_cst,
                                     std::memory_order_relaxed)) {
        held_ = position;
        stuck_position_ = kMpmcNoIntent;
        std::atomic_ref<std::uint32_t>(slot->length)
            .store(static_cast<std::uint32_t>(length), std::memory_order_relaxed);
        auto* payload = reinterpret_cast<std::byte*>(slot) + layouts::kMpmcSlotHeaderSize;
        return Loan::of(payload, length);
      }
      continue;  // position now holds the current tail
    }
    if (lag < 0) {
      // The slot still holds the message from one lap ago: full, unless tail moved meanwhile.
      const std::uint64_t current = tail.load(std::memory_order_seq_cst);
      if (current == position) {
        clear_intent();
        note_stuck(position - capacity);
        return {nullptr, 0, RingStatus::full};
      }
      position = current;
    } else {
      position = tail.load(std::memory_order_relaxed);  // another producer got ahead
    }
  }
  clear_intent();
  return {nullptr, 0, RingStatus::full};
}

void MpmcProducer::publish() noexcept {
  if (held_ == kMpmcNoIntent) return;
  // Paired with a sleeping consumer's prepare_wait (doorbell.hpp).
  store_for_sleepers(Ref64(ring_->slot(held_)->sequence), held_ + 1);
  // The intent is left in place: once the slot is published, an intent naming it can no longer
  // make recovery touch it (every recovery CAS expects the unpublished value), and a store
  // saved here is a store saved per message.
  held_ = kMpmcNoIntent;
  DoorbellRef(&ring_->header()->items_available).ring();
}

RingStatus MpmcProducer::try_write(std::span<const std::byte> payload) noexcept {
  const Loan loan = try_loan(payload.size());
  if (!loan.ok()) return loan.status;
  if (!payload.empty()) std::memcpy(loan.bytes().data(), payload.data(), payload.size());
  publish();
  return RingStatus::ok;
}

std::chrono::nanoseconds MpmcHandle::sleep_cap() const noexcept {
  // Nobody rings the doorbell for a slot whose claimer died: while stuck, wake up to run the
  // recovery scan.
  if (stuck_position_ == kMpmcNoIntent) return std::chrono::nanoseconds::max();
  return 2 * kStuckScanInterval;
}

Loan MpmcProducer::loan(std::size_t length, const WaitStrategy& strategy,
                        std::chrono::steady_clock::time_point deadline) noexcept {
  auto attempt = [&] { return try_loan(length); };
  return wait_until(attempt, attempt, [this] { return sleep_cap(); },
                    DoorbellRef(&ring_->header()->space_available), strategy, deadline,
                    &wait_stats_);
}

// ---- MpmcConsumer -----------------------------------------------------------------------------

Result<MpmcConsumer> MpmcConsumer::attach(MpmcRing& ring) {
  auto entry = register_participant(ring, MpmcRole::consumer);
  if (!entry) return tl::unexpected(std::move(entry.error()));
  return MpmcConsumer(ring, *entry, MpmcRole::consumer);
}

Frame MpmcConsumer::try_take() noexcept {
  if (held_ != kMpmcNoIntent) return {nullptr, 0, RingStatus::busy};
  const std::uint64_t capacity = ring_->geometry().capacity;
  Ref64 head(ring_->header()->head);
  std::uint64_t position = head.load(std::memory_order_relaxed);
  for (int attempt = 0; attempt < kMaxClaimAttempts; ++attempt) {
    MpmcSlotHeader* slot = ring_->slot(position);
    Ref64 sequence_ref(slot->sequence);
    const std::uint64_t sequence = sequence_ref.load(std::memory_order_seq_cst);
    const std::int64_t lag = distance(position + 1, sequence & ~kMpmcTombstone);
    if (lag == 0) {
      set_intent(position);
      if (!head.compare_exchange_weak(position, position + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
        continue;
      }
      if ((sequence & kMpmcTombstone) != 0) {
        // Its producer died before publishing: free the slot and look at the next one.
        sequence_ref.store(position + capacity, std::memory_order_seq_cst);
        clear_intent();
        ++abandoned_skipped_;
        DoorbellRef(&ring_->header()->space_available).ring();
        ++position;
        continue;
      }
      const std::uint32_t length =
          std::atomic_ref<std::uint32_t>(slot->length).load(std::memory_order_relaxed);
      if (length > ring_->max_payload()) {
        // Never follow a corrupt length: hand the slot back and say so.
        sequence_ref.store(position + capacity, std::memory_order_seq_cst);
        clear_intent();
        return {nullptr, 0, RingStatus::corrupt};
      }
      held_ = position;
      stuck_position_ = kMpmcNoIntent;
      const auto* payload = reinterpret_cast<const std::byte*>(slot) + layouts::kMpmcSlotHeaderSize;
      return Frame::of(payload, length);
    }
    if (lag < 0) {
      // Not published yet. Empty if nobody claimed it; stuck if a producer did.
      const std::uint64_t current = head.load(std::memory_order_seq_cst);
      if (current != position) {
        position = current;
        continue;
      }
      clear_intent();
      // Reading tail pulls the producers' claim line into our cache and makes their next CAS
      // wait for it: look for a stuck claim only once in a while.
      if (++empty_polls_ % kEmptyPollsPerStuckCheck == 0) {
        const std::uint64_t tail = Ref64(ring_->header()->tail).load(std::memory_order_seq_cst);
        if (distance(position, tail) > 0) note_stuck(position);
      }
      return {nullptr, 0, RingStatus::empty};
    }
    position = head.load(std::memory_order_relaxed);  // another consumer got ahead
  }
  clear_intent();
  return {nullptr, 0, RingStatus::empty};
}

void MpmcConsumer::release() noexcept {
  if (held_ == kMpmcNoIntent) return;
  store_for_sleepers(Ref64(ring_->slot(held_)->sequence), held_ + ring_->geometry().capacity);
  held_ = kMpmcNoIntent;  // intent left in place, as in publish()
  DoorbellRef(&ring_->header()->space_available).ring();
}

Frame MpmcConsumer::take(const WaitStrategy& strategy,
                         std::chrono::steady_clock::time_point deadline) noexcept {
  auto attempt = [&] { return try_take(); };
  // Right before sleeping, always look for a stuck claim: a sleeper that missed one would sleep
  // uncapped, and nobody rings for a dead producer's slot.
  auto confirm = [&] {
    empty_polls_ = kEmptyPollsPerStuckCheck - 1;
    return try_take();
  };
  return wait_until(attempt, confirm, [this] { return sleep_cap(); },
                    DoorbellRef(&ring_->header()->items_available), strategy, deadline,
                    &wait_stats_);
}

}  // namespace symphony::engine
