// In-process twins of the multiprocess handoff tests, for ThreadSanitizer: receiver threads open,
// verify and release while the owner seals and retires, over the same socket and the same
// sym-handoff thread as across processes.

#include <thread>

#include "handoff_test_support.hpp"

namespace symphony::test {
namespace {

using cp::HandoffDescriptor;

using HandoffThreadsTest = HandoffTest;

TEST_F(HandoffThreadsTest, ReceiversOpenAndReleaseWhileTheOwnerSealsAndRetires) {
  auto owner = make_owner();
  auto shared_receiver = make_receiver();  // threads 0 and 1 share it (one connection)
  auto own_receiver = make_receiver();     // thread 2 has its own
  const int payloads = static_cast<int>(std::max<std::uint64_t>(25, scaled(500)));
  std::mutex mutex;
  std::vector<HandoffDescriptor> current;  // sealed and not yet retired
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> opened{0}, refused_as_retired{0}, failures{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      cp::HandoffReceiver& receiver = t == 2 ? own_receiver : shared_receiver;
      std::uint64_t round = static_cast<std::uint64_t>(t);
      while (!done.load()) {
        HandoffDescriptor d;
        {
          const std::lock_guard lock(mutex);
          if (current.empty()) continue;
          d = current[round++ % current.size()];
        }
        auto mapped = receiver.open(d);
        if (mapped) {
          if (check_pattern(mapped->bytes(), d.length)) failures.fetch_add(1);
          opened.fetch_add(1);
        } else if (mapped.error().code == engine::Errc::not_found &&
                   mapped.error().message.find("retired") != std::string::npos) {
          refused_as_retired.fetch_add(1);  // retired between our copy and our fetch
        } else {
          ADD_FAILURE() << mapped.error().message;
          failures.fetch_add(1);
        }
      }
    });
  }
  std::vector<HandoffDescriptor> all;
  for (int i = 0; i < payloads; ++i) {
    const std::uint64_t size = 4096 * (1 + static_cast<std::uint64_t>(i % 4));
    const HandoffDescriptor d = publish(owner, size, size);  // seeded by its size
    all.push_back(d);
    const std::lock_guard lock(mutex);
    current.push_back(d);
    if (current.size() > 4) {
      ASSERT_TRUE(owner.retire(current.front().id));
      current.erase(current.begin());
    }
  }
  // Let the readers run against the last ones for a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  done.store(true);
  for (auto& thread : threads) thread.join();
  for (const auto& d : current) ASSERT_TRUE(owner.retire(d.id));

  EXPECT_EQ(failures.load(), 0u);
  EXPECT_GT(opened.load(), 0u);
  ASSERT_TRUE(eventually([&] { return owner.counters().live == 0; }, std::chrono::seconds(10)))
      << owner.counters().live << " still live";
  const auto c = owner.counters();
  EXPECT_EQ(c.sealed, all.size());
  EXPECT_EQ(c.fetched, opened.load());
  EXPECT_EQ(c.fetched, c.released);
  EXPECT_EQ(c.reclaimed, c.sealed);
  EXPECT_EQ(c.not_found, refused_as_retired.load());
}

TEST_F(HandoffThreadsTest, ThreadsOnOneReceiverCountersAddUp) {
  auto owner = make_owner();
  auto receiver = make_receiver();
  const HandoffDescriptor d = publish(owner, 1 << 16, 6);
  const int rounds = static_cast<int>(std::max<std::uint64_t>(50, scaled(2000)));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<cp::MappedPayload> held;
      for (int i = 0; i < rounds; ++i) {
        auto mapped = receiver.open(d, {.verify = i % 16 == 0 ? cp::Verify::required : cp::Verify::skip,
                                       .timeout = std::chrono::seconds(5)});
        if (!mapped || check_pattern(mapped->bytes().first(256), 6)) {
          failures.fetch_add(1);
          continue;
        }
        held.push_back(std::move(*mapped));
        if (held.size() > 8) held.erase(held.begin());  // released out of order too
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  const auto total = static_cast<std::uint64_t>(4 * rounds);
  ASSERT_TRUE(eventually([&] { return owner.counters().released == total; }, std::chrono::seconds(10)));
  EXPECT_EQ(owner.counters().fetched, total);
  EXPECT_EQ(receiver.counters().opened, total);
  EXPECT_EQ(receiver.counters().released, total);
  ASSERT_TRUE(owner.retire(d.id));
  EXPECT_EQ(owner.counters().reclaimed, 1u);
}

TEST_F(HandoffThreadsTest, OwnerDestroyedWhileThreadsHoldMappings) {
  std::optional<cp::HandoffOwner> owner(make_owner());
  auto receiver = make_receiver();
  const HandoffDescriptor d = publish(*owner, 1 << 18, 8);
  std::atomic<int> holding{0};
  std::atomic<bool> owner_gone{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      auto mapped = receiver.open(d);
      if (!mapped) {
        failures.fetch_add(1);
        holding.fetch_add(1);
        return;
      }
      holding.fetch_add(1);
      while (!owner_gone.load()) std::this_thread::yield();
      if (check_pattern(mapped->bytes(), 8)) failures.fetch_add(1);
      auto again = receiver.open(d);
      if (again || again.error().code != engine::Errc::unavailable) failures.fetch_add(1);
      mapped->release();
    });
  }
  ASSERT_TRUE(eventually([&] { return holding.load() == 3; }, std::chrono::seconds(10)));
  owner.reset();
  owner_gone.store(true);
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace symphony::test
