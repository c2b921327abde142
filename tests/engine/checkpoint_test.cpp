// Checkpoints: commit/restore, the two-slot fallback, hostile contents, a dead host's checkpoint
// carried over, and a writer racing a reader (threads: TSan checks the protocol).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "checkpoint_support.hpp"

namespace symphony::engine {
namespace {

using test::ChildProcess;
using namespace checkpoint_test;

TEST_F(CheckpointTest, NothingCommittedRestoresNothing) {
  auto store = CheckpointStore::create(bus_, "explorer", 0, 4096);
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_FALSE(store->recovered());
  auto ckpt = Checkpoint::open(bus_, "explorer", 0);
  ASSERT_TRUE(ckpt) << ckpt.error().message;
  auto last = ckpt->restore();
  ASSERT_TRUE(last) << last.error().message;
  EXPECT_FALSE(*last);
}

TEST_F(CheckpointTest, CommitsAlternateSlotsAndTheLastOneIsRestored) {
  auto store = CheckpointStore::create(bus_, "explorer", 0, 100);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->capacity(), 128u) << "rounded up to a cache line";
  auto ckpt = Checkpoint::open(bus_, "explorer", 0);
  ASSERT_TRUE(ckpt);
  for (std::uint64_t version = 1; version <= 5; ++version) {
    const auto state = bytes_of("state " + std::to_string(version));
    auto generation = ckpt->commit(state);
    ASSERT_TRUE(generation) << generation.error().message;
    EXPECT_EQ(*generation, version);
    auto last = ckpt->restore();
    ASSERT_TRUE(last && *last);
    EXPECT_EQ((*last)->bytes, state);
    EXPECT_EQ((*last)->generation, version);
    EXPECT_FALSE((*last)->fell_back);
    auto seen_by_host = store->latest();
    ASSERT_TRUE(seen_by_host && *seen_by_host);
    EXPECT_EQ((*seen_by_host)->bytes, state);
  }
  ASSERT_TRUE(ckpt->commit({}));  // an empty state is a state
  EXPECT_TRUE((*ckpt->restore())->bytes.empty());
}

TEST_F(CheckpointTest, OversizeIsRefusedAndTheLastCheckpointStays) {
  auto store = CheckpointStore::create(bus_, "explorer", 0, 64);
  ASSERT_TRUE(store);
  auto ckpt = Checkpoint::open(bus_, "explorer", 0);
  ASSERT_TRUE(ckpt);
  ASSERT_TRUE(ckpt->commit(bytes_of("kept")));
  const std::vector<std::byte> big(65, std::byte{1});
  auto refused = ckpt->commit(big);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("exceeds the capacity of 64"), std::string::npos);
  EXPECT_EQ((*ckpt->restore())->bytes, bytes_of("kept"));
}

// A hot update hands the predecessor's last checkpoint to its successor's store as it was.
TEST_F(CheckpointTest, CarryOverCopiesAnotherStoresCheckpointWithItsGeneration) {
  auto old_store = CheckpointStore::create(bus_, "explorer", 0, 64);
  auto new_store = CheckpointStore::create(bus_, "explorer", 1, 64);
  auto small_store = CheckpointStore::create(bus_, "explorer", 2, 4);
  ASSERT_TRUE(old_store && new_store && small_store);
  auto old_ckpt = Checkpoint::open(bus_, "explorer", 0);
  ASSERT_TRUE(old_ckpt);
  ASSERT_TRUE(old_ckpt->commit(bytes_of("first")));
  ASSERT_TRUE(old_ckpt->commit(bytes_of("second")));
  auto last = old_store->latest();
  ASSERT_TRUE(last && *last);
  ASSERT_TRUE(new_store->carry_over(**last));
  auto new_ckpt = Checkpoint::open(bus_, "explorer", 1);
  ASSERT_TRUE(new_ckpt);
  auto restored = new_ckpt->restore();
  ASSERT_TRUE(restored && *restored);
  EXPECT_EQ((*restored)->bytes, bytes_of("second"));
  EXPECT_EQ((*restored)->generation, 2u);
  EXPECT_EQ((*restored)->written_at, (*last)->written_at);
  // The successor's next commit follows on from the carried generation.
  EXPECT_EQ(new_ckpt->commit(bytes_of("third")).value_or(0), 3u);
  CheckpointData big = **last;
  big.bytes.assign(100, std::byte{7});  // the small store holds 64 (its capacity, rounded up)
  auto refused = small_store->carry_over(big);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("exceeds the capacity of"), std::string::npos);
}

TEST_F(CheckpointTest, BadNamesAndCapacitiesAreRefused) {
  EXPECT_EQ(CheckpointStore::create(bus_, "no/slash", 0, 64).error().code, Errc::invalid_argument);
  EXPECT_EQ(CheckpointStore::create(bus_, "", 0, 64).error().code, Errc::invalid_argument);
  EXPECT_EQ(CheckpointStore::create(bus_, "x", -1, 64).error().code, Errc::invalid_argument);
  EXPECT_EQ(CheckpointStore::create(bus_, "x", 0, 0).error().code, Errc::invalid_argument);
  EXPECT_EQ(CheckpointStore::create("bad bus", "x", 0, 64).error().code, Errc::invalid_argument);
  auto missing = Checkpoint::open(bus_, "nobody", 0);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::not_found);
}

