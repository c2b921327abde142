// Rings across real processes: streaming, dead participants, lost wake-ups, idle CPU, and a
// hostile peer scribbling over a live ring. Label `multiprocess`, RUN_SERIAL (they spin on two
// cores). ThreadSanitizer cannot see across processes: tsan_twins_test.cpp has the in-process
// twins.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "payload.hpp"
#include "stream_scenarios.hpp"
#include "symphony/engine/doorbell.hpp"
#include "symphony/engine/mpmc_ring.hpp"
#include "symphony/engine/spsc_ring.hpp"
#include "test_scale.hpp"

namespace {

using namespace symphony::engine;
using namespace symphony::test;

class Multiprocess : public ShmTest {};

// The MPMC ring's shared state, for failure messages.
std::string dump(MpmcRing& ring) {
  auto load = [](std::uint64_t& v) { return std::atomic_ref<std::uint64_t>(v).load(); };
  std::string s = "tail " + std::to_string(load(ring.header()->tail)) + " head " +
                  std::to_string(load(ring.header()->head)) + "; participants:";
  for (std::uint64_t i = 0; i < ring.geometry().max_participants; ++i) {
    auto* p = ring.participant(i);
    const std::uint32_t pid = std::atomic_ref<std::uint32_t>(p->owner.pid).load();
    if (pid == 0) continue;
    s += " [" + std::to_string(i) + "] pid " + std::to_string(pid) + " role " +
         std::to_string(std::atomic_ref<std::uint32_t>(p->role).load()) + " intent " +
         std::to_string(static_cast<std::int64_t>(load(p->intent))) + ";";
  }
  s += " slots:";
  for (std::uint64_t i = 0; i < ring.geometry().capacity; ++i) {
    const std::uint64_t seq = load(ring.slot(i)->sequence);
    s += " " + std::to_string(seq & ~symphony::layouts::kMpmcTombstone) +
         ((seq & symphony::layouts::kMpmcTombstone) != 0 ? "T" : "");
  }
  return s;
}

// ---- (a), (b) streaming
// -------------------------------------------------------------------------------

TEST_F(Multiprocess, SpscStreamArrivesCompleteInOrderAndIntact) {
  run_spsc_stream(name(), scaled(10'000'000), 1 << 16, 240s);
}

TEST_F(Multiprocess, MpmcTwoProducersTwoConsumersDeliverEveryMessageExactlyOnce) {
  run_mpmc_stream(name(), scaled(500'000), 240s);
}

// ---- (c) a producer dies holding a loan
// --------------------------------------------------------------

// A child claims a slot and dies (SIGKILL, or _exit) without publishing it. A producer then
// publishes `later` messages through a ring of 16 slots, so it soon runs into the dead slot from
// behind; a consumer process must receive every one of them, in order, without a stall (no wait
// reaching its 2 s deadline), and the slot is counted as abandoned exactly once.
void dead_claimer_scenario(const std::string& name, bool kill_it) {
  MpmcRingOptions options;
  options.capacity = 16;
  options.max_payload = 64;
  options.max_participants = 8;
  auto ring = MpmcRing::create(name, options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  const std::uint64_t later = scaled(20'000);
  SharedArray<std::uint64_t> shared(4);  // [0] claimer step, [1] received, [2] consumer stalls

  ChildProcess claimer([&] {
    auto opened = MpmcRing::open(name);
    SYM_CHILD_CHECK(opened.has_value());
    auto producer = MpmcProducer::attach(*opened);
    SYM_CHILD_CHECK(producer.has_value());
    const Loan loan = producer->try_loan(64);
    SYM_CHILD_CHECK(loan.ok());
    std::memset(loan.bytes().data(), 0xEE, loan.bytes().size());
    shared.at(0).store(1);
    if (!kill_it) ::_exit(0);  // no destructor: the loan stays claimed
    for (;;) ::pause();
  });
  ASSERT_TRUE(eventually([&] { return shared.at(0).load() == 1; }, 30s));
  if (kill_it) claimer.kill9();
  ASSERT_TRUE(claimer.wait(30s).exited || kill_it);

  ChildProcess consumer([&] {
    auto opened = MpmcRing::open(name);
    SYM_CHILD_CHECK(opened.has_value());
    auto c = MpmcConsumer::attach(*opened);
    SYM_CHILD_CHECK(c.has_value());
    std::uint64_t expected = 0;
    const auto give_up = Clock::now() + 120s;
    while (expected < later) {
      SYM_CHILD_CHECK_MSG(Clock::now() < give_up,
                          "consumer gave up at " + std::to_string(expected));
      const Frame frame = c->take(WaitStrategy::sleeping(), Clock::now() + 2s);
      if (frame.would_block()) {
        shared.at(2).fetch_add(1);  // a stall: 2 s without a message
        continue;
      }
      SYM_CHILD_CHECK_MSG(frame.ok(), to_string(frame.status));
      const MessageCheck check = check_message(frame.bytes());
      SYM_CHILD_CHECK_MSG(check.ok, check.why);
      SYM_CHILD_CHECK_MSG(check.seq == expected, "expected " + std::to_string(expected) + ", got " +
                                                     std::to_string(check.seq));
      c->release();
      shared.at(1).store(++expected);
    }
    return 0;
  });

  auto producer = MpmcProducer::attach(*ring);
  ASSERT_TRUE(producer.has_value()) << producer.error().message;
  std::uint64_t producer_stalls = 0;
  const auto give_up = Clock::now() + 120s;
  for (std::uint64_t seq = 0; seq < later && Clock::now() < give_up;) {
    const Loan loan = producer->loan(64, WaitStrategy::sleeping(), Clock::now() + 2s);
    if (loan.would_block()) {
      ++producer_stalls;
      continue;
    }
    ASSERT_TRUE(loan.ok()) << to_string(loan.status);
    fill_message(loan.bytes(), 1, seq);
    producer->publish();
    ++seq;
  }
  const auto status = consumer.wait(150s);
  EXPECT_TRUE(status.ok()) << "consumer: " << status << " after " << shared.at(1).load() << " of "
                           << later << " messages";
  EXPECT_EQ(shared.at(1).load(), later);
  EXPECT_EQ(shared.at(2).load(), 0u) << "the consumer stalled behind the dead claimer's slot";
  EXPECT_EQ(producer_stalls, 0u) << "the producer stalled behind the dead claimer's slot";
  EXPECT_EQ(ring->counters().abandoned_by_producers, 1u);
  EXPECT_EQ(ring->counters().reclaimed_from_consumers, 0u);
}

TEST_F(Multiprocess, MpmcProducerKilledHoldingALoanDoesNotStallConsumers) {
  dead_claimer_scenario(name(), true);
}

TEST_F(Multiprocess, MpmcProducerExitedHoldingALoanDoesNotStallConsumers) {
  dead_claimer_scenario(name(), false);
}

// ---- (d) a consumer dies holding a take
// -----------------------------------------------------------------

TEST_F(Multiprocess, MpmcConsumerKilledHoldingATakeDoesNotShrinkTheRing) {
  const std::string n = name();
  constexpr std::uint64_t kCapacity = 16;
  MpmcRingOptions options;
  options.capacity = kCapacity;
  options.max_payload = 64;
  options.max_participants = 8;
  auto ring = MpmcRing::create(n, options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  auto producer = MpmcProducer::attach(*ring);
  ASSERT_TRUE(producer.has_value());
  std::uint64_t next = 0;
  auto write = [&](Clock::duration patience) {
    const Loan loan = producer->loan(48, WaitStrategy::sleeping(), Clock::now() + patience);
    if (!loan.ok()) return loan.status;
    fill_message(loan.bytes(), 2, next++);
    producer->publish();
    return RingStatus::ok;
  };
  for (std::uint64_t i = 0; i < kCapacity; ++i) ASSERT_EQ(write(1s), RingStatus::ok);

  SharedArray<std::uint64_t> shared(2);
  ChildProcess taker([&] {
    auto opened = MpmcRing::open(n);
    SYM_CHILD_CHECK(opened.has_value());
    auto c = MpmcConsumer::attach(*opened);
    SYM_CHILD_CHECK(c.has_value());
    const Frame frame = c->try_take();
    SYM_CHILD_CHECK(frame.ok());
    shared.at(1).store(check_message(frame.bytes()).seq);
    shared.at(0).store(1);
    for (;;) ::pause();
  });
  ASSERT_TRUE(eventually([&] { return shared.at(0).load() == 1; }, 30s));
  EXPECT_EQ(shared.at(1).load(), 0u);
  taker.kill9();

  auto consumer = MpmcConsumer::attach(*ring);
  ASSERT_TRUE(consumer.has_value());
  std::vector<unsigned> delivered(kCapacity * 3, 0);
  auto drain = [&] {
    for (;;) {
      const Frame frame = consumer->try_take();
      if (frame.would_block()) return;
      ASSERT_TRUE(frame.ok()) << to_string(frame.status);
      const MessageCheck check = check_message(frame.bytes());
      ASSERT_TRUE(check.ok) << check.why;
      ASSERT_LT(check.seq, delivered.size());
      ++delivered[check.seq];
      consumer->release();
    }
  };
  drain();  // messages 1..15: the dead consumer had message 0 in hand
  // The whole ring is usable again: `capacity` more messages fit, without a long wait.
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < kCapacity; ++i) {
    ASSERT_EQ(write(2s), RingStatus::ok) << "message " << next << ": the dead consumer's slot "
                                         << "was not reclaimed\n"
                                         << dump(*ring);
  }
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(producer->try_write(std::vector<std::byte>(48)), RingStatus::full);
  EXPECT_EQ(ring->counters().reclaimed_from_consumers, 1u);
  EXPECT_EQ(ring->counters().abandoned_by_producers, 0u);
  drain();
  for (std::uint64_t i = 0; i < kCapacity; ++i) ASSERT_EQ(write(1s), RingStatus::ok);
  drain();
  EXPECT_EQ(delivered[0], 0u) << "message 0 was delivered to the dead consumer (at most once)";
  for (std::uint64_t seq = 1; seq < next; ++seq) {
    EXPECT_EQ(delivered[seq], 1u) << "message " << seq;
  }
}

// ---- (e) an SPSC producer killed mid-stream
// ----------------------------------------------------------------

TEST_F(Multiprocess, SpscProducerKilledMidStreamIsReplacedWithoutLossOrDuplication) {
  const std::string n = name();
  SpscRingOptions options;
  options.capacity = 1 << 16;
  auto ring = SpscRing::create(n, options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  auto consumer = SpscConsumer::attach(*ring);
  ASSERT_TRUE(consumer.has_value());
  const std::uint64_t per_round = scaled(100'000);
  constexpr int kKills = 3;
  std::uint64_t expected = 0;

  // Reads and checks one message; false when nothing came within `patience`.
  auto read_one = [&](Clock::duration patience) {
    const Frame frame = consumer->read(WaitStrategy::sleeping(), Clock::now() + patience);
    if (frame.would_block()) return false;
    EXPECT_TRUE(frame.ok()) << to_string(frame.status) << " after message " << expected;
    if (!frame.ok()) return false;
    const MessageCheck check = check_message(frame.bytes());
    EXPECT_TRUE(check.ok) << check.why << " at message " << expected;
    EXPECT_EQ(check.seq, expected) << "lost, duplicated or reordered";
    EXPECT_EQ(frame.bytes().size(), spsc_stream_length(expected));
    consumer->release();
    expected = check.seq + 1;
    return check.ok;
  };

  for (int round = 0; round <= kKills; ++round) {
    const std::uint64_t first = expected;
    const bool last_round = round == kKills;
    ChildProcess producer([&] {
      auto opened = SpscRing::open(n);
      SYM_CHILD_CHECK_MSG(opened.has_value(), opened.error().message);
      auto p = SpscProducer::attach(*opened);
      SYM_CHILD_CHECK_MSG(p.has_value(), p.error().message);
      const std::uint64_t end = last_round ? first + per_round : ~0ULL;
      for (std::uint64_t seq = first; seq < end; ++seq) {
        const Loan loan =
            p->loan(spsc_stream_length(seq), WaitStrategy::sleeping(), Clock::now() + 30s);
        SYM_CHILD_CHECK(loan.ok());
        fill_message(loan.bytes(), 0, seq);
        p->publish();
      }
      return 0;
    });
    SCOPED_TRACE("round " + std::to_string(round));
    while (expected < first + per_round) {
      ASSERT_TRUE(read_one(10s)) << "stream stopped at message " << expected;
      if (HasFailure()) return;
    }
    if (last_round) {
      const auto status = producer.wait(30s);
      EXPECT_TRUE(status.ok()) << status;
      EXPECT_FALSE(read_one(10ms)) << "more than was sent";
      break;
    }
    producer.kill9();
    // Everything it published arrives, contiguously; then nothing.
    while (read_one(50ms)) {
      if (HasFailure()) return;
    }
    EXPECT_FALSE(consumer->corrupt());
  }
  EXPECT_EQ(std::atomic_ref<std::uint64_t>(ring->header()->producer_takeovers).load(),
            static_cast<std::uint64_t>(kKills));
  EXPECT_EQ(expected, consumer->frames_read());
}

// ---- (f) no lost wake-up
// -------------------------------------------------------------------------------

struct Ping {
  std::uint64_t seq;
  std::uint64_t sent_ns;
};

TEST_F(Multiprocess, SleepingConsumerNeverMissesAWakeUp) {
  const std::string data_name = name("data");
  const std::string ack_name = name("ack");
  SpscRingOptions options;
  options.capacity = 4096;
  auto data = SpscRing::create(data_name, options);
  auto ack = SpscRing::create(ack_name, options);
  ASSERT_TRUE(data.has_value() && ack.has_value());
  const std::uint64_t count = scaled(100'000);
  constexpr std::uint64_t kLimitNs = 50'000'000;  // 50 ms
  // [0] received, [1] late (> 50 ms), [2] max latency ns, [3] sleeps, [4] timeouts
  SharedArray<std::uint64_t> result(8);

  ChildProcess consumer([&] {
    auto d = SpscRing::open(data_name);
    auto a = SpscRing::open(ack_name);
    SYM_CHILD_CHECK(d.has_value() && a.has_value());
    auto in = SpscConsumer::attach(*d);
    auto out = SpscProducer::attach(*a);
    SYM_CHILD_CHECK(in.has_value() && out.has_value());
    for (std::uint64_t i = 0; i < count; ++i) {
      const Frame frame = in->read(WaitStrategy::sleeping(), Clock::now() + 1s);
      const std::uint64_t now = now_ns();
      result[3] = in->wait_stats().sleeps;
      result[4] = in->wait_stats().timeouts;
      SYM_CHILD_CHECK_MSG(frame.ok(),
                          "message " + std::to_string(i) + ": " + to_string(frame.status));
      SYM_CHILD_CHECK(frame.bytes().size() == sizeof(Ping));
      Ping ping;
      std::memcpy(&ping, frame.bytes().data(), sizeof ping);
      in->release();
      SYM_CHILD_CHECK(ping.seq == i);
      const std::uint64_t latency = now - ping.sent_ns;
      result[2] = std::max(result[2], latency);
      if (latency > kLimitNs) ++result[1];
      result.at(0).store(i + 1);
      if (result[1] > 5 || result[4] > 5) return 1;  // broken: do not wait out every message
      SYM_CHILD_CHECK(out->try_write(std::as_bytes(std::span(&ping.seq, 1))) == RingStatus::ok);
    }
    return 0;
  });

  auto out = SpscProducer::attach(*data);
  auto in = SpscConsumer::attach(*ack);
  ASSERT_TRUE(out.has_value() && in.has_value());
  std::mt19937_64 rng(7);
  for (std::uint64_t i = 0; i < count; ++i) {
    const Ping ping{i, now_ns()};
    ASSERT_EQ(out->try_write(std::as_bytes(std::span(&ping, 1))), RingStatus::ok);
    const auto sent = Clock::now();
    const Frame reply = in->read(WaitStrategy::sleeping(), sent + 1s);
    if (!reply.ok()) {
      ADD_FAILURE() << "no acknowledgement for message " << i << " within 1 s ("
                    << to_string(reply.status) << ")";
      break;
    }
    std::uint64_t acked;
    std::memcpy(&acked, reply.bytes().data(), sizeof acked);
    in->release();
    ASSERT_EQ(acked, i);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 201));
  }
  const auto status = consumer.wait(60s);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(result.at(0).load(), count);
  EXPECT_EQ(result[1], 0u) << "messages later than 50 ms; worst " << result[2] / 1000 << " us";
  EXPECT_EQ(result[4], 0u) << "consumer futex waits that ended by timeout: lost wake-ups";
  EXPECT_EQ(in->wait_stats().timeouts, 0u) << "acknowledgement waits ended by timeout";
  EXPECT_GT(result[3], 0u) << "the consumer never slept: the test proved nothing";
  std::printf("no-lost-wake-up: %llu messages, consumer slept %llu times, worst latency %llu us\n",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(result[3]),
              static_cast<unsigned long long>(result[2] / 1000));
}

// ---- (g) an idle consumer costs nothing, a busy one costs no syscalls
// -------------------------------------

TEST_F(Multiprocess, IdleSleepingConsumerUsesUnderOnePercentOfACore) {
  const std::string n = name();
  SpscRingOptions options;
  options.capacity = 4096;
  auto ring = SpscRing::create(n, options);
  ASSERT_TRUE(ring.has_value());
  const auto idle = test_scale() < 1.0 ? 2s : 10s;
  // [0] attached, [1] cpu us, [2] wall us, [3] sleeps, [4] timeouts, [5] got the message
  SharedArray<std::uint64_t> result(8);
  ChildProcess consumer([&] {
    auto opened = SpscRing::open(n);
    SYM_CHILD_CHECK(opened.has_value());
    auto c = SpscConsumer::attach(*opened);
    SYM_CHILD_CHECK(c.has_value());
    const auto cpu0 = process_cpu_time();
    const auto wall0 = Clock::now();
    result.at(0).store(1);
    const Frame frame = c->read(WaitStrategy::sleeping(), wall0 + idle + 20s);
    result[1] = static_cast<std::uint64_t>((process_cpu_time() - cpu0).count());
    result[2] = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - wall0).count());
    result[3] = c->wait_stats().sleeps;
    result[4] = c->wait_stats().timeouts;
    result[5] = frame.ok() ? 1 : 0;
    return 0;
  });
  ASSERT_TRUE(eventually([&] { return result.at(0).load() == 1; }, 30s));
  DoorbellRef bell(&ring->header()->data_available);
  ASSERT_TRUE(eventually([&] { return bell.waiters() == 1; }, 5s))
      << "the consumer should be asleep on data_available";
  std::this_thread::sleep_for(idle);
  EXPECT_EQ(bell.waiters(), 1u);
  const std::uint32_t sequence =
      std::atomic_ref<std::uint32_t>(ring->header()->data_available.sequence).load();
  auto producer = SpscProducer::attach(*ring);
  ASSERT_TRUE(producer.has_value());
  ASSERT_EQ(producer->try_write(std::vector<std::byte>(16)), RingStatus::ok);
  const auto status = consumer.wait(30s);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(result[5], 1u);
  const double cpu_share = static_cast<double>(result[1]) / static_cast<double>(result[2]);
  EXPECT_LE(cpu_share, 0.01) << result[1] << " us of CPU in " << result[2] << " us";
  EXPECT_EQ(result[4], 0u) << "woken by the publish, not by a timeout";
  EXPECT_GE(result[3], 1u);
  EXPECT_EQ(std::atomic_ref<std::uint32_t>(ring->header()->data_available.sequence).load(),
            sequence + 1)
      << "exactly one wake-up syscall for one sleeper";
  std::printf("idle consumer: %llu us CPU over %llu us (%.4f %%)\n",
              static_cast<unsigned long long>(result[1]),
              static_cast<unsigned long long>(result[2]), cpu_share * 100);
}

TEST_F(Multiprocess, PublishingToABusySpinningConsumerMakesNoWakeUpSyscall) {
  const std::string n = name();
  SpscRingOptions options;
  options.capacity = 1 << 16;
  auto ring = SpscRing::create(n, options);
  ASSERT_TRUE(ring.has_value());
  const std::uint64_t count = scaled(200'000);
  SharedArray<std::uint64_t> result(4);  // [0] attached, [1] received, [2] sleeps
  ChildProcess consumer([&] {
    auto opened = SpscRing::open(n);
    SYM_CHILD_CHECK(opened.has_value());
    auto c = SpscConsumer::attach(*opened);
    SYM_CHILD_CHECK(c.has_value());
    result.at(0).store(1);
    for (std::uint64_t i = 0; i < count; ++i) {
      const Frame frame = c->read(WaitStrategy::busy(), Clock::now() + 30s);
      SYM_CHILD_CHECK(frame.ok());
      const MessageCheck check = check_message(frame.bytes());
      SYM_CHILD_CHECK(check.ok && check.seq == i);
      c->release();
      result.at(1).store(i + 1);
    }
    result[2] = c->wait_stats().sleeps;
    return 0;
  });
  ASSERT_TRUE(eventually([&] { return result.at(0).load() == 1; }, 30s));
  auto producer = SpscProducer::attach(*ring);
  ASSERT_TRUE(producer.has_value());
  DoorbellRef bell(&ring->header()->data_available);
  std::atomic_ref<std::uint32_t> sequence(ring->header()->data_available.sequence);
  const std::uint32_t before = sequence.load();
  std::uint64_t rang = 0;
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    const Loan loan = producer->loan(48, WaitStrategy::yielding(), Clock::now() + 30s);
    ASSERT_TRUE(loan.ok());
    fill_message(loan.bytes(), 0, seq);
    producer->publish();
    if (seq % 1024 == 0 && bell.ring()) ++rang;  // nobody sleeps: no syscall
  }
  const auto status = consumer.wait(60s);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(result.at(1).load(), count);
  EXPECT_EQ(result[2], 0u);
  EXPECT_EQ(rang, 0u) << "DoorbellRef::ring() made a syscall with no sleeper";
  EXPECT_EQ(sequence.load(), before) << "publish() woke a consumer that never slept";
  EXPECT_EQ(bell.waiters(), 0u);
}

// ---- (h) a hostile peer
// ---------------------------------------------------------------------------------

// Writes random values over the ring's indices and data (or slots) until killed.
void scribble(std::byte* begin, std::size_t size, std::uint64_t* indices[], std::size_t n_indices,
              std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (;;) {
    const std::uint64_t r = rng();
    switch (r % 4) {
      case 0: {  // an index: random, or nudged
        std::atomic_ref<std::uint64_t> index(*indices[(r >> 8) % n_indices]);
        const std::uint64_t v = rng();
        index.store(v % 2 == 0 ? v : index.load() + (v % 64) - 32);
        break;
      }
      case 1:
      case 2: {  // a 32-bit word in the data area (frame lengths, commit words, sequences)
        const std::size_t at = ((r >> 8) % (size / 4)) * 4;
        std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(begin + at))
            .store(static_cast<std::uint32_t>(rng() % 3 == 0 ? rng() : rng() % 4096));
        break;
      }
      default:
        if (r % 64 == 3) ::usleep(static_cast<useconds_t>(r % 200));
        break;
    }
  }
}

TEST_F(Multiprocess, SpscReaderSurvivesAPeerScribblingOverTheRing) {
  const int rounds = static_cast<int>(std::max<std::uint64_t>(5, scaled(30)));
  int detected = 0;
  std::uint64_t frames_ok = 0;
  auto slowest = Clock::duration::zero();
  for (int round = 0; round < rounds; ++round) {
    SpscRingOptions options;
    options.capacity = 4096;
    auto ring = SpscRing::create(name(), options);
    ASSERT_TRUE(ring.has_value());
    auto producer = SpscProducer::attach(*ring);
    auto consumer = SpscConsumer::attach(*ring);
    ASSERT_TRUE(producer.has_value() && consumer.has_value());
    for (int i = 0; i < 20; ++i)
      ASSERT_EQ(producer->try_write(std::vector<std::byte>(40)), RingStatus::ok);
    std::byte* data = ring->data();
    const std::uint64_t capacity = ring->geometry().capacity;
    const std::uint64_t max_payload = ring->max_payload();
    std::uint64_t* indices[] = {&ring->header()->write_index, &ring->header()->read_index};
    ChildProcess scribbler(
        [&] { scribble(data, capacity, indices, 2, static_cast<std::uint64_t>(round)); });
    std::mt19937_64 rng(static_cast<std::uint64_t>(round) + 100);
    const auto round_end = Clock::now() + 50ms;
    for (std::uint64_t i = 0; Clock::now() < round_end; ++i) {
      const auto t0 = Clock::now();
      if (i % 2 == 0) {
        const Loan loan = producer->try_loan(rng() % (max_payload + 1));
        if (loan.ok()) {
          ASSERT_GE(loan.bytes().data(), data);
          ASSERT_LE(loan.bytes().data() + loan.bytes().size(), data + capacity);
          std::memset(loan.bytes().data(), 0x5A, loan.bytes().size());
          producer->publish();
        }
      } else {
        const Frame frame = i % 64 == 1
                                ? consumer->read(WaitStrategy{WaitKind::spin_then_sleep, 0, 0},
                                                 Clock::now() + std::chrono::microseconds(50))
                                : consumer->try_read();
        if (frame.ok()) {
          ++frames_ok;
          ASSERT_LE(frame.bytes().size(), max_payload);
          ASSERT_GE(frame.bytes().data(), data);
          ASSERT_LE(frame.bytes().data() + frame.bytes().size(), data + capacity);
          volatile std::byte sink{};
          for (std::byte b : frame.bytes()) sink = b;  // touch every byte (ASan, SIGSEGV)
          (void)sink;
          consumer->release();
        } else if (frame.status == RingStatus::corrupt) {
          EXPECT_TRUE(consumer->corrupt());
        }
      }
      slowest = std::max(slowest, Clock::now() - t0);
      if (consumer->corrupt() && i % 2 == 1) break;
    }
    if (consumer->corrupt()) ++detected;
    scribbler.kill9();
  }
  EXPECT_GT(detected, 0) << "no round detected the scribbling";
  EXPECT_LT(slowest, 200ms) << "a ring call took too long with a hostile peer";
  std::printf(
      "scribbled SPSC: %d of %d rounds quarantined the ring, %llu frames read, slowest "
      "call %lld us\n",
      detected, rounds, static_cast<unsigned long long>(frames_ok),
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::microseconds>(slowest).count()));
}

TEST_F(Multiprocess, MpmcParticipantsSurviveAPeerScribblingOverTheRing) {
  const int rounds = static_cast<int>(std::max<std::uint64_t>(5, scaled(30)));
  std::uint64_t frames_ok = 0;
  std::uint64_t corrupt = 0;
  auto slowest = Clock::duration::zero();
  for (int round = 0; round < rounds; ++round) {
    MpmcRingOptions options;
    options.capacity = 16;
    options.max_payload = 64;
    options.max_participants = 4;
    auto ring = MpmcRing::create(name(), options);
    ASSERT_TRUE(ring.has_value());
    auto producer = MpmcProducer::attach(*ring);
    auto consumer = MpmcConsumer::attach(*ring);
    ASSERT_TRUE(producer.has_value() && consumer.has_value());
    const auto& g = ring->geometry();
    std::byte* slots = ring->segment().base() + g.slots_offset;
    const std::size_t slots_size = g.capacity * g.slot_stride;
    std::uint64_t* indices[] = {&ring->header()->head, &ring->header()->tail};
    ChildProcess scribbler(
        [&] { scribble(slots, slots_size, indices, 2, static_cast<std::uint64_t>(round) + 7); });
    std::mt19937_64 rng(static_cast<std::uint64_t>(round));
    const auto round_end = Clock::now() + 50ms;
    for (std::uint64_t i = 0; Clock::now() < round_end; ++i) {
      const auto t0 = Clock::now();
      if (i % 2 == 0) {
        const Loan loan = i % 32 == 0
                              ? producer->loan(rng() % 65, WaitStrategy::sleeping(),
                                               Clock::now() + std::chrono::microseconds(200))
                              : producer->try_loan(rng() % 65);
        if (loan.ok()) {
          ASSERT_GE(loan.bytes().data(), slots);
          ASSERT_LE(loan.bytes().data() + loan.bytes().size(), slots + slots_size);
          std::memset(loan.bytes().data(), 0x5A, loan.bytes().size());
          producer->publish();
        }
      } else {
        const Frame frame = i % 32 == 1
                                ? consumer->take(WaitStrategy::sleeping(),
                                                 Clock::now() + std::chrono::microseconds(200))
                                : consumer->try_take();
        if (frame.ok()) {
          ++frames_ok;
          ASSERT_LE(frame.bytes().size(), g.max_payload);
          ASSERT_GE(frame.bytes().data(), slots);
          ASSERT_LE(frame.bytes().data() + frame.bytes().size(), slots + slots_size);
          volatile std::byte sink{};
          for (std::byte b : frame.bytes()) sink = b;
          (void)sink;
          consumer->release();
        } else if (frame.status == RingStatus::corrupt) {
          ++corrupt;
        }
      }
      slowest = std::max(slowest, Clock::now() - t0);
    }
    scribbler.kill9();
  }
  EXPECT_LT(slowest, 200ms) << "a ring call took too long with a hostile peer";
  std::printf(
      "scribbled MPMC: %d rounds, %llu frames read, %llu corrupt reports, slowest call "
      "%lld us\n",
      rounds, static_cast<unsigned long long>(frames_ok), static_cast<unsigned long long>(corrupt),
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::microseconds>(slowest).count()));
}

}  // namespace
