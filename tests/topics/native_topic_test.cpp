// Native topics through symphony::Bus: in one process (API, errors, QoS, counters, discovery)
// and across processes (delivery, broadcast, kill -9, notify fd).

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "payload.hpp"
#include "topic_test_support.hpp"

namespace symphony::test {
namespace {

using engine::Errc;
using engine::Overflow;
using engine::RingStatus;
using engine::SubscriberOptions;
using engine::TopicOptions;
using engine::TopicType;

const TopicType kBytes{};

struct Sample {
  std::uint64_t sequence;
  double value;
};

constexpr auto kWait = std::chrono::seconds(10);

using NativeTopicTest = TopicTest;

TEST_F(NativeTopicTest, PublishesAndTakesInPlaceInOrder) {
  Bus bus = open_bus();
  auto sub = bus.subscribe("cam/frames", kBytes);
  ASSERT_TRUE(sub) << sub.error().message;
  auto pub = bus.advertise("cam/frames", kBytes);
  ASSERT_TRUE(pub) << pub.error().message;
  for (std::uint64_t i = 1; i <= 10; ++i) {
    engine::Loan loan = pub->try_loan(sizeof i);
    ASSERT_TRUE(loan.ok()) << engine::to_string(loan.status);
    std::memcpy(loan.data, &i, sizeof i);
    pub->publish();
  }
  for (std::uint64_t i = 1; i <= 10; ++i) {
    engine::Frame frame = sub->try_take();
    ASSERT_TRUE(frame.ok()) << engine::to_string(frame.status);
    EXPECT_EQ(frame.size, sizeof i);
    EXPECT_EQ(read_u64(frame), i);
  }
  EXPECT_EQ(sub->try_take().status, RingStatus::empty);
  sub->release();
  EXPECT_EQ(pub->counters().published, 10u);
  EXPECT_EQ(pub->counters().subscribers, 1u);
  EXPECT_EQ(sub->counters().delivered, 10u);
  EXPECT_EQ(sub->counters().dropped, 0u);
}

TEST_F(NativeTopicTest, TypedSamplesAreExactlyOneT) {
  Bus bus = open_bus();
  auto pub = bus.advertise<Sample>("sensor", "test.Sample");
  ASSERT_TRUE(pub) << pub.error().message;
  auto sub = bus.subscribe<Sample>("sensor", "test.Sample");
  ASSERT_TRUE(sub) << sub.error().message;
  Sample* s = pub->try_loan();
  ASSERT_NE(s, nullptr);
  *s = Sample{7, 2.5};
  pub->publish();
  ASSERT_EQ(pub->try_publish(Sample{8, 3.5}), RingStatus::ok);
  const Sample* got = sub->try_take();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->sequence, 7u);
  got = sub->try_take();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->value, 3.5);
  // A raw loan of another size on a typed topic is refused.
  EXPECT_EQ(pub->raw().try_loan(3).status, RingStatus::oversize);
}

TEST_F(NativeTopicTest, MismatchedTypeOrQosOrBadNamesAreClearErrors) {
  Bus bus = open_bus();
  auto pub = bus.advertise<Sample>("typed", "test.Sample");
  ASSERT_TRUE(pub);
  auto wrong_type = bus.subscribe<std::uint32_t>("typed", "test.Other");
  ASSERT_FALSE(wrong_type);
  EXPECT_EQ(wrong_type.error().code, Errc::type_mismatch);
  EXPECT_NE(wrong_type.error().message.find("test.Sample"), std::string::npos)
      << wrong_type.error().message;

  auto second_pub = bus.advertise<Sample>("typed", "test.Sample");
  ASSERT_FALSE(second_pub);
  EXPECT_EQ(second_pub.error().code, Errc::role_taken);

  TopicOptions small;
  small.capacity = 64;
  small.max_payload = 16;
  auto created = bus.advertise("small", kBytes, small);
  ASSERT_TRUE(created);
  SubscriberOptions deep;
  deep.depth = 128;
  auto too_deep = bus.subscribe("small", kBytes, small, deep);
  ASSERT_FALSE(too_deep);
  EXPECT_EQ(too_deep.error().code, Errc::qos_mismatch);
  EXPECT_EQ(created->try_loan(17).status, RingStatus::oversize);

  EXPECT_EQ(bus.advertise("bad name!", kBytes).error().code, Errc::invalid_argument);
  EXPECT_EQ(bus.advertise("", kBytes).error().code, Errc::invalid_argument);
  BusOptions bad_bus;
  bad_bus.name = "no/slashes";
  EXPECT_EQ(Bus::open(bad_bus).error().code, Errc::invalid_argument);
}

