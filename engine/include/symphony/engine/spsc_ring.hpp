#pragma once
// SpscRing: one producer process, one consumer process, variable-length frames written and read
// in place in shared memory (layout: shm_layouts/.../spsc_ring.hpp).
//
// SpscRing owns the mapping. SpscProducer and SpscConsumer attach to it (one live holder of
// each role at a time, recorded in shared memory; a dead holder's role is taken over, so a
// restarted producer or consumer resumes from the shared index). The ring must outlive them.
// Each role object is used by one thread at a time.
//
// Producer: try_loan(n) returns n writable bytes in the ring (or full / oversize / corrupt);
// loan as many frames as you like, then publish() makes all of them visible with one index
// store (batching) and wakes a sleeping consumer only if one sleeps. Consumer: try_read() returns
// the next frame in place; release() returns every frame read so far to the producer.
// A full ring is reported, never overwritten. Anything impossible read from shared memory
// (index, frame kind, length) makes the ring report `corrupt` from then on: never out of bounds.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "symphony/engine/error.hpp"
#include "symphony/engine/ring_status.hpp"
#include "symphony/engine/shm_segment.hpp"
#include "symphony/engine/wait_strategy.hpp"
#include "symphony/layouts/spsc_ring.hpp"
#include "symphony/layouts/verify.hpp"

namespace symphony::engine {

struct SpscRingOptions {
  std::uint64_t capacity = 1 << 20;  // bytes of data area, power of two
  std::uint64_t max_payload = 0;     // 0: the largest the capacity allows (capacity / 2 - 8)
  CreateOptions segment{};
};

class SpscRing {
 public:
  static Result<SpscRing> create(std::string_view name, const SpscRingOptions& options = {});
  static Result<SpscRing> open(std::string_view name);

  const layouts::SpscGeometry& geometry() const noexcept { return geometry_; }
  std::uint64_t max_payload() const noexcept { return geometry_.max_payload; }
  ShmSegment& segment() noexcept { return segment_; }
  layouts::SpscRingHeader* header() const noexcept { return header_; }
  std::byte* data() const noexcept { return data_; }

 private:
  SpscRing(ShmSegment segment, layouts::SpscGeometry geometry) noexcept;
  ShmSegment segment_;
  layouts::SpscGeometry geometry_;
  layouts::SpscRingHeader* header_;
  std::byte* data_;
};

class SpscProducer {
 public:
  // Errc::role_taken if a live process already produces on this ring.
  static Result<SpscProducer> attach(SpscRing& ring);

  SpscProducer(SpscProducer&& other) noexcept;
  SpscProducer& operator=(SpscProducer&&) = delete;
  SpscProducer(const SpscProducer&) = delete;
  ~SpscProducer();  // unpublished loans are dropped; the role is released

  [[nodiscard]] Loan try_loan(std::size_t length) noexcept;
  void publish() noexcept;
  // try_loan + copy + publish.
  [[nodiscard]] RingStatus try_write(std::span<const std::byte> payload) noexcept;
  // Waits for space per `strategy` until `deadline`; `full` if it passed.
  [[nodiscard]] Loan loan(std::size_t length, const WaitStrategy& strategy,
                          std::chrono::steady_clock::time_point deadline) noexcept;

  std::uint64_t max_payload() const noexcept { return geometry_.max_payload; }
  std::uint64_t frames_published() const noexcept { return frames_published_; }
  // Whether a live process holds the consumer role (reads /proc: not for the hot path).
  bool consumer_alive() const noexcept;
  const WaitStats& wait_stats() const noexcept { return wait_stats_; }

 private:
  explicit SpscProducer(SpscRing& ring) noexcept;
  bool refresh_read_index() noexcept;
  void write_loaned_header(std::uint64_t offset, std::uint32_t length,
                           std::uint32_t kind) noexcept;

  layouts::SpscRingHeader* header_;
  std::byte* data_;
  layouts::SpscGeometry geometry_;
  std::uint64_t write_index_ = 0;       // published position (ours alone: never re-read)
  std::uint64_t pending_index_ = 0;     // after the loaned, unpublished frames
  // Cached copy of the consumer's index: re-read only when the ring looks full, which keeps
  // the consumer's cache line out of our core on the fast path.
  std::uint64_t read_index_cache_ = 0;
  std::uint64_t frames_pending_ = 0;
  std::uint64_t frames_published_ = 0;
  bool corrupt_ = false;
  bool attached_ = false;
  WaitStats wait_stats_;
};

class SpscConsumer {
 public:
  static Result<SpscConsumer> attach(SpscRing& ring);

  SpscConsumer(SpscConsumer&& other) noexcept;
  SpscConsumer& operator=(SpscConsumer&&) = delete;
  SpscConsumer(const SpscConsumer&) = delete;
  ~SpscConsumer();  // frames read but not released are released; the role is released

  [[nodiscard]] Frame try_read() noexcept;
  void release() noexcept;
  [[nodiscard]] Frame read(const WaitStrategy& strategy,
                           std::chrono::steady_clock::time_point deadline) noexcept;

  std::uint64_t frames_read() const noexcept { return frames_read_; }
  // Whether a live process holds the producer role (reads /proc: not for the hot path).
  bool producer_alive() const noexcept;
  const WaitStats& wait_stats() const noexcept { return wait_stats_; }
  bool corrupt() const noexcept { return corrupt_; }

 private:
  explicit SpscConsumer(SpscRing& ring) noexcept;
  bool refresh_write_index() noexcept;

  layouts::SpscRingHeader* header_;
  std::byte* data_;
  layouts::SpscGeometry geometry_;
  std::uint64_t read_index_ = 0;     // released position (ours alone: never re-read)
  std::uint64_t pending_index_ = 0;  // after the frames read but not released
  // Last write_index seen: read only before sleeping, since the hot path polls commit words.
  std::uint64_t write_index_cache_ = 0;
  std::uint64_t frames_read_ = 0;
  bool corrupt_ = false;
  bool attached_ = false;
  WaitStats wait_stats_;
};

}  // namespace symphony::engine
