#include "symphony/engine/shm_segment.hpp"
#include "symphony/engine/unique_fd.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>
#include <utility>

#include "symphony/engine/process_identity.hpp"
#include "symphony/layouts/verify.hpp"

namespace symphony::engine {
namespace {

using layouts::SegmentHeader;

constexpr std::size_t kMaxNameLength = 200;
// A segment with no complete header is taken for one being created for this long.
constexpr auto kCreationGrace = std::chrono::seconds(2);
constexpr int kCreateAttempts = 4;

Result<std::string> shm_path(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength ||
      name.find('/') != std::string_view::npos || name == "." || name == "..") {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "segment name '" + std::string(name) +
                                    "' must be 1-200 characters without '/'"});
  }
  return "/" + std::string(name);
}

std::atomic_ref<std::uint32_t> state_of(std::byte* base) {
  return std::atomic_ref<std::uint32_t>(reinterpret_cast<SegmentHeader*>(base)->state);
}


// What an existing segment tells us about whether it may be replaced.
struct StaleCheck {
  bool stale = false;
  std::uint64_t generation = 0;
  std::string why_not;  // when not stale
};

// Called with the segment's flock held by us, so its creator no longer holds it.
StaleCheck check_stale(int fd, std::string_view name) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return {false, 0, std::strerror(errno)};
  SegmentHeader header{};
  const bool complete = static_cast<std::size_t>(st.st_size) >= sizeof header &&
                        ::pread(fd, &header, sizeof header, 0) ==
                            static_cast<ssize_t>(sizeof header) &&
                        header.magic == layouts::kSegmentMagic && header.creator_pid != 0;
  if (!complete) {
    const auto age = std::chrono::seconds(std::time(nullptr) - st.st_ctime);
    if (age < kCreationGrace) {
      return {false, 0, "segment '" + std::string(name) + "' is being created by another process"};
    }
    return {true, 0, {}};
  }
  const ProcessIdentity creator{static_cast<pid_t>(header.creator_pid),
                                header.creator_start_time};
  if (is_alive(creator)) {
    return {false, header.generation,
            "segment '" + std::string(name) + "' belongs to live process " +
                std::to_string(creator.pid)};
  }
  return {true, header.generation, {}};
}

bool same_file(int fd, const std::string& path) {
  struct stat by_fd {};
  struct stat by_name {};
  const std::string full = "/dev/shm" + path;
  return ::fstat(fd, &by_fd) == 0 && ::stat(full.c_str(), &by_name) == 0 &&
         by_fd.st_ino == by_name.st_ino && by_fd.st_dev == by_name.st_dev;
}

Result<std::byte*> map(int fd, std::size_t size, const std::string& what) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) return tl::unexpected(Error::from_errno("mmap " + what, errno));
  return static_cast<std::byte*>(p);
}

void write_header(std::byte* base, layouts::SegmentKind kind, std::uint64_t total,
                  std::uint64_t body_size, std::uint64_t generation) noexcept {
  auto* header = reinterpret_cast<SegmentHeader*>(base);
  const ProcessIdentity self = self_identity();
  header->magic = layouts::kSegmentMagic;
  header->layout_version = layouts::kLayoutVersion;
  header->kind = static_cast<std::uint32_t>(kind);
  header->total_size = total;
  header->creator_pid = static_cast<std::uint32_t>(self.pid);
  header->creator_start_time = self.start_time;
  header->generation = generation;
  header->body_offset = layouts::kSegmentHeaderSize;
  header->body_size = body_size;
}

Result<std::uint64_t> checked_total_size(std::size_t body_size) {
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  if (body_size == 0 || body_size > (1ULL << 40)) {
    return tl::unexpected(
        Error{Errc::invalid_argument, "segment body size " + std::to_string(body_size) +
                                          " must be between 1 byte and 1 TiB"});
  }
  return layouts::align_up(layouts::kSegmentHeaderSize + body_size, page);
}

// Takes a shared flock, waiting up to `patience` for a creator that holds it exclusively while
// it initialises the segment.
bool lock_shared(int fd, std::chrono::milliseconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) return true;
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

