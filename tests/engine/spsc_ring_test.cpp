// SpscRing edge cases, single process: empty, full (never overwritten), wrap-around with padding,
// largest / zero-length / oversize frames, loans inside the mapping, batched publish, roles and
// takeovers, and corruption of the shared indices and frame headers.

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "symphony/engine/mpmc_ring.hpp"
#include "symphony/engine/spsc_ring.hpp"
#include "symphony/layouts/spsc_ring.hpp"
#include "test_scale.hpp"

namespace {

using namespace symphony::engine;
using symphony::layouts::kFrameData;
using symphony::layouts::kFramePadding;
using symphony::layouts::spsc_commit_word;
using symphony::layouts::spsc_frame_size;
using symphony::layouts::SpscFrameHeader;
using symphony::test::ChildProcess;
using symphony::test::Clock;
using symphony::test::SharedArray;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// ---- helpers
// --------------------------------------------------------------------------------------

std::byte pattern_byte(std::uint64_t seq, std::size_t i) {
  return static_cast<std::byte>((seq * 131 + i * 7 + (i >> 8)) & 0xFF);
}

void fill_pattern(std::span<std::byte> out, std::uint64_t seq) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = pattern_byte(seq, i);
}

// Index of the first wrong byte, or -1.
std::int64_t pattern_mismatch(std::span<const std::byte> in, std::uint64_t seq) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != pattern_byte(seq, i)) return static_cast<std::int64_t>(i);
  }
  return -1;
}

std::vector<std::byte> pattern(std::size_t length, std::uint64_t seq) {
  std::vector<std::byte> bytes(length);
  fill_pattern(bytes, seq);
  return bytes;
}

std::uint64_t load(const std::uint64_t& shared) {
  return std::atomic_ref<const std::uint64_t>(shared).load();
}
void store(std::uint64_t& shared, std::uint64_t value) {
  std::atomic_ref<std::uint64_t>(shared).store(value);
}
void store32(std::uint32_t& shared, std::uint32_t value) {
  std::atomic_ref<std::uint32_t>(shared).store(value);
}

SpscFrameHeader& frame_at(SpscRing& ring, std::uint64_t position) {
  return *reinterpret_cast<SpscFrameHeader*>(ring.data() +
                                             (position & (ring.geometry().capacity - 1)));
}

bool inside(SpscRing& ring, std::span<const std::byte> bytes) {
  const std::byte* base = ring.segment().base();
  const std::byte* data_begin = ring.data();
  const std::byte* data_end = ring.data() + ring.geometry().capacity;
  return bytes.data() >= base && bytes.data() + bytes.size() <= base + ring.segment().size() &&
         bytes.data() >= data_begin && bytes.data() + bytes.size() <= data_end;
}

class SpscRingTest : public symphony::test::ShmTest {
 protected:
  SpscRing make(std::uint64_t capacity, std::uint64_t max_payload = 0) {
    SpscRingOptions options;
    options.capacity = capacity;
    options.max_payload = max_payload;
    auto ring = SpscRing::create(name(), options);
    if (!ring) throw std::runtime_error("SpscRing::create: " + ring.error().message);
    return std::move(*ring);
  }
  static SpscProducer producer_of(SpscRing& ring) {
    auto p = SpscProducer::attach(ring);
    if (!p) throw std::runtime_error("SpscProducer::attach: " + p.error().message);
    return std::move(*p);
  }
  static SpscConsumer consumer_of(SpscRing& ring) {
    auto c = SpscConsumer::attach(ring);
    if (!c) throw std::runtime_error("SpscConsumer::attach: " + c.error().message);
    return std::move(*c);
  }
};

// ---- creation and opening
// --------------------------------------------------------------------------

TEST_F(SpscRingTest, CreateValidatesOptions) {
  for (std::uint64_t capacity :
       {std::uint64_t{0}, std::uint64_t{128}, std::uint64_t{1000}, std::uint64_t{1} << 35}) {
    SpscRingOptions options;
    options.capacity = capacity;
    auto ring = SpscRing::create(name(), options);
    ASSERT_FALSE(ring.has_value()) << "capacity " << capacity;
    EXPECT_EQ(ring.error().code, Errc::invalid_argument);
    EXPECT_THAT(ring.error().message, HasSubstr("capacity"));
  }
  SpscRingOptions options;
  options.capacity = 1024;
  options.max_payload = 1024 / 2 - 8 + 1;
  auto ring = SpscRing::create(name(), options);
  ASSERT_FALSE(ring.has_value());
  EXPECT_EQ(ring.error().code, Errc::invalid_argument);
  EXPECT_THAT(ring.error().message, HasSubstr("max_payload"));
}

TEST_F(SpscRingTest, GeometryDefaultsToTheLargestPayload) {
  SpscRing ring = make(4096);
  EXPECT_EQ(ring.geometry().capacity, 4096u);
  EXPECT_EQ(ring.max_payload(), 4096u / 2 - 8);
  SpscRing custom = make(4096, 100);
  EXPECT_EQ(custom.max_payload(), 100u);
  EXPECT_EQ(producer_of(custom).max_payload(), 100u);
}

