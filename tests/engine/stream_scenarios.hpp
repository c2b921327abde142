#pragma once
// Cross-process streaming scenarios shared by multiprocess_test.cpp and stress_test.cpp: a
// producer and a consumer process on an SPSC ring, and 2 producers + 2 consumers on an MPMC ring,
// every message self-checking (payload.hpp). The GoogleTest assertions run in the parent; the
// children report through SharedArray and their exit codes.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "payload.hpp"
#include "symphony/engine/mpmc_ring.hpp"
#include "symphony/engine/spsc_ring.hpp"
#include "test_scale.hpp"

namespace symphony::test {

// SPSC message lengths: mostly small, every 97th up to 2000 bytes (so frames wrap with padding).
inline std::size_t spsc_stream_length(std::uint64_t seq) {
  return seq % 97 == 0 ? message_length(0, seq, kMessageHeaderSize, 2000)
                       : message_length(0, seq, kMessageHeaderSize, 200);
}

// Producer and consumer in two child processes, each opening the ring by name. The producer
// publishes in batches of 1..8 frames; the consumer checks sequence, length and checksum of
// every frame and releases in batches when it has caught up.
inline void run_spsc_stream(const std::string& name, std::uint64_t count, std::uint64_t capacity,
                            Clock::duration timeout) {
  engine::SpscRingOptions options;
  options.capacity = capacity;
  auto ring = engine::SpscRing::create(name, options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  // [0] frames received, [1] consumer sleeps, [2] producer sleeps
  SharedArray<std::uint64_t> result(4);
  const auto start = Clock::now();

  ChildProcess consumer([&] {
    auto opened = engine::SpscRing::open(name);
    SYM_CHILD_CHECK_MSG(opened.has_value(), opened.error().message);
    auto c = engine::SpscConsumer::attach(*opened);
    SYM_CHILD_CHECK_MSG(c.has_value(), c.error().message);
    for (std::uint64_t expected = 0; expected < count; ++expected) {
      engine::Frame frame = c->try_read();
      if (frame.would_block()) {
        c->release();  // caught up: hand the space back before waiting
        frame = c->read(engine::WaitStrategy::sleeping(), Clock::now() + 10s);
      }
      SYM_CHILD_CHECK_MSG(frame.ok(), std::string("read at message ") + std::to_string(expected) +
                                          ": " + engine::to_string(frame.status));
      const MessageCheck check = check_message(frame.bytes());
      SYM_CHILD_CHECK_MSG(check.ok,
                          std::string(check.why) + " at message " + std::to_string(expected));
      SYM_CHILD_CHECK_MSG(check.seq == expected && check.stream == 0,
                          "expected message " + std::to_string(expected) + ", got " +
                              std::to_string(check.seq) + " (lost, duplicated or reordered)");
      SYM_CHILD_CHECK_MSG(frame.bytes().size() == spsc_stream_length(expected),
                          "wrong length at message " + std::to_string(expected));
      result.at(0).store(expected + 1, std::memory_order_relaxed);
    }
    c->release();
    SYM_CHILD_CHECK(c->try_read().would_block());
    result[1] = c->wait_stats().sleeps;
    return 0;
  });

  ChildProcess producer([&] {
    auto opened = engine::SpscRing::open(name);
    SYM_CHILD_CHECK_MSG(opened.has_value(), opened.error().message);
    auto p = engine::SpscProducer::attach(*opened);
    SYM_CHILD_CHECK_MSG(p.has_value(), p.error().message);
    std::uint64_t batch_left = 1;
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      const std::size_t length = spsc_stream_length(seq);
      engine::Loan loan = p->try_loan(length);
      if (!loan.ok()) {
        p->publish();  // never wait for space while holding unpublished frames
        loan = p->loan(length, engine::WaitStrategy::sleeping(), Clock::now() + 10s);
      }
      SYM_CHILD_CHECK_MSG(loan.ok(), std::string("loan at message ") + std::to_string(seq) + ": " +
                                         engine::to_string(loan.status));
      fill_message(loan.bytes(), 0, seq);
      if (--batch_left == 0) {
        p->publish();
        batch_left = 1 + mix64(seq) % 8;
      }
    }
    p->publish();
    SYM_CHILD_CHECK(p->frames_published() == count);
    result[2] = p->wait_stats().sleeps;
    return 0;
  });

  const auto producer_status = producer.wait(timeout);
  const auto consumer_status = consumer.wait(timeout);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_TRUE(producer_status.ok()) << "producer " << producer_status;
  EXPECT_TRUE(consumer_status.ok()) << "consumer " << consumer_status << " after "
                                    << result.at(0).load() << " of " << count << " messages";
  EXPECT_EQ(result.at(0).load(), count);
  std::printf(
      "spsc stream: %llu messages in %.2f s (%.2f M/s); sleeps: consumer %llu, producer "
      "%llu\n",
      static_cast<unsigned long long>(count), seconds, static_cast<double>(count) / seconds / 1e6,
      static_cast<unsigned long long>(result[1]), static_cast<unsigned long long>(result[2]));
}

// 2 producer and 2 consumer processes. Each consumer marks what it got in its own table
// (consumer x producer x seq); the parent checks that the union is complete and disjoint.
inline void run_mpmc_stream(const std::string& name, std::uint64_t per_producer,
                            Clock::duration timeout) {
  constexpr std::uint64_t kProducers = 2;
  constexpr std::uint64_t kConsumers = 2;
  constexpr std::size_t kMaxPayload = 240;
  engine::MpmcRingOptions options;
  options.capacity = 1024;
  options.max_payload = kMaxPayload;
  options.max_participants = 8;
  auto ring = engine::MpmcRing::create(name, options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  const std::uint64_t total = kProducers * per_producer;
  SharedArray<std::uint8_t> seen(kConsumers * kProducers * per_producer);
  SharedArray<std::uint64_t> consumed(1 + kConsumers);  // [0] all, [1 + c] by consumer c
  const auto start = Clock::now();
  const auto give_up = start + timeout;

  std::vector<ChildProcess> children;
  for (std::uint64_t c = 0; c < kConsumers; ++c) {
    children.emplace_back([&, c] {
      auto opened = engine::MpmcRing::open(name);
      SYM_CHILD_CHECK_MSG(opened.has_value(), opened.error().message);
      auto consumer = engine::MpmcConsumer::attach(*opened);
      SYM_CHILD_CHECK_MSG(consumer.has_value(), consumer.error().message);
      std::uint64_t last[kProducers] = {};
      bool any[kProducers] = {};
      while (consumed.at(0).load() < total) {
        SYM_CHILD_CHECK_MSG(Clock::now() < give_up, "consumer gave up");
        const engine::Frame frame =
            consumer->take(engine::WaitStrategy::sleeping(), Clock::now() + 50ms);
        if (frame.would_block()) continue;
        SYM_CHILD_CHECK_MSG(frame.ok(), engine::to_string(frame.status));
        const MessageCheck check = check_message(frame.bytes());
        SYM_CHILD_CHECK_MSG(check.ok, check.why);
        SYM_CHILD_CHECK(check.stream < kProducers && check.seq < per_producer);
        SYM_CHILD_CHECK_MSG(frame.bytes().size() == message_length(check.stream, check.seq,
                                                                 kMessageHeaderSize, kMaxPayload),
                            "wrong length");
        // Positions are claimed in order, so each producer's messages reach one consumer in
        // increasing order.
        SYM_CHILD_CHECK_MSG(!any[check.stream] || check.seq > last[check.stream],
                            "producer " + std::to_string(check.stream) + " message " +
                                std::to_string(check.seq) + " after " +
                                std::to_string(last[check.stream]));
        any[check.stream] = true;
        last[check.stream] = check.seq;
        seen[(c * kProducers + check.stream) * per_producer + check.seq] += 1;
        consumer->release();
        consumed.at(1 + c).fetch_add(1, std::memory_order_relaxed);
        consumed.at(0).fetch_add(1);
      }
      return 0;
    });
  }
  for (std::uint64_t p = 0; p < kProducers; ++p) {
    children.emplace_back([&, p] {
      auto opened = engine::MpmcRing::open(name);
      SYM_CHILD_CHECK_MSG(opened.has_value(), opened.error().message);
      auto producer = engine::MpmcProducer::attach(*opened);
      SYM_CHILD_CHECK_MSG(producer.has_value(), producer.error().message);
      for (std::uint64_t seq = 0; seq < per_producer; ++seq) {
        const std::size_t length = message_length(p, seq, kMessageHeaderSize, kMaxPayload);
        const engine::Loan loan =
            producer->loan(length, engine::WaitStrategy::sleeping(), Clock::now() + 10s);
        SYM_CHILD_CHECK_MSG(loan.ok(), "loan at message " + std::to_string(seq) + ": " +
                                           engine::to_string(loan.status));
        fill_message(loan.bytes(), p, seq);
        producer->publish();
      }
      return 0;
    });
  }
  for (std::size_t i = 0; i < children.size(); ++i) {
    const auto status = children[i].wait(give_up - Clock::now() + 5s);
    EXPECT_TRUE(status.ok()) << (i < kConsumers ? "consumer " : "producer ") << i << ": " << status;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::uint64_t missing = 0;
  std::uint64_t duplicated = 0;
  std::string examples;
  for (std::uint64_t p = 0; p < kProducers; ++p) {
    for (std::uint64_t seq = 0; seq < per_producer; ++seq) {
      unsigned times = 0;
      for (std::uint64_t c = 0; c < kConsumers; ++c) {
        times += seen[(c * kProducers + p) * per_producer + seq];
      }
      if (times == 1) continue;
      (times == 0 ? missing : duplicated) += 1;
      if (examples.size() < 200) {
        examples +=
            " (" + std::to_string(p) + "," + std::to_string(seq) + ")x" + std::to_string(times);
      }
    }
  }
  EXPECT_EQ(missing, 0u) << examples;
  EXPECT_EQ(duplicated, 0u) << examples;
  EXPECT_EQ(consumed.at(0).load(), total);
  std::printf(
      "mpmc stream: %llu messages in %.2f s (%.2f M/s); consumer shares %llu / %llu\n",
      static_cast<unsigned long long>(total), seconds, static_cast<double>(total) / seconds / 1e6,
      static_cast<unsigned long long>(consumed[1]), static_cast<unsigned long long>(consumed[2]));
}

}  // namespace symphony::test
