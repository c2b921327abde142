// kill -9 and immediate restart of the same extension, 200 times in a row (scaled down under
// sanitizers): every kill is CRASHED then HEALTHY again, and nothing leaks: fds, child
// processes, cgroup directories, /dev/shm entries are counted before and after.

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <vector>

#include "supervisor_fixture.hpp"

namespace symphony::test {
namespace {

// Entries of `dir` (only those whose name contains `containing`, when given).
int count_entries(const std::string& dir, bool directories_only = false,
                  const std::string& containing = "") {
  int n = 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -1;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (directories_only && e->d_type != DT_DIR) continue;
    if (!containing.empty() && std::string(e->d_name).find(containing) == std::string::npos) {
      continue;
    }
    ++n;
  }
  ::closedir(d);
  return n;
}

// Processes whose parent is this one.
int count_children() {
  int n = 0;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return -1;
  const std::string self = std::to_string(::getpid());
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream stat(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    long ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %ld", &state, &ppid) == 2 &&
        std::to_string(ppid) == self) {
      ++n;
    }
  }
  ::closedir(d);
  return n;
}

struct Counts {
  int fds = 0;
  int children = 0;
  int shm = 0;
  int memory_groups = 0;
  int cpu_groups = 0;
};

using SupervisorStress = SupervisorFixture;

TEST_F(SupervisorStress, KillNineAndImmediateRestartTwoHundredTimesLeaksNothing) {
  const int kills = static_cast<int>(scaled(200));
  start();
  const auto limits = supervisor_->limits();
  const auto count = [&] {
    Counts c;
    c.fds = count_entries("/proc/self/fd");
    c.children = count_children();
    // Only this bus's: other processes on the machine come and go with theirs.
    c.shm = count_entries("/dev/shm", false, bus_);
    if (!limits.memory_group.empty()) c.memory_groups = count_entries(limits.memory_group, true);
    if (!limits.cpu_group.empty()) c.cpu_groups = count_entries(limits.cpu_group, true);
    return c;
  };
  add(manifest("phoenix"));
  ASSERT_GE(healthy("phoenix"), 0);
  const Counts before = count();
  EXPECT_EQ(before.children, 1);

  std::vector<double> detect_ms;
  std::vector<double> recover_ms;
  for (int i = 0; i < kills; ++i) {
    const auto f = figures("phoenix");
    ASSERT_EQ(f.state, LifecycleState::healthy) << "kill " << i;
    const std::size_t mark = events_.size();
    const auto killed_at = std::chrono::steady_clock::now();
    ASSERT_EQ(::kill(f.pid, SIGKILL), 0);
    const long crashed = events_.wait_state("phoenix", LifecycleState::crashed, 10s, mark);
    ASSERT_GE(crashed, 0) << "kill " << i;
    ASSERT_NE(events_.at(crashed).reason.find("killed by signal 9"), std::string::npos);
    const long back = events_.wait_state("phoenix", LifecycleState::healthy, 30s, mark);
    ASSERT_GE(back, 0) << "kill " << i;
    detect_ms.push_back(std::chrono::duration<double, std::milli>(events_.at(crashed).at - killed_at).count());
    recover_ms.push_back(std::chrono::duration<double, std::milli>(events_.at(back).at - killed_at).count());
  }
  EXPECT_EQ(figures("phoenix").restarts, static_cast<std::uint64_t>(kills));
  EXPECT_EQ(events_.count("phoenix", LifecycleState::failed), 0);

  // Counted after the last restart is HEALTHY: the same as before the first kill.
  const Counts after = count();
  EXPECT_EQ(after.fds, before.fds) << "file descriptors";
  EXPECT_EQ(after.children, before.children) << "child processes";
  EXPECT_EQ(after.shm, before.shm) << "/dev/shm entries of the bus";
  EXPECT_EQ(after.memory_groups, before.memory_groups) << "memory cgroups";
  EXPECT_EQ(after.cpu_groups, before.cpu_groups) << "cpu cgroups";

  std::sort(detect_ms.begin(), detect_ms.end());
  std::sort(recover_ms.begin(), recover_ms.end());
  const auto pct = [](const std::vector<double>& v, double p) {
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
  };
  std::printf("%d kills: kill -> CRASHED p50 %.2f ms p99 %.2f ms; kill -> HEALTHY p50 %.1f ms "
              "p99 %.1f ms max %.1f ms\n",
              kills, pct(detect_ms, 0.5), pct(detect_ms, 0.99), pct(recover_ms, 0.5),
              pct(recover_ms, 0.99), recover_ms.back());

  // And the supervisor going away leaves nothing either.
  supervisor_.reset();
  EXPECT_EQ(count_children(), 0);
  EXPECT_FALSE(limits.memory_group.empty() || std::filesystem::exists(limits.memory_group));
}

}  // namespace
}  // namespace symphony::test
