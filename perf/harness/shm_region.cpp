#include "shm_region.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>
#include <utility>

namespace symphony::perf {
namespace {

using engine::Errc;
using engine::Error;

std::string shm_path(const std::string& name) {
  return "/" + name;
}

}  // namespace

engine::Result<ShmRegion> ShmRegion::create(std::string name, std::size_t size) {
  const std::string path = shm_path(name);
  const int fd = ::shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return tl::unexpected(Error::from_errno("shm_open(" + path + ", O_CREAT)", errno));
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int saved = errno;
    ::close(fd);
    ::shm_unlink(path.c_str());
    return tl::unexpected(Error::from_errno("ftruncate(" + path + ")", saved));
  }
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int saved = errno;
  ::close(fd);  // the mapping keeps the object alive
  if (base == MAP_FAILED) {
    ::shm_unlink(path.c_str());
    return tl::unexpected(Error::from_errno("mmap(" + path + ")", saved));
  }
  return ShmRegion(std::move(name), static_cast<std::byte*>(base), size, true);
}

engine::Result<ShmRegion> ShmRegion::open(std::string name, std::size_t size) {
  const std::string path = shm_path(name);
  const int fd = ::shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return tl::unexpected(Error::from_errno("shm_open(" + path + ")", errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) != size) {
    ::close(fd);
    return tl::unexpected(Error{Errc::invalid_layout, path + ": expected " + std::to_string(size) +
                                                          " bytes, found " +
                                                          std::to_string(st.st_size)});
  }
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int saved = errno;
  ::close(fd);
  if (base == MAP_FAILED) return tl::unexpected(Error::from_errno("mmap(" + path + ")", saved));
  return ShmRegion(std::move(name), static_cast<std::byte*>(base), size, false);
}

ShmRegion::ShmRegion(ShmRegion&& other) noexcept
    : name_(std::move(other.name_)),
      base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      owner_(std::exchange(other.owner_, false)) {}

ShmRegion& ShmRegion::operator=(ShmRegion&& other) noexcept {
  if (this != &other) {
    release();
    name_ = std::move(other.name_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
    owner_ = std::exchange(other.owner_, false);
  }
  return *this;
}

ShmRegion::~ShmRegion() {
  release();
}

void ShmRegion::release() noexcept {
  if (base_ != nullptr) ::munmap(base_, size_);
  if (owner_) ::shm_unlink(shm_path(name_).c_str());
  base_ = nullptr;
  owner_ = false;
}

void prefault(std::byte* base, std::size_t size) noexcept {
#ifdef MADV_POPULATE_WRITE
  if (::madvise(base, size, MADV_POPULATE_WRITE) == 0) return;
#endif
  // Older kernels: touch one byte per page, writing back what is there. Only called before the
  // sides start, so nobody else writes these bytes yet.
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  for (std::size_t offset = 0; offset < size; offset += page) {
    auto* byte = reinterpret_cast<volatile unsigned char*>(base + offset);
    *byte = *byte;
  }
}

namespace {

// Removes the entries of `dir` named "symphony-perf.<pid>.*" whose process is gone, with
// `remove`; returns how many it removed.
template <typename Remove>
int remove_entries_of_dead_runs(const char* dir_path, Remove&& remove) noexcept {
  DIR* dir = ::opendir(dir_path);
  if (dir == nullptr) return 0;
  int removed = 0;
  const std::string_view prefix = kNamePrefix;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (!name.starts_with(prefix)) continue;
    const std::string_view rest = name.substr(prefix.size());
    pid_t pid = 0;
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
    if (ec != std::errc{} || pid <= 0 || end == rest.data() + rest.size() || *end != '.') {
      continue;
    }
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    if (remove(std::string(name))) ++removed;
  }
  ::closedir(dir);
  return removed;
}

}  // namespace

int remove_stale_regions() noexcept {
  // Segments in /dev/shm, and the ipc:// socket files of zmq-ipc and control-rr in /tmp (their
  // sides _exit() without closing: the binding side's file stays).
  return remove_entries_of_dead_runs(
             "/dev/shm",
             [](const std::string& name) { return ::shm_unlink(("/" + name).c_str()) == 0; }) +
         remove_entries_of_dead_runs("/tmp", [](const std::string& name) {
           const std::string path = "/tmp/" + name;
           struct stat st {};
           return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
                  ::unlink(path.c_str()) == 0;
         });
}

}  // namespace symphony::perf