TEST_F(NativeTopicTest, BlockPolicyReportsFullAndLosesNothing) {
  Bus bus = open_bus();
  TopicOptions topic;
  topic.capacity = 64;
  SubscriberOptions slow;
  slow.depth = 8;
  auto sub = bus.subscribe("q", kBytes, topic, slow);
  ASSERT_TRUE(sub) << sub.error().message;
  auto pub = bus.advertise("q", kBytes, topic);
  ASSERT_TRUE(pub);
  std::uint64_t sent = 0;
  while (pub->try_publish(bytes_of(sent)) == RingStatus::ok) ++sent;
  EXPECT_EQ(sent, 8u) << "the depth of the block subscriber bounds the publisher";
  EXPECT_EQ(pub->counters().full, 1u);
  for (std::uint64_t i = 0; i < 8; ++i) {
    engine::Frame f = sub->try_take();
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(read_u64(f), i);
  }
  // Taken but not released: still full.
  EXPECT_EQ(pub->try_publish(bytes_of(sent)), RingStatus::full);
  sub->release();
  EXPECT_EQ(pub->try_publish(bytes_of(sent)), RingStatus::ok);
}

// Hot update's hand-over: the predecessor stops at a sample boundary and stays attached (gating
// the publisher) until the successor has joined at its position; between them every sample is
// taken exactly once, even while the publisher keeps publishing.
TEST_F(NativeTopicTest, SuccessorStartsAtThePredecessorsPositionAndTakesEachSampleOnce) {
  Bus bus = open_bus();
  TopicOptions topic;
  topic.capacity = 16;
  SubscriberOptions block;
  block.depth = 8;
  auto first = bus.subscribe("work", kBytes, topic, block);
  ASSERT_TRUE(first) << first.error().message;
  std::optional<engine::RawSubscriber> old_sub(std::move(*first));
  auto pub = bus.advertise("work", kBytes, topic);
  ASSERT_TRUE(pub);
  std::uint64_t next = 0;
  std::vector<std::uint64_t> taken;
  const auto publish_all_room = [&] {
    while (pub->try_publish(bytes_of(next)) == RingStatus::ok) ++next;
  };
  const auto take_some = [&](engine::RawSubscriber& sub, int most) {
    for (int i = 0; i < most; ++i) {
      engine::Frame frame = sub.try_take();
      if (!frame.ok()) break;
      taken.push_back(read_u64(frame));
      sub.release();
    }
  };
  publish_all_room();
  take_some(*old_sub, 5);
  ASSERT_EQ(old_sub->position(), std::optional<std::uint64_t>(5));
  publish_all_room();  // the old one still gates: the samples from 5 on stay in the ring
  SubscriberOptions successor = block;
  successor.start_at = old_sub->position();
  auto new_sub = bus.subscribe("work", kBytes, topic, successor);
  ASSERT_TRUE(new_sub) << new_sub.error().message;
  old_sub.reset();  // the predecessor detaches: from here only the successor gates
  for (int round = 0; round < 10; ++round) {
    take_some(*new_sub, 3);
    publish_all_room();
  }
  take_some(*new_sub, 100);
  ASSERT_EQ(taken.size(), next);
  for (std::uint64_t i = 0; i < next; ++i) EXPECT_EQ(taken[i], i);
}

