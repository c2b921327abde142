// Routing on native topics: batched (delay bound, coalescing), prioritized (overtaking), and
// load-balanced groups (round-robin, least-loaded, across processes, a member killed).

#include <cstring>
#include <map>

#include "topic_test_support.hpp"

namespace symphony::test {
namespace {

using engine::Balance;
using engine::Priority;
using engine::PublisherOptions;
using engine::RingStatus;
using engine::Route;
using engine::SubscriberOptions;
using engine::TopicOptions;

using RoutingTest = TopicTest;

TEST_F(RoutingTest, BatchedLoneSampleArrivesWithinTheDelayBound) {
  Bus bus = open_bus();
  auto sub = bus.subscribe("batched", {});
  ASSERT_TRUE(sub);
  PublisherOptions batched;
  batched.route = Route::batched;  // default delay: 50 us
  auto pub = bus.advertise("batched", {}, {}, batched);
  ASSERT_TRUE(pub) << pub.error().message;
  for (std::uint64_t round = 0; round < 20; ++round) {
    const auto start = Clock::now();
    ASSERT_EQ(pub->try_publish(bytes_of(round)), RingStatus::ok);
    engine::Frame f = sub->take(engine::WaitStrategy::busy(), deadline_in(std::chrono::seconds(5)));
    const auto waited = Clock::now() - start;
    ASSERT_TRUE(f.ok()) << "round " << round << ": the lone sample never arrived";
    EXPECT_EQ(read_u64(f), round);
    sub->release();
    // 50 us plus scheduling: generous, since timings on this machine are noisy.
    EXPECT_LT(waited, std::chrono::milliseconds(20)) << "round " << round;
  }
  EXPECT_EQ(pub->counters().flushes, 20u);
}

TEST_F(RoutingTest, BatchedCoalescesPublishesIntoFewCommits) {
  Bus bus = open_bus();
  auto sub = bus.subscribe("coalesced", {});
  ASSERT_TRUE(sub);
  PublisherOptions batched;
  batched.route = Route::batched;
  batched.batch_size = 16;
  batched.batch_delay = std::chrono::milliseconds(200);
  auto pub = bus.advertise("coalesced", {}, {}, batched);
  ASSERT_TRUE(pub);
  for (std::uint64_t i = 0; i < 40; ++i) ASSERT_EQ(pub->try_publish(bytes_of(i)), RingStatus::ok);
  // Two full batches went out at once; the last 8 wait for the delay (or a flush).
  EXPECT_EQ(pub->counters().flushes, 2u);
  std::uint64_t seen = 0;
  while (sub->try_take().ok()) ++seen;
  EXPECT_EQ(seen, 32u);
  pub->flush();
  while (sub->try_take().ok()) ++seen;
  EXPECT_EQ(seen, 40u);
  EXPECT_EQ(pub->counters().published, 40u);
  EXPECT_EQ(pub->counters().flushes, 3u);
}

TEST_F(RoutingTest, HighPrioritySampleOvertakesAThousandQueuedOnes) {
  Bus bus = open_bus();
  TopicOptions topic;
  topic.capacity = 4096;
  SubscriberOptions deep;
  deep.depth = 2048;
  auto sub = bus.subscribe("prio", {}, topic, deep);
  ASSERT_TRUE(sub);
  auto pub = bus.advertise("prio", {}, topic);
  ASSERT_TRUE(pub);
  for (std::uint64_t i = 0; i < 1500; ++i) ASSERT_EQ(pub->try_publish(bytes_of(i)), RingStatus::ok);
  engine::Loan urgent = pub->try_loan(8, Priority::high);
  ASSERT_TRUE(urgent.ok()) << engine::to_string(urgent.status);
  const std::uint64_t marker = 999'999;
  std::memcpy(urgent.data, &marker, 8);
  pub->publish();
  engine::Frame first = sub->try_take();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(read_u64(first), marker) << "the priority sample comes before 1500 queued ones";
  for (std::uint64_t i = 0; i < 1500; ++i) {
    engine::Frame f = sub->try_take();
    ASSERT_TRUE(f.ok());
    ASSERT_EQ(read_u64(f), i);
  }
  sub->release();
  EXPECT_EQ(pub->counters().priority, 1u);
  EXPECT_EQ(pub->counters().published, 1501u);
  // No priority lane: refused, not silently sent as normal.
  TopicOptions plain;
  plain.priority_capacity = 0;
  auto no_lane = bus.advertise("plain", {}, plain);
  ASSERT_FALSE(no_lane);  // 0 is not a power of two: the option is checked
  EXPECT_EQ(no_lane.error().code, engine::Errc::invalid_argument);
}

TEST_F(RoutingTest, RoundRobinSplitsEvenlyAndOutsidersGetEverything) {
  Bus bus = open_bus();
  SubscriberOptions member;
  member.group = "workers";
  member.depth = 128;  // everything is published before anyone reads
  auto a = bus.subscribe("jobs", {}, {}, member);
  ASSERT_TRUE(a) << a.error().message;
  auto b = bus.subscribe("jobs", {}, {}, member);
  ASSERT_TRUE(b);
  SubscriberOptions outsider;
  outsider.depth = 128;
  auto observer = bus.subscribe("jobs", {}, {}, outsider);
  ASSERT_TRUE(observer);
  SubscriberOptions other_group;
  other_group.group = "auditors";
  auto refused = bus.subscribe("jobs", {}, {}, other_group);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, engine::Errc::qos_mismatch);

