#pragma once
// A process as recorded in shared memory: a pid alone can be reused, so it travels with the
// process's start time (field 22 of /proc/<pid>/stat, clock ticks since boot).

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace symphony::layouts {

//  0               4               8                              16
//  +---------------+---------------+-------------------------------+
//  | pid (u32)     | reserved (u32)| start_time (u64)              |
//  +---------------+---------------+-------------------------------+
struct ProcessIdentityRecord {
  std::uint32_t pid;  // 0: nobody
  std::uint32_t reserved;
  std::uint64_t start_time;  // 0: not yet written by the claimer
};

static_assert(sizeof(ProcessIdentityRecord) == 16);
static_assert(alignof(ProcessIdentityRecord) == 8);
static_assert(offsetof(ProcessIdentityRecord, start_time) == 8);
static_assert(std::is_standard_layout_v<ProcessIdentityRecord>);
static_assert(std::is_trivially_copyable_v<ProcessIdentityRecord>);

}  // namespace symphony::layouts
