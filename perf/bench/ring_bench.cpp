// symphony-bench: in-process micro-benchmarks of the ring operations and LatencyHistogram.
//
// The single-thread round trips (loan, write, publish, read, copy out, release on one core) are
// the cost of the operations themselves with every cache line already local; the two-thread
// benchmark adds the cross-core cache-line transfers that dominate real use. Cross-process
// latency is the demo's and symphony-perf's job. Every segment is named
// symphony-bench.<pid>.<what>.<n> and unlinked when its benchmark ends.

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "symphony/engine/latency_histogram.hpp"
#include "symphony/engine/mpmc_ring.hpp"
#include "symphony/engine/spsc_ring.hpp"
#include "symphony/engine/wait_strategy.hpp"

namespace symphony::bench {
namespace {

using engine::RingStatus;

std::string unique_name(const char* what) {
  static std::atomic<int> counter{0};
  return "symphony-bench." + std::to_string(::getpid()) + "." + what + "." +
         std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
}

// A ring with both roles attached in this process. The ring is declared first, so the roles
// detach before it unmaps.
struct SpscPair {
  engine::SpscRing ring;
  engine::SpscProducer producer;
  engine::SpscConsumer consumer;
};

// Builds the pair, or marks the benchmark skipped with the engine's message and returns false.
bool make_spsc(benchmark::State& state, std::uint64_t capacity, std::optional<SpscPair>& out) {
  engine::SpscRingOptions options;
  options.capacity = capacity;
  auto ring = engine::SpscRing::create(unique_name("spsc"), options);
  if (!ring) {
    state.SkipWithError(("SpscRing::create: " + ring.error().message).c_str());
    return false;
  }
  auto producer = engine::SpscProducer::attach(*ring);
  if (!producer) {
    state.SkipWithError(("SpscProducer::attach: " + producer.error().message).c_str());
    return false;
  }
  auto consumer = engine::SpscConsumer::attach(*ring);
  if (!consumer) {
    state.SkipWithError(("SpscConsumer::attach: " + consumer.error().message).c_str());
    return false;
  }
  out.emplace(SpscPair{std::move(*ring), std::move(*producer), std::move(*consumer)});
  return true;
}

// ---- SPSC, one thread -------------------------------------------------------------------------

// One message through the ring and back out: loan, copy in, publish, read, copy out, release.
void BM_SpscRoundTrip(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  std::optional<SpscPair> pair;
  if (!make_spsc(state, 1 << 20, pair)) return;
  std::vector<std::byte> source(size, std::byte{0x5a});
  std::vector<std::byte> sink(size);
  for (auto _ : state) {
    const engine::Loan loan = pair->producer.try_loan(size);
    if (!loan.ok()) {
      state.SkipWithError(engine::to_string(loan.status));
      break;
    }
    std::memcpy(loan.bytes().data(), source.data(), size);
    pair->producer.publish();
    const engine::Frame frame = pair->consumer.try_read();
    if (!frame.ok()) {
      state.SkipWithError(engine::to_string(frame.status));
      break;
    }
    std::memcpy(sink.data(), frame.bytes().data(), std::min(size, frame.bytes().size()));
    benchmark::DoNotOptimize(sink.data());
    benchmark::ClobberMemory();
    pair->consumer.release();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_SpscRoundTrip)->Arg(8)->Arg(64)->Arg(1024);

// The batched pattern: kBatch loans, one publish; kBatch reads, one release. Items are frames.
void BM_SpscBatched(benchmark::State& state) {
  constexpr int kBatch = 32;
  const auto size = static_cast<std::size_t>(state.range(0));
  std::optional<SpscPair> pair;
  if (!make_spsc(state, 1 << 20, pair)) return;
  std::vector<std::byte> source(size, std::byte{0x5a});
  std::vector<std::byte> sink(size);
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      const engine::Loan loan = pair->producer.try_loan(size);
      if (!loan.ok()) {
        state.SkipWithError(engine::to_string(loan.status));
        return;
      }
      std::memcpy(loan.bytes().data(), source.data(), size);
    }
    pair->producer.publish();
    for (int i = 0; i < kBatch; ++i) {
      const engine::Frame frame = pair->consumer.try_read();
      if (!frame.ok()) {
        state.SkipWithError(engine::to_string(frame.status));
        return;
      }
      std::memcpy(sink.data(), frame.bytes().data(), std::min(size, frame.bytes().size()));
      benchmark::DoNotOptimize(sink.data());
    }
    benchmark::ClobberMemory();
    pair->consumer.release();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_SpscBatched)->Arg(8)->Arg(64)->Arg(1024);

// try_write (loan + copy + publish) against an empty ring, and try_read + release: the
// convenience path, for comparison with the in-place loan above.
void BM_SpscTryWriteRead(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  std::optional<SpscPair> pair;
  if (!make_spsc(state, 1 << 20, pair)) return;
  std::vector<std::byte> source(size, std::byte{0x5a});
  for (auto _ : state) {
    const RingStatus status = pair->producer.try_write(source);
    const engine::Frame frame = pair->consumer.try_read();
    if (status != RingStatus::ok || !frame.ok()) {
      state.SkipWithError("try_write / try_read failed");
      break;
    }
    benchmark::DoNotOptimize(frame.bytes().data());
    pair->consumer.release();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_SpscTryWriteRead)->Arg(64);

// ---- SPSC, two threads ------------------------------------------------------------------------

// Producer (the benchmark thread) against a consumer thread that reads each frame's first word
// and releases every 64 frames. Arg 0: payload bytes; arg 1: frames per publish. Items are
// frames per second of producer time; the few frames still queued when the timed loop ends
// (at most one 64 KiB ring) are drained untimed and checked.
void BM_SpscTwoThreads(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto batch = static_cast<std::int64_t>(state.range(1));
  std::optional<SpscPair> pair;
  if (!make_spsc(state, 1 << 16, pair)) return;
  std::vector<std::byte> source(size, std::byte{0x5a});

  std::atomic<bool> stop{false};
  std::uint64_t consumed = 0;
  bool consumer_failed = false;
  std::thread consumer_thread([&] {
    engine::SpscConsumer& consumer = pair->consumer;
    std::uint64_t unreleased = 0;
    std::uint64_t checksum = 0;
    for (;;) {
      // Read stop before polling: the producer sets it after its last publish, so an empty
      // ring seen after stop means everything has been consumed.
      const bool stopping = stop.load(std::memory_order_acquire);
      const engine::Frame frame = consumer.try_read();
      if (frame.ok()) {
        std::uint64_t word = 0;
        std::memcpy(&word, frame.bytes().data(), std::min(sizeof word, frame.bytes().size()));
        checksum += word;
        ++consumed;
        if (++unreleased == 64) {
          consumer.release();
          unreleased = 0;
        }
        continue;
      }
      consumer.release();
      unreleased = 0;
      if (!frame.would_block()) {
        consumer_failed = true;
        break;
      }
      if (stopping) break;
      engine::cpu_relax();
    }
    benchmark::DoNotOptimize(checksum);
  });

  engine::SpscProducer& producer = pair->producer;
  std::int64_t pending = 0;
  for (auto _ : state) {
    engine::Loan loan = producer.try_loan(size);
    while (loan.would_block()) {
      producer.publish();  // a full ring must not hold back frames the consumer could take
      pending = 0;
      engine::cpu_relax();
      loan = producer.try_loan(size);
    }
    if (!loan.ok()) {
      state.SkipWithError(engine::to_string(loan.status));
      break;
    }
    std::memcpy(loan.bytes().data(), source.data(), size);
    if (++pending == batch) {
      producer.publish();
      pending = 0;
    }
  }
  producer.publish();
  stop.store(true, std::memory_order_release);
  consumer_thread.join();
  if (consumer_failed) {
    state.SkipWithError("the consumer saw a corrupt ring");
  } else if (consumed != producer.frames_published()) {
    state.SkipWithError("the consumer did not receive every frame");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_SpscTwoThreads)
    ->Args({8, 1})
    ->Args({64, 1})
    ->Args({64, 32})
    ->Args({1024, 1})
    ->UseRealTime();

// ---- MPMC, one thread -------------------------------------------------------------------------

void BM_MpmcRoundTrip(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  auto ring = engine::MpmcRing::create(unique_name("mpmc"));
  if (!ring) {
    state.SkipWithError(("MpmcRing::create: " + ring.error().message).c_str());
    return;
  }
  auto producer = engine::MpmcProducer::attach(*ring);
  auto consumer = engine::MpmcConsumer::attach(*ring);
  if (!producer || !consumer) {
    state.SkipWithError("MpmcProducer / MpmcConsumer::attach failed");
    return;
  }
  std::vector<std::byte> source(size, std::byte{0x5a});
  std::vector<std::byte> sink(size);
  for (auto _ : state) {
    const RingStatus status = producer->try_write(source);
    if (status != RingStatus::ok) {
      state.SkipWithError(engine::to_string(status));
      break;
    }
    const engine::Frame frame = consumer->try_take();
    if (!frame.ok()) {
      state.SkipWithError(engine::to_string(frame.status));
      break;
    }
    std::memcpy(sink.data(), frame.bytes().data(), std::min(size, frame.bytes().size()));
    benchmark::DoNotOptimize(sink.data());
    benchmark::ClobberMemory();
    consumer->release();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_MpmcRoundTrip)->Arg(8)->Arg(64)->Arg(240);

// ---- LatencyHistogram -------------------------------------------------------------------------

// Log-uniform values from 1 ns to 10 s, so record() is measured across all its bucket groups
// rather than one hot counter.
std::vector<std::uint64_t> latency_samples() {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> exponent(0.0, 10.0);
  std::vector<std::uint64_t> values(4096);
  for (auto& v : values) v = static_cast<std::uint64_t>(std::pow(10.0, exponent(rng)));
  return values;
}

void BM_HistogramRecord(benchmark::State& state) {
  const auto values = latency_samples();
  engine::LatencyHistogram histogram;
  std::size_t i = 0;
  for (auto _ : state) {
    histogram.record(values[i++ & (values.size() - 1)]);
  }
  benchmark::DoNotOptimize(histogram.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramRecord);

// What the demo's consumer pays once a second for its live line.
void BM_HistogramSummarize(benchmark::State& state) {
  engine::LatencyHistogram histogram;
  for (std::uint64_t v : latency_samples()) histogram.record(v);
  for (auto _ : state) {
    benchmark::DoNotOptimize(histogram.summarize());
  }
}
BENCHMARK(BM_HistogramSummarize);

}  // namespace
}  // namespace symphony::bench