TEST_F(SpscRingTest, OpenSeesTheSameRing) {
  const std::string n = name();
  SpscRingOptions options;
  options.capacity = 4096;
  options.max_payload = 300;
  auto created = SpscRing::create(n, options);
  ASSERT_TRUE(created.has_value()) << created.error().message;
  auto opened = SpscRing::open(n);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(opened->geometry().capacity, 4096u);
  EXPECT_EQ(opened->geometry().max_payload, 300u);
  EXPECT_EQ(opened->geometry().data_offset, created->geometry().data_offset);
  EXPECT_FALSE(opened->segment().is_owner());
  SpscProducer producer = producer_of(*created);
  SpscConsumer consumer = consumer_of(*opened);
  const auto message = pattern(77, 5);
  ASSERT_EQ(producer.try_write(message), RingStatus::ok);
  const Frame frame = consumer.try_read();
  ASSERT_EQ(frame.status, RingStatus::ok);
  ASSERT_EQ(frame.bytes().size(), 77u);
  EXPECT_EQ(pattern_mismatch(frame.bytes(), 5), -1);
}

TEST_F(SpscRingTest, OpenRefusesMissingAndWrongKind) {
  auto missing = SpscRing::open(name());
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  const std::string n = name();
  auto mpmc = MpmcRing::create(n);
  ASSERT_TRUE(mpmc.has_value()) << mpmc.error().message;
  auto wrong = SpscRing::open(n);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code, Errc::invalid_layout);
}

// ---- empty and full
// ----------------------------------------------------------------------------------

TEST_F(SpscRingTest, EmptyRingReadsEmpty) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  Frame frame = consumer.try_read();
  EXPECT_EQ(frame.status, RingStatus::empty);
  EXPECT_TRUE(frame.would_block());
  EXPECT_TRUE(frame.bytes().empty());
  const auto start = Clock::now();
  frame = consumer.read(WaitStrategy::busy(), start + 5ms);
  EXPECT_EQ(frame.status, RingStatus::empty);
  EXPECT_GE(Clock::now() - start, 5ms);

  ASSERT_EQ(producer.try_write(pattern(10, 1)), RingStatus::ok);
  ASSERT_EQ(consumer.try_read().status, RingStatus::ok);
  EXPECT_EQ(consumer.try_read().status, RingStatus::empty);
  consumer.release();
  EXPECT_EQ(consumer.try_read().status, RingStatus::empty);
  EXPECT_EQ(consumer.frames_read(), 1u);
  EXPECT_FALSE(consumer.corrupt());
}

TEST_F(SpscRingTest, FullIsReportedAndNothingIsOverwritten) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  constexpr std::size_t kPayload = 56;  // 64-byte frames: exactly 16 fit
  static_assert(spsc_frame_size(kPayload) == 64);
  for (std::uint64_t seq = 0; seq < 16; ++seq) {
    ASSERT_EQ(producer.try_write(pattern(kPayload, seq)), RingStatus::ok) << seq;
  }
  const std::uint64_t write_index = load(ring.header()->write_index);
  EXPECT_EQ(write_index, 1024u);
  for (int attempt = 0; attempt < 10; ++attempt) {
    EXPECT_EQ(producer.try_write(pattern(kPayload, 99)), RingStatus::full);
    EXPECT_EQ(producer.try_write(pattern(0, 99)), RingStatus::full);
    const Loan loan = producer.try_loan(1);
    EXPECT_EQ(loan.status, RingStatus::full);
    EXPECT_TRUE(loan.would_block());
    EXPECT_TRUE(loan.bytes().empty());
  }
  const Loan waited = producer.loan(kPayload, WaitStrategy::busy(), Clock::now() + 5ms);
  EXPECT_EQ(waited.status, RingStatus::full);
  EXPECT_EQ(load(ring.header()->write_index), write_index) << "a full ring was written";

  // Read without release: still full.
  Frame frame = consumer.try_read();
  ASSERT_EQ(frame.status, RingStatus::ok);
  EXPECT_EQ(pattern_mismatch(frame.bytes(), 0), -1);
  EXPECT_EQ(producer.try_write(pattern(kPayload, 99)), RingStatus::full);
  consumer.release();
  ASSERT_EQ(producer.try_write(pattern(kPayload, 16)), RingStatus::ok);
  EXPECT_EQ(producer.try_write(pattern(kPayload, 99)), RingStatus::full);

  for (std::uint64_t seq = 1; seq <= 16; ++seq) {
    frame = consumer.try_read();
    ASSERT_EQ(frame.status, RingStatus::ok) << seq;
    ASSERT_EQ(frame.bytes().size(), kPayload);
    EXPECT_EQ(pattern_mismatch(frame.bytes(), seq), -1) << "frame " << seq << " was overwritten";
  }
  EXPECT_EQ(consumer.try_read().status, RingStatus::empty);
  consumer.release();
  EXPECT_EQ(producer.frames_published(), 17u);
}

