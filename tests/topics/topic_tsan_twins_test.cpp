// In-process twins of the cross-process topic tests, for ThreadSanitizer: the publisher and the
// subscribers are threads, each with its own Bus and its own mapping of the topic segment.

#include <thread>
#include <vector>

#include "topic_test_support.hpp"

namespace symphony::test {
namespace {

using engine::Overflow;
using engine::RingStatus;

using TopicTsanTwinTest = TopicTest;

TEST_F(TopicTsanTwinTest, BroadcastToBlockAndDiscardSubscriberThreads) {
  const std::uint64_t count = scaled(200'000);
  engine::TopicOptions topic;
  topic.capacity = 256;
  Bus publisher_bus = open_bus();
  Bus block_bus = open_bus();
  Bus lossy_bus = open_bus();
  engine::SubscriberOptions block;
  block.depth = 32;
  engine::SubscriberOptions lossy;
  lossy.depth = 16;
  lossy.overflow = Overflow::discard_oldest;
  auto block_sub = block_bus.subscribe("twin", {}, topic, block);
  ASSERT_TRUE(block_sub);
  auto lossy_sub = lossy_bus.subscribe("twin", {}, topic, lossy);
  ASSERT_TRUE(lossy_sub);
  auto pub = publisher_bus.advertise("twin", {}, topic);
  ASSERT_TRUE(pub);
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> block_errors{0}, lossy_errors{0}, lossy_seen{0};

  std::thread block_reader([&] {
    const auto deadline = deadline_in(std::chrono::seconds(120));
    for (std::uint64_t i = 0; i < count; ++i) {
      engine::Frame f = block_sub->take(engine::WaitStrategy::sleeping(), deadline);
      if (!f.ok() || read_u64(f) != i) {
        block_errors.fetch_add(1);
        return;
      }
      if ((i & 7) == 7) block_sub->release();
    }
    block_sub->release();
  });
  std::thread lossy_reader([&] {
    std::uint64_t last = 0;
    bool first = true;
    for (;;) {
      const bool finished = done.load(std::memory_order_acquire);
      engine::Frame f = lossy_sub->try_take();
      if (f.status == RingStatus::corrupt) {
        lossy_errors.fetch_add(1);
        return;
      }
      if (!f.ok()) {
        if (finished) break;  // everything was published before `done`: nothing more comes
        continue;
      }
      const std::uint64_t value = read_u64(f);
      if (!first && value <= last) lossy_errors.fetch_add(1);
      first = false;
      last = value;
      lossy_seen.fetch_add(1);
      lossy_sub->release();
    }
    lossy_sub->release();
  });
  const auto deadline = deadline_in(std::chrono::seconds(120));
  for (std::uint64_t i = 0; i < count; ++i) {
    engine::Loan loan = pub->loan(8, engine::WaitStrategy::sleeping(), deadline);
    ASSERT_TRUE(loan.ok()) << engine::to_string(loan.status);
    std::memcpy(loan.data, &i, 8);
    pub->publish();
  }
  block_reader.join();
  done.store(true, std::memory_order_release);
  lossy_reader.join();
  EXPECT_EQ(block_errors.load(), 0u);
  EXPECT_EQ(lossy_errors.load(), 0u);
  const auto counters = lossy_sub->counters();
  EXPECT_EQ(counters.delivered, lossy_seen.load());
  EXPECT_EQ(counters.delivered + counters.dropped, count) << "every sample seen or counted";
  EXPECT_GT(lossy_seen.load(), 0u);
}

}  // namespace
}  // namespace symphony::test

namespace symphony::test {
namespace {

// The flusher thread commits while the publisher thread loans and publishes.
TEST_F(TopicTsanTwinTest, BatchedPublisherAndFlusherThread) {
  const std::uint64_t count = scaled(100'000);
  Bus bus = open_bus();
  engine::SubscriberOptions deep;
  deep.depth = 256;
  auto sub = bus.subscribe("batched-twin", {}, {}, deep);
  ASSERT_TRUE(sub);
  engine::PublisherOptions batched;
  batched.route = engine::Route::batched;
  batched.batch_size = 32;
  batched.batch_delay = std::chrono::microseconds(20);
  auto pub = bus.advertise("batched-twin", {}, {}, batched);
  ASSERT_TRUE(pub);
  std::atomic<std::uint64_t> errors{0};
  std::thread reader([&] {
    const auto deadline = deadline_in(std::chrono::seconds(120));
    for (std::uint64_t i = 0; i < count; ++i) {
      engine::Frame f = sub->take(engine::WaitStrategy::sleeping(), deadline);
      if (!f.ok() || read_u64(f) != i) {
        errors.fetch_add(1);
        return;
      }
      sub->release();
    }
  });
  const auto deadline = deadline_in(std::chrono::seconds(120));
  for (std::uint64_t i = 0; i < count; ++i) {
    engine::Loan loan = pub->loan(8, engine::WaitStrategy::sleeping(), deadline);
    ASSERT_TRUE(loan.ok());
    std::memcpy(loan.data, &i, 8);
    pub->publish();
    // Now and then a pause longer than the delay, so that the flusher commits.
    if ((i & 1023) == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  reader.join();
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_LT(pub->counters().flushes, count);
}

}  // namespace
}  // namespace symphony::test
