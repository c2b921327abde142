#pragma once
// MpmcRing: bounded ring of fixed-size slots; any number of producer and consumer processes
// (up to max_participants handles); every message is delivered exactly once.
// Layout and slot protocol: shm_layouts/.../mpmc_ring.hpp.
//
// Each MpmcProducer / MpmcConsumer registers a participant entry holding its (pid, start time)
// and the position it is claiming. Dead participants cannot stall the ring:
//  - a producer that dies after claiming a slot and before publishing it: once its death is
//    known, the slot is marked abandoned; consumers skip it and count it
//    (abandoned_by_producers). Nothing was published there, so nothing is lost.
//  - a consumer that dies after taking a slot and before releasing it: the message counts as
//    delivered to that consumer (it had it in hand — at-most-once for the dead one); the slot is
//    freed for producers and counted (reclaimed_from_consumers).
// Recovery runs when a participant finds the ring stuck on one slot for a while, and when a
// handle attaches; recover_dead_participants() runs it on demand.
// One handle holds at most one loan or take at a time (`busy` otherwise).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "symphony/engine/error.hpp"
#include "symphony/engine/process_identity.hpp"
#include "symphony/engine/ring_status.hpp"
#include "symphony/engine/shm_segment.hpp"
#include "symphony/engine/wait_strategy.hpp"
#include "symphony/layouts/mpmc_ring.hpp"
#include "symphony/layouts/verify.hpp"

namespace symphony::engine {

struct MpmcRingOptions {
  std::uint64_t capacity = 1024;      // slots, power of two
  std::uint64_t max_payload = 240;    // bytes per slot (slot stride 256 B)
  std::uint64_t max_participants = 64;
  CreateOptions segment{};
};

struct MpmcCounters {
  std::uint64_t abandoned_by_producers = 0;
  std::uint64_t reclaimed_from_consumers = 0;
};

class MpmcRing {
 public:
  static Result<MpmcRing> create(std::string_view name, const MpmcRingOptions& options = {});
  static Result<MpmcRing> open(std::string_view name);

  const layouts::MpmcGeometry& geometry() const noexcept { return geometry_; }
  std::uint64_t max_payload() const noexcept { return geometry_.max_payload; }
  ShmSegment& segment() noexcept { return segment_; }
  MpmcCounters counters() const noexcept;

  // Finds participants whose process is dead, resolves the slot each was claiming (abandon or
  // reclaim, per the rules above) and frees their entries. Returns how many were freed.
  std::size_t recover_dead_participants() noexcept;

  // Internals shared with the handles.
  layouts::MpmcRingHeader* header() const noexcept { return header_; }
  layouts::MpmcSlotHeader* slot(std::uint64_t position) const noexcept {
    return reinterpret_cast<layouts::MpmcSlotHeader*>(
        slots_ + (position & (geometry_.capacity - 1)) * geometry_.slot_stride);
  }
  layouts::MpmcParticipant* participant(std::uint64_t index) const noexcept {
    return participants_ + index;
  }
  // Unblocks `position`, held by a claimer of `role` that is gone (dead, or a handle being
  // destroyed with its loan/take open), unless a live participant of that role may hold it.
  // True if it changed the slot.
  bool resolve_position(layouts::MpmcRole role, std::uint64_t position,
                        std::uint64_t ignore_entry) noexcept;

 private:
  MpmcRing(ShmSegment segment, layouts::MpmcGeometry geometry) noexcept;
  bool live_claimer(layouts::MpmcRole role, std::uint64_t position,
                    std::uint64_t ignore_entry) const noexcept;

  ShmSegment segment_;
  layouts::MpmcGeometry geometry_;
  layouts::MpmcRingHeader* header_;
  layouts::MpmcParticipant* participants_;
  std::byte* slots_;
};

// Shared by producer and consumer: the participant entry, the held slot and stuck detection.
class MpmcHandle {
 public:
  MpmcHandle(MpmcHandle&& other) noexcept;
  MpmcHandle& operator=(MpmcHandle&&) = delete;
  MpmcHandle(const MpmcHandle&) = delete;
  // A producer's unpublished loan is abandoned (consumers skip it); a consumer's unreleased
  // take is released. Then the participant entry is freed.
  ~MpmcHandle();

 protected:
  MpmcHandle(MpmcRing& ring, std::uint64_t entry, layouts::MpmcRole role) noexcept
      : ring_(&ring), entry_(entry), role_(role) {}
  static Result<std::uint64_t> register_participant(MpmcRing& ring, layouts::MpmcRole role);
  void set_intent(std::uint64_t position) noexcept;
  void clear_intent() noexcept;
  // Called each time `position` blocks us; every few milliseconds while it stays blocked, runs
  // recovery of dead participants.
  void note_stuck(std::uint64_t position) noexcept;
  // The longest a sleeper may sleep: bounded while stuck, so that it wakes up to run recovery.
  std::chrono::nanoseconds sleep_cap() const noexcept;

  MpmcRing* ring_;
  std::uint64_t entry_;
  layouts::MpmcRole role_;
  std::uint64_t held_ = layouts::kMpmcNoIntent;  // the loaned or taken position
  std::uint64_t stuck_position_ = layouts::kMpmcNoIntent;
  std::chrono::steady_clock::time_point stuck_since_{};
};

class MpmcProducer : public MpmcHandle {
 public:
  static Result<MpmcProducer> attach(MpmcRing& ring);

  [[nodiscard]] Loan try_loan(std::size_t length) noexcept;
  void publish() noexcept;
  [[nodiscard]] RingStatus try_write(std::span<const std::byte> payload) noexcept;
  [[nodiscard]] Loan loan(std::size_t length, const WaitStrategy& strategy,
                          std::chrono::steady_clock::time_point deadline) noexcept;
  std::uint64_t max_payload() const noexcept { return ring_->max_payload(); }
  const WaitStats& wait_stats() const noexcept { return wait_stats_; }

 private:
  using MpmcHandle::MpmcHandle;
  WaitStats wait_stats_;
};

class MpmcConsumer : public MpmcHandle {
 public:
  static Result<MpmcConsumer> attach(MpmcRing& ring);

  [[nodiscard]] Frame try_take() noexcept;
  void release() noexcept;
  [[nodiscard]] Frame take(const WaitStrategy& strategy,
                           std::chrono::steady_clock::time_point deadline) noexcept;
  // Abandoned slots this consumer stepped over.
  std::uint64_t abandoned_skipped() const noexcept { return abandoned_skipped_; }
  const WaitStats& wait_stats() const noexcept { return wait_stats_; }

 private:
  using MpmcHandle::MpmcHandle;
  std::uint64_t abandoned_skipped_ = 0;
  std::uint32_t empty_polls_ = 0;
  WaitStats wait_stats_;
};

}  // namespace symphony::engine