// ---- wrap-around
// ---------------------------------------------------------------------------------

// Every length from 0 to max_payload, then random ones, through a small ring with the consumer
// lagging by a random amount. The producer's placement is checked against the layout's rule:
// a frame that does not fit in the tail is preceded by a padding frame and starts at offset 0.
TEST_F(SpscRingTest, WrapAroundWithPaddingFramesOfManySizes) {
  constexpr std::uint64_t kCapacity = 4096;
  SpscRing ring = make(kCapacity);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  const std::uint64_t max_payload = ring.max_payload();
  std::vector<std::size_t> lengths;
  for (std::uint64_t i = 0; i <= max_payload; ++i) {
    lengths.push_back(static_cast<std::size_t>((i * 769) % (max_payload + 1)));  // all, shuffled
  }
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t r = rng();
    lengths.push_back(static_cast<std::size_t>(r % 4 == 0 ? r % (max_payload + 1) : r % 64));
  }

  std::uint64_t model = 0;  // where the producer must place the next frame
  std::uint64_t written = 0;
  std::uint64_t read = 0;
  std::uint64_t paddings = 0;
  std::uint64_t guard = 0;
  while (read < lengths.size()) {
    ASSERT_LT(++guard, 10 * lengths.size()) << "no progress";
    // Produce a random number of frames, until full.
    const std::uint64_t burst = 1 + rng() % 6;
    for (std::uint64_t k = 0; k < burst && written < lengths.size(); ++k) {
      const std::size_t length = lengths[written];
      const Loan loan = producer.try_loan(length);
      if (loan.status == RingStatus::full) break;
      ASSERT_EQ(loan.status, RingStatus::ok) << "frame " << written;
      ASSERT_EQ(loan.bytes().size(), length);
      if (length > 0) {
        ASSERT_TRUE(inside(ring, loan.bytes())) << "frame " << written;
      }
      std::uint64_t offset = model % kCapacity;
      if (spsc_frame_size(length) > kCapacity - offset) {
        model += kCapacity - offset;
        offset = 0;
        ++paddings;
      }
      if (length > 0) {
        ASSERT_EQ(loan.bytes().data(), ring.data() + offset + sizeof(SpscFrameHeader))
            << "frame " << written << " of " << length << " bytes";
      }
      model += spsc_frame_size(length);
      fill_pattern(loan.bytes(), written);
      producer.publish();
      ASSERT_EQ(load(ring.header()->write_index), model);
      ++written;
    }
    // Consume a random number of frames.
    const std::uint64_t take = rng() % 8;
    for (std::uint64_t k = 0; k < take && read < written; ++k) {
      const Frame frame = consumer.try_read();
      ASSERT_EQ(frame.status, RingStatus::ok) << "frame " << read;
      ASSERT_EQ(frame.bytes().size(), lengths[read]) << "frame " << read;
      if (!frame.bytes().empty()) {
        ASSERT_TRUE(inside(ring, frame.bytes()));
      }
      ASSERT_EQ(pattern_mismatch(frame.bytes(), read), -1) << "frame " << read;
      ++read;
      if (rng() % 2 == 0) consumer.release();
    }
    consumer.release();
  }
  EXPECT_EQ(consumer.try_read().status, RingStatus::empty);
  EXPECT_GT(paddings, 100u) << "the test never wrapped with padding";
  EXPECT_EQ(consumer.frames_read(), lengths.size());
  EXPECT_EQ(producer.frames_published(), lengths.size());
  EXPECT_EQ(load(ring.header()->read_index), model);
}

TEST_F(SpscRingTest, LargestFrameIsAcceptedAtAnyOffset) {
  constexpr std::uint64_t kCapacity = 1024;
  SpscRing ring = make(kCapacity);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  const std::size_t largest = ring.max_payload();
  ASSERT_EQ(largest, kCapacity / 2 - 8);
  // At offset 0; at offset 520 (needs a padding frame first); at offset 512 (exactly half left).
  const std::uint64_t offsets[] = {0, 0, 512};
  for (std::uint64_t round = 0; round < 3; ++round) {
    const Loan loan = producer.try_loan(largest);
    ASSERT_EQ(loan.status, RingStatus::ok) << "round " << round;
    EXPECT_EQ(loan.bytes().data(), ring.data() + offsets[round] + 8) << "round " << round;
    fill_pattern(loan.bytes(), round);
    producer.publish();
    if (round == 0) {
      ASSERT_EQ(producer.try_write(pattern(0, 0)), RingStatus::ok);  // +8 bytes
    }
    Frame frame = consumer.try_read();
    ASSERT_EQ(frame.status, RingStatus::ok);
    ASSERT_EQ(frame.bytes().size(), largest);
    EXPECT_EQ(pattern_mismatch(frame.bytes(), round), -1);
    if (round == 0) {
      ASSERT_EQ(consumer.try_read().bytes().size(), 0u);
    }
    consumer.release();
  }
  EXPECT_EQ(load(ring.header()->write_index), 512u + 8u + 504u + 512u + 512u);
  const Loan too_big = producer.try_loan(largest + 1);
  EXPECT_EQ(too_big.status, RingStatus::oversize);
}

