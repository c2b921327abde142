#pragma once
// Wakes an I/O thread that sleeps in zmq::poll: an eventfd it polls beside its sockets.

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "symphony/engine/error.hpp"

namespace symphony::controlplane {

class IoWake {
 public:
  IoWake() = default;
  static engine::Result<IoWake> create() {
    IoWake wake;
    wake.fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake.fd_ < 0) return tl::unexpected(engine::Error::from_errno("eventfd", errno));
    return wake;
  }
  IoWake(IoWake&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  IoWake& operator=(IoWake&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~IoWake() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const noexcept { return fd_; }
  void signal() const noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof one);
  }
  void drain() const noexcept {
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = ::read(fd_, &count, sizeof count);
  }

 private:
  int fd_ = -1;
};

}  // namespace symphony::controlplane
