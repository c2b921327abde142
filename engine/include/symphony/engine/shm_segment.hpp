#pragma once
// A named POSIX shared-memory segment (/dev/shm/<name>) with honest ownership.
//
// The creator owns the name: it holds an exclusive flock(2) on the segment for as long as its
// ShmSegment lives (the kernel drops it if the process dies), and its (pid, start time) is in the
// header. create() on a name that exists replaces the segment only if its owner is dead by both
// tests; a live owner's segment is never clobbered (Errc::owner_alive). The creator unlinks the
// name when its ShmSegment is destroyed, unless keep_name_on_destroy is set.
//
// open() maps an existing segment read-write and verifies its header; it never takes ownership.
// Every fd is O_CLOEXEC, so an exec'd child does not inherit the lock.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "symphony/engine/error.hpp"
#include "symphony/layouts/segment_header.hpp"

namespace symphony::engine {

struct CreateOptions {
  unsigned mode = 0600;
  bool keep_name_on_destroy = false;
};

class ShmSegment {
 public:
  // `name` is a plain name ("sym.demo"), without '/'; body_size is what follows the header.
  static Result<ShmSegment> create(std::string_view name, layouts::SegmentKind kind,
                                   std::size_t body_size, const CreateOptions& options = {});
  // Maps and checks magic, version, kind, readiness and size. Kind-specific checks are the
  // ring's (verify_spsc_ring / verify_mpmc_ring).
  static Result<ShmSegment> open(std::string_view name, layouts::SegmentKind kind);
  // A segment shared by peers, none of which owns it (topics): every attached process holds a
  // shared flock(2) for as long as its ShmSegment lives, and the last one out (the one that can
  // then take the lock exclusively) unlinks the name. If the name does not exist, or exists with
  // no live holder (all died), a fresh segment of `body_size` is created and `init` fills its
  // body before anyone else can map it. Otherwise the existing one is mapped and its header
  // verified; `body_size` is then ignored (the caller verifies the body).
  template <typename Init>
  static Result<ShmSegment> attach_shared(std::string_view name, layouts::SegmentKind kind,
                                          std::size_t body_size, Init&& init,
                                          const CreateOptions& options = {}) {
    return attach_shared_impl(name, kind, body_size, options,
                              [&](ShmSegment& created) -> Result<void> { return init(created); });
  }
  // Removes the name; mappings stay valid until unmapped.
  static Result<void> unlink(std::string_view name);
  static bool exists(std::string_view name);

  ShmSegment(ShmSegment&& other) noexcept;
  ShmSegment& operator=(ShmSegment&& other) noexcept;
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;
  ~ShmSegment();

  std::byte* base() const noexcept { return base_; }
  std::size_t size() const noexcept { return size_; }
  std::byte* body() const noexcept { return base_ + layouts::kSegmentHeaderSize; }
  const std::string& name() const noexcept { return name_; }
  bool is_owner() const noexcept { return owner_; }
  // The generation recorded at creation: 1 for a fresh name, previous + 1 after a replacement.
  std::uint64_t generation() const noexcept { return generation_; }

  // The creator calls this once the body is initialised: open() refuses a segment until then.
  void mark_ready() noexcept;

 private:
  using InitFn = std::function<Result<void>(ShmSegment&)>;
  static Result<ShmSegment> attach_shared_impl(std::string_view name, layouts::SegmentKind kind,
                                               std::size_t body_size, const CreateOptions& options,
                                               const InitFn& init);
  ShmSegment(std::string name, int fd, std::byte* base, std::size_t size, bool owner,
             bool unlink_on_destroy, std::uint64_t generation) noexcept;
  void release() noexcept;

  std::string name_;
  int fd_ = -1;
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
  bool owner_ = false;
  bool unlink_on_destroy_ = false;
  bool shared_ = false;  // attach_shared: the last holder out unlinks
  std::uint64_t generation_ = 0;
};

}  // namespace symphony::engine