TEST_F(SpscRingTest, LargestFrameOfACustomMaxPayload) {
  SpscRing ring = make(4096, 100);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  EXPECT_EQ(producer.try_write(pattern(100, 3)), RingStatus::ok);
  EXPECT_EQ(producer.try_write(pattern(101, 3)), RingStatus::oversize);
  const Frame frame = consumer.try_read();
  ASSERT_EQ(frame.status, RingStatus::ok);
  EXPECT_EQ(frame.bytes().size(), 100u);
  EXPECT_EQ(consumer.try_read().status, RingStatus::empty);
}

TEST_F(SpscRingTest, ZeroLengthFrame) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  const Loan loan = producer.try_loan(0);
  ASSERT_EQ(loan.status, RingStatus::ok);
  EXPECT_EQ(loan.bytes().size(), 0u);
  producer.publish();
  ASSERT_EQ(producer.try_write(std::span<const std::byte>{}), RingStatus::ok);
  for (int i = 0; i < 2; ++i) {
    const Frame frame = consumer.try_read();
    ASSERT_EQ(frame.status, RingStatus::ok) << "a zero-length frame is a frame, not 'empty'";
    EXPECT_EQ(frame.bytes().size(), 0u);
  }
  EXPECT_EQ(consumer.try_read().status, RingStatus::empty);
  EXPECT_EQ(load(ring.header()->write_index), 16u);
}

TEST_F(SpscRingTest, OversizeIsRefusedWithoutWaitingOrWriting) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  const std::size_t too_big = ring.max_payload() + 1;
  EXPECT_EQ(producer.try_loan(too_big).status, RingStatus::oversize);
  EXPECT_FALSE(producer.try_loan(too_big).would_block());
  EXPECT_EQ(producer.try_loan(SIZE_MAX).status, RingStatus::oversize);
  EXPECT_EQ(producer.try_loan(std::size_t{1} << 40).status, RingStatus::oversize);
  EXPECT_EQ(producer.try_write(pattern(too_big, 0)), RingStatus::oversize);
  const auto start = Clock::now();
  EXPECT_EQ(producer.loan(too_big, WaitStrategy::sleeping(), start + 10s).status,
            RingStatus::oversize);
  EXPECT_LT(Clock::now() - start, 1s) << "oversize is not a reason to wait";
  producer.publish();
  EXPECT_EQ(load(ring.header()->write_index), 0u);
  EXPECT_EQ(consumer.try_read().status, RingStatus::empty);
  // Refusals do not poison the producer.
  EXPECT_EQ(producer.try_write(pattern(8, 1)), RingStatus::ok);
  EXPECT_EQ(consumer.try_read().status, RingStatus::ok);
}

TEST_F(SpscRingTest, LoansAndFramesAreInsideTheMappedSegment) {
  SpscRing ring = make(2048);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  for (std::uint64_t seq = 0; seq < 500; ++seq) {
    const std::size_t length = 1 + static_cast<std::size_t>((seq * 37) % ring.max_payload());
    const Loan loan = producer.try_loan(length);
    ASSERT_EQ(loan.status, RingStatus::ok);
    const std::byte* base = ring.segment().base();
    ASSERT_GE(loan.bytes().data(), base);
    ASSERT_LE(loan.bytes().data() + loan.bytes().size(), base + ring.segment().size());
    ASSERT_TRUE(inside(ring, loan.bytes()));
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(loan.bytes().data()) % 8, 0u)
        << "payloads start 8-byte aligned";
    fill_pattern(loan.bytes(), seq);
    producer.publish();
    const Frame frame = consumer.try_read();
    ASSERT_EQ(frame.status, RingStatus::ok);
    EXPECT_EQ(frame.bytes().data(), loan.bytes().data()) << "zero copy: the consumer reads in place";
    EXPECT_EQ(pattern_mismatch(frame.bytes(), seq), -1);
    consumer.release();
  }
}

// ---- batching ----------------------------------------------------------------------------------

