#pragma once
// The supervisor's use of engine::UniqueFd: descriptors kept clear of 0, 1 and 2.

#include <fcntl.h>

#include "symphony/engine/unique_fd.hpp"

namespace symphony::supervisor {

using engine::UniqueFd;

// Moves the descriptor to a number >= 3 (close-on-exec), so that a child's dup2 onto 0, 1 and 2
// can never clobber it (a host that closed its stdin gets fd 0 from the next open).
inline bool raise_above_stdio(UniqueFd& fd) noexcept {
  if (!fd || fd.get() >= 3) return true;
  const int raised = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (raised < 0) return false;
  fd.reset(raised);
  return true;
}

}  // namespace symphony::supervisor