TEST_F(NativeTopicTest, StartAtPastTheHeadOrOverwrittenOrWithAGroupIsRefused) {
  Bus bus = open_bus();
  TopicOptions topic;
  topic.capacity = 8;
  auto pub = bus.advertise("w", kBytes, topic);
  ASSERT_TRUE(pub);
  SubscriberOptions discard;
  discard.overflow = Overflow::discard_oldest;
  discard.depth = 4;
  auto gate = bus.subscribe("w", kBytes, topic, discard);  // keeps the segment, gates nothing
  ASSERT_TRUE(gate);
  for (std::uint64_t i = 0; i < 40; ++i) ASSERT_EQ(pub->try_publish(bytes_of(i)), RingStatus::ok);
  SubscriberOptions options;
  options.depth = 4;
  options.start_at = 41;
  auto future = bus.subscribe("w", kBytes, topic, options);
  ASSERT_FALSE(future);
  EXPECT_NE(future.error().message.find("past the head"), std::string::npos)
      << future.error().message;
  options.start_at = 2;
  auto gone = bus.subscribe("w", kBytes, topic, options);
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().message.find("already overwritten"), std::string::npos)
      << gone.error().message;
  options.start_at = 40;
  options.group = "workers";
  auto grouped = bus.subscribe("w", kBytes, topic, options);
  ASSERT_FALSE(grouped);
  EXPECT_EQ(grouped.error().code, Errc::invalid_argument);
  options.group.clear();
  auto at_head = bus.subscribe("w", kBytes, topic, options);
  ASSERT_TRUE(at_head) << at_head.error().message;
  EXPECT_EQ(at_head->position(), std::optional<std::uint64_t>(40));
  // The refused ones left their table entries free: 16 more subscribers still fit.
  std::vector<engine::RawSubscriber> more;
  SubscriberOptions plain;
  plain.depth = 4;
  for (int i = 0; i < 14; ++i) {
    auto sub = bus.subscribe("w", kBytes, topic, plain);
    ASSERT_TRUE(sub) << i << ": " << sub.error().message;
    more.push_back(std::move(*sub));
  }
}

TEST_F(NativeTopicTest, DiscardOldestCountsExactlyWhatItDrops) {
  Bus bus = open_bus();
  TopicOptions topic;
  topic.capacity = 64;
  SubscriberOptions lossy;
  lossy.depth = 16;
  lossy.overflow = Overflow::discard_oldest;
  auto sub = bus.subscribe("lossy", kBytes, topic, lossy);
  ASSERT_TRUE(sub);
  auto pub = bus.advertise("lossy", kBytes, topic);
  ASSERT_TRUE(pub);
  const std::uint64_t total = 10'000;
  std::uint64_t delivered = 0;
  std::uint64_t last = 0;
  bool first = true;
  for (std::uint64_t i = 0; i < total; ++i) {
    ASSERT_EQ(pub->try_publish(bytes_of(i)), RingStatus::ok) << "never waits for discard";
    // Read one sample in every 7 published: the subscriber is slow and loses the oldest.
    if (i % 7 == 0) {
      engine::Frame f = sub->try_take();
      ASSERT_TRUE(f.ok());
      const std::uint64_t value = read_u64(f);
      EXPECT_TRUE(first || value > last);
      EXPECT_GE(value + lossy.depth, i) << "never older than its depth";
      last = value;
      first = false;
      ++delivered;
      sub->release();
    }
  }
  for (engine::Frame f = sub->try_take(); f.ok(); f = sub->try_take()) {
    EXPECT_GT(read_u64(f), last);
    last = read_u64(f);
    ++delivered;
  }
  sub->release();
  EXPECT_EQ(last, total - 1);
  const auto counters = sub->counters();
  EXPECT_EQ(counters.delivered, delivered);
  EXPECT_GT(counters.dropped, 0u);
  EXPECT_EQ(counters.delivered + counters.dropped, total) << "every sample delivered or counted";
  EXPECT_GT(counters.overruns, 0u);
}

TEST_F(NativeTopicTest, LateJoinerGetsHistory) {
  Bus bus = open_bus();
  TopicOptions topic;
  topic.history = 4;
  auto pub = bus.advertise("state", kBytes, topic);
  ASSERT_TRUE(pub);
  for (std::uint64_t i = 0; i < 10; ++i) ASSERT_EQ(pub->try_publish(bytes_of(i)), RingStatus::ok);
  auto late = bus.subscribe("state", kBytes, topic);
  ASSERT_TRUE(late);
  for (std::uint64_t i = 6; i < 10; ++i) {
    engine::Frame f = late->try_take();
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(read_u64(f), i);
  }
  EXPECT_EQ(late->try_take().status, RingStatus::empty);
  SubscriberOptions no_history;
  no_history.history = false;
  auto fresh = bus.subscribe("state", kBytes, topic, no_history);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->try_take().status, RingStatus::empty);
}