TEST_F(SpscRingTest, BatchedPublishMakesAllLoansVisibleAtOnce) {
  constexpr std::uint64_t kCapacity = 1024;
  SpscRing ring = make(kCapacity);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  // Move to offset 800 so that the batch wraps (with a padding frame inside it).
  ASSERT_EQ(producer.try_write(pattern(400 - 8, 0)), RingStatus::ok);
  ASSERT_EQ(producer.try_write(pattern(400 - 8, 0)), RingStatus::ok);
  ASSERT_EQ(consumer.try_read().status, RingStatus::ok);
  ASSERT_EQ(consumer.try_read().status, RingStatus::ok);
  consumer.release();
  const std::uint64_t before = load(ring.header()->write_index);
  ASSERT_EQ(before, 800u);

  const std::size_t lengths[] = {10, 100, 0, 150, 33};  // 150 does not fit after 800+24+112+8
  for (std::size_t i = 0; i < std::size(lengths); ++i) {
    const Loan loan = producer.try_loan(lengths[i]);
    ASSERT_EQ(loan.status, RingStatus::ok) << i;
    fill_pattern(loan.bytes(), 100 + i);
    // Nothing is visible before publish().
    EXPECT_EQ(consumer.try_read().status, RingStatus::empty) << "loan " << i << " leaked";
    EXPECT_EQ(load(ring.header()->write_index), before);
  }
  EXPECT_EQ(producer.frames_published(), 2u);
  EXPECT_EQ(consumer.read(WaitStrategy::sleeping(), Clock::now() + 20ms).status, RingStatus::empty);
  producer.publish();
  EXPECT_EQ(producer.frames_published(), 7u);
  EXPECT_GT(load(ring.header()->write_index), before);
  for (std::size_t i = 0; i < std::size(lengths); ++i) {
    const Frame frame = consumer.try_read();
    ASSERT_EQ(frame.status, RingStatus::ok) << i;
    ASSERT_EQ(frame.bytes().size(), lengths[i]);
    EXPECT_EQ(pattern_mismatch(frame.bytes(), 100 + i), -1);
  }
  EXPECT_EQ(consumer.try_read().status, RingStatus::empty);
}

TEST_F(SpscRingTest, PublishWithNothingLoanedIsANoOp) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  producer.publish();
  producer.publish();
  EXPECT_EQ(load(ring.header()->write_index), 0u);
  EXPECT_EQ(producer.frames_published(), 0u);
}

// ---- roles
// -----------------------------------------------------------------------------------------

TEST_F(SpscRingTest, SecondLiveProducerOrConsumerIsRefused) {
  SpscRing ring = make(1024);
  {
    SpscProducer first = producer_of(ring);
    auto second = SpscProducer::attach(ring);
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().code, Errc::role_taken);
    EXPECT_THAT(second.error().message, HasSubstr(std::to_string(::getpid())));
    SpscConsumer reader = consumer_of(ring);
    auto another = SpscConsumer::attach(ring);
    ASSERT_FALSE(another.has_value());
    EXPECT_EQ(another.error().code, Errc::role_taken);
    // A moved handle still holds the role, once.
    SpscProducer moved(std::move(first));
    EXPECT_FALSE(SpscProducer::attach(ring).has_value());
  }
  // Released on destruction.
  EXPECT_TRUE(SpscProducer::attach(ring).has_value());
  EXPECT_TRUE(SpscConsumer::attach(ring).has_value());
  EXPECT_EQ(load(ring.header()->producer_takeovers), 0u);
}

TEST_F(SpscRingTest, SecondLiveProducerInAnotherProcessIsRefused) {
  const std::string n = name();
  SpscRingOptions options;
  options.capacity = 1024;
  auto ring = SpscRing::create(n, options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  SpscProducer producer = producer_of(*ring);
  SpscConsumer consumer = consumer_of(*ring);
  const auto status = symphony::test::run_in_child(
      [&] {
        auto opened = SpscRing::open(n);
        SYM_CHILD_CHECK(opened.has_value());
        auto p = SpscProducer::attach(*opened);
        SYM_CHILD_CHECK(!p.has_value() && p.error().code == Errc::role_taken);
        auto c = SpscConsumer::attach(*opened);
        SYM_CHILD_CHECK(!c.has_value() && c.error().code == Errc::role_taken);
        return 0;
      },
      30s);
  EXPECT_TRUE(status.ok()) << status;
  // Our roles survived the attempt.
  ASSERT_EQ(producer.try_write(pattern(5, 5)), RingStatus::ok);
  EXPECT_EQ(consumer.try_read().status, RingStatus::ok);
}

TEST_F(SpscRingTest, DeadProducerAndConsumerRolesAreTakenOver) {
  SpscRing ring = make(1024);
  // A child produces 3 frames, loans a 4th, and dies without any destructor running.
  const auto producer_status = symphony::test::run_in_child(
      [&] {
        auto p = SpscProducer::attach(ring);
        SYM_CHILD_CHECK(p.has_value());
        for (std::uint64_t seq = 0; seq < 3; ++seq) {
          SYM_CHILD_CHECK(p->try_write(pattern(20, seq)) == RingStatus::ok);
        }
        const Loan unpublished = p->try_loan(20);
        SYM_CHILD_CHECK(unpublished.ok());
        fill_pattern(unpublished.bytes(), 999);
        ::_exit(0);
      },
      30s);
  ASSERT_TRUE(producer_status.ok()) << producer_status;
  // A child consumer reads and releases one frame, reads another, and dies.
  const auto consumer_status = symphony::test::run_in_child(
      [&] {
        auto c = SpscConsumer::attach(ring);
        SYM_CHILD_CHECK(c.has_value());
        SYM_CHILD_CHECK(pattern_mismatch(c->try_read().bytes(), 0) == -1);
        c->release();
        SYM_CHILD_CHECK(c->try_read().ok());  // read, never released
        ::_exit(0);
      },
      30s);
  ASSERT_TRUE(consumer_status.ok()) << consumer_status;

  auto producer = SpscProducer::attach(ring);
  ASSERT_TRUE(producer.has_value()) << producer.error().message;
  EXPECT_EQ(load(ring.header()->producer_takeovers), 1u);
  auto consumer = SpscConsumer::attach(ring);
  ASSERT_TRUE(consumer.has_value()) << consumer.error().message;
  EXPECT_EQ(load(ring.header()->consumer_takeovers), 1u);
  ASSERT_EQ(producer->try_write(pattern(20, 3)), RingStatus::ok);
  // The dead consumer never released frame 1: it is read again. The dead producer's loan was
  // never published: frame 3 is the new producer's.
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    const Frame frame = consumer->try_read();
    ASSERT_EQ(frame.status, RingStatus::ok) << seq;
    EXPECT_EQ(pattern_mismatch(frame.bytes(), seq), -1) << seq;
  }
  EXPECT_EQ(consumer->try_read().status, RingStatus::empty);
}

