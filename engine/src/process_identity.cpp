#include "symphony/engine/process_identity.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace symphony::engine {

std::optional<std::uint64_t> process_start_time(pid_t pid) noexcept {
  if (pid <= 0) return std::nullopt;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  // comm (field 2) may contain spaces and parentheses: fields resume after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ') return std::nullopt;
  p += 2;
  const char state = *p;
  if (state == 'Z' || state == 'X' || state == 'x') return std::nullopt;  // runs no more code
  // p is at field 3; advance to field 22.
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return std::nullopt;
    ++p;
  }
  char* end = nullptr;
  const unsigned long long start = std::strtoull(p, &end, 10);
  if (end == p) return std::nullopt;
  return static_cast<std::uint64_t>(start);
}

ProcessIdentity self_identity() noexcept {
  // Cached per pid: fork changes the pid, and then the start time too.
  static thread_local ProcessIdentity cached{};
  const pid_t pid = ::getpid();
  if (cached.pid != pid) {
    cached.pid = pid;
    cached.start_time = process_start_time(pid).value_or(0);
  }
  return cached;
}

bool is_alive(const ProcessIdentity& who) noexcept {
  if (who.pid <= 0) return false;
  const auto start = process_start_time(who.pid);
  if (!start) return false;
  return who.start_time == 0 || *start == who.start_time;
}

ProcessIdentity load_identity(const layouts::ProcessIdentityRecord& record) noexcept {
  ProcessIdentity who;
  who.pid = static_cast<pid_t>(
      std::atomic_ref<const std::uint32_t>(record.pid).load(std::memory_order_acquire));
  who.start_time =
      std::atomic_ref<const std::uint64_t>(record.start_time).load(std::memory_order_acquire);
  return who;
}

}  // namespace symphony::engine

namespace symphony::engine {

ClaimOutcome claim_identity(layouts::ProcessIdentityRecord& record) noexcept {
  const ProcessIdentity self = self_identity();
  std::atomic_ref<std::uint32_t> pid(record.pid);
  std::atomic_ref<std::uint64_t> start(record.start_time);
  std::uint32_t expected = 0;
  ClaimOutcome outcome = ClaimOutcome::claimed;
  if (!pid.compare_exchange_strong(expected, static_cast<std::uint32_t>(self.pid),
                                   std::memory_order_acq_rel)) {
    std::uint64_t holder_start = start.load(std::memory_order_acquire);
    const ProcessIdentity holder{static_cast<pid_t>(expected), holder_start};
    if (holder.pid == self.pid || is_alive(holder)) return ClaimOutcome::held_by_live;
    // Zero the start time first: until our own is written, a third claimer then judges the
    // record by its pid alone and sees us alive, rather than our pid with the dead start time.
    if (!start.compare_exchange_strong(holder_start, 0, std::memory_order_acq_rel)) {
      return ClaimOutcome::held_by_live;
    }
    if (!pid.compare_exchange_strong(expected, static_cast<std::uint32_t>(self.pid),
                                     std::memory_order_acq_rel)) {
      // Another claimer won. The start time stays 0 (its own may not be written yet): the
      // record is then judged by the winner's pid alone, which is alive.
      return ClaimOutcome::held_by_live;
    }
    outcome = ClaimOutcome::took_over;
  }
  start.store(self.start_time, std::memory_order_release);
  return outcome;
}

void release_identity(layouts::ProcessIdentityRecord& record) noexcept {
  const ProcessIdentity self = self_identity();
  std::atomic_ref<std::uint32_t> pid(record.pid);
  if (pid.load(std::memory_order_acquire) != static_cast<std::uint32_t>(self.pid)) return;
  std::atomic_ref<std::uint64_t>(record.start_time).store(0, std::memory_order_relaxed);
  std::uint32_t expected = static_cast<std::uint32_t>(self.pid);
  pid.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
}

}  // namespace symphony::engine
