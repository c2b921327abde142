#pragma once
// Constants shared by every shared-memory layout. Nothing here may change without bumping
// kLayoutVersion: another process, built from another commit, may be reading the same bytes.

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace symphony::layouts {

// Fixed, not std::hardware_destructive_interference_size: GCC warns that the latter can change
// between compiler versions and -mtune flags, and a layout must not.
inline constexpr std::size_t kCacheLine = 64;

// "SYMPHONY" read as a little-endian u64, so a hex dump of a segment starts with the name.
inline constexpr std::uint64_t kSegmentMagic = 0x594E4F48504D5953ULL;

// Must be incremented for every incompatible change to any struct in shm_layouts/.
inline constexpr std::uint32_t kLayoutVersion = 1;

enum class SegmentKind : std::uint32_t {
  spsc_ring = 1,
  mpmc_ring = 2,
  topic = 3,
  checkpoint = 4,
};

static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free,
              "64-bit shared-memory indices must be lock-free to be shared between processes");
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free,
              "32-bit futex words must be lock-free to be shared between processes");

constexpr bool is_power_of_two(std::uint64_t value) noexcept {
  return value != 0 && (value & (value - 1)) == 0;
}

constexpr std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) noexcept {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace symphony::layouts