TEST_F(SpscRingTest, ProducerRestartedAfterDyingInsidePublishResumesAfterCommittedFrames) {
  // The state a producer killed inside publish() leaves: frame A committed (its commit word
  // stored per the layout), write_index not yet stored, frame B still loaned. The consumer reads
  // and releases A, so read_index passes write_index.
  const std::string n = name();
  SpscRingOptions options;
  options.capacity = 1024;
  auto ring = SpscRing::create(n, options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  SpscConsumer consumer = consumer_of(*ring);
  const auto status = symphony::test::run_in_child(
      [&] {
        auto p = SpscProducer::attach(*ring);
        SYM_CHILD_CHECK(p.has_value());
        const Loan a = p->try_loan(24);
        const Loan b = p->try_loan(24);
        SYM_CHILD_CHECK(a.ok() && b.ok());
        fill_pattern(a.bytes(), 1);
        fill_pattern(b.bytes(), 2);
        std::atomic_ref<std::uint32_t>(frame_at(*ring, 0).commit)
            .store(spsc_commit_word(kFrameData, 0), std::memory_order_release);
        ::_exit(0);
      },
      30s);
  ASSERT_TRUE(status.ok()) << status;
  Frame a = consumer.try_read();
  ASSERT_EQ(a.status, RingStatus::ok);
  EXPECT_EQ(pattern_mismatch(a.bytes(), 1), -1);
  EXPECT_EQ(consumer.try_read().status, RingStatus::empty);
  consumer.release();
  ASSERT_EQ(load(ring->header()->read_index), 32u);
  ASSERT_EQ(load(ring->header()->write_index), 0u);

  // Another process can still open the ring, and a new producer takes over after frame A.
  auto opened = SpscRing::open(n);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  auto producer = SpscProducer::attach(*ring);
  ASSERT_TRUE(producer.has_value()) << producer.error().message;
  EXPECT_EQ(load(ring->header()->producer_takeovers), 1u);
  ASSERT_EQ(producer->try_write(pattern(40, 3)), RingStatus::ok);
  const Frame c = consumer.read(WaitStrategy::sleeping(), Clock::now() + 1s);
  ASSERT_EQ(c.status, RingStatus::ok);
  EXPECT_EQ(pattern_mismatch(c.bytes(), 3), -1);
  EXPECT_FALSE(consumer.corrupt());
}

TEST_F(SpscRingTest, DestroyedProducerDropsItsLoansAndTheNextOneResumes) {
  SpscRing ring = make(1024);
  SpscConsumer consumer = consumer_of(ring);
  {
    SpscProducer producer = producer_of(ring);
    ASSERT_EQ(producer.try_write(pattern(30, 0)), RingStatus::ok);
    const Loan dropped = producer.try_loan(30);
    ASSERT_TRUE(dropped.ok());
    fill_pattern(dropped.bytes(), 666);
  }
  {
    SpscProducer producer = producer_of(ring);
    ASSERT_EQ(producer.try_write(pattern(30, 1)), RingStatus::ok);
  }
  for (std::uint64_t seq = 0; seq < 2; ++seq) {
    const Frame frame = consumer.try_read();
    ASSERT_EQ(frame.status, RingStatus::ok);
    EXPECT_EQ(pattern_mismatch(frame.bytes(), seq), -1) << seq;
  }
  EXPECT_EQ(consumer.try_read().status, RingStatus::empty);
  EXPECT_EQ(load(ring.header()->producer_takeovers), 0u);
}

TEST_F(SpscRingTest, DestroyedConsumerReleasesWhatItRead) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  for (std::uint64_t seq = 0; seq < 3; ++seq) {
    ASSERT_EQ(producer.try_write(pattern(24, seq)), RingStatus::ok);
  }
  {
    SpscConsumer consumer = consumer_of(ring);
    ASSERT_TRUE(consumer.try_read().ok());
    ASSERT_TRUE(consumer.try_read().ok());
  }
  EXPECT_EQ(load(ring.header()->read_index), 64u);
  SpscConsumer consumer = consumer_of(ring);
  const Frame frame = consumer.try_read();
  ASSERT_EQ(frame.status, RingStatus::ok);
  EXPECT_EQ(pattern_mismatch(frame.bytes(), 2), -1);
}

