#pragma once
// Support for the iceoryx suites. The rule that shapes them: iceoryx allows one runtime per
// process and its threads make fork() unsafe afterwards, so the test process itself never
// touches iceoryx; every publisher and subscriber lives in a forked child that opens its own
// session (runtime) after the fork. Children talk to the parent through SharedArray flags and
// counter blocks; the parent checks RouDi's processes and files from outside.

#include <dirent.h>
#include <grp.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "iceoryx/iceoryx_transport.hpp"
#include "iceoryx/roudi_protocol.hpp"
#include "symphony/layouts/topic.hpp"
#include "test_scale.hpp"

namespace symphony::test::ice {

using namespace std::chrono_literals;
namespace engine = symphony::engine;
namespace detail = symphony::engine::detail;
namespace roudi = symphony::engine::roudi;

inline constexpr char kBus[] = "symtest";

// A topic name unique to this test process and test.
inline std::string topic_name(std::string_view tag = "t") {
  static std::atomic<unsigned> counter{0};
  std::string test = "none";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    test = info->name();
  }
  return "sym." + std::to_string(::getpid()) + "." + test + "." + std::string(tag) + "." +
         std::to_string(counter.fetch_add(1));
}

inline engine::TopicOptions iceoryx_options(std::uint64_t max_payload = 64,
                                            std::uint32_t history = 0) {
  engine::TopicOptions o;
  o.transport = engine::TopicTransport::iceoryx;
  o.max_payload = max_payload;
  o.history = history;
  return o;
}

inline engine::SubscriberOptions sub_options(std::uint32_t depth, engine::Overflow overflow,
                                             bool history = true) {
  engine::SubscriberOptions o;
  o.depth = depth;
  o.overflow = overflow;
  o.history = history;
  return o;
}

// ---- flags shared with children ----------------------------------------------------------------

// Waits until flags[i] >= value (children and parent alike); false on time-out.
inline bool wait_flag(const SharedArray<std::uint64_t>& flags, std::size_t i, std::uint64_t value,
                      Clock::duration timeout = 30s) {
  return eventually([&] { return flags.at(i).load() >= value; }, timeout, 100us);
}
inline void set_flag(const SharedArray<std::uint64_t>& flags, std::size_t i, std::uint64_t value) {
  flags.at(i).store(value);
}

// Counter blocks in memory shared with the children (the backends write them, the parent reads).
class SharedCounters {
 public:
  explicit SharedCounters(std::size_t n) : blocks_(n) {}
  layouts::TopicCounterBlock* at(std::size_t i) const { return &blocks_[i]; }
  std::uint64_t get(std::size_t i, std::uint64_t layouts::TopicCounterBlock::*field) const {
    return std::atomic_ref<std::uint64_t>(blocks_[i].*field).load();
  }

 private:
  SharedArray<layouts::TopicCounterBlock> blocks_;
};

// ---- child-side helpers -------------------------------------------------------------------------

