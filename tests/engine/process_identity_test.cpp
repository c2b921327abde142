// Process liveness: (pid, start time) pairs, zombies, pid reuse, and the claim protocol for a
// ProcessIdentityRecord in shared memory.

#include <sys/prctl.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "symphony/engine/process_identity.hpp"
#include "test_scale.hpp"

namespace {

using namespace symphony::engine;
using symphony::test::ChildProcess;
using symphony::test::SharedArray;
using namespace std::chrono_literals;

// A pid that belonged to a process which has exited and been reaped.
pid_t dead_pid() {
  ChildProcess child([] { return 0; });
  const pid_t pid = child.pid();
  EXPECT_TRUE(child.wait(10s).ok());
  return pid;
}

TEST(ProcessIdentity, SelfIsThisProcess) {
  const ProcessIdentity self = self_identity();
  EXPECT_EQ(self.pid, ::getpid());
  EXPECT_NE(self.start_time, 0u);
  const auto start = process_start_time(::getpid());
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(*start, self.start_time);
  EXPECT_TRUE(is_alive(self));
}

TEST(ProcessIdentity, SelfIsReReadAfterFork) {
  const ProcessIdentity parent = self_identity();  // cache it in the parent first
  SharedArray<std::uint64_t> seen(2);
  ChildProcess child([&] {
    const ProcessIdentity self = self_identity();
    seen[0] = static_cast<std::uint64_t>(self.pid);
    seen[1] = self.start_time;
    return 0;
  });
  const pid_t child_pid = child.pid();
  ASSERT_TRUE(child.wait(10s).ok());
  EXPECT_EQ(seen[0], static_cast<std::uint64_t>(child_pid));
  EXPECT_NE(seen[0], static_cast<std::uint64_t>(parent.pid));
  EXPECT_NE(seen[1], 0u);
}

TEST(ProcessIdentity, NoSuchProcess) {
  EXPECT_FALSE(process_start_time(0).has_value());
  EXPECT_FALSE(process_start_time(-1).has_value());
  const pid_t gone = dead_pid();
  EXPECT_FALSE(process_start_time(gone).has_value());
  EXPECT_FALSE(is_alive(ProcessIdentity{gone, 0}));
  EXPECT_FALSE(is_alive(ProcessIdentity{0, 0}));
}

TEST(ProcessIdentity, ReusedPidIsDetectedByStartTime) {
  const ProcessIdentity self = self_identity();
  EXPECT_FALSE(is_alive(ProcessIdentity{self.pid, self.start_time + 1}));
  EXPECT_FALSE(is_alive(ProcessIdentity{self.pid, self.start_time - 1}));
  // A record whose start time is not written yet is judged by the pid alone.
  EXPECT_TRUE(is_alive(ProcessIdentity{self.pid, 0}));
}

TEST(ProcessIdentity, ZombieCountsAsDead) {
  SharedArray<std::uint64_t> start(1);
  ChildProcess child([&] {
    start[0] = self_identity().start_time;
    return 0;
  });
  const ProcessIdentity who{child.pid(), 0};
  // Without reaping it: wait until it has exited (its /proc state turns to Z).
  ASSERT_TRUE(symphony::test::eventually([&] { return !process_start_time(who.pid); }, 10s))
      << "an exited, unreaped child should count as dead";
  EXPECT_FALSE(is_alive(ProcessIdentity{who.pid, start[0]}));
  EXPECT_TRUE(child.wait(10s).ok());
}

TEST(ProcessIdentity, StartTimeOfAProcessWithParenthesesAndSpacesInItsName) {
  // /proc/<pid>/stat field 2 is "(comm)", and comm may contain ") (" and spaces.
  SharedArray<std::uint64_t> shared(2);
  ChildProcess child([&] {
    ::prctl(PR_SET_NAME, "a) b (c) 7 8", 0, 0, 0);
    shared[0] = self_identity().start_time;
    shared.at(1).store(1);
    // Stay alive until the parent has looked.
    for (int i = 0; i < 10000 && shared.at(1).load() != 2; ++i) ::usleep(1000);
    return 0;
  });
  ASSERT_TRUE(symphony::test::eventually([&] { return shared.at(1).load() == 1; }, 10s));
  const auto start = process_start_time(child.pid());
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(*start, shared[0]);
  EXPECT_TRUE(is_alive(ProcessIdentity{child.pid(), shared[0]}));
  shared.at(1).store(2);
  EXPECT_TRUE(child.wait(10s).ok());
}

TEST(ProcessIdentity, LoadIdentityReadsTheRecord) {
  symphony::layouts::ProcessIdentityRecord record{};
  record.pid = 1234;
  record.start_time = 5678;
  const ProcessIdentity who = load_identity(record);
  EXPECT_EQ(who.pid, 1234);
  EXPECT_EQ(who.start_time, 5678u);
}

TEST(ProcessIdentityClaim, FreeRecordIsClaimed) {
  symphony::layouts::ProcessIdentityRecord record{};
  EXPECT_EQ(claim_identity(record), ClaimOutcome::claimed);
  EXPECT_EQ(load_identity(record), self_identity());
  // Claiming again from the same process changes nothing.
  EXPECT_EQ(claim_identity(record), ClaimOutcome::held_by_live);
  EXPECT_EQ(load_identity(record), self_identity());
  release_identity(record);
  EXPECT_EQ(record.pid, 0u);
  EXPECT_EQ(record.start_time, 0u);
  EXPECT_EQ(claim_identity(record), ClaimOutcome::claimed);
}

TEST(ProcessIdentityClaim, DeadHolderIsTakenOver) {
  symphony::layouts::ProcessIdentityRecord record{};
  record.pid = static_cast<std::uint32_t>(dead_pid());
  record.start_time = 99;
  EXPECT_EQ(claim_identity(record), ClaimOutcome::took_over);
  EXPECT_EQ(load_identity(record), self_identity());
}

TEST(ProcessIdentityClaim, ReusedPidHolderIsTakenOver) {
  // The parent (our test runner) is alive, but with another start time it is another process.
  const pid_t parent = ::getppid();
  const auto parent_start = process_start_time(parent);
  ASSERT_TRUE(parent_start.has_value());
  symphony::layouts::ProcessIdentityRecord record{};
  record.pid = static_cast<std::uint32_t>(parent);
  record.start_time = *parent_start + 12345;
  EXPECT_EQ(claim_identity(record), ClaimOutcome::took_over);
  EXPECT_EQ(load_identity(record), self_identity());
}

TEST(ProcessIdentityClaim, LiveHolderIsNeverTakenOver) {
  const pid_t parent = ::getppid();
  const auto parent_start = process_start_time(parent);
  ASSERT_TRUE(parent_start.has_value());
  symphony::layouts::ProcessIdentityRecord record{};
  record.pid = static_cast<std::uint32_t>(parent);
  record.start_time = *parent_start;
  EXPECT_EQ(claim_identity(record), ClaimOutcome::held_by_live);
  EXPECT_EQ(record.pid, static_cast<std::uint32_t>(parent));
  EXPECT_EQ(record.start_time, *parent_start);
  // Half-claimed by a live process (start time not yet written): still held.
  record.start_time = 0;
  EXPECT_EQ(claim_identity(record), ClaimOutcome::held_by_live);
  EXPECT_EQ(record.pid, static_cast<std::uint32_t>(parent));
}

TEST(ProcessIdentityClaim, ReleaseByANonHolderDoesNothing) {
  const pid_t parent = ::getppid();
  symphony::layouts::ProcessIdentityRecord record{};
  record.pid = static_cast<std::uint32_t>(parent);
  record.start_time = 77;
  release_identity(record);
  EXPECT_EQ(record.pid, static_cast<std::uint32_t>(parent));
  EXPECT_EQ(record.start_time, 77u);
}

TEST(ProcessIdentityClaim, RacingClaimersOfADeadHolderHaveOneWinner) {
  constexpr int kClaimers = 6;
  constexpr int kRounds = 20;
  SharedArray<symphony::layouts::ProcessIdentityRecord> record(1);
  SharedArray<std::uint32_t> outcomes(kClaimers);
  SharedArray<std::uint32_t> go(1);
  SharedArray<std::uint32_t> claimed(1);
  for (int round = 0; round < kRounds; ++round) {
    record[0].pid = static_cast<std::uint32_t>(dead_pid());
    record[0].start_time = 1;
    go.at(0).store(0);
    claimed.at(0).store(0);
    std::vector<ChildProcess> children;
    std::vector<pid_t> pids;
    for (int i = 0; i < kClaimers; ++i) {
      children.emplace_back([&, i] {
        while (go.at(0).load() == 0) {
        }
        outcomes[static_cast<std::size_t>(i)] =
            static_cast<std::uint32_t>(claim_identity(record[0]));
        claimed.at(0).fetch_add(1);
        // Nobody exits before everyone has claimed: the winner must not be a dead holder yet.
        for (int n = 0; n < 100000 && claimed.at(0).load() != kClaimers; ++n) ::usleep(100);
        return 0;
      });
      pids.push_back(children.back().pid());
    }
    go.at(0).store(1);
    for (auto& child : children) ASSERT_TRUE(child.wait(30s).ok());
    ASSERT_EQ(claimed.at(0).load(), static_cast<std::uint32_t>(kClaimers));
    int winners = 0;
    std::string detail;
    for (int i = 0; i < kClaimers; ++i) {
      const auto outcome = static_cast<ClaimOutcome>(outcomes[static_cast<std::size_t>(i)]);
      if (outcome == ClaimOutcome::took_over || outcome == ClaimOutcome::claimed) ++winners;
      detail += " pid " + std::to_string(pids[static_cast<std::size_t>(i)]) + ": " +
                (outcome == ClaimOutcome::took_over ? "took_over"
                 : outcome == ClaimOutcome::claimed ? "claimed"
                                                    : "held_by_live") +
                ";";
    }
    EXPECT_EQ(winners, 1) << "round " << round << ":" << detail << " record holds pid "
                          << record[0].pid;
  }
}

}  // namespace
