#pragma once
// Private helpers of the handoff: an owning fd, and SOCK_SEQPACKET messages with SCM_RIGHTS.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "symphony/engine/error.hpp"
#include "symphony/engine/unique_fd.hpp"

namespace symphony::controlplane::handoff_io {

using engine::UniqueFd;

inline engine::Error errno_error(const std::string& what, int errno_value) {
  return engine::Error::from_errno(what, errno_value);
}

// What one recvmsg() brought: the bytes (at most the buffer), whether the message was longer
// (truncated), whether file descriptors came with it (all taken and closed unless kept), and 0
// bytes with `closed` when the peer hung up.
struct Received {
  std::size_t bytes = 0;
  bool truncated = false;      // MSG_TRUNC: the message was longer than the buffer
  bool control_lost = false;   // MSG_CTRUNC: more fds than we made room for (they are dropped)
  bool closed = false;         // orderly shutdown by the peer
  int error = 0;               // errno of a failed recvmsg (EAGAIN: nothing there yet)
  // Every fd that came along (O_CLOEXEC); owned here, so they are closed unless taken.
  std::array<UniqueFd, 8> fds;
  std::size_t fd_count = 0;
};

// recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC) with room for `max_fds` (1-8) fds.
Received receive_message(int socket, void* buffer, std::size_t capacity,
                         std::size_t max_fds) noexcept;

// sendmsg(MSG_NOSIGNAL | MSG_DONTWAIT), with `pass_fd` as SCM_RIGHTS when >= 0. Returns 0 or errno.
int send_message(int socket, const void* data, std::size_t size, int pass_fd) noexcept;

// Fills a sockaddr_un; false if `path` is too long (max 107 bytes) or contains a NUL.
bool make_address(std::string_view path, sockaddr_un& address, socklen_t& length) noexcept;

// "<runtime dir>/handoff-<name>-<pid>.sock" and a check of the pattern for receivers.
inline constexpr std::string_view kSocketPrefix = "handoff-";
inline constexpr std::string_view kSocketSuffix = ".sock";
inline constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;  // 107

}  // namespace symphony::controlplane::handoff_io
