// A writer killed with -9 in the middle of a commit leaves the previous checkpoint intact: the
// next instance restores a whole commit, never a torn one, and never needs the fallback.

#include <gtest/gtest.h>
#include <signal.h>

#include <random>
#include <thread>

#include "checkpoint_support.hpp"

namespace symphony::engine {
namespace {

using test::ChildProcess;
using test::SharedArray;
using namespace checkpoint_test;

TEST_F(CheckpointTest, KillNineDuringACommitLeavesThePreviousCheckpoint) {
  auto store = CheckpointStore::create(bus_, "chaos", 0, 1 << 20);
  ASSERT_TRUE(store);
  std::mt19937 random(12345);
  const std::uint64_t kills = test::scaled(20);
  std::uint64_t highest = 0;
  for (std::uint64_t round = 0; round < kills; ++round) {
    SharedArray<std::uint64_t> committed(1);  // what the writer last saw commit() return
    const std::string bus = bus_;
    const std::uint64_t start = highest;
    ChildProcess writer([bus, start, &committed] {
      auto ckpt = Checkpoint::open(bus, "chaos", 0);
      SYM_CHILD_CHECK_MSG(ckpt.has_value(), ckpt.error().message);
      // Large states, so that most kills land inside a copy.
      for (std::uint64_t version = start + 1;; ++version) {
        auto generation = ckpt->commit(versioned_state(version, 768 * 1024));
        SYM_CHILD_CHECK(generation.has_value() && *generation == version);
        committed.at(0).store(version);
      }
    });
    ASSERT_TRUE(test::eventually([&] { return committed.at(0).load() > start; }, 10s));
    std::this_thread::sleep_for(std::chrono::microseconds(random() % 3000));
    writer.kill9();

    auto next_instance = Checkpoint::open(bus_, "chaos", 0);
    ASSERT_TRUE(next_instance);
    auto last = next_instance->restore();
    ASSERT_TRUE(last) << "round " << round << ": " << last.error().message;
    ASSERT_TRUE(*last);
    EXPECT_FALSE((*last)->fell_back) << "the committed slot is never the one being written";
    const auto version = version_of((*last)->bytes);
    ASSERT_TRUE(version) << "round " << round << ": torn checkpoint";
    EXPECT_EQ(*version, (*last)->generation);
    // The commit the writer last saw finished, or the one right after it (killed between the
    // commit's store and the writer's own note of it).
    const std::uint64_t seen = committed.at(0).load();
    EXPECT_TRUE(*version == seen || *version == seen + 1)
        << "restored " << *version << ", the writer last committed " << seen;
    highest = *version;
  }
}

}  // namespace
}  // namespace symphony::engine
