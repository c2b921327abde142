#pragma once
// A doorbell: how a sleeper in one process is woken by another, through a futex on a 32-bit
// word in shared memory (no FUTEX_PRIVATE_FLAG, so the kernel keys it by the physical page).

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "symphony/layouts/common.hpp"

namespace symphony::layouts {

//  0              4              8                                                   64
//  +--------------+--------------+---------------------------------------------------+
//  | waiters u32  | sequence u32 | padding: the doorbell owns its cache line          |
//  +--------------+--------------+---------------------------------------------------+
// waiters: how many processes are about to sleep or asleep (seq_cst read-modify-writes).
// sequence: the futex word; a ringer increments it before FUTEX_WAKE, so a sleeper that read
// the old value cannot miss the wake-up.
struct alignas(kCacheLine) Doorbell {
  std::uint32_t waiters;
  std::uint32_t sequence;
  std::uint8_t padding[kCacheLine - 2 * sizeof(std::uint32_t)];
};

static_assert(sizeof(Doorbell) == kCacheLine);
static_assert(alignof(Doorbell) == kCacheLine);
static_assert(offsetof(Doorbell, sequence) == 4);
static_assert(std::is_standard_layout_v<Doorbell>);
static_assert(std::is_trivially_copyable_v<Doorbell>);

}  // namespace symphony::layouts
