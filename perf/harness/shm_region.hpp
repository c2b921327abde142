#pragma once
// A plain named POSIX shared-memory region (shm_open + mmap), for transports whose shared state
// is not a Symphony segment: the floor's two cache lines and the boost::lockfree queue. The
// parent create()s it (O_EXCL, mode 0600) and unlinks the name when the region is destroyed;
// each child open()s it by name, as an unrelated process would, and never unlinks it.
//
// Names are "symphony-perf.<parent pid>.<...>"; remove_stale_regions() deletes those of dead
// runs (a parent killed with SIGKILL cannot clean up after itself).

#include <cstddef>
#include <string>
#include <utility>

#include "symphony/engine/error.hpp"

namespace symphony::perf {

inline constexpr const char* kNamePrefix = "symphony-perf.";

class ShmRegion {
 public:
  static engine::Result<ShmRegion> create(std::string name, std::size_t size);
  // Maps the whole region, which must be exactly `size` bytes.
  static engine::Result<ShmRegion> open(std::string name, std::size_t size);

  ShmRegion(ShmRegion&& other) noexcept;
  ShmRegion& operator=(ShmRegion&& other) noexcept;
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;
  ~ShmRegion();

  std::byte* base() const noexcept { return base_; }
  std::size_t size() const noexcept { return size_; }
  const std::string& name() const noexcept { return name_; }

 private:
  ShmRegion(std::string name, std::byte* base, std::size_t size, bool owner) noexcept
      : name_(std::move(name)), base_(base), size_(size), owner_(owner) {}
  void release() noexcept;

  std::string name_;
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
  bool owner_ = false;
};

// Maps every page of [base, base + size) into this process's page tables, writable, so that page
// faults do not land inside a measurement. Page tables are per process: each side does its own.
void prefault(std::byte* base, std::size_t size) noexcept;

// Removes /dev/shm/symphony-perf.<pid>.* (our regions and Symphony segments alike) whose pid no
// longer runs. Returns how many it removed.
int remove_stale_regions() noexcept;

}  // namespace symphony::perf