#define ICE_CHILD_OK(result)                                                             \
  do {                                                                                   \
    if (!(result)) {                                                                     \
      ::symphony::test::child_fail(__FILE__, __LINE__,                                   \
                                   std::string(#result " failed: ") +                    \
                                       engine::to_string((result).error().code) + ": " + \
                                       (result).error().message);                        \
    }                                                                                    \
  } while (0)

inline std::shared_ptr<detail::IceoryxSession> child_session() {
  auto session = detail::open_iceoryx_session(kBus);
  ICE_CHILD_OK(session);
  return *session;
}

// Waits (in a child) until the publisher sees `n` subscribers connected.
inline void wait_subscribers(detail::PublisherBackend& pub, std::uint64_t n,
                             Clock::duration timeout = 10s) {
  SYM_CHILD_CHECK_MSG(eventually([&] { return pub.counters().subscribers >= n; }, timeout, 1ms),
                      "subscribers connected: " + std::to_string(pub.counters().subscribers) +
                          ", expected " + std::to_string(n));
}

// The payload of sample `seq`: its number, then a pattern derived from it.
inline void fill(std::span<std::byte> out, std::uint64_t seq) {
  std::memcpy(out.data(), &seq, std::min(out.size(), sizeof seq));
  for (std::size_t i = sizeof seq; i < out.size(); ++i) {
    out[i] = static_cast<std::byte>((seq * 131 + i) & 0xff);
  }
}
inline bool check(std::span<const std::byte> in, std::uint64_t seq) {
  std::uint64_t got = 0;
  std::memcpy(&got, in.data(), std::min(in.size(), sizeof got));
  if (got != seq) return false;
  for (std::size_t i = sizeof seq; i < in.size(); ++i) {
    if (in[i] != static_cast<std::byte>((seq * 131 + i) & 0xff)) return false;
  }
  return true;
}
inline std::uint64_t seq_of(std::span<const std::byte> in) {
  std::uint64_t got = 0;
  std::memcpy(&got, in.data(), std::min(in.size(), sizeof got));
  return got;
}

// Publishes `count` samples numbered from `first` (in a child); fails the child if a loan does
// not come within `timeout`.
inline void publish_range(detail::PublisherBackend& pub, std::uint64_t first, std::uint64_t count,
                          std::size_t size = 64, Clock::duration timeout = 10s) {
  for (std::uint64_t s = first; s < first + count; ++s) {
    const engine::Loan loan = pub.loan(size, engine::WaitStrategy::yielding(), deadline_in(timeout));
    SYM_CHILD_CHECK_MSG(loan.ok(), std::string("loan of sample ") + std::to_string(s) + ": " +
                                       engine::to_string(loan.status));
    fill(loan.bytes(), s);
    pub.publish();
  }
}

// ---- RouDi, seen from outside ----------------------------------------------------------------

inline std::string lease_path(const char* file) { return roudi::lease_dir() + "/" + file; }

// The pids in the keeper's state file (0 if absent).
struct KeeperState {
  long keeper = 0;
  long roudi = 0;
};
inline KeeperState keeper_state() {
  KeeperState s;
  std::ifstream in(lease_path(roudi::kStateFile));
  std::string word;
  long pid = 0;
  while (in >> word >> pid) {
    if (word == "keeper") s.keeper = pid;
    if (word == "roudi") s.roudi = pid;
  }
  return s;
}

// True if nobody holds a lease (no host uses RouDi): we could take the lock exclusively.
inline bool lease_free() {
  const int fd = ::open(lease_path(roudi::kLeaseFile).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return true;
  const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);  // drops the lock
  return free;
}

inline bool keeper_alive() {
  const int fd = ::open(lease_path(roudi::kKeeperLockFile).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
  ::close(fd);
  return held;
}

// True if someone holds start.lock (with no host around: a keeper tearing RouDi down).
inline bool start_lock_held() {
  const int fd = ::open(lease_path(roudi::kStartLockFile).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
  ::close(fd);
  return held;
}

// Pids of processes whose command name is `comm` (e.g. "iox-roudi").
inline std::vector<long> processes_named(const std::string& comm) {
  std::vector<long> pids;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return pids;
  while (const dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    std::ifstream in("/proc/" + std::string(e->d_name) + "/comm");
    std::string name;
    if (std::getline(in, name) && name == comm) {
      // A zombie (exited, not reaped yet) is not running.
      std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
      std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      const auto paren = all.rfind(')');
      if (paren != std::string::npos && paren + 2 < all.size() && all[paren + 2] == 'Z') continue;
      pids.push_back(pid);
    }
  }
  ::closedir(dir);
  return pids;
}

inline bool file_exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// RouDi's shared memory: the management segment and the data segment named after our group.
inline std::vector<std::string> roudi_shm_paths() {
  std::vector<std::string> paths = {std::string("/dev/shm/") + roudi::kManagementShmName};
  if (const group* g = ::getgrgid(::getegid())) paths.push_back(std::string("/dev/shm/") + g->gr_name);
  return paths;
}

// Waits until no host uses RouDi and no keeper runs (a previous test's, or another suite's).
inline ::testing::AssertionResult wait_until_roudi_idle(Clock::duration timeout = 90s) {
  // No iox-roudi process either: one still dying holds iceoryx's machine-wide lock.
  if (eventually([] { return lease_free() && !keeper_alive() && processes_named("iox-roudi").empty(); },
                 timeout, 20ms)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "RouDi is still in use after the time-out (lease free: " << lease_free()
         << ", keeper alive: " << keeper_alive() << ", state: keeper " << keeper_state().keeper
         << " roudi " << keeper_state().roudi << ")";
}

// Everything of RouDi's is gone: no keeper, no iox-roudi process, no shared memory, no socket.
inline ::testing::AssertionResult roudi_gone(const KeeperState& seen) {
  std::ostringstream why;
  if (keeper_alive()) why << "a keeper still holds keeper.lock; ";
  if (seen.keeper != 0 && roudi::pid_alive(seen.keeper)) why << "keeper " << seen.keeper << " runs; ";
  if (seen.roudi != 0 && roudi::pid_alive(seen.roudi)) why << "RouDi " << seen.roudi << " runs; ";
  if (const auto p = processes_named("iox-roudi"); !p.empty()) {
    why << p.size() << " iox-roudi process(es), pid " << p.front() << "; ";
  }
  for (const std::string& path : roudi_shm_paths()) {
    if (file_exists(path)) why << path << " exists; ";
  }
  if (file_exists(roudi::kRoudiSocketPath)) why << roudi::kRoudiSocketPath << " exists; ";
  if (file_exists(lease_path(roudi::kStateFile))) why << "the state file exists; ";
  const std::string text = why.str();
  if (text.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text;
}

inline ::testing::AssertionResult eventually_roudi_gone(const KeeperState& seen,
                                                        Clock::duration timeout = 20s) {
  auto result = roudi_gone(seen);
  eventually([&] { return static_cast<bool>(result = roudi_gone(seen)); }, timeout, 20ms);
  return result;
}

// The end of the keepers' log (appended to by every keeper), for failure messages.
inline std::string keeper_log() {
  std::ifstream in(lease_path(roudi::kKeeperLogFile));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr std::size_t kTail = 3000;
  return "keeper log: ..." + (text.size() > kTail ? text.substr(text.size() - kTail) : text);
}

// Base fixture: waits until no earlier test's RouDi is in use.
class IceoryxTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(wait_until_roudi_idle()); }
};

}  // namespace symphony::test::ice
