#include "symphony/engine/latency_histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

namespace symphony::engine {
namespace {

constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();

// The sample at rank ceil(permille / 1000 * n) of sorted `values`, in integers so the expected
// answer does not share the histogram's floating-point rank computation.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, std::uint64_t permille) {
  const std::uint64_t n = sorted.size();
  const std::uint64_t rank = std::max<std::uint64_t>(1, (permille * n + 999) / 1000);
  return sorted[rank - 1];
}

// Log-uniform between 1 ns and 10 s: every decade gets as many samples, as latencies spread.
std::vector<std::uint64_t> log_uniform_values(std::size_t n, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> exponent(0.0, 10.0);
  std::vector<std::uint64_t> values(n);
  for (auto& v : values) v = static_cast<std::uint64_t>(std::pow(10.0, exponent(rng)));
  return values;
}

double relative_error(std::uint64_t got, std::uint64_t want) {
  return std::abs(static_cast<double>(got) - static_cast<double>(want)) / static_cast<double>(want);
}

TEST(LatencyHistogram, EmptyReportsZeros) {
  const LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  for (double p : {0.0, 50.0, 99.9, 100.0}) EXPECT_EQ(h.percentile(p), 0u) << p;
  const LatencySummary s = h.summarize();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p50, 0u);
  EXPECT_EQ(s.p999, 0u);
  EXPECT_EQ(s.max, 0u);
  EXPECT_EQ(s.mean, 0.0);
}

TEST(LatencyHistogram, RejectsBadSubBucketBits) {
  EXPECT_THROW(LatencyHistogram(0), std::invalid_argument);
  EXPECT_THROW(LatencyHistogram(LatencyHistogram::kMaxSubBucketBits + 1), std::invalid_argument);
  EXPECT_NO_THROW(LatencyHistogram(LatencyHistogram::kMinSubBucketBits));
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  // Below 2^(s+1) = 256 every value has its own bucket.
  LatencyHistogram h(7);
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
  EXPECT_EQ(h.percentile(0), 1u);
  EXPECT_EQ(h.percentile(1), 1u);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(90), 90u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(99.9), 100u);
  EXPECT_EQ(h.percentile(100), 100u);
  for (std::uint64_t v = 0; v < 256; ++v) {
    EXPECT_EQ(h.lowest_equivalent(h.bucket_index(v)), v);
    EXPECT_EQ(h.highest_equivalent(h.bucket_index(v)), v);
  }
}

TEST(LatencyHistogram, ZeroIsRecorded) {
  LatencyHistogram h;
  h.record(0);
  h.record(0);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
}

TEST(LatencyHistogram, PercentileOutOfRangeIsClamped) {
  LatencyHistogram h;
  for (std::uint64_t v : {10u, 20u, 30u}) h.record(v);
  EXPECT_EQ(h.percentile(-5), 10u);
  EXPECT_EQ(h.percentile(std::numeric_limits<double>::quiet_NaN()), 10u);
  EXPECT_EQ(h.percentile(250), 30u);
}

TEST(LatencyHistogram, BucketsTileTheWholeRange) {
  for (int bits : {1, 3, 7, 10}) {
    const LatencyHistogram h(bits);
    EXPECT_EQ(h.bucket_count(), static_cast<std::size_t>(65 - bits) << bits);
    EXPECT_EQ(h.lowest_equivalent(0), 0u);
    EXPECT_EQ(h.highest_equivalent(h.bucket_count() - 1), kMaxU64);
    EXPECT_EQ(h.bucket_index(kMaxU64), h.bucket_count() - 1);
    for (std::size_t i = 0; i + 1 < h.bucket_count(); ++i) {
      ASSERT_EQ(h.highest_equivalent(i) + 1, h.lowest_equivalent(i + 1)) << bits << " " << i;
      ASSERT_EQ(h.bucket_index(h.lowest_equivalent(i)), i);
      ASSERT_EQ(h.bucket_index(h.highest_equivalent(i)), i);
      // The bucket is never wider than 2^-s of its lowest value (the relative-error contract).
      const std::uint64_t width = h.highest_equivalent(i) - h.lowest_equivalent(i) + 1;
      if (width > 1) {
        ASSERT_LE(width << bits, h.lowest_equivalent(i)) << bits << " " << i;
      }
    }
  }
}

