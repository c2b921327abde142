#pragma once
// Test support: how much work a test does (SYMPHONY_TEST_SCALE), unique shared-memory names that
// are cleaned up, and child processes that can neither hang a test nor outlive it.
//
// Rules every multi-process test follows:
//  - names are generated in the parent (they carry the parent's pid and the test's name), and
//    ShmTest::TearDown removes every /dev/shm entry with the test's prefix, whatever happened;
//  - a child runs a lambda and _exit()s with its result (no destructors of the parent's objects,
//    no gtest output, no atexit handlers); it dies with its parent (PR_SET_PDEATHSIG);
//  - ChildProcess::wait() has a timeout and SIGKILLs on expiry; the destructor SIGKILLs and reaps
//    a child that is still running, so a failed ASSERT never leaves a spinning process behind.

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include <gtest/gtest.h>

namespace symphony::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---- scale ----------------------------------------------------------------------------------

// SYMPHONY_TEST_SCALE (default 1.0): the sanitizer presets shrink message counts with it.
inline double test_scale() {
  static const double scale = [] {
    const char* env = std::getenv("SYMPHONY_TEST_SCALE");
    if (env == nullptr || *env == '\0') return 1.0;
    char* end = nullptr;
    const double value = std::strtod(env, &end);
    if (end == env || !(value > 0.0)) return 1.0;
    return value;
  }();
  return scale;
}

// max(1, n * SYMPHONY_TEST_SCALE)
inline std::uint64_t scaled(std::uint64_t n) {
  const double value = static_cast<double>(n) * test_scale();
  return value < 1.0 ? 1 : static_cast<std::uint64_t>(value);
}

// ---- shared-memory names ----------------------------------------------------------------------

// "sym.test.<pid>.": every name a test process generates starts with this.
inline std::string shm_process_prefix() {
  return "sym.test." + std::to_string(::getpid()) + ".";
}

// "sym.test.<pid>.<Suite>.<Test>.": the current test's names start with this.
inline std::string shm_test_prefix() {
  std::string test = "none";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    test = std::string(info->test_suite_name()) + "." + info->name();
  }
  for (char& c : test) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '-';
    if (!plain) c = '_';  // parameterised tests have '/' in their names
  }
  if (test.size() > 120) test.resize(120);
  return shm_process_prefix() + test + ".";
}

// A fresh name for this test: prefix + tag + a counter. Call it in the parent, before fork.
inline std::string unique_shm_name(std::string_view tag = "seg") {
  static std::atomic<unsigned> counter{0};
  return shm_test_prefix() + std::string(tag) + "." +
         std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
}

// Unlinks every /dev/shm entry whose name starts with `prefix`; returns how many.
inline int remove_shm_with_prefix(const std::string& prefix) {
  int removed = 0;
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.compare(0, prefix.size(), prefix) == 0) {
      if (::shm_unlink(("/" + name).c_str()) == 0) ++removed;
    }
  }
  ::closedir(dir);
  return removed;
}

inline bool shm_exists(const std::string& name) {
  return ::access(("/dev/shm/" + name).c_str(), F_OK) == 0;
}

// ---- time ----------------------------------------------------------------------------------

inline Clock::time_point deadline_in(Clock::duration d) {
  return Clock::now() + d;
}

inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

// Polls `predicate` every `poll` until it is true or `timeout` passes; returns its last value.
template <typename Predicate>
bool eventually(Predicate&& predicate, Clock::duration timeout,
                Clock::duration poll = std::chrono::microseconds(200)) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (Clock::now() >= deadline) return predicate();
    std::this_thread::sleep_for(poll);
  }
}

// CPU time (user + system) this process has used.
inline std::chrono::microseconds process_cpu_time() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto us = [](const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  };
  return std::chrono::duration_cast<std::chrono::microseconds>(us(usage.ru_utime) +
                                                               us(usage.ru_stime));
}

// ---- memory shared with children ----------------------------------------------------------------

// An array in a MAP_SHARED | MAP_ANONYMOUS mapping: created before fork, it is the same memory in
// the parent and every child (no /dev/shm name). Zero-initialised. Access elements that a peer
// changes concurrently through std::atomic_ref (at()).
template <typename T>
class SharedArray {
  static_assert(std::is_trivially_copyable_v<T>, "SharedArray holds plain data only");

 public:
  explicit SharedArray(std::size_t count) : count_(count) {
    void* p = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
  }
  SharedArray(const SharedArray&) = delete;
  SharedArray& operator=(const SharedArray&) = delete;
  ~SharedArray() { ::munmap(data_, bytes()); }

  T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return count_; }
  T& operator[](std::size_t i) const noexcept { return data_[i]; }
  std::atomic_ref<T> at(std::size_t i) const noexcept { return std::atomic_ref<T>(data_[i]); }

 private:
  std::size_t bytes() const noexcept { return std::max<std::size_t>(1, count_ * sizeof(T)); }
  std::size_t count_;
  T* data_ = nullptr;
};

// ---- child processes ----------------------------------------------------------------------------

// Exit codes a child uses for its own failures (tests add their own, below 100).
inline constexpr int kChildCheckFailed = 101;
inline constexpr int kChildException = 102;
inline constexpr int kChildParentGone = 103;