TEST_F(NativeTopicTest, TwoBusesInOneProcessBothWork) {
  Bus a = open_bus();
  Bus b = open_bus();
  auto sub = b.subscribe("shared", kBytes);
  ASSERT_TRUE(sub);
  auto pub = a.advertise("shared", kBytes);
  ASSERT_TRUE(pub);
  const std::uint64_t value = 42;
  ASSERT_EQ(pub->try_publish(bytes_of(value)), RingStatus::ok);
  engine::Frame f = sub->try_take();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(read_u64(f), 42u);
}

TEST_F(NativeTopicTest, DiscoveryListsTopicsParticipantsAndCounters) {
  Bus bus = open_bus();
  TopicOptions topic;
  topic.history = 2;
  auto pub = bus.advertise("a/b", kBytes, topic);
  ASSERT_TRUE(pub);
  SubscriberOptions lossy;
  lossy.overflow = Overflow::discard_oldest;
  lossy.depth = 32;
  auto sub = bus.subscribe("a/b", kBytes, topic, lossy);
  ASSERT_TRUE(sub);
  auto other = bus.advertise<Sample>("other", "test.Sample");
  ASSERT_TRUE(other);
  const std::uint64_t value = 1;
  ASSERT_EQ(pub->try_publish(bytes_of(value)), RingStatus::ok);
  ASSERT_TRUE(sub->try_take().ok());

  auto topics = bus.topics();
  ASSERT_TRUE(topics) << topics.error().message;
  ASSERT_EQ(topics->size(), 2u);
  const TopicInfo& ab = (*topics)[0];
  EXPECT_EQ(ab.name, "a/b");
  EXPECT_EQ(ab.transport, engine::TopicTransport::native);
  EXPECT_EQ(ab.history, 2u);
  ASSERT_EQ(ab.publishers.size(), 1u);
  EXPECT_EQ(ab.publishers[0].pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_TRUE(ab.publishers[0].alive);
  EXPECT_EQ(ab.publishers[0].published, 1u);
  ASSERT_EQ(ab.subscribers.size(), 1u);
  EXPECT_EQ(ab.subscribers[0].overflow, Overflow::discard_oldest);
  EXPECT_EQ(ab.subscribers[0].depth, 32u);
  EXPECT_EQ(ab.subscribers[0].delivered, 1u);
  EXPECT_EQ((*topics)[1].name, "other");
  EXPECT_EQ((*topics)[1].type.name, "test.Sample");
  EXPECT_EQ((*topics)[1].type.size, sizeof(Sample));
}

TEST_F(NativeTopicTest, LastParticipantOutRemovesTheSegment) {
  {
    Bus bus = open_bus();
    auto pub = bus.advertise("gone", kBytes);
    ASSERT_TRUE(pub);
    {
      auto sub = bus.subscribe("gone", kBytes);
      ASSERT_TRUE(sub);
    }
    EXPECT_EQ(shm_entries(), 1);
  }
  EXPECT_EQ(shm_entries(), 0);
}

TEST_F(NativeTopicTest, CorruptedTopicSegmentIsAnError) {
  Bus bus = open_bus();
  auto pub = bus.advertise("victim", kBytes);
  ASSERT_TRUE(pub);
  // Scribble over the capacity, as a hostile or buggy process could.
  const std::string path = "/dev/shm/" + shm_prefix() + "topic.victim";
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::uint64_t garbage = 12345;
  ASSERT_EQ(::pwrite(fd, &garbage, sizeof garbage, layouts::kSegmentHeaderSize), 8);
  ::close(fd);
  auto sub = bus.subscribe("victim", kBytes);
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, Errc::invalid_layout);
  EXPECT_NE(sub.error().message.find("capacity"), std::string::npos) << sub.error().message;
}

// ---- across processes ---------------------------------------------------------------------------