TEST(LatencyHistogram, PercentilesWithinRelativeErrorOfSortedSamples) {
  for (int bits : {3, 7, 10}) {
    const auto values = log_uniform_values(200'000, 42u + static_cast<std::uint32_t>(bits));
    LatencyHistogram h(bits);
    for (std::uint64_t v : values) h.record(v);
    auto sorted = values;
    std::sort(sorted.begin(), sorted.end());
    const double bound = std::ldexp(1.0, -bits);
    for (const auto& [p, permille] : {std::pair{50.0, 500u}, std::pair{90.0, 900u},
                                      std::pair{99.0, 990u}, std::pair{99.9, 999u}}) {
      const std::uint64_t want = exact_percentile(sorted, permille);
      const std::uint64_t got = h.percentile(p);
      EXPECT_LE(relative_error(got, want), bound)
          << "bits " << bits << " p" << p << " got " << got << " want " << want;
    }
    const LatencySummary s = h.summarize();
    EXPECT_EQ(s.p50, h.percentile(50));
    EXPECT_EQ(s.p90, h.percentile(90));
    EXPECT_EQ(s.p99, h.percentile(99));
    EXPECT_EQ(s.p999, h.percentile(99.9));
    EXPECT_EQ(s.max, sorted.back());
    EXPECT_EQ(s.count, values.size());
  }
}

TEST(LatencyHistogram, EveryRankWithinRelativeError) {
  // A denser check on fewer samples: every percentile from 0.1 to 100 in steps of 0.1.
  const auto values = log_uniform_values(5'000, 7);
  LatencyHistogram h(7);
  for (std::uint64_t v : values) h.record(v);
  auto sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (std::uint64_t permille = 1; permille <= 1000; ++permille) {
    const std::uint64_t want = exact_percentile(sorted, permille);
    const std::uint64_t got = h.percentile(static_cast<double>(permille) / 10.0);
    ASSERT_LE(relative_error(got, want), 1.0 / 128) << permille << " " << got << " " << want;
  }
}

TEST(LatencyHistogram, MinMaxMeanAreExact) {
  LatencyHistogram h;
  const std::vector<std::uint64_t> values{1'000'003, 7, 123'456'789'012, 999, 65'537};
  std::uint64_t sum = 0;
  for (std::uint64_t v : values) {
    h.record(v);
    sum += v;
  }
  EXPECT_EQ(h.min(), 7u);
  EXPECT_EQ(h.max(), 123'456'789'012u);
  EXPECT_DOUBLE_EQ(h.mean(), static_cast<double>(sum) / static_cast<double>(values.size()));
  // Percentiles never leave [min, max], even though the buckets there are wide.
  EXPECT_EQ(h.percentile(100), 123'456'789'012u);
  EXPECT_GE(h.percentile(0.1), 7u);
}

TEST(LatencyHistogram, MeanDoesNotOverflowSixtyFourBits) {
  LatencyHistogram h;
  h.record(kMaxU64);
  h.record(kMaxU64);
  h.record(kMaxU64 - 1);
  EXPECT_DOUBLE_EQ(h.mean(), static_cast<double>(kMaxU64));
  h.record_n(kMaxU64, 1'000'000);
  EXPECT_DOUBLE_EQ(h.mean(), static_cast<double>(kMaxU64));
}

TEST(LatencyHistogram, HugeValuesDoNotCrash) {
  LatencyHistogram h;
  h.record(kMaxU64);
  h.record(kMaxU64 - 1);
  h.record(std::uint64_t{1} << 63);
  h.record(1);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.max(), kMaxU64);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.percentile(100), kMaxU64);
  EXPECT_LE(relative_error(h.percentile(75), kMaxU64 - 1), 1.0 / 128);
  const LatencySummary s = h.summarize();
  EXPECT_EQ(s.max, kMaxU64);
  EXPECT_GE(s.p50, std::uint64_t{1} << 63);
}

TEST(LatencyHistogram, RecordNMatchesRepeatedRecord) {
  LatencyHistogram a;
  LatencyHistogram b;
  for (int i = 0; i < 1000; ++i) a.record(5000);
  for (int i = 0; i < 10; ++i) a.record(77);
  b.record_n(5000, 1000);
  b.record_n(77, 10);
  b.record_n(1, 0);  // a count of 0 must not move min
  EXPECT_EQ(a.count(), b.count());
  EXPECT_EQ(a.min(), b.min());
  EXPECT_EQ(a.max(), b.max());
  EXPECT_DOUBLE_EQ(a.mean(), b.mean());
  for (double p : {0.5, 1.0, 2.0, 50.0, 99.0, 100.0}) EXPECT_EQ(a.percentile(p), b.percentile(p));
}

TEST(LatencyHistogram, MergeEqualsRecordingEverything) {
  const auto values = log_uniform_values(50'000, 3);
  LatencyHistogram all;
  LatencyHistogram left;
  LatencyHistogram right;
  for (std::size_t i = 0; i < values.size(); ++i) {
    all.record(values[i]);
    (i % 3 == 0 ? left : right).record(values[i]);
  }
  left.merge(right);
  EXPECT_EQ(left.count(), all.count());
  EXPECT_EQ(left.min(), all.min());
  EXPECT_EQ(left.max(), all.max());
  EXPECT_DOUBLE_EQ(left.mean(), all.mean());
  for (double p : {0.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    EXPECT_EQ(left.percentile(p), all.percentile(p)) << p;
  }
}

TEST(LatencyHistogram, MergeWithEmptyAndIntoEmpty) {
  LatencyHistogram empty;
  LatencyHistogram h;
  h.record(300);
  h.record(900);
  h.merge(empty);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.min(), 300u);
  empty.merge(h);
  EXPECT_EQ(empty.count(), 2u);
  EXPECT_EQ(empty.min(), 300u);
  EXPECT_EQ(empty.max(), 900u);
  EXPECT_DOUBLE_EQ(empty.mean(), 600.0);
}

TEST(LatencyHistogram, MergeRejectsDifferentPrecision) {
  LatencyHistogram a(7);
  const LatencyHistogram b(8);
  EXPECT_THROW(a.merge(b), std::invalid_argument);
}

TEST(LatencyHistogram, ResetForgetsEverything) {
  LatencyHistogram h;
  for (std::uint64_t v : {5u, 50u, 500'000u}) h.record(v);
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.percentile(50), 0u);
  h.record(42);
  EXPECT_EQ(h.min(), 42u);
  EXPECT_EQ(h.max(), 42u);
  EXPECT_EQ(h.percentile(1), 42u);
  EXPECT_EQ(h.percentile(100), 42u);
}

}  // namespace
}  // namespace symphony::engine