struct ChildStatus {
  bool exited = false;  // by exit/_exit (then exit_code is set)
  int exit_code = -1;
  int term_signal = 0;  // killed by this signal
  bool timed_out = false;

  bool ok() const noexcept { return exited && exit_code == 0 && !timed_out; }
  std::string describe() const {
    std::string s;
    if (timed_out) s += "timed out (killed with SIGKILL); ";
    if (exited) return s + "exited with code " + std::to_string(exit_code);
    if (term_signal != 0) return s + "killed by signal " + std::to_string(term_signal);
    return s + "status unknown";
  }
  friend std::ostream& operator<<(std::ostream& os, const ChildStatus& status) {
    return os << status.describe();
  }
};

// [[noreturn]] failure inside a child: prints where and why, then _exit(kChildCheckFailed).
[[noreturn]] inline void child_fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "child %d: %s:%d: %s\n", static_cast<int>(::getpid()), file, line,
               what.c_str());
  std::fflush(stderr);
  ::_exit(kChildCheckFailed);
}

#define SYM_CHILD_CHECK(cond)                                                              \
  do {                                                                                     \
    if (!(cond)) ::symphony::test::child_fail(__FILE__, __LINE__, "check failed: " #cond); \
  } while (0)

#define SYM_CHILD_CHECK_MSG(cond, msg)                                                \
  do {                                                                                \
    if (!(cond))                                                                      \
      ::symphony::test::child_fail(__FILE__, __LINE__,                                \
                                   std::string("check failed: " #cond ": ") + (msg)); \
  } while (0)

// A forked child running `body` (returning int, its exit code, or void for 0). The child dies
// with the parent (PR_SET_PDEATHSIG), and a still-running child is SIGKILLed and reaped when
// this object is destroyed.
class ChildProcess {
 public:
  template <typename Body>
  explicit ChildProcess(Body&& body) {
    const pid_t parent = ::getpid();
    std::fflush(nullptr);  // or buffered output would be printed twice
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(kChildParentGone);
      int code = 0;
      try {
        if constexpr (std::is_void_v<std::invoke_result_t<Body&>>) {
          body();
        } else {
          code = static_cast<int>(body());
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: exception: %s\n", static_cast<int>(::getpid()), e.what());
        code = kChildException;
      } catch (...) {
        code = kChildException;
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    pid_ = pid;
  }

  ChildProcess(ChildProcess&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), status_(other.status_) {}
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0) kill9();
  }

  pid_t pid() const noexcept { return pid_; }
  bool reaped() const noexcept { return pid_ <= 0; }
  const ChildStatus& status() const noexcept { return status_; }

  // True once the child has exited (reaps it).
  bool try_reap() {
    if (pid_ <= 0) return true;
    int raw = 0;
    const pid_t r = ::waitpid(pid_, &raw, WNOHANG);
    if (r == pid_) {
      record(raw);
      return true;
    }
    if (r < 0 && errno == ECHILD) {
      pid_ = -1;
      return true;
    }
    return false;
  }

  // Waits for the child to exit; after `timeout` kills it with SIGKILL (timed_out is then set).
  ChildStatus wait(Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    auto poll = std::chrono::microseconds(50);
    while (!try_reap()) {
      if (Clock::now() >= deadline) {
        kill9();
        status_.timed_out = true;
        return status_;
      }
      std::this_thread::sleep_for(poll);
      poll = std::min<std::chrono::microseconds>(poll * 2, std::chrono::milliseconds(5));
    }
    return status_;
  }

  // SIGKILL and reap.
  ChildStatus kill9() {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGKILL);
    int raw = 0;
    while (::waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
    }
    record(raw);
    return status_;
  }

 private:
  void record(int raw) {
    if (WIFEXITED(raw)) {
      status_.exited = true;
      status_.exit_code = WEXITSTATUS(raw);
    } else if (WIFSIGNALED(raw)) {
      status_.term_signal = WTERMSIG(raw);
    }
    pid_ = -1;
  }

  pid_t pid_ = -1;
  ChildStatus status_;
};

// Runs `body` in a child and returns how it ended (SIGKILL after `timeout`).
template <typename Body>
ChildStatus run_in_child(Body&& body, Clock::duration timeout = std::chrono::seconds(60)) {
  ChildProcess child(std::forward<Body>(body));
  return child.wait(timeout);
}

// ---- fixture ------------------------------------------------------------------------------------

// Unlinks the /dev/shm entries of test processes that are gone (a crash or a ctest timeout skips
// TearDown): "sym.test.<pid>." whose pid no longer exists.
inline int remove_stale_test_segments() {
  int removed = 0;
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return 0;
  const std::string prefix = "sym.test.";
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) {
      if (::shm_unlink(("/" + name).c_str()) == 0) ++removed;
    }
  }
  ::closedir(dir);
  return removed;
}

// Base fixture: shm names unique to the test, all removed from /dev/shm in TearDown.
class ShmTest : public ::testing::Test {
 protected:
  std::string name(std::string_view tag = "seg") { return unique_shm_name(tag); }
  void SetUp() override { remove_stale_test_segments(); }
  void TearDown() override { remove_shm_with_prefix(shm_test_prefix()); }
};

}  // namespace symphony::test