TEST_F(NativeTopicTest, CarriesSequencedMessagesAcrossProcessesWithNothingLost) {
  const std::uint64_t count = scaled(1'000'000);
  Bus bus = open_bus();
  SubscriberOptions options;
  options.depth = 256;
  auto sub = bus.subscribe("stream", kBytes, {}, options);
  ASSERT_TRUE(sub);
  ChildProcess publisher([&] {
    Bus child_bus = open_bus();
    auto pub = child_bus.advertise("stream", kBytes);
    SYM_CHILD_CHECK_MSG(pub.has_value(), pub.error().message);
    const auto deadline = deadline_in(std::chrono::seconds(120));
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::size_t length = message_length(0, i, kMessageHeaderSize, 200);
      engine::Loan loan = pub->loan(length, engine::WaitStrategy::sleeping(), deadline);
      SYM_CHILD_CHECK_MSG(loan.ok(), engine::to_string(loan.status));
      fill_message(loan.bytes(), 0, i);
      pub->publish();
    }
  });
  const auto deadline = deadline_in(std::chrono::seconds(120));
  for (std::uint64_t i = 0; i < count; ++i) {
    engine::Frame f = sub->take(engine::WaitStrategy::sleeping(), deadline);
    ASSERT_TRUE(f.ok()) << "message " << i << ": " << engine::to_string(f.status);
    const MessageCheck check = check_message(f.bytes());
    ASSERT_TRUE(check.ok) << check.why;
    ASSERT_EQ(check.seq, i);
    ASSERT_EQ(f.size, message_length(0, i, kMessageHeaderSize, 200));
    if ((i & 31) == 31) sub->release();
  }
  sub->release();
  EXPECT_TRUE(publisher.wait(kWait).ok()) << publisher.status();
  EXPECT_EQ(sub->counters().delivered, count);
}