// ---- blocking
// ----------------------------------------------------------------------------------------

TEST_F(SpscRingTest, BlockedProducerSleepsUntilTheDeadline) {
  SpscRing ring = make(256);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  while (producer.try_write(pattern(56, 0)) == RingStatus::ok) {
  }
  const auto start = Clock::now();
  // Few spins, so that the sleep phase is reached well before the deadline even under ASan.
  const Loan loan = producer.loan(56, WaitStrategy{WaitKind::spin_then_sleep, 16, 1}, start + 30ms);
  EXPECT_EQ(loan.status, RingStatus::full);
  EXPECT_GE(Clock::now() - start, 30ms);
  EXPECT_GE(producer.wait_stats().sleeps, 1u);
  EXPECT_GE(producer.wait_stats().timeouts, 1u);
}

TEST_F(SpscRingTest, BlockedProducerIsWokenByARelease) {
  SpscRing ring = make(256);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  std::uint64_t written = 0;
  while (producer.try_write(pattern(56, written)) == RingStatus::ok) ++written;
  std::atomic<bool> released{false};
  std::thread reader([&] {
    std::this_thread::sleep_for(50ms);
    const Frame frame = consumer.try_read();
    if (frame.ok()) consumer.release();
    released.store(frame.ok());
  });
  const auto start = Clock::now();
  const Loan loan = producer.loan(56, WaitStrategy::sleeping(), start + 10s);
  const auto waited = Clock::now() - start;
  reader.join();
  ASSERT_TRUE(released.load());
  ASSERT_EQ(loan.status, RingStatus::ok);
  EXPECT_LT(waited, 5s);
  EXPECT_EQ(producer.wait_stats().timeouts, 0u);
  producer.publish();
}

// ---- corruption
// ---------------------------------------------------------------------------------------

// Corrupt reads must come back quickly and as `corrupt`, and stay so: the ring is quarantined.
void expect_quarantined(SpscConsumer& consumer) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(consumer.try_read().status, RingStatus::corrupt);
    EXPECT_TRUE(consumer.try_read().bytes().empty());
  }
  const auto start = Clock::now();
  EXPECT_EQ(consumer.read(WaitStrategy::sleeping(), start + 2s).status, RingStatus::corrupt);
  EXPECT_LT(Clock::now() - start, 1s) << "a corrupt ring is not a reason to wait";
  EXPECT_TRUE(consumer.corrupt());
}

TEST_F(SpscRingTest, ConsumerReportsAWriteIndexMoreThanARingAhead) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  ASSERT_EQ(producer.try_write(pattern(8, 0)), RingStatus::ok);
  ASSERT_TRUE(consumer.try_read().ok());
  consumer.release();
  const std::uint64_t good = load(ring.header()->write_index);
  store(ring.header()->write_index, good + 1024 + 8);
  const auto start = Clock::now();
  EXPECT_EQ(consumer.read(WaitStrategy::sleeping(), start + 2s).status, RingStatus::corrupt);
  EXPECT_LT(Clock::now() - start, 1s);
  store(ring.header()->write_index, good);  // repaired: still quarantined
  expect_quarantined(consumer);
}

TEST_F(SpscRingTest, ConsumerReportsAMisalignedWriteIndex) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  ASSERT_EQ(producer.try_write(pattern(8, 0)), RingStatus::ok);
  ASSERT_TRUE(consumer.try_read().ok());
  consumer.release();
  store(ring.header()->write_index, load(ring.header()->write_index) + 3);
  EXPECT_EQ(consumer.read(WaitStrategy::sleeping(), Clock::now() + 2s).status, RingStatus::corrupt);
  expect_quarantined(consumer);
}

TEST_F(SpscRingTest, ConsumerReportsAPaddingFrameWhereNoneCanBe) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  ASSERT_EQ(producer.try_write(pattern(56, 0)), RingStatus::ok);  // 64 bytes
  ASSERT_TRUE(consumer.try_read().ok());
  consumer.release();
  ASSERT_EQ(producer.try_write(pattern(40, 1)), RingStatus::ok);  // at position 64
  SpscFrameHeader& header = frame_at(ring, 64);
  const std::uint32_t good = header.commit;
  // A padding frame must cover exactly the tail: one with a data frame's length cannot be.
  store32(header.commit, spsc_commit_word(kFramePadding, 64));
  EXPECT_EQ(consumer.try_read().status, RingStatus::corrupt);
  store32(header.commit, good);
  expect_quarantined(consumer);
}

