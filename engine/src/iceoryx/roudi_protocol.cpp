#include "roudi_protocol.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace symphony::engine::roudi {

std::string lease_dir() {
  return "/tmp/symphony-roudi-" + std::to_string(::getuid());
}

std::string ensure_lease_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return "mkdir " + dir + ": " + std::strerror(errno);
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return "lstat " + dir + ": " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode)) return dir + " is not a directory (a symlink?): refusing to use it";
  if (st.st_uid != ::getuid()) {
    return dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to us (uid " +
           std::to_string(::getuid()) + "): refusing to use it";
  }
  if ((st.st_mode & 022) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return dir + " is writable by others (mode " + mode + "): refusing to use it";
  }
  return {};
}

RoudiProbe probe_roudi() noexcept {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return RoudiProbe::absent;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  static_assert(sizeof(kRoudiSocketPath) <= sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, kRoudiSocketPath, sizeof(kRoudiSocketPath));
  const int rc = ::connect(fd, static_cast<const sockaddr*>(static_cast<const void*>(&addr)),
                           sizeof(addr));
  const int err = errno;
  ::close(fd);
  if (rc == 0) return RoudiProbe::running;
  return err == EACCES || err == EPERM ? RoudiProbe::no_access : RoudiProbe::absent;
}

bool pid_alive(long pid) noexcept {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace symphony::engine::roudi
