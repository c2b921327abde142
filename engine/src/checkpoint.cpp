#include "symphony/engine/checkpoint.hpp"

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "symphony/engine/runtime_dir.hpp"
#include "symphony/layouts/checkpoint.hpp"
#include "symphony/layouts/verify.hpp"

namespace symphony::engine {
namespace {

using layouts::CheckpointHeader;
using layouts::CheckpointSlotHeader;

constexpr int kMaxExtensionIdLength = 64;
constexpr int kReadAttempts = 64;

std::atomic_ref<std::uint64_t> word(std::byte* at) {
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(at));
}

std::uint64_t round_to_line(std::uint64_t bytes) {
  return (bytes + layouts::kCacheLine - 1) / layouts::kCacheLine * layouts::kCacheLine;
}

struct Mapped {
  std::byte* header;  // the CheckpointHeader
  std::uint64_t slot_capacity;

  std::byte* slot(std::uint64_t generation) const {
    return header + layouts::checkpoint_slot_offset(slot_capacity, generation % 2);
  }
};

Result<Mapped> map_checkpoint(const ShmSegment& segment) {
  auto geometry = layouts::verify_checkpoint(segment.base(), segment.size());
  if (!geometry) return tl::unexpected(Error::from_layout(segment.name(), geometry.error()));
  return Mapped{segment.base() + geometry->body_offset, geometry->slot_capacity};
}

// The data is copied in and out in atomic words: a reader may copy a slot while a writer
// rewrites it (it then throws the copy away), and atomic accesses make that a defined race.
// Release stores and acquire loads stand in for a seqlock's fences (which ThreadSanitizer does
// not model): a reader that copied any word of a new commit also sees that commit's zeroed
// generation when it looks again. On x86 they are plain movs; checkpoints are not a hot path.
// Slot data starts on a cache line, so the words are aligned.
void copy_in(std::byte* to, std::span<const std::byte> from) {
  std::size_t i = 0;
  for (; i + 8 <= from.size(); i += 8) {
    std::uint64_t value;
    std::memcpy(&value, from.data() + i, 8);
    word(to + i).store(value, std::memory_order_release);
  }
  for (; i < from.size(); ++i) {
    std::atomic_ref<std::byte>(to[i]).store(from[i], std::memory_order_release);
  }
}

void copy_out(std::span<std::byte> to, std::byte* from) {
  std::size_t i = 0;
  for (; i + 8 <= to.size(); i += 8) {
    const std::uint64_t value = word(from + i).load(std::memory_order_acquire);
    std::memcpy(to.data() + i, &value, 8);
  }
  for (; i < to.size(); ++i) {
    to[i] = std::atomic_ref<std::byte>(from[i]).load(std::memory_order_acquire);
  }
}

// Seqlock-style: the slot's generation is zeroed before its data changes and set after, so a
// reader that sees the same generation before and after its copy has the bytes of that commit
// (and the checksum catches what a hostile or dying writer left).
void write_slot(const Mapped& m, std::uint64_t generation, std::span<const std::byte> bytes,
                std::uint64_t written_at_ns) {
  std::byte* slot = m.slot(generation);
  word(slot + offsetof(CheckpointSlotHeader, generation)).store(0, std::memory_order_relaxed);
  copy_in(slot + layouts::kCheckpointSlotHeaderSize, bytes);
  word(slot + offsetof(CheckpointSlotHeader, length)).store(bytes.size(), std::memory_order_relaxed);
  word(slot + offsetof(CheckpointSlotHeader, checksum))
      .store(XXH3_64bits(bytes.data(), bytes.size()), std::memory_order_relaxed);
  word(slot + offsetof(CheckpointSlotHeader, written_at_ns))
      .store(written_at_ns, std::memory_order_relaxed);
  word(slot + offsetof(CheckpointSlotHeader, generation)).store(generation, std::memory_order_release);
  word(m.header + offsetof(CheckpointHeader, committed)).store(generation, std::memory_order_release);
  word(m.header + offsetof(CheckpointHeader, commits)).fetch_add(1, std::memory_order_relaxed);
}

// The slot holding `generation`, copied out and checked; nothing if it does not hold it intact.
// Commits `data` as it was: its generation and time, not new ones.
void write_data(const Mapped& m, const CheckpointData& data) {
  write_slot(m, data.generation, data.bytes,
             static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            data.written_at.time_since_epoch())
                                            .count()));
}

std::optional<CheckpointData> read_slot(const Mapped& m, std::uint64_t generation) {
  std::byte* slot = m.slot(generation);
  auto slot_generation = word(slot + offsetof(CheckpointSlotHeader, generation));
  if (slot_generation.load(std::memory_order_acquire) != generation) return std::nullopt;
  const std::uint64_t length =
      word(slot + offsetof(CheckpointSlotHeader, length)).load(std::memory_order_relaxed);
  const std::uint64_t checksum =
      word(slot + offsetof(CheckpointSlotHeader, checksum)).load(std::memory_order_relaxed);
  const std::uint64_t written_at =
      word(slot + offsetof(CheckpointSlotHeader, written_at_ns)).load(std::memory_order_relaxed);
  if (length > m.slot_capacity) return std::nullopt;
  CheckpointData data;
  data.generation = generation;
  data.bytes.resize(length);
  copy_out(data.bytes, slot + layouts::kCheckpointSlotHeaderSize);
  if (slot_generation.load(std::memory_order_relaxed) != generation) return std::nullopt;
  if (XXH3_64bits(data.bytes.data(), data.bytes.size()) != checksum) return std::nullopt;
  data.written_at = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(written_at)));
  return data;
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