ShmSegment::ShmSegment(std::string name, int fd, std::byte* base, std::size_t size, bool owner,
                       bool unlink_on_destroy, std::uint64_t generation) noexcept
    : name_(std::move(name)),
      fd_(fd),
      base_(base),
      size_(size),
      owner_(owner),
      unlink_on_destroy_(unlink_on_destroy),
      generation_(generation) {}

ShmSegment::ShmSegment(ShmSegment&& other) noexcept
    : name_(std::move(other.name_)),
      fd_(std::exchange(other.fd_, -1)),
      base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      owner_(std::exchange(other.owner_, false)),
      unlink_on_destroy_(std::exchange(other.unlink_on_destroy_, false)),
      shared_(std::exchange(other.shared_, false)),
      generation_(other.generation_) {}

ShmSegment& ShmSegment::operator=(ShmSegment&& other) noexcept {
  if (this != &other) {
    release();
    name_ = std::move(other.name_);
    fd_ = std::exchange(other.fd_, -1);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
    owner_ = std::exchange(other.owner_, false);
    unlink_on_destroy_ = std::exchange(other.unlink_on_destroy_, false);
    shared_ = std::exchange(other.shared_, false);
    generation_ = other.generation_;
  }
  return *this;
}

ShmSegment::~ShmSegment() { release(); }

void ShmSegment::release() noexcept {
  if (base_ != nullptr) ::munmap(base_, size_);
  if (fd_ >= 0) {
    // Still ours only while the name points at our inode (we hold the lock, so nobody else
    // can have replaced it, but a user may have unlinked it by hand).
    if (owner_ && unlink_on_destroy_ && same_file(fd_, "/" + name_)) {
      ::shm_unlink(("/" + name_).c_str());
    }
    // A shared segment: if nobody else holds it any more, we are the last one out. (Taking the
    // lock exclusively drops our shared lock first; failing is fine, we are leaving anyway.)
    if (shared_ && ::flock(fd_, LOCK_EX | LOCK_NB) == 0 && same_file(fd_, "/" + name_)) {
      ::shm_unlink(("/" + name_).c_str());
    }
    ::close(fd_);  // drops the flock
  }
  base_ = nullptr;
  fd_ = -1;
}

Result<ShmSegment> ShmSegment::create(std::string_view name, layouts::SegmentKind kind,
                                      std::size_t body_size, const CreateOptions& options) {
  auto path = shm_path(name);
  if (!path) return tl::unexpected(path.error());
  const auto checked_total = checked_total_size(body_size);
  if (!checked_total) return tl::unexpected(checked_total.error());
  const std::uint64_t total = *checked_total;

  std::uint64_t previous_generation = 0;
  for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
    UniqueFd fd(::shm_open(path->c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                     static_cast<mode_t>(options.mode)));
    if (fd.get() >= 0) {
      // Racers that open the name hold the lock only for a moment (check_stale), so waiting
      // for it here is short; from now until we close the fd it says "alive".
      if (::flock(fd.get(), LOCK_EX) != 0 ||
          ::fchmod(fd.get(), static_cast<mode_t>(options.mode)) != 0 ||
          ::ftruncate(fd.get(), static_cast<off_t>(total)) != 0) {
        const int err = errno;
        ::shm_unlink(path->c_str());
        return tl::unexpected(Error::from_errno("create segment '" + std::string(name) + "'", err));
      }
      auto base = map(fd.get(), total, "segment '" + std::string(name) + "'");
      if (!base) {
        ::shm_unlink(path->c_str());
        return tl::unexpected(base.error());
      }
      write_header(*base, kind, total, body_size, previous_generation + 1);
      // The state stays kSegmentInitializing: the ring marks it ready once its own header is
      // written (mark_ready), so openers never see a half-built ring.
      return ShmSegment(std::string(name), fd.release(), *base, total, true,
                        !options.keep_name_on_destroy, previous_generation + 1);
    }
    if (errno != EEXIST) {
      return tl::unexpected(Error::from_errno("shm_open '" + std::string(name) + "'", errno));
    }
    UniqueFd existing(::shm_open(path->c_str(), O_RDWR | O_CLOEXEC, 0));
    if (existing.get() < 0) {
      if (errno == ENOENT) continue;  // removed meanwhile: try to create again
      return tl::unexpected(Error::from_errno("shm_open '" + std::string(name) + "'", errno));
    }
    if (::flock(existing.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) {
        return tl::unexpected(Error::from_errno("flock '" + std::string(name) + "'", errno));
      }
      SegmentHeader header{};
      std::string who;
      if (::pread(existing.get(), &header, sizeof header, 0) == static_cast<ssize_t>(sizeof header) &&
          header.magic == layouts::kSegmentMagic) {
        who = " (creator pid " + std::to_string(header.creator_pid) + ")";
      }
      return tl::unexpected(Error{Errc::owner_alive, "segment '" + std::string(name) +
                                                         "' is held by a live owner" + who});
    }
    const StaleCheck check = check_stale(existing.get(), name);
    if (!check.stale) return tl::unexpected(Error{Errc::owner_alive, check.why_not});
    previous_generation = check.generation;
    // Unlink only the file we judged: the name may point at a newer segment by now.
    if (same_file(existing.get(), *path)) ::shm_unlink(path->c_str());
  }
  return tl::unexpected(Error{Errc::system_error, "could not create segment '" +
                                                      std::string(name) +
                                                      "': it kept reappearing (racing creators)"});
}

