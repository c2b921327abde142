// In-process twins of the multi-process tests, for ThreadSanitizer (which sees one process only).
// Each ring is created ONCE and every thread attaches its producer/consumer to that same ring
// object: one mapping, so TSan sees every shared access. Label `tsan`; they also run in the
// release and asan presets.

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
#include "symphony/engine/mpmc_ring.hpp"
#include "symphony/engine/spsc_ring.hpp"
#include "test_scale.hpp"

namespace {

using namespace symphony::engine;
using namespace symphony::test;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr auto kLateLimit = std::chrono::milliseconds(250);  // sanitizers slow everything down
#else
constexpr auto kLateLimit = std::chrono::milliseconds(50);
#endif

class TsanTwin : public ShmTest {};

// Runs `body` on a thread; records a failure message instead of asserting off the main thread.
class Worker {
 public:
  template <typename Body>
  explicit Worker(Body body)
      : thread_([this, body]() mutable {
          try {
            body(error_);
          } catch (const std::exception& e) {
            error_ = std::string("exception: ") + e.what();
          }
        }) {}
  ~Worker() {
    if (thread_.joinable()) thread_.join();
  }
  std::string join() {
    thread_.join();
    return error_;
  }

 private:
  std::string error_;
  std::thread thread_;
};

// ---- twin of (a) and of the wrap-around test
// --------------------------------------------------------

void spsc_threads(const std::string& name, std::uint64_t capacity, std::uint64_t count,
                  std::size_t max_length) {
  SpscRingOptions options;
  options.capacity = capacity;
  auto ring = SpscRing::create(name, options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  max_length = std::min<std::size_t>(max_length, ring->max_payload());
  auto length_of = [&](std::uint64_t seq) {
    return seq % 7 == 0 ? message_length(0, seq, kMessageHeaderSize, max_length)
                        : message_length(0, seq, kMessageHeaderSize, 64);
  };
  Worker consumer([&](std::string& error) {
    auto c = SpscConsumer::attach(*ring);
    if (!c) {
      error = c.error().message;
      return;
    }
    for (std::uint64_t expected = 0; expected < count; ++expected) {
      Frame frame = c->try_read();
      if (frame.would_block()) {
        c->release();
        frame = c->read(WaitStrategy::sleeping(), Clock::now() + 10s);
      }
      const MessageCheck check = frame.ok() ? check_message(frame.bytes()) : MessageCheck{};
      if (!frame.ok() || !check.ok || check.seq != expected ||
          frame.bytes().size() != length_of(expected)) {
        error = "message " + std::to_string(expected) + ": " + to_string(frame.status) + " " +
                check.why + " seq " + std::to_string(check.seq);
        return;
      }
    }
    c->release();
  });
  Worker producer([&](std::string& error) {
    auto p = SpscProducer::attach(*ring);
    if (!p) {
      error = p.error().message;
      return;
    }
    std::uint64_t batch_left = 1;
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      Loan loan = p->try_loan(length_of(seq));
      if (!loan.ok()) {
        p->publish();
        loan = p->loan(length_of(seq), WaitStrategy::sleeping(), Clock::now() + 10s);
      }
      if (!loan.ok()) {
        error = "loan " + std::to_string(seq) + ": " + to_string(loan.status);
        return;
      }
      fill_message(loan.bytes(), 0, seq);
      if (--batch_left == 0) {
        p->publish();
        batch_left = 1 + mix64(seq) % 4;
      }
    }
    p->publish();
  });
  EXPECT_EQ(producer.join(), "");
  EXPECT_EQ(consumer.join(), "");
}

TEST_F(TsanTwin, SpscStreamBetweenThreads) {
  spsc_threads(name(), 1 << 16, scaled(5'000'000), 2000);
}

TEST_F(TsanTwin, SpscWrapAroundBetweenThreads) {
  spsc_threads(name(), 1024, scaled(500'000), 504);
}

// ---- twin of (b)
// ------------------------------------------------------------------------------------

TEST_F(TsanTwin, MpmcTwoProducersTwoConsumersExactlyOnce) {
  constexpr std::uint64_t kProducers = 2;
  constexpr std::uint64_t kConsumers = 2;
  constexpr std::size_t kMaxPayload = 120;
  const std::uint64_t per_producer = scaled(1'000'000);
  MpmcRingOptions options;
  options.capacity = 64;
  options.max_payload = kMaxPayload;
  auto ring = MpmcRing::create(name(), options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  std::vector<std::vector<std::uint8_t>> seen(kConsumers,
                                              std::vector<std::uint8_t>(kProducers * per_producer));
  std::atomic<std::uint64_t> consumed{0};
  const std::uint64_t total = kProducers * per_producer;
  std::vector<std::unique_ptr<Worker>> workers;
  for (std::uint64_t c = 0; c < kConsumers; ++c) {
    workers.push_back(std::make_unique<Worker>([&, c](std::string& error) {
      auto consumer = MpmcConsumer::attach(*ring);
      if (!consumer) {
        error = consumer.error().message;
        return;
      }
      const auto give_up = Clock::now() + 120s;
      while (consumed.load() < total) {
        if (Clock::now() > give_up) {
          error = "gave up";
          return;
        }
        const Frame frame = consumer->take(WaitStrategy::sleeping(), Clock::now() + 20ms);
        if (frame.would_block()) continue;
        const MessageCheck check = frame.ok() ? check_message(frame.bytes()) : MessageCheck{};
        if (!check.ok || check.stream >= kProducers || check.seq >= per_producer) {
          error = std::string("bad frame: ") + to_string(frame.status) + " " + check.why;
          return;
        }
        seen[c][check.stream * per_producer + check.seq] += 1;
        consumer->release();
        consumed.fetch_add(1);
      }
    }));
  }
  for (std::uint64_t p = 0; p < kProducers; ++p) {
    workers.push_back(std::make_unique<Worker>([&, p](std::string& error) {
      auto producer = MpmcProducer::attach(*ring);
      if (!producer) {
        error = producer.error().message;
        return;
      }
      for (std::uint64_t seq = 0; seq < per_producer; ++seq) {
        const std::size_t length = message_length(p, seq, kMessageHeaderSize, kMaxPayload);
        const Loan loan = producer->loan(length, WaitStrategy::sleeping(), Clock::now() + 10s);
        if (!loan.ok()) {
          error = "loan " + std::to_string(seq) + ": " + to_string(loan.status);
          return;
        }
        fill_message(loan.bytes(), p, seq);
        producer->publish();
      }
    }));
  }
  for (auto& worker : workers) EXPECT_EQ(worker->join(), "");
  std::uint64_t wrong = 0;
  for (std::uint64_t i = 0; i < total; ++i) {
    if (seen[0][i] + seen[1][i] != 1) ++wrong;
  }
  EXPECT_EQ(wrong, 0u) << "messages not delivered exactly once";
}

// ---- twins of (c) and (d): handles destroyed mid-claim while others stream
// ------------------------------

TEST_F(TsanTwin, MpmcProducerDestroyedHoldingALoanWhileOthersStream) {
  MpmcRingOptions options;
  options.capacity = 16;
  options.max_payload = 64;
  auto ring = MpmcRing::create(name(), options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  const std::uint64_t count = scaled(200'000);
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> published{0};
  Worker consumer([&](std::string& error) {
    auto c = MpmcConsumer::attach(*ring);
    if (!c) {
      error = c.error().message;
      return;
    }
    for (std::uint64_t expected = 0; expected < count; ++expected) {
      const Frame frame = c->take(WaitStrategy::sleeping(), Clock::now() + 10s);
      const MessageCheck check = frame.ok() ? check_message(frame.bytes()) : MessageCheck{};
      if (!check.ok || check.seq != expected) {
        error = "message " + std::to_string(expected) + ": " + to_string(frame.status) + " seq " +
                std::to_string(check.seq);
        return;
      }
      c->release();
      received.store(expected + 1);
    }
  });
  Worker producer([&](std::string& error) {
    auto p = MpmcProducer::attach(*ring);
    if (!p) {
      error = p.error().message;
      return;
    }
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      const Loan loan = p->loan(48, WaitStrategy::sleeping(), Clock::now() + 10s);
      if (!loan.ok()) {
        error = "loan " + std::to_string(seq) + ": " + to_string(loan.status);
        return;
      }
      fill_message(loan.bytes(), 0, seq);
      p->publish();
      published.store(seq + 1);
    }
  });
  Worker quitter([&](std::string& error) {
    // Claim a slot mid-stream, sit on it while the others run into it, then go away.
    const auto give_up = Clock::now() + 60s;
    while (published.load() < count / 3) {
      if (Clock::now() > give_up) {
        error = "the producer never got a third of the way";
        return;
      }
      std::this_thread::yield();
    }
    auto q = MpmcProducer::attach(*ring);
    if (!q) {
      error = q.error().message;
      return;
    }
    const Loan loan = q->loan(8, WaitStrategy::sleeping(), Clock::now() + 10s);
    if (!loan.ok()) {
      error = std::string("quitter loan: ") + to_string(loan.status);
      return;
    }
    std::this_thread::sleep_for(20ms);
  });  // q's destructor abandons the loan
  EXPECT_EQ(quitter.join(), "");
  EXPECT_EQ(producer.join(), "");
  EXPECT_EQ(consumer.join(), "");
  EXPECT_EQ(received.load(), count);
  EXPECT_EQ(ring->counters().abandoned_by_producers, 1u);
}

TEST_F(TsanTwin, MpmcConsumerDestroyedHoldingATakeWhileOthersStream) {
  MpmcRingOptions options;
  options.capacity = 16;
  options.max_payload = 64;
  auto ring = MpmcRing::create(name(), options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  const std::uint64_t count = scaled(200'000);
  std::vector<std::uint8_t> seen(count, 0);
  std::atomic<std::uint64_t> quitter_got{~0ULL};
  std::atomic<std::uint64_t> consumed{0};
  Worker producer([&](std::string& error) {
    auto p = MpmcProducer::attach(*ring);
    if (!p) {
      error = p.error().message;
      return;
    }
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      const Loan loan = p->loan(48, WaitStrategy::sleeping(), Clock::now() + 10s);
      if (!loan.ok()) {
        error = "loan " + std::to_string(seq) + ": " + to_string(loan.status);
        return;
      }
      fill_message(loan.bytes(), 0, seq);
      p->publish();
    }
  });
  Worker quitter([&](std::string& error) {
    const auto give_up = Clock::now() + 60s;
    while (consumed.load() < count / 3) {
      if (Clock::now() > give_up) {
        error = "the consumer never got a third of the way";
        return;
      }
      std::this_thread::yield();
    }
    auto q = MpmcConsumer::attach(*ring);
    if (!q) {
      error = q.error().message;
      return;
    }
    const Frame frame = q->take(WaitStrategy::sleeping(), Clock::now() + 10s);
    if (!frame.ok()) {
      error = std::string("quitter take: ") + to_string(frame.status);
      return;
    }
    quitter_got.store(check_message(frame.bytes()).seq);
    consumed.fetch_add(1);
    std::this_thread::sleep_for(20ms);
  });  // q's destructor releases the take
  Worker consumer([&](std::string& error) {
    auto c = MpmcConsumer::attach(*ring);
    if (!c) {
      error = c.error().message;
      return;
    }
    const auto give_up = Clock::now() + 120s;
    while (consumed.load() < count) {
      if (Clock::now() > give_up) {
        error = "gave up";
        return;
      }
      // Step aside once, so that the quitter surely gets a message mid-stream.
      while (consumed.load() >= count / 3 && quitter_got.load() == ~0ULL &&
             Clock::now() < give_up) {
        std::this_thread::yield();
      }
      const Frame frame = c->take(WaitStrategy::sleeping(), Clock::now() + 20ms);
      if (frame.would_block()) continue;
      const MessageCheck check = frame.ok() ? check_message(frame.bytes()) : MessageCheck{};
      if (!check.ok || check.seq >= count) {
        error = std::string("bad frame: ") + to_string(frame.status);
        return;
      }
      ++seen[check.seq];
      c->release();
      consumed.fetch_add(1);
    }
  });
  EXPECT_EQ(producer.join(), "");
  EXPECT_EQ(quitter.join(), "");
  EXPECT_EQ(consumer.join(), "");
  const std::uint64_t lost_to_quitter = quitter_got.load();
  ASSERT_LT(lost_to_quitter, count);
  std::uint64_t wrong = 0;
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    if (seen[seq] != (seq == lost_to_quitter ? 0u : 1u)) ++wrong;
  }
  EXPECT_EQ(wrong, 0u);
  // The ring is whole: `capacity` messages fit.
  auto p = MpmcProducer::attach(*ring);
  ASSERT_TRUE(p.has_value());
  for (int i = 0; i < 16; ++i) {
    ASSERT_EQ(p->try_write(std::vector<std::byte>(8)), RingStatus::ok) << i;
  }
  EXPECT_EQ(p->try_write(std::vector<std::byte>(8)), RingStatus::full);
}

// ---- twin of (f)
// ------------------------------------------------------------------------------------------

TEST_F(TsanTwin, SleepingConsumerThreadNeverMissesAWakeUp) {
  SpscRingOptions options;
  options.capacity = 4096;
  auto data = SpscRing::create(name("data"), options);
  auto ack = SpscRing::create(name("ack"), options);
  ASSERT_TRUE(data.has_value() && ack.has_value());
  const std::uint64_t count = scaled(20'000);
  std::uint64_t late = 0;
  std::uint64_t worst_ns = 0;
  WaitStats consumer_stats;
  Worker consumer([&](std::string& error) {
    auto in = SpscConsumer::attach(*data);
    auto out = SpscProducer::attach(*ack);
    if (!in || !out) {
      error = "attach";
      return;
    }
    for (std::uint64_t i = 0; i < count; ++i) {
      const Frame frame = in->read(WaitStrategy::sleeping(), Clock::now() + 1s);
      const std::uint64_t now = now_ns();
      if (!frame.ok() || frame.bytes().size() != 16) {
        error = "message " + std::to_string(i) + ": " + to_string(frame.status);
        return;
      }
      std::uint64_t words[2];
      std::memcpy(words, frame.bytes().data(), sizeof words);
      in->release();
      if (words[0] != i) {
        error = "out of order";
        return;
      }
      worst_ns = std::max(worst_ns, now - words[1]);
      if (std::chrono::nanoseconds(now - words[1]) > kLateLimit) ++late;
      if (late > 5) break;
      if (out->try_write(std::as_bytes(std::span(&words[0], 1))) != RingStatus::ok) {
        error = "ack ring full";
        return;
      }
    }
    consumer_stats = in->wait_stats();
  });
  auto out = SpscProducer::attach(*data);
  auto in = SpscConsumer::attach(*ack);
  ASSERT_TRUE(out.has_value() && in.has_value());
  std::mt19937_64 rng(11);
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t words[2] = {i, now_ns()};
    ASSERT_EQ(out->try_write(std::as_bytes(std::span(words))), RingStatus::ok);
    const Frame reply = in->read(WaitStrategy::sleeping(), Clock::now() + 1s);
    if (!reply.ok()) {
      ADD_FAILURE() << "no acknowledgement for message " << i;
      break;
    }
    in->release();
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 201));
  }
  EXPECT_EQ(consumer.join(), "");
  EXPECT_EQ(late, 0u) << "worst latency " << worst_ns / 1000 << " us";
  EXPECT_EQ(consumer_stats.timeouts, 0u) << "a consumer sleep ended by timeout: lost wake-up";
  EXPECT_EQ(in->wait_stats().timeouts, 0u) << "an acknowledgement sleep ended by timeout";
}

}  // namespace
