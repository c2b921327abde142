#pragma once
// Checkpoints: an extension instance's state as opaque bytes, kept in a shared-memory segment
// the host owns, so that the next instance — after a crash, a restart, a hot update, or a host
// that was killed and started again — resumes from the last committed state. The layout and the
// commit protocol (two slots, one atomic store) are in layouts/checkpoint.hpp.
//
//   host:       auto store = CheckpointStore::create(bus, "explorer", 0, 1 << 20);
//   extension:  auto ckpt = Checkpoint::open(bus, "explorer", 0);
//               ckpt->commit(bytes);            // many times
//               auto last = ckpt->restore();    // at start: the last committed bytes, if any
//
// One writer at a time (the live instance). The host's store removes the segment when it is
// destroyed (a clean shutdown leaves nothing behind); a host killed with -9 leaves it, and the
// next host's create() carries its last committed checkpoint over into a fresh segment.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "symphony/engine/error.hpp"
#include "symphony/engine/shm_segment.hpp"

namespace symphony::engine {

// "symphony.<bus>.ckpt.<extension>.<instance>"; the extension id: 1-64 letters, digits, - and _.
Result<std::string> checkpoint_segment_name(std::string_view bus, std::string_view extension,
                                            int instance);

struct CheckpointData {
  std::uint64_t generation = 0;  // 1 for the first commit ever on this store, then +1 each
  std::vector<std::byte> bytes;
  std::chrono::system_clock::time_point written_at{};
  // The committed slot failed its checks (torn or scribbled on) and this is the one before it.
  bool fell_back = false;
};

// The reader's side of the protocol, on any mapped checkpoint segment: copies out, then checks.
// Nothing when no checkpoint was ever committed; Errc::invalid_layout when neither slot holds an
// intact checkpoint.
Result<std::optional<CheckpointData>> read_checkpoint(const ShmSegment& segment);

// Host side: creates (or, after a dead host, recreates) the segment and owns its name.
class CheckpointStore {
 public:
  static Result<CheckpointStore> create(std::string_view bus, std::string_view extension,
                                        int instance, std::size_t capacity_bytes);

  const std::string& name() const noexcept { return segment_.name(); }
  std::size_t capacity() const noexcept { return capacity_; }
  // What a dead host's segment held, carried over into this one (nothing if there was none).
  const std::optional<CheckpointData>& recovered() const noexcept { return recovered_; }
  // The last committed checkpoint (the host reads it for figures and for tests).
  Result<std::optional<CheckpointData>> latest() const { return read_checkpoint(segment_); }
  // Commits another store's checkpoint here, generation and time included (a hot update hands
  // the predecessor's last checkpoint to its successor). Only while no extension writes to this
  // store. Errc::invalid_argument if it does not fit.
  Result<void> carry_over(const CheckpointData& data);

 private:
  CheckpointStore(ShmSegment segment, std::size_t capacity,
                  std::optional<CheckpointData> recovered) noexcept
      : segment_(std::move(segment)), capacity_(capacity), recovered_(std::move(recovered)) {}

  ShmSegment segment_;
  std::size_t capacity_;
  std::optional<CheckpointData> recovered_;
};

// Extension side: maps the host's segment and commits to it.
class Checkpoint {
 public:
  static Result<Checkpoint> open(std::string_view bus, std::string_view extension, int instance);

  std::size_t capacity() const noexcept { return capacity_; }
  // Errc::invalid_argument if `bytes` exceeds the capacity (nothing is written then).
  Result<std::uint64_t> commit(std::span<const std::byte> bytes);
  Result<std::optional<CheckpointData>> restore() const { return read_checkpoint(segment_); }

 private:
  Checkpoint(ShmSegment segment, std::size_t capacity) noexcept
      : segment_(std::move(segment)), capacity_(capacity) {}

  ShmSegment segment_;
  std::size_t capacity_;
};

}  // namespace symphony::engine
