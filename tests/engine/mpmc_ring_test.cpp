// MpmcRing, single process: options, FIFO basics, full/empty, oversize, busy on a double loan or
// take, the participant table, handles destroyed mid-claim, counters and dead participants.

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "symphony/engine/mpmc_ring.hpp"
#include "symphony/engine/spsc_ring.hpp"
#include "symphony/layouts/mpmc_ring.hpp"
#include "test_scale.hpp"

namespace {

using namespace symphony::engine;
using symphony::test::Clock;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::vector<std::byte> message(std::size_t length, std::uint64_t seq) {
  std::vector<std::byte> bytes(length);
  for (std::size_t i = 0; i < length; ++i) {
    bytes[i] = static_cast<std::byte>((seq * 251 + i * 13) & 0xFF);
  }
  return bytes;
}

bool is_message(std::span<const std::byte> bytes, std::size_t length, std::uint64_t seq) {
  const auto expected = message(length, seq);
  return bytes.size() == length &&
         (length == 0 || std::memcmp(bytes.data(), expected.data(), length) == 0);
}

class MpmcRingTest : public symphony::test::ShmTest {
 protected:
  MpmcRing make(std::uint64_t capacity = 8, std::uint64_t max_payload = 100,
                std::uint64_t max_participants = 8) {
    MpmcRingOptions options;
    options.capacity = capacity;
    options.max_payload = max_payload;
    options.max_participants = max_participants;
    auto ring = MpmcRing::create(name(), options);
    if (!ring) throw std::runtime_error("MpmcRing::create: " + ring.error().message);
    return std::move(*ring);
  }
  static MpmcProducer producer_of(MpmcRing& ring) {
    auto p = MpmcProducer::attach(ring);
    if (!p) throw std::runtime_error("MpmcProducer::attach: " + p.error().message);
    return std::move(*p);
  }
  static MpmcConsumer consumer_of(MpmcRing& ring) {
    auto c = MpmcConsumer::attach(ring);
    if (!c) throw std::runtime_error("MpmcConsumer::attach: " + c.error().message);
    return std::move(*c);
  }
};

TEST_F(MpmcRingTest, CreateValidatesOptions) {
  struct Case {
    std::uint64_t capacity, max_payload, max_participants;
    const char* field;
  };
  const Case cases[] = {{0, 100, 8, "capacity"},
                        {1, 100, 8, "capacity"},
                        {3, 100, 8, "capacity"},
                        {1000, 100, 8, "capacity"},
                        {1ULL << 33, 100, 8, "capacity"},
                        {8, 0, 8, "max_payload"},
                        {8, (1ULL << 31) + 1, 8, "max_payload"},
                        {8, 100, 0, "max_participants"},
                        {8, 100, 4097, "max_participants"}};
  for (const Case& c : cases) {
    MpmcRingOptions options;
    options.capacity = c.capacity;
    options.max_payload = c.max_payload;
    options.max_participants = c.max_participants;
    auto ring = MpmcRing::create(name(), options);
    ASSERT_FALSE(ring.has_value()) << c.field;
    EXPECT_EQ(ring.error().code, Errc::invalid_argument);
    EXPECT_THAT(ring.error().message, HasSubstr(c.field));
  }
}

TEST_F(MpmcRingTest, GeometryAndOpen) {
  const std::string n = name();
  auto created = MpmcRing::create(n);  // defaults: 1024 slots of 240 bytes
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_EQ(created->geometry().capacity, 1024u);
  EXPECT_EQ(created->geometry().max_payload, 240u);
  EXPECT_EQ(created->geometry().slot_stride, 256u);
  EXPECT_EQ(created->geometry().max_participants, 64u);
  auto opened = MpmcRing::open(n);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(opened->geometry().slots_offset, created->geometry().slots_offset);
  EXPECT_FALSE(opened->segment().is_owner());
  // A producer on one mapping, a consumer on the other.
  MpmcProducer producer = producer_of(*created);
  MpmcConsumer consumer = consumer_of(*opened);
  ASSERT_EQ(producer.try_write(message(200, 1)), RingStatus::ok);
  const Frame frame = consumer.try_take();
  ASSERT_EQ(frame.status, RingStatus::ok);
  EXPECT_TRUE(is_message(frame.bytes(), 200, 1));
  consumer.release();

  auto missing = MpmcRing::open(name());
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  const std::string spsc_name = name();
  auto spsc = SpscRing::create(spsc_name);
  ASSERT_TRUE(spsc.has_value());
  auto wrong = MpmcRing::open(spsc_name);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code, Errc::invalid_layout);
}

