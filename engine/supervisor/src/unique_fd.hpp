#pragma once
// An owned file descriptor, closed on destruction.

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace symphony::supervisor {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  int release() noexcept { return std::exchange(fd_, -1); }

  // Moves the descriptor to a number >= 3 (close-on-exec), so that a child's dup2 onto 0, 1
  // and 2 can never clobber it (a host that closed its stdin gets fd 0 from the next open).
  bool raise_above_stdio() noexcept {
    if (fd_ < 0 || fd_ >= 3) return true;
    const int raised = ::fcntl(fd_, F_DUPFD_CLOEXEC, 3);
    if (raised < 0) return false;
    reset(raised);
    return true;
  }

 private:
  int fd_ = -1;
};

}  // namespace symphony::supervisor
