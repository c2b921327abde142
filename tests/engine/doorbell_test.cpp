// The futex doorbell: no syscall without a sleeper, timeouts, and wake-ups across threads and
// across processes (which a FUTEX_PRIVATE_FLAG doorbell would fail).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include <gtest/gtest.h>

#include "symphony/engine/doorbell.hpp"
#include "symphony/engine/wait_strategy.hpp"
#include "symphony/layouts/doorbell.hpp"
#include "test_scale.hpp"

namespace {

using namespace symphony::engine;
using symphony::layouts::Doorbell;
using symphony::test::Clock;
using symphony::test::eventually;
using namespace std::chrono_literals;

std::uint32_t sequence_of(Doorbell& bell) {
  return std::atomic_ref<std::uint32_t>(bell.sequence).load();
}

TEST(Doorbell, RingWithNoWaiterMakesNoSyscall) {
  Doorbell bell{};
  DoorbellRef ref(&bell);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(ref.ring());
  EXPECT_EQ(sequence_of(bell), 0u) << "the sequence moves only when a wake-up is sent";
  EXPECT_EQ(ref.waiters(), 0u);
}

TEST(Doorbell, PrepareAndFinishCountWaiters) {
  Doorbell bell{};
  bell.sequence = 41;
  DoorbellRef ref(&bell);
  const std::uint32_t ticket = ref.prepare_wait();
  EXPECT_EQ(ticket, 41u);
  EXPECT_EQ(ref.waiters(), 1u);
  const std::uint32_t second = ref.prepare_wait();
  EXPECT_EQ(second, 41u);
  EXPECT_EQ(ref.waiters(), 2u);
  ref.finish_wait();
  ref.finish_wait();
  EXPECT_EQ(ref.waiters(), 0u);
  EXPECT_FALSE(ref.ring());
}

TEST(Doorbell, RingWithAWaiterBumpsTheSequenceSoTheWaitReturnsAtOnce) {
  Doorbell bell{};
  DoorbellRef ref(&bell);
  const std::uint32_t ticket = ref.prepare_wait();
  EXPECT_TRUE(ref.ring());
  EXPECT_EQ(sequence_of(bell), ticket + 1);
  const auto start = Clock::now();
  const WakeReason reason = ref.wait(ticket, 5s);
  EXPECT_EQ(reason, WakeReason::changed);
  EXPECT_LT(Clock::now() - start, 1s);
  ref.finish_wait();
}

TEST(Doorbell, SequenceWrapsAround) {
  Doorbell bell{};
  bell.sequence = 0xFFFFFFFFu;
  DoorbellRef ref(&bell);
  const std::uint32_t ticket = ref.prepare_wait();
  EXPECT_TRUE(ref.ring());
  EXPECT_EQ(sequence_of(bell), 0u);
  EXPECT_EQ(ref.wait(ticket, 5s), WakeReason::changed);
  ref.finish_wait();
}

TEST(Doorbell, WaitTimesOut) {
  Doorbell bell{};
  DoorbellRef ref(&bell);
  const std::uint32_t ticket = ref.prepare_wait();
  const auto start = Clock::now();
  EXPECT_EQ(ref.wait(ticket, 20ms), WakeReason::timed_out);
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 15ms);
  EXPECT_LT(elapsed, 2s);
  ref.finish_wait();
  EXPECT_EQ(ref.wait(ticket, 0ns), WakeReason::timed_out);
  EXPECT_EQ(ref.wait(ticket, -5ms), WakeReason::timed_out);
}

TEST(Doorbell, WaitLongerThanASecondIsNotTruncated) {
  // The timeout is split into tv_sec / tv_nsec: 1.05 s must not become 0.05 s.
  Doorbell bell{};
  DoorbellRef ref(&bell);
  const std::uint32_t ticket = ref.prepare_wait();
  const auto start = Clock::now();
  EXPECT_EQ(ref.wait(ticket, 1050ms), WakeReason::timed_out);
  EXPECT_GE(Clock::now() - start, 1s);
  ref.finish_wait();
}