  auto pub = bus.advertise("jobs", {});
  ASSERT_TRUE(pub);
  for (std::uint64_t i = 0; i < 100; ++i) ASSERT_EQ(pub->try_publish(bytes_of(i)), RingStatus::ok);
  std::map<std::uint64_t, int> seen;
  int from_a = 0, from_b = 0, from_observer = 0;
  for (engine::Frame f = a->try_take(); f.ok(); f = a->try_take()) ++seen[read_u64(f)], ++from_a;
  for (engine::Frame f = b->try_take(); f.ok(); f = b->try_take()) ++seen[read_u64(f)], ++from_b;
  while (observer->try_take().ok()) ++from_observer;
  a->release();
  b->release();
  observer->release();
  EXPECT_EQ(from_a, 50);
  EXPECT_EQ(from_b, 50);
  EXPECT_EQ(from_observer, 100);
  EXPECT_EQ(seen.size(), 100u) << "each sample to exactly one member";
  EXPECT_EQ(pub->counters().routed, 100u);
  EXPECT_EQ(a->counters().delivered, 50u);
}

TEST_F(RoutingTest, LeastLoadedAvoidsTheMemberThatHoldsItsSamples) {
  Bus bus = open_bus();
  SubscriberOptions member;
  member.group = "workers";
  auto slow = bus.subscribe("work", {}, {}, member);
  ASSERT_TRUE(slow);
  auto fast = bus.subscribe("work", {}, {}, member);
  ASSERT_TRUE(fast);
  PublisherOptions least;
  least.balance = Balance::least_loaded;
  auto pub = bus.advertise("work", {}, {}, least);
  ASSERT_TRUE(pub);
  int to_slow = 0, to_fast = 0;
  for (std::uint64_t i = 0; i < 40; ++i) {
    ASSERT_EQ(pub->try_publish(bytes_of(i)), RingStatus::ok);
    // The fast member takes and releases at once; the slow one takes but never releases.
    if (engine::Frame f = fast->try_take(); f.ok()) {
      ++to_fast;
      fast->release();
    }
    if (slow->try_take().ok()) ++to_slow;
  }
  EXPECT_LE(to_slow, 1) << "the slow member holds its first sample and gets no more";
  EXPECT_GE(to_fast, 39);
}

TEST_F(RoutingTest, GroupOfProcessesAndAKilledMemberIsRoutedAround) {
  const std::uint64_t count = 6000;
  Bus bus = open_bus();
  // [0..1]: joined flags, [2..3]: samples taken, [4]: stop
  SharedArray<std::uint64_t> state(5);
  SubscriberOptions member;
  member.group = "workers";
  std::vector<ChildProcess> members;
  for (int m = 0; m < 2; ++m) {
    members.emplace_back([&, m] {
      Bus child_bus = open_bus();
      auto sub = child_bus.subscribe("shared-work", {}, {}, member);
      SYM_CHILD_CHECK(sub.has_value());
      state.at(static_cast<std::size_t>(m)).store(1);
      while (state.at(4).load() == 0) {
        engine::Frame f = sub->take(engine::WaitStrategy::sleeping(),
                                    deadline_in(std::chrono::milliseconds(20)));
        if (!f.ok()) continue;
        state.at(2 + static_cast<std::size_t>(m)).fetch_add(1);
        sub->release();
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return state.at(0).load() == 1 && state.at(1).load() == 1; },
                         std::chrono::seconds(10)));
  auto pub = bus.advertise("shared-work", {});
  ASSERT_TRUE(pub);
  const auto deadline = deadline_in(std::chrono::seconds(60));
  for (std::uint64_t i = 0; i < 1000; ++i) {
    ASSERT_TRUE(pub->loan(8, engine::WaitStrategy::sleeping(), deadline).ok());
    pub->publish();
  }
  ASSERT_TRUE(eventually([&] { return state.at(2).load() + state.at(3).load() == 1000; },
                         std::chrono::seconds(10)));
  EXPECT_EQ(state.at(2).load(), 500u);
  EXPECT_EQ(state.at(3).load(), 500u);
  members[0].kill9();
  // The publisher notices the dead member within 1024 routed samples and stops routing to it.
  for (std::uint64_t i = 0; i < count; ++i) {
    ASSERT_TRUE(pub->loan(8, engine::WaitStrategy::sleeping(), deadline).ok());
    pub->publish();
  }
  ASSERT_TRUE(eventually([&] { return state.at(3).load() >= 500 + count - 1024; },
                         std::chrono::seconds(10)))
      << "survivor took " << state.at(3).load();
  auto topics = bus.topics();
  ASSERT_TRUE(topics);
  ASSERT_EQ(topics->at(0).subscribers.size(), 1u);
  EXPECT_EQ(topics->at(0).subscribers[0].group, "workers");
  state.at(4).store(1);
  EXPECT_TRUE(members[1].wait(std::chrono::seconds(10)).ok()) << members[1].status();
}

}  // namespace
}  // namespace symphony::test