Result<ShmSegment> ShmSegment::open(std::string_view name, layouts::SegmentKind kind) {
  auto path = shm_path(name);
  if (!path) return tl::unexpected(path.error());
  UniqueFd fd(::shm_open(path->c_str(), O_RDWR | O_CLOEXEC, 0));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return tl::unexpected(Error{Errc::not_found, "no segment named '" + std::string(name) + "'"});
    }
    return tl::unexpected(Error::from_errno("shm_open '" + std::string(name) + "'", errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return tl::unexpected(Error::from_errno("fstat '" + std::string(name) + "'", errno));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size < layouts::kSegmentHeaderSize) {
    return tl::unexpected(Error{Errc::invalid_layout, "segment '" + std::string(name) + "' has " +
                                                          std::to_string(size) +
                                                          " bytes, too small for a header"});
  }
  auto base = map(fd.get(), size, "segment '" + std::string(name) + "'");
  if (!base) return tl::unexpected(base.error());
  ShmSegment segment(std::string(name), fd.release(), *base, size, false, false, 0);
  // A creator finishes its header within microseconds; give it a moment before calling the
  // segment broken.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (state_of(segment.base_).load(std::memory_order_acquire) != layouts::kSegmentReady &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto header = layouts::verify_segment_header(segment.base_, size, kind);
  if (!header) return tl::unexpected(Error::from_layout(name, header.error()));
  segment.generation_ = header->generation;
  return segment;
}

