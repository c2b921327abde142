#pragma once
// The two words the floors (floor, floor-buffer) send their messages through: one 64-byte-aligned
// word each way, so that a message costs one cache-line transfer. Private to one run of this
// binary (see ControlBlock): not a Symphony shm ABI.

#include <atomic>
#include <cstdint>

namespace symphony::perf {

struct FloorLines {
  alignas(64) std::uint64_t ping;
  alignas(64) std::uint64_t pong;
};
static_assert(sizeof(FloorLines) == 128, "one cache line each way");
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);

}  // namespace symphony::perf
