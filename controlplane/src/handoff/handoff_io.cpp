#include "handoff_io.hpp"

#include <cerrno>
#include <cstring>

namespace symphony::controlplane::handoff_io {

Received receive_message(int socket, void* buffer, std::size_t capacity,
                         std::size_t max_fds) noexcept {
  Received received;
  iovec iov{buffer, capacity};
  // Room for max_fds descriptors (at least one, so that any fd sent is seen and closed).
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int) * 8)];
  const std::size_t room = max_fds == 0 ? 1 : (max_fds > 8 ? 8 : max_fds);
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = CMSG_SPACE(sizeof(int) * room);
  ssize_t n;
  do {
    n = ::recvmsg(socket, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    received.error = errno;
    return received;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t data_bytes = c->cmsg_len - CMSG_LEN(0);
    const std::size_t count = data_bytes / sizeof(int);
    const unsigned char* data = CMSG_DATA(c);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, data + i * sizeof(int), sizeof(int));
      if (fd < 0) continue;
      if (received.fd_count < received.fds.size()) {
        received.fds[received.fd_count++].reset(fd);
      } else {
        ::close(fd);
      }
    }
  }
  received.bytes = static_cast<std::size_t>(n);
  received.truncated = (message.msg_flags & MSG_TRUNC) != 0;
  received.control_lost = (message.msg_flags & MSG_CTRUNC) != 0;
  received.closed = n == 0 && !received.truncated && received.fd_count == 0;
  return received;
}

int send_message(int socket, const void* data, std::size_t size, int pass_fd) noexcept {
  iovec iov{const_cast<void*>(data), size};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int))];
  if (pass_fd >= 0) {
    std::memset(control, 0, sizeof control);
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    if (c == nullptr) return EINVAL;
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(socket, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno;
  return static_cast<std::size_t>(n) == size ? 0 : EMSGSIZE;
}

bool make_address(std::string_view path, sockaddr_un& address, socklen_t& length) noexcept {
  if (path.empty() || path.size() > kMaxSocketPath ||
      path.find('\0') != std::string_view::npos) {
    return false;
  }
  address = sockaddr_un{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

}  // namespace symphony::controlplane::handoff_io