TEST_F(MpmcRingTest, FifoWithAllLengths) {
  MpmcRing ring = make(8, 100);
  MpmcProducer producer = producer_of(ring);
  MpmcConsumer consumer = consumer_of(ring);
  std::uint64_t taken = 0;
  for (std::uint64_t seq = 0; seq <= 100; ++seq) {
    const Loan loan = producer.try_loan(seq);
    ASSERT_EQ(loan.status, RingStatus::ok) << seq;
    ASSERT_EQ(loan.bytes().size(), seq);
    const auto bytes = message(seq, seq);
    if (seq > 0) std::memcpy(loan.bytes().data(), bytes.data(), seq);
    producer.publish();
    if (seq % 3 == 2) {  // let a few accumulate
      while (taken <= seq) {
        const Frame frame = consumer.try_take();
        ASSERT_EQ(frame.status, RingStatus::ok) << taken;
        EXPECT_TRUE(is_message(frame.bytes(), taken, taken)) << taken;
        consumer.release();
        ++taken;
      }
    }
  }
  while (taken <= 100) {
    const Frame frame = consumer.try_take();
    ASSERT_EQ(frame.status, RingStatus::ok) << taken;
    EXPECT_TRUE(is_message(frame.bytes(), taken, taken)) << taken;
    consumer.release();
    ++taken;
  }
  EXPECT_EQ(consumer.try_take().status, RingStatus::empty);
}

TEST_F(MpmcRingTest, FramesAreInsideTheSlotArea) {
  MpmcRing ring = make(4, 100);
  MpmcProducer producer = producer_of(ring);
  MpmcConsumer consumer = consumer_of(ring);
  const std::byte* slots = ring.segment().base() + ring.geometry().slots_offset;
  const std::byte* end = slots + ring.geometry().capacity * ring.geometry().slot_stride;
  ASSERT_LE(end, ring.segment().base() + ring.segment().size());
  for (std::uint64_t seq = 0; seq < 20; ++seq) {
    const Loan loan = producer.try_loan(100);
    ASSERT_TRUE(loan.ok());
    EXPECT_GE(loan.bytes().data(), slots);
    EXPECT_LE(loan.bytes().data() + loan.bytes().size(), end);
    producer.publish();
    const Frame frame = consumer.try_take();
    ASSERT_TRUE(frame.ok());
    EXPECT_EQ(frame.bytes().data(), loan.bytes().data()) << "zero copy: read in place";
    consumer.release();
  }
}