TEST_F(SpscRingTest, ConsumerReportsAPaddingFrameAtOffsetZero) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  ASSERT_EQ(producer.try_write(pattern(40, 0)), RingStatus::ok);
  SpscFrameHeader& header = frame_at(ring, 0);
  store32(header.length, 1024 - 8);
  store32(header.commit, spsc_commit_word(kFramePadding, 0));
  EXPECT_EQ(consumer.try_read().status, RingStatus::corrupt);
  expect_quarantined(consumer);
}

TEST_F(SpscRingTest, ConsumerReportsAPublishedFrameWithAnImpossibleCommitWord) {
  // write_index says the frame is published, but its commit word is neither kind's: the kind
  // is impossible, and the consumer must say so rather than report `empty` forever.
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  ASSERT_EQ(producer.try_write(pattern(40, 0)), RingStatus::ok);
  store32(frame_at(ring, 0).commit, 0xDEADBEEFu);
  const auto start = Clock::now();
  const Frame frame = consumer.read(WaitStrategy::sleeping(), start + 500ms);
  EXPECT_EQ(frame.status, RingStatus::corrupt)
      << "got '" << to_string(frame.status) << "' after "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()
      << " ms, with write_index " << load(ring.header()->write_index)
      << " past the frame at position 0";
  EXPECT_TRUE(frame.bytes().empty());
}

TEST_F(SpscRingTest, ConsumerReportsALengthAboveMaxPayload) {
  SpscRing ring = make(1024, 200);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  ASSERT_EQ(producer.try_write(pattern(40, 0)), RingStatus::ok);
  SpscFrameHeader& header = frame_at(ring, 0);
  const std::uint32_t good = header.length;
  store32(header.length, 201);
  EXPECT_EQ(consumer.try_read().status, RingStatus::corrupt);
  store32(header.length, good);
  expect_quarantined(consumer);
}

TEST_F(SpscRingTest, ConsumerReportsALengthThatOverrunsTheDataArea) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  // Move to position 960, 64 bytes before the end.
  for (int i = 0; i < 15; ++i) ASSERT_EQ(producer.try_write(pattern(56, 0)), RingStatus::ok);
  for (int i = 0; i < 15; ++i) ASSERT_TRUE(consumer.try_read().ok());
  consumer.release();
  ASSERT_EQ(producer.try_write(pattern(56, 1)), RingStatus::ok);  // fits the tail exactly
  store32(frame_at(ring, 960).length, 200);  // <= max_payload, but runs past the end
  EXPECT_EQ(consumer.try_read().status, RingStatus::corrupt);
  expect_quarantined(consumer);
}

TEST_F(SpscRingTest, ProducerReportsAReadIndexAheadOfWhatItPublished) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  ASSERT_EQ(producer.try_write(pattern(56, 0)), RingStatus::ok);
  store(ring.header()->read_index, 4096);
  RingStatus status = RingStatus::ok;
  for (int i = 0; i < 100 && status == RingStatus::ok; ++i) {
    status = producer.try_write(pattern(56, 0));
  }
  EXPECT_EQ(status, RingStatus::corrupt) << "got " << to_string(status);
  store(ring.header()->read_index, 0);
  EXPECT_EQ(producer.try_write(pattern(8, 0)), RingStatus::corrupt) << "stays corrupt";
  EXPECT_EQ(producer.try_loan(8).status, RingStatus::corrupt);
}

TEST_F(SpscRingTest, ProducerReportsAMisalignedReadIndex) {
  SpscRing ring = make(1024);
  SpscProducer producer = producer_of(ring);
  SpscConsumer consumer = consumer_of(ring);
  for (int i = 0; i < 16; ++i) ASSERT_EQ(producer.try_write(pattern(56, 0)), RingStatus::ok);
  store(ring.header()->read_index, 68);
  EXPECT_EQ(producer.try_write(pattern(56, 0)), RingStatus::corrupt);
}

TEST_F(SpscRingTest, AttachRefusesImpossibleIndices) {
  SpscRing ring = make(1024);
  store(ring.header()->write_index, 1024 + 64);
  store(ring.header()->read_index, 0);
  auto producer = SpscProducer::attach(ring);
  ASSERT_FALSE(producer.has_value());
  EXPECT_EQ(producer.error().code, Errc::invalid_layout);
  auto consumer = SpscConsumer::attach(ring);
  ASSERT_FALSE(consumer.has_value());
  EXPECT_EQ(consumer.error().code, Errc::invalid_layout);
  // A failed attach does not keep the role.
  store(ring.header()->write_index, 0);
  EXPECT_TRUE(SpscProducer::attach(ring).has_value());
  EXPECT_TRUE(SpscConsumer::attach(ring).has_value());
}

TEST_F(SpscRingTest, OpenRefusesImpossibleIndices) {
  const std::string n = name();
  SpscRingOptions options;
  options.capacity = 1024;
  auto ring = SpscRing::create(n, options);
  ASSERT_TRUE(ring.has_value());
  store(ring->header()->write_index, 4);
  auto opened = SpscRing::open(n);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Errc::invalid_layout);
  EXPECT_THAT(opened.error().message, HasSubstr("write_index"));
}

}  // namespace
