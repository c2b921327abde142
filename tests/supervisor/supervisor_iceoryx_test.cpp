// Extensions with iceoryx topics under the supervisor: the host brings RouDi up in its own process
// tree before it spawns them, so an extension's death (its process group and cgroup killed)
// never takes RouDi down with it, and the restarted instance finds the same RouDi.

#include <dirent.h>

#include <fstream>

#include "supervisor_fixture.hpp"

namespace symphony::test {
namespace {

// The pids of every running iox-roudi.
std::vector<pid_t> roudi_pids() {
  std::vector<pid_t> pids;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  while (const dirent* entry = ::readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(entry->d_name));
    if (pid <= 0) continue;
    std::ifstream comm("/proc/" + std::string(entry->d_name) + "/comm");
    std::string name;
    if (std::getline(comm, name) && name == "iox-roudi") pids.push_back(pid);
  }
  ::closedir(proc);
  return pids;
}

using SupervisorIceoryxTest = SupervisorFixture;

TEST_F(SupervisorIceoryxTest, AnIceoryxExtensionsDeathLeavesRouDiRunning) {
  start();
  auto m = manifest("ice", {"--iceoryx-topic", "test/ice"});
  supervisor::TopicDeclaration topic;
  topic.name = "test/ice";
  topic.transport = engine::TopicTransport::iceoryx;
  m.subscribes.push_back(topic);
  add(m);  // takes the host's RouDi lease first
  ASSERT_GE(healthy("ice"), 0);
  const auto before = roudi_pids();
  ASSERT_EQ(before.size(), 1u) << "one RouDi, started for the host";
  for (int round = 0; round < 3; ++round) {
    const pid_t pid = figures("ice").pid;
    ASSERT_GT(pid, 0);
    const std::size_t mark = events_.size();
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    const long crashed = events_.wait_state("ice", LifecycleState::crashed, 10s, mark);
    ASSERT_GE(crashed, 0);
    ASSERT_GE(healthy("ice", static_cast<std::size_t>(crashed)), 0) << "round " << round;
    EXPECT_EQ(roudi_pids(), before) << "RouDi died with the extension (round " << round << ")";
  }
}

}  // namespace
}  // namespace symphony::test