TEST_F(MpmcRingTest, EmptyAndFull) {
  MpmcRing ring = make(8, 16);
  MpmcProducer producer = producer_of(ring);
  MpmcConsumer consumer = consumer_of(ring);
  Frame frame = consumer.try_take();
  EXPECT_EQ(frame.status, RingStatus::empty);
  EXPECT_TRUE(frame.would_block());
  EXPECT_EQ(consumer.take(WaitStrategy::sleeping(), Clock::now() + 20ms).status, RingStatus::empty);

  for (std::uint64_t seq = 0; seq < 8; ++seq) {
    ASSERT_EQ(producer.try_write(message(16, seq)), RingStatus::ok) << seq;
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(producer.try_write(message(16, 99)), RingStatus::full);
    const Loan loan = producer.try_loan(1);
    EXPECT_EQ(loan.status, RingStatus::full);
    EXPECT_TRUE(loan.would_block());
  }
  const auto start = Clock::now();
  EXPECT_EQ(producer.loan(1, WaitStrategy::sleeping(), start + 20ms).status, RingStatus::full);
  EXPECT_GE(Clock::now() - start, 20ms);

  // A taken but unreleased slot is not free yet.
  frame = consumer.try_take();
  ASSERT_EQ(frame.status, RingStatus::ok);
  EXPECT_TRUE(is_message(frame.bytes(), 16, 0));
  EXPECT_EQ(producer.try_write(message(16, 99)), RingStatus::full);
  consumer.release();
  ASSERT_EQ(producer.try_write(message(16, 8)), RingStatus::ok);
  EXPECT_EQ(producer.try_write(message(16, 99)), RingStatus::full);
  for (std::uint64_t seq = 1; seq <= 8; ++seq) {
    frame = consumer.try_take();
    ASSERT_EQ(frame.status, RingStatus::ok) << seq;
    EXPECT_TRUE(is_message(frame.bytes(), 16, seq)) << "message " << seq << " was overwritten";
    consumer.release();
  }
  EXPECT_EQ(consumer.try_take().status, RingStatus::empty);
}

TEST_F(MpmcRingTest, OversizeIsRefused) {
  MpmcRing ring = make(8, 100);
  MpmcProducer producer = producer_of(ring);
  MpmcConsumer consumer = consumer_of(ring);
  EXPECT_EQ(producer.try_loan(101).status, RingStatus::oversize);
  EXPECT_EQ(producer.try_loan(SIZE_MAX).status, RingStatus::oversize);
  EXPECT_EQ(producer.try_write(message(101, 0)), RingStatus::oversize);
  const auto start = Clock::now();
  EXPECT_EQ(producer.loan(101, WaitStrategy::sleeping(), start + 10s).status, RingStatus::oversize);
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(consumer.try_take().status, RingStatus::empty);
  EXPECT_EQ(producer.try_write(message(100, 0)), RingStatus::ok);
  EXPECT_EQ(consumer.try_take().status, RingStatus::ok);
}

TEST_F(MpmcRingTest, DoubleLoanOrTakeIsBusy) {
  MpmcRing ring = make(8, 100);
  MpmcProducer producer = producer_of(ring);
  MpmcConsumer consumer = consumer_of(ring);
  const Loan first = producer.try_loan(10);
  ASSERT_TRUE(first.ok());
  std::memcpy(first.bytes().data(), message(10, 0).data(), 10);
  const Loan second = producer.try_loan(10);
  EXPECT_EQ(second.status, RingStatus::busy);
  EXPECT_FALSE(second.would_block()) << "busy is a usage error, not a reason to wait";
  EXPECT_EQ(producer.try_write(message(10, 1)), RingStatus::busy);
  const auto start = Clock::now();
  EXPECT_EQ(producer.loan(10, WaitStrategy::sleeping(), start + 10s).status, RingStatus::busy);
  EXPECT_LT(Clock::now() - start, 1s);
  producer.publish();
  ASSERT_EQ(producer.try_write(message(10, 1)), RingStatus::ok);

  const Frame taken = consumer.try_take();
  ASSERT_TRUE(taken.ok());
  EXPECT_TRUE(is_message(taken.bytes(), 10, 0));
  EXPECT_EQ(consumer.try_take().status, RingStatus::busy);
  EXPECT_EQ(consumer.take(WaitStrategy::sleeping(), Clock::now() + 10s).status, RingStatus::busy);
  consumer.release();
  consumer.release();  // a second release is a no-op
  const Frame next = consumer.try_take();
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(is_message(next.bytes(), 10, 1));
  consumer.release();
  EXPECT_EQ(consumer.try_take().status, RingStatus::empty);
}