TEST_F(NativeTopicTest, BroadcastsEverySampleToFourSubscriberProcesses) {
  const std::uint64_t count = scaled(200'000);
  constexpr int kSubscribers = 4;
  Bus bus = open_bus();
  // The subscribers join first (they announce it through shared memory), then we publish.
  SharedArray<std::uint32_t> ready(kSubscribers);
  std::vector<ChildProcess> children;
  for (int s = 0; s < kSubscribers; ++s) {
    children.emplace_back([&, s] {
      Bus child_bus = open_bus();
      auto sub = child_bus.subscribe("fanout", kBytes);
      SYM_CHILD_CHECK_MSG(sub.has_value(), sub.error().message);
      ready.at(static_cast<std::size_t>(s)).store(1, std::memory_order_release);
      const auto deadline = deadline_in(std::chrono::seconds(120));
      for (std::uint64_t i = 0; i < count; ++i) {
        engine::Frame f = sub->take(engine::WaitStrategy::sleeping(), deadline);
        SYM_CHILD_CHECK_MSG(f.ok(), engine::to_string(f.status));
        SYM_CHILD_CHECK(read_u64(f) == i);
        sub->release();
      }
      SYM_CHILD_CHECK(sub->counters().delivered == count);
    });
  }
  ASSERT_TRUE(eventually(
      [&] {
        for (int s = 0; s < kSubscribers; ++s) {
          if (ready.at(static_cast<std::size_t>(s)).load() == 0) return false;
        }
        return true;
      },
      kWait));
  auto pub = bus.advertise("fanout", kBytes);
  ASSERT_TRUE(pub);
  EXPECT_EQ(pub->counters().subscribers, 4u);
  const auto deadline = deadline_in(std::chrono::seconds(120));
  for (std::uint64_t i = 0; i < count; ++i) {
    engine::Loan loan = pub->loan(8, engine::WaitStrategy::sleeping(), deadline);
    ASSERT_TRUE(loan.ok()) << engine::to_string(loan.status);
    std::memcpy(loan.data, &i, 8);
    pub->publish();
  }
  for (auto& child : children) EXPECT_TRUE(child.wait(std::chrono::seconds(60)).ok()) << child.status();
}

TEST_F(NativeTopicTest, DeadBlockSubscriberStopsGatingThePublisher) {
  Bus bus = open_bus();
  TopicOptions topic;
  topic.capacity = 64;
  SubscriberOptions shallow;
  shallow.depth = 4;
  SharedArray<std::uint32_t> joined(1);
  ChildProcess subscriber([&] {
    Bus child_bus = open_bus();
    auto sub = child_bus.subscribe("gated", kBytes, topic, shallow);
    SYM_CHILD_CHECK(sub.has_value());
    joined.at(0).store(1);
    ::pause();  // never reads
  });
  ASSERT_TRUE(eventually([&] { return joined.at(0).load() == 1; }, kWait));
  auto pub = bus.advertise("gated", kBytes, topic);
  ASSERT_TRUE(pub);
  std::uint64_t sent = 0;
  while (pub->try_publish(bytes_of(sent)) == RingStatus::ok) ++sent;
  EXPECT_EQ(sent, 4u);
  subscriber.kill9();
  // The publisher finds the gating subscriber dead and reclaims its entry.
  const auto deadline = deadline_in(kWait);
  for (int i = 0; i < 1000; ++i) {
    engine::Loan loan = pub->loan(8, engine::WaitStrategy::sleeping(), deadline);
    ASSERT_TRUE(loan.ok()) << "sample " << i << ": " << engine::to_string(loan.status);
    pub->publish();
  }
  auto topics = bus.topics();
  ASSERT_TRUE(topics);
  EXPECT_TRUE(topics->at(0).subscribers.empty());
}

TEST_F(NativeTopicTest, PublisherKilledWhileSubscribersHoldSamplesLeaksNothing) {
  Bus bus = open_bus();
  SharedArray<std::uint32_t> published(1);
  {
    auto sub = bus.subscribe("fragile", kBytes);
    ASSERT_TRUE(sub);
    ChildProcess publisher([&] {
      Bus child_bus = open_bus();
      auto pub = child_bus.advertise("fragile", kBytes);
      SYM_CHILD_CHECK(pub.has_value());
      for (std::uint64_t i = 0; i < 10; ++i) SYM_CHILD_CHECK(pub->try_publish(bytes_of(i)) == RingStatus::ok);
      engine::Loan unpublished = pub->try_loan(8);  // a loan it dies holding
      SYM_CHILD_CHECK(unpublished.ok());
      published.at(0).store(1);
      ::pause();
    });
    ASSERT_TRUE(eventually([&] { return published.at(0).load() == 1; }, kWait));
    engine::Frame held = sub->try_take();
    ASSERT_TRUE(held.ok());
    publisher.kill9();
    // The samples we hold stay readable; the rest arrives; the unpublished loan never does.
    EXPECT_EQ(read_u64(held), 0u);
    std::uint64_t taken = 1;
    while (sub->try_take().ok()) ++taken;
    EXPECT_EQ(taken, 10u);
    sub->release();
    // A new publisher takes over the dead one's role and goes on where it stopped.
    auto pub = bus.advertise("fragile", kBytes);
    ASSERT_TRUE(pub) << pub.error().message;
    const std::uint64_t next = 10;
    ASSERT_EQ(pub->try_publish(bytes_of(next)), RingStatus::ok);
    engine::Frame f = sub->try_take();
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(read_u64(f), 10u);
  }
  EXPECT_EQ(shm_entries(), 0) << "the last one out removed the topic";
}

TEST_F(NativeTopicTest, NotifyFdWakesOnPublishFromAnotherProcess) {
  Bus bus = open_bus();
  auto sub = bus.subscribe("wake", kBytes);
  ASSERT_TRUE(sub);
  auto fd = sub->notify_fd();
  ASSERT_TRUE(fd) << fd.error().message;
  pollfd p{*fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 50), 0) << "not readable while nothing was published";
  constexpr int kRounds = 5;
  ChildProcess publisher([&] {
    Bus child_bus = open_bus();
    auto pub = child_bus.advertise("wake", kBytes);
    SYM_CHILD_CHECK(pub.has_value());
    for (std::uint64_t i = 0; i < kRounds; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      SYM_CHILD_CHECK(pub->try_publish(bytes_of(i)) == RingStatus::ok);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  });
  for (std::uint64_t i = 0; i < kRounds; ++i) {
    p.revents = 0;
    ASSERT_EQ(::poll(&p, 1, 5000), 1) << "round " << i << ": the fd did not wake";
    engine::Frame f = sub->try_take();
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(read_u64(f), i);
    sub->release();
    EXPECT_EQ(sub->try_take().status, RingStatus::empty);  // re-arms
  }
  EXPECT_TRUE(publisher.wait(kWait).ok()) << publisher.status();
}

}  // namespace
}  // namespace symphony::test