TEST(Doorbell, AThreadWakesASleeper) {
  Doorbell bell{};
  DoorbellRef ref(&bell);
  std::atomic<int> reason{-1};
  std::atomic<std::int64_t> slept_ms{-1};
  std::thread sleeper([&] {
    const auto start = Clock::now();
    const std::uint32_t ticket = ref.prepare_wait();
    reason.store(static_cast<int>(ref.wait(ticket, 10s)));
    ref.finish_wait();
    slept_ms.store(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
  });
  ASSERT_TRUE(eventually([&] { return ref.waiters() == 1; }, 10s));
  std::this_thread::sleep_for(20ms);  // let it reach FUTEX_WAIT
  EXPECT_TRUE(ref.ring());
  sleeper.join();
  EXPECT_TRUE(reason.load() == static_cast<int>(WakeReason::woken) ||
              reason.load() == static_cast<int>(WakeReason::changed))
      << "reason " << reason.load();
  EXPECT_LT(slept_ms.load(), 5000);
  EXPECT_EQ(ref.waiters(), 0u);
}

TEST(Doorbell, WakesASleeperInAnotherProcess) {
  // A private futex would never wake the child: the kernel would key it by our address space.
  symphony::test::SharedArray<Doorbell> bell(1);
  DoorbellRef ref(&bell[0]);
  symphony::test::ChildProcess sleeper([&] {
    DoorbellRef child_ref(&bell[0]);
    const std::uint32_t ticket = child_ref.prepare_wait();
    const WakeReason reason = child_ref.wait(ticket, 10s);
    child_ref.finish_wait();
    return static_cast<int>(reason);
  });
  ASSERT_TRUE(eventually([&] { return ref.waiters() == 1; }, 10s));
  std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(ref.ring());
  const auto status = sleeper.wait(20s);
  ASSERT_TRUE(status.exited) << status;
  EXPECT_TRUE(status.exit_code == static_cast<int>(WakeReason::woken) ||
              status.exit_code == static_cast<int>(WakeReason::changed))
      << "wake reason " << status.exit_code << " (timed_out is "
      << static_cast<int>(WakeReason::timed_out) << ")";
}

struct Attempt {
  bool ready = false;
  bool would_block() const noexcept { return !ready; }
};

TEST(WaitUntil, SleepsUntilTheDeadline) {
  Doorbell bell{};
  WaitStats stats;
  const auto start = Clock::now();
  const auto result =
      wait_until([] { return Attempt{false}; }, DoorbellRef(&bell),
                 WaitStrategy{WaitKind::spin_then_sleep, 16, 1}, start + 30ms, &stats);
  EXPECT_TRUE(result.would_block());
  EXPECT_GE(Clock::now() - start, 30ms);
  EXPECT_GE(stats.sleeps, 1u);
  EXPECT_GE(stats.timeouts, 1u);
  EXPECT_EQ(DoorbellRef(&bell).waiters(), 0u);
}

TEST(WaitUntil, BusySpinNeverSleeps) {
  Doorbell bell{};
  WaitStats stats;
  const auto start = Clock::now();
  const auto result = wait_until([] { return Attempt{false}; }, DoorbellRef(&bell),
                                 WaitStrategy::busy(), start + 5ms, &stats);
  EXPECT_TRUE(result.would_block());
  EXPECT_GE(Clock::now() - start, 5ms);
  EXPECT_EQ(stats.sleeps, 0u);
}

TEST(WaitUntil, ReturnsAtOnceWhenReady) {
  Doorbell bell{};
  WaitStats stats;
  int calls = 0;
  const auto result = wait_until(
      [&] {
        ++calls;
        return Attempt{true};
      },
      DoorbellRef(&bell), WaitStrategy::sleeping(), Clock::now() + 10s, &stats);
  EXPECT_FALSE(result.would_block());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(stats.sleeps, 0u);
}

// The handshake of doorbell.hpp, many times over: a seq_cst flag and ring() against a sleeper.
// A lost wake-up shows as a wait that ends by timeout.
TEST(WaitUntil, NoLostWakeUpBetweenThreads) {
  Doorbell bell{};
  const std::uint64_t rounds = symphony::test::scaled(2000);
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> consumed{0};
  WaitStats stats;
  std::uint64_t failures = 0;
  std::thread consumer([&] {
    for (std::uint64_t i = 1; i <= rounds; ++i) {
      const auto result =
          wait_until([&] { return Attempt{published.load(std::memory_order_seq_cst) >= i}; },
                     DoorbellRef(&bell), WaitStrategy{WaitKind::spin_then_sleep, 16, 1},
                     Clock::now() + 2s, &stats);
      if (result.would_block()) ++failures;
      consumed.store(i);
    }
  });
  for (std::uint64_t i = 1; i <= rounds; ++i) {
    // Vary the gap so that the consumer is sometimes asleep, sometimes spinning.
    if (i % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(i % 100));
    published.store(i, std::memory_order_seq_cst);
    DoorbellRef(&bell).ring();
    const auto deadline = Clock::now() + 5s;
    while (consumed.load() < i && Clock::now() < deadline) std::this_thread::yield();
  }
  consumer.join();
  EXPECT_EQ(failures, 0u);
  EXPECT_EQ(stats.timeouts, 0u) << "a sleep ended by timeout: a wake-up was lost";
  EXPECT_GT(stats.sleeps, 0u) << "the consumer never slept: the test did not test anything";
}

}  // namespace