// Whatever another process wrote into the segment, the reader copies, checks, and either gets
// an intact checkpoint (possibly the one before) or a clear error — never a crash or torn bytes.
TEST_F(CheckpointTest, ScribbledSlotsFallBackOrFailClearly) {
  auto store = CheckpointStore::create(bus_, "explorer", 0, 256);
  ASSERT_TRUE(store);
  auto ckpt = Checkpoint::open(bus_, "explorer", 0);
  ASSERT_TRUE(ckpt);
  ASSERT_TRUE(ckpt->commit(bytes_of("first")));
  ASSERT_TRUE(ckpt->commit(bytes_of("second")));  // generation 2: slot 0
  RawView raw(store->name());

  raw.slot_data(2)[0] = std::byte{'X'};  // the committed slot's data no longer matches its sum
  auto fallback = ckpt->restore();
  ASSERT_TRUE(fallback && *fallback) << (fallback ? "" : fallback.error().message);
  EXPECT_TRUE((*fallback)->fell_back);
  EXPECT_EQ((*fallback)->bytes, bytes_of("first"));
  EXPECT_EQ((*fallback)->generation, 1u);

  raw.slot_header(1)->length = ~std::uint64_t{0};  // and the other one claims 2^64 bytes
  auto neither = ckpt->restore();
  ASSERT_FALSE(neither);
  EXPECT_EQ(neither.error().code, Errc::invalid_layout);
  EXPECT_NE(neither.error().message.find("neither slot"), std::string::npos);

  ASSERT_TRUE(ckpt->commit(bytes_of("third")));  // a commit repairs it
  EXPECT_EQ((*ckpt->restore())->bytes, bytes_of("third"));

  raw.header()->committed = 1'000'000;  // a generation neither slot holds
  EXPECT_FALSE(ckpt->restore());
  raw.header()->slot_capacity = 12345;  // geometry that does not fit the segment
  auto reopened = Checkpoint::open(bus_, "explorer", 0);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error().code, Errc::invalid_layout);
  EXPECT_NE(reopened.error().message.find("slot_capacity"), std::string::npos);
}

// A host killed with -9 leaves its segment; the next host's store carries the last checkpoint
// into a fresh segment, and the next instance restores it.
TEST_F(CheckpointTest, ANewHostCarriesADeadHostsCheckpointOver) {
  const std::string bus = bus_;
  ChildProcess dead_host([bus] {
    auto store = CheckpointStore::create(bus, "explorer", 2, 1000);
    SYM_CHILD_CHECK(store.has_value());
    auto ckpt = Checkpoint::open(bus, "explorer", 2);
    SYM_CHILD_CHECK(ckpt.has_value());
    SYM_CHILD_CHECK(ckpt->commit(bytes_of("before the crash 1")).has_value());
    SYM_CHILD_CHECK(ckpt->commit(bytes_of("before the crash 2")).has_value());
    ::_exit(0);  // no destructors: the store's segment stays behind, its owner dead
  });
  ASSERT_TRUE(dead_host.wait(10s).ok());

  auto store = CheckpointStore::create(bus_, "explorer", 2, 16);
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE(store->recovered());
  EXPECT_EQ(store->recovered()->bytes, bytes_of("before the crash 2"));
  EXPECT_EQ(store->recovered()->generation, 2u);
  EXPECT_GE(store->capacity(), 18u) << "grown to fit what it carried over";
  auto ckpt = Checkpoint::open(bus_, "explorer", 2);
  ASSERT_TRUE(ckpt);
  EXPECT_EQ((*ckpt->restore())->bytes, bytes_of("before the crash 2"));
  EXPECT_EQ(*ckpt->commit(bytes_of("after")), 3u);
}

TEST_F(CheckpointTest, ALiveHostsStoreIsNeverReplacedAndACleanStopRemovesIt) {
  std::string name;
  {
    auto first = CheckpointStore::create(bus_, "explorer", 0, 64);
    ASSERT_TRUE(first);
    name = first->name();
    auto second = CheckpointStore::create(bus_, "explorer", 0, 64);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, Errc::owner_alive);
    EXPECT_TRUE(test::shm_exists(name));
  }
  EXPECT_FALSE(test::shm_exists(name));
}

// One thread commits versions whose every word is the version; another restores all along.
TEST_F(CheckpointTest, ARestoreRacingCommitsAlwaysGetsOneWholeCommit) {
  auto store = CheckpointStore::create(bus_, "explorer", 0, 64 * 1024);
  ASSERT_TRUE(store);
  auto writer = Checkpoint::open(bus_, "explorer", 0);
  auto reader = Checkpoint::open(bus_, "explorer", 0);
  ASSERT_TRUE(writer && reader);
  const std::uint64_t commits = std::max<std::uint64_t>(200, test::scaled(2000));
  std::atomic<bool> done{false};
  std::thread writing([&] {
    for (std::uint64_t version = 1; version <= commits; ++version) {
      const auto state = versioned_state(version, 1024 + (version * 37) % (60 * 1024));
      if (!writer->commit(state)) break;
    }
    done.store(true);
  });
  std::uint64_t restores = 0;
  std::uint64_t last_version = 0;
  while (!done.load()) {
    auto last = reader->restore();
    ASSERT_TRUE(last) << last.error().message;
    if (!*last) continue;
    const auto version = version_of((*last)->bytes);
    ASSERT_TRUE(version) << "a torn checkpoint at generation " << (*last)->generation;
    EXPECT_EQ(*version, (*last)->generation);
    EXPECT_GE(*version, last_version) << "restores never go back in time";
    last_version = *version;
    ++restores;
  }
  writing.join();
  EXPECT_GT(restores, 0u);
  EXPECT_EQ(version_of((*reader->restore())->bytes), commits);
}

}  // namespace
}  // namespace symphony::engine