Result<std::string> checkpoint_segment_name(std::string_view bus, std::string_view extension,
                                            int instance) {
  if (auto valid = check_bus_name(bus); !valid) return tl::unexpected(valid.error());
  const bool valid_id =
      !extension.empty() && extension.size() <= kMaxExtensionIdLength &&
      std::all_of(extension.begin(), extension.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
      });
  if (!valid_id || instance < 0) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "checkpoint of '" + std::string(extension) + "/" +
                                    std::to_string(instance) +
                                    "': the id must be 1-64 letters, digits, '-' or '_' and "
                                    "the instance >= 0"});
  }
  return "symphony." + std::string(bus) + ".ckpt." + std::string(extension) + "." +
         std::to_string(instance);
}

Result<std::optional<CheckpointData>> read_checkpoint(const ShmSegment& segment) {
  auto mapped = map_checkpoint(segment);
  if (!mapped) return tl::unexpected(std::move(mapped.error()));
  auto committed = word(mapped->header + offsetof(CheckpointHeader, committed));
  // Two commits landing while we copy (a writer committing large states back to back) rewrite
  // the slot being copied, and `committed` has moved on: read again. Bounded, so a writer that
  // never pauses makes this fail with an error rather than spin forever.
  for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
    if (attempt > 0) std::this_thread::yield();
    const std::uint64_t generation = committed.load(std::memory_order_acquire);
    if (generation == 0) return std::optional<CheckpointData>{};
    if (auto data = read_slot(*mapped, generation)) return std::optional(std::move(*data));
    if (committed.load(std::memory_order_acquire) != generation) continue;
    if (generation > 1) {
      if (auto previous = read_slot(*mapped, generation - 1)) {
        previous->fell_back = true;
        return std::optional(std::move(*previous));
      }
    }
    break;
  }
  return tl::unexpected(Error{Errc::invalid_layout,
                              "checkpoint '" + segment.name() +
                                  "': neither slot holds an intact checkpoint (torn or "
                                  "overwritten by something other than a commit)"});
}

Result<CheckpointStore> CheckpointStore::create(std::string_view bus, std::string_view extension,
                                                int instance, std::size_t capacity_bytes) {
  auto name = checkpoint_segment_name(bus, extension, instance);
  if (!name) return tl::unexpected(std::move(name.error()));
  if (capacity_bytes == 0 || capacity_bytes > layouts::kCheckpointMaxCapacity) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "checkpoint capacity " + std::to_string(capacity_bytes) +
                                    " must be 1 byte to 1 GiB"});
  }
  // A host that died left its segment: carry its last checkpoint over. (If that host still
  // lives, create() below refuses with owner_alive and nothing was changed.)
  std::optional<CheckpointData> recovered;
  if (auto previous = ShmSegment::open(*name, layouts::SegmentKind::checkpoint)) {
    if (auto last = read_checkpoint(*previous); last && *last) recovered = std::move(**last);
  }
  const std::uint64_t capacity = round_to_line(std::max<std::uint64_t>(
      capacity_bytes, recovered ? recovered->bytes.size() : std::uint64_t{0}));
  auto segment = ShmSegment::create(*name, layouts::SegmentKind::checkpoint,
                                    layouts::checkpoint_body_size(capacity));
  if (!segment) return tl::unexpected(std::move(segment.error()));
  auto* header = reinterpret_cast<CheckpointHeader*>(segment->body());
  header->slot_capacity = capacity;
  header->committed = 0;
  header->commits = 0;
  if (recovered) write_data(Mapped{segment->body(), capacity}, *recovered);
  segment->mark_ready();
  return CheckpointStore(std::move(*segment), static_cast<std::size_t>(capacity),
                         std::move(recovered));
}

Result<void> CheckpointStore::carry_over(const CheckpointData& data) {
  if (data.bytes.size() > capacity_) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "checkpoint of " + std::to_string(data.bytes.size()) +
                                    " bytes exceeds the capacity of " +
                                    std::to_string(capacity_) + " bytes"});
  }
  auto mapped = map_checkpoint(segment_);
  if (!mapped) return tl::unexpected(std::move(mapped.error()));
  write_data(*mapped, data);
  return {};
}

Result<Checkpoint> Checkpoint::open(std::string_view bus, std::string_view extension,
                                    int instance) {
  auto name = checkpoint_segment_name(bus, extension, instance);
  if (!name) return tl::unexpected(std::move(name.error()));
  auto segment = ShmSegment::open(*name, layouts::SegmentKind::checkpoint);
  if (!segment) return tl::unexpected(std::move(segment.error()));
  auto mapped = map_checkpoint(*segment);
  if (!mapped) return tl::unexpected(std::move(mapped.error()));
  const auto capacity = static_cast<std::size_t>(mapped->slot_capacity);
  return Checkpoint(std::move(*segment), capacity);
}

Result<std::uint64_t> Checkpoint::commit(std::span<const std::byte> bytes) {
  if (bytes.size() > capacity_) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "checkpoint of " + std::to_string(bytes.size()) +
                                    " bytes exceeds the capacity of " +
                                    std::to_string(capacity_) + " bytes"});
  }
  auto mapped = map_checkpoint(segment_);
  if (!mapped) return tl::unexpected(std::move(mapped.error()));
  const std::uint64_t generation =
      word(mapped->header + offsetof(CheckpointHeader, committed)).load(std::memory_order_acquire) +
      1;
  write_slot(*mapped, generation, bytes, now_ns());
  return generation;
}

}  // namespace symphony::engine