TEST_F(MpmcRingTest, ParticipantTableFull) {
  MpmcRing ring = make(8, 16, 3);
  auto a = MpmcProducer::attach(ring);
  auto b = MpmcConsumer::attach(ring);
  auto c = MpmcConsumer::attach(ring);
  ASSERT_TRUE(a && b && c);
  auto d = MpmcProducer::attach(ring);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, Errc::table_full);
  EXPECT_THAT(d.error().message, HasSubstr("3"));
  b = tl::unexpected(Error{Errc::not_found, ""});  // frees b's entry
  EXPECT_TRUE(MpmcProducer::attach(ring).has_value());
}

TEST_F(MpmcRingTest, ProducerDestroyedWithAnOpenLoanAbandonsIt) {
  MpmcRing ring = make(8, 16);
  MpmcProducer producer = producer_of(ring);
  MpmcConsumer consumer = consumer_of(ring);
  ASSERT_EQ(producer.try_write(message(16, 0)), RingStatus::ok);
  {
    MpmcProducer quitter = producer_of(ring);
    ASSERT_TRUE(quitter.try_loan(16).ok());
  }
  ASSERT_EQ(producer.try_write(message(16, 1)), RingStatus::ok);
  EXPECT_EQ(ring.counters().abandoned_by_producers, 1u);
  for (std::uint64_t seq = 0; seq < 2; ++seq) {
    const Frame frame = consumer.try_take();
    ASSERT_EQ(frame.status, RingStatus::ok) << seq;
    EXPECT_TRUE(is_message(frame.bytes(), 16, seq)) << seq;
    consumer.release();
  }
  EXPECT_EQ(consumer.abandoned_skipped(), 1u);
  EXPECT_EQ(consumer.try_take().status, RingStatus::empty);
  // The skipped slot is usable again: the ring still holds `capacity` messages.
  for (std::uint64_t seq = 0; seq < 8; ++seq) {
    ASSERT_EQ(producer.try_write(message(16, seq)), RingStatus::ok) << seq;
  }
  EXPECT_EQ(producer.try_write(message(16, 0)), RingStatus::full);
}

TEST_F(MpmcRingTest, ConsumerDestroyedWithAnOpenTakeReleasesIt) {
  MpmcRing ring = make(4, 16);
  MpmcProducer producer = producer_of(ring);
  for (std::uint64_t seq = 0; seq < 4; ++seq) {
    ASSERT_EQ(producer.try_write(message(16, seq)), RingStatus::ok);
  }
  {
    MpmcConsumer quitter = consumer_of(ring);
    ASSERT_TRUE(quitter.try_take().ok());
  }
  // Message 0 counts as delivered to the quitter; the slot is free again.
  ASSERT_EQ(producer.try_write(message(16, 4)), RingStatus::ok);
  MpmcConsumer consumer = consumer_of(ring);
  for (std::uint64_t seq = 1; seq <= 4; ++seq) {
    const Frame frame = consumer.try_take();
    ASSERT_EQ(frame.status, RingStatus::ok) << seq;
    EXPECT_TRUE(is_message(frame.bytes(), 16, seq)) << seq;
    consumer.release();
  }
  EXPECT_EQ(consumer.try_take().status, RingStatus::empty);
}

TEST_F(MpmcRingTest, CountersStartAtZero) {
  MpmcRing ring = make();
  EXPECT_EQ(ring.counters().abandoned_by_producers, 0u);
  EXPECT_EQ(ring.counters().reclaimed_from_consumers, 0u);
  EXPECT_EQ(ring.recover_dead_participants(), 0u);
}