Result<ShmSegment> ShmSegment::attach_shared_impl(std::string_view name, layouts::SegmentKind kind,
                                                 std::size_t body_size,
                                                 const CreateOptions& options,
                                                 const InitFn& init) {
  auto path = shm_path(name);
  if (!path) return tl::unexpected(path.error());
  const auto checked_total = checked_total_size(body_size);
  if (!checked_total) return tl::unexpected(checked_total.error());
  const std::uint64_t total = *checked_total;
  const std::string what = "segment '" + std::string(name) + "'";
  constexpr auto kCreatorPatience = std::chrono::milliseconds(2000);

  std::uint64_t previous_generation = 0;
  for (int attempt = 0; attempt < 2 * kCreateAttempts; ++attempt) {
    UniqueFd fd(::shm_open(path->c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                     static_cast<mode_t>(options.mode)));
    if (fd.get() >= 0) {
      // Exclusive while we initialise: joiners wait in lock_shared().
      if (::flock(fd.get(), LOCK_EX) != 0 ||
          ::fchmod(fd.get(), static_cast<mode_t>(options.mode)) != 0 ||
          ::ftruncate(fd.get(), static_cast<off_t>(total)) != 0) {
        const int err = errno;
        ::shm_unlink(path->c_str());
        return tl::unexpected(Error::from_errno("create " + what, err));
      }
      auto base = map(fd.get(), total, what);
      if (!base) {
        ::shm_unlink(path->c_str());
        return tl::unexpected(base.error());
      }
      write_header(*base, kind, total, body_size, previous_generation + 1);
      ShmSegment segment(std::string(name), fd.release(), *base, total, false, false,
                         previous_generation + 1);
      if (auto filled = init(segment); !filled) {
        ::shm_unlink(path->c_str());
        return tl::unexpected(filled.error());
      }
      segment.mark_ready();
      // flock conversions are not atomic: in the gap a leaver may have judged itself last and
      // unlinked the name, so check that the name is still ours.
      if (::flock(segment.fd_, LOCK_SH) != 0) {
        return tl::unexpected(Error::from_errno("flock " + what, errno));
      }
      if (!same_file(segment.fd_, *path)) continue;
      segment.shared_ = true;
      return segment;
    }
    if (errno != EEXIST) return tl::unexpected(Error::from_errno("shm_open " + what, errno));
    UniqueFd existing(::shm_open(path->c_str(), O_RDWR | O_CLOEXEC, 0));
    if (existing.get() < 0) {
      if (errno == ENOENT) continue;  // the last holder just left: create it afresh
      return tl::unexpected(Error::from_errno("shm_open " + what, errno));
    }
    if (!lock_shared(existing.get(), kCreatorPatience)) {
      return tl::unexpected(Error{Errc::system_error,
                                  what + " stayed locked by its creator for 2 s (hung while "
                                         "initialising it?)"});
    }
    if (!same_file(existing.get(), *path)) continue;  // unlinked by the last holder meanwhile
    // With our shared lock held, an exclusive lock succeeds only if nobody else holds it: every
    // holder died without unlinking. Start afresh (the conversion drops our lock either way).
    if (::flock(existing.get(), LOCK_EX | LOCK_NB) == 0) {
      SegmentHeader old{};
      if (::pread(existing.get(), &old, sizeof old, 0) == static_cast<ssize_t>(sizeof old) &&
          old.magic == layouts::kSegmentMagic) {
        previous_generation = old.generation;
      }
      if (same_file(existing.get(), *path)) ::shm_unlink(path->c_str());
      continue;
    }
    if (!lock_shared(existing.get(), kCreatorPatience) || !same_file(existing.get(), *path)) {
      continue;
    }
    struct stat st {};
    if (::fstat(existing.get(), &st) != 0) {
      return tl::unexpected(Error::from_errno("fstat " + what, errno));
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    if (size < layouts::kSegmentHeaderSize) {
      return tl::unexpected(Error{Errc::invalid_layout, what + " has " + std::to_string(size) +
                                                            " bytes, too small for a header"});
    }
    auto base = map(existing.get(), size, what);
    if (!base) return tl::unexpected(base.error());
    ShmSegment segment(std::string(name), existing.release(), *base, size, false, false, 0);
    auto header = layouts::verify_segment_header(segment.base_, size, kind);
    if (!header) return tl::unexpected(Error::from_layout(name, header.error()));
    segment.generation_ = header->generation;
    segment.shared_ = true;
    return segment;
  }
  return tl::unexpected(Error{Errc::system_error,
                              "could not attach to " + what +
                                  ": it kept disappearing (racing last holders)"});
}

void ShmSegment::mark_ready() noexcept {
  // Release: everything the creator wrote is visible to whoever sees the ready state.
  state_of(base_).store(layouts::kSegmentReady, std::memory_order_release);
}

Result<void> ShmSegment::unlink(std::string_view name) {
  auto path = shm_path(name);
  if (!path) return tl::unexpected(path.error());
  if (::shm_unlink(path->c_str()) != 0) {
    if (errno == ENOENT) {
      return tl::unexpected(Error{Errc::not_found, "no segment named '" + std::string(name) + "'"});
    }
    return tl::unexpected(Error::from_errno("shm_unlink '" + std::string(name) + "'", errno));
  }
  return {};
}

bool ShmSegment::exists(std::string_view name) {
  auto path = shm_path(name);
  if (!path) return false;
  struct stat st {};
  return ::stat(("/dev/shm" + *path).c_str(), &st) == 0;
}

}  // namespace symphony::engine