TEST_F(MpmcRingTest, DeadParticipantsAreRecovered) {
  MpmcRing ring = make(8, 16, 8);
  MpmcProducer producer = producer_of(ring);
  ASSERT_EQ(producer.try_write(message(16, 0)), RingStatus::ok);
  ASSERT_EQ(producer.try_write(message(16, 1)), RingStatus::ok);
  // Three children die without running a destructor: an idle producer, a producer holding a
  // loan, and a consumer holding a take.
  const auto idle = symphony::test::run_in_child([&] {
    auto p = MpmcProducer::attach(ring);
    SYM_CHILD_CHECK(p.has_value());
    ::_exit(0);  // no destructor: the entry stays registered to a dead pid
  });
  ASSERT_TRUE(idle.ok()) << idle;
  const auto loaner = symphony::test::run_in_child([&] {
    auto p = MpmcProducer::attach(ring);
    SYM_CHILD_CHECK(p.has_value());
    SYM_CHILD_CHECK(p->try_loan(16).ok());
    ::_exit(0);
  });
  ASSERT_TRUE(loaner.ok()) << loaner;
  const auto taker = symphony::test::run_in_child([&] {
    auto c = MpmcConsumer::attach(ring);
    SYM_CHILD_CHECK(c.has_value());
    const Frame frame = c->try_take();
    SYM_CHILD_CHECK(frame.ok() && is_message(frame.bytes(), 16, 0));
    ::_exit(0);
  });
  ASSERT_TRUE(taker.ok()) << taker;
  ASSERT_EQ(producer.try_write(message(16, 3)), RingStatus::ok);

  EXPECT_EQ(ring.recover_dead_participants(), 3u);
  EXPECT_EQ(ring.counters().abandoned_by_producers, 1u);
  EXPECT_EQ(ring.counters().reclaimed_from_consumers, 1u);
  EXPECT_EQ(ring.recover_dead_participants(), 0u) << "recovery happens once";
  // Live participants are left alone.
  MpmcConsumer consumer = consumer_of(ring);
  EXPECT_EQ(ring.recover_dead_participants(), 0u);
  for (std::uint64_t seq : {std::uint64_t{1}, std::uint64_t{3}}) {
    const Frame frame = consumer.try_take();
    ASSERT_EQ(frame.status, RingStatus::ok) << seq;
    EXPECT_TRUE(is_message(frame.bytes(), 16, seq)) << seq;
    consumer.release();
  }
  EXPECT_EQ(consumer.try_take().status, RingStatus::empty);
  // All 8 slots are usable: nothing is stuck.
  for (std::uint64_t seq = 0; seq < 8; ++seq) {
    ASSERT_EQ(producer.try_write(message(16, seq)), RingStatus::ok) << seq;
  }
  EXPECT_EQ(producer.try_write(message(16, 0)), RingStatus::full);
}

TEST_F(MpmcRingTest, AttachFreesTheEntriesOfDeadParticipantsWhenTheTableIsFull) {
  MpmcRing ring = make(8, 16, 2);
  for (int i = 0; i < 2; ++i) {
    const auto status = symphony::test::run_in_child([&] {
      auto c = MpmcConsumer::attach(ring);
      SYM_CHILD_CHECK(c.has_value());
      ::_exit(0);
    });
    ASSERT_TRUE(status.ok()) << status;
  }
  auto producer = MpmcProducer::attach(ring);
  ASSERT_TRUE(producer.has_value()) << producer.error().message;
  auto consumer = MpmcConsumer::attach(ring);
  ASSERT_TRUE(consumer.has_value()) << consumer.error().message;
}

TEST_F(MpmcRingTest, CorruptLengthIsReportedNotFollowed) {
  MpmcRing ring = make(8, 100);
  MpmcProducer producer = producer_of(ring);
  MpmcConsumer consumer = consumer_of(ring);
  ASSERT_EQ(producer.try_write(message(50, 0)), RingStatus::ok);
  ASSERT_EQ(producer.try_write(message(50, 1)), RingStatus::ok);
  std::atomic_ref<std::uint32_t>(ring.slot(0)->length).store(5000);
  const Frame bad = consumer.try_take();
  EXPECT_EQ(bad.status, RingStatus::corrupt);
  EXPECT_TRUE(bad.bytes().empty());
  // Either the ring is quarantined (corrupt again) or it goes on with the next, intact message;
  // it never hands out the bad slot.
  const Frame next = consumer.try_take();
  if (next.status != RingStatus::corrupt) {
    ASSERT_EQ(next.status, RingStatus::ok);
    EXPECT_TRUE(is_message(next.bytes(), 50, 1));
    consumer.release();
  }
}

}  // namespace
