// symphony-perf's statistics: the foundation's LatencyHistogram on known distributions (its
// percentiles, p99.99 included, within its stated error bound), and the harness's LatencyRecorder
// (drivers.hpp) turning it into a report and an HdrHistogram-style .hgrm distribution.

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "drivers.hpp"
#include "report.hpp"
#include "symphony/engine/latency_histogram.hpp"

namespace symphony::perf {
namespace {

constexpr int kSubBucketBits = 7;  // LatencyHistogram's default, what the harness uses
// The histogram's contract: a percentile is within 2^-s of the true sample at that rank.
const double kRelativeBound = std::ldexp(1.0, -kSubBucketBits);

// The exact value at rank ceil(p / 100 * n) (at least 1) of sorted samples: what
// LatencyHistogram::percentile() approximates.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double p) {
  const auto n = static_cast<double>(sorted.size());
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(p / 100 * n)));
  return sorted[std::min<std::uint64_t>(rank, sorted.size()) - 1];
}

void expect_within_bound(const engine::LatencyHistogram& histogram,
                         const std::vector<std::uint64_t>& sorted) {
  for (const double p : {0.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const auto exact = static_cast<double>(exact_percentile(sorted, p));
    const auto measured = static_cast<double>(histogram.percentile(p));
    EXPECT_LE(std::abs(measured - exact), exact * kRelativeBound)
        << "p" << p << ": histogram " << measured << ", exact " << exact;
  }
  EXPECT_EQ(histogram.max(), sorted.back());
  EXPECT_EQ(histogram.min(), sorted.front());
}

// 1'000'000 samples spread evenly over [100 ns, 1 ms].
std::vector<std::uint64_t> uniform_samples() {
  std::vector<std::uint64_t> samples;
  constexpr std::uint64_t kCount = 1'000'000;
  for (std::uint64_t i = 0; i < kCount; ++i)
    samples.push_back(100 + i * (1'000'000 - 100) / kCount);
  return samples;
}

// The quantiles of an exponential distribution with a mean of 2 us: sample i is the value at
// quantile (i + 0.5) / n, so every percentile is known exactly.
std::vector<std::uint64_t> exponential_samples() {
  std::vector<std::uint64_t> samples;
  constexpr std::uint64_t kCount = 1'000'000;
  constexpr double kMean = 2000;
  for (std::uint64_t i = 0; i < kCount; ++i) {
    const double q = (static_cast<double>(i) + 0.5) / kCount;
    samples.push_back(static_cast<std::uint64_t>(std::llround(-kMean * std::log1p(-q))));
  }
  return samples;
}

TEST(PerfHistogram, UniformPercentilesAreWithinTheErrorBound) {
  const auto samples = uniform_samples();
  engine::LatencyHistogram histogram(kSubBucketBits);
  // Recorded out of order: the histogram must not care.
  for (std::size_t i = 0; i < samples.size(); i += 2) histogram.record(samples[i]);
  for (std::size_t i = 1; i < samples.size(); i += 2) histogram.record(samples[i]);
  expect_within_bound(histogram, samples);
  // The uniform's p50 is the middle of the range, its p99.99 all but the top 0.01%.
  EXPECT_NEAR(static_cast<double>(histogram.percentile(50)), 500'050, 500'050 * kRelativeBound);
  EXPECT_NEAR(static_cast<double>(histogram.percentile(99.99)), 999'900, 999'900 * kRelativeBound);
}

TEST(PerfHistogram, ExponentialPercentilesAreWithinTheErrorBound) {
  const auto samples = exponential_samples();
  engine::LatencyHistogram histogram(kSubBucketBits);
  for (const std::uint64_t value : samples) histogram.record(value);
  expect_within_bound(histogram, samples);
  // The closed form: the p-quantile of Exp(mean) is -mean * ln(1 - p).
  for (const double p : {50.0, 99.0, 99.99}) {
    const double expected = -2000 * std::log1p(-p / 100);
    EXPECT_NEAR(static_cast<double>(histogram.percentile(p)), expected,
                expected * kRelativeBound + 1)
        << "p" << p;
  }
}

// ControlBlock is ~4 MiB (the open-loop stamps): an anonymous mapping as in the harness.
struct MappedControl {
  MappedControl() {
    void* p = ::mmap(nullptr, sizeof(ControlBlock), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    control = static_cast<ControlBlock*>(p);
  }
  ~MappedControl() { ::munmap(control, sizeof(ControlBlock)); }
  ControlBlock* control;
};

TEST(PerfLatencyRecorder, ReportsPercentilesTouchAndADistributionEndingAtTheMax) {
  const auto samples = uniform_samples();
  LatencyRecorder recorder;
  for (const std::uint64_t value : samples) recorder.record(value, 40);
  MappedControl mapped;
  SideReport report;
  recorder.report(report, *mapped.control);
  ASSERT_EQ(report.ok, 1U);
  EXPECT_TRUE(report.has_latency);
  EXPECT_EQ(report.messages, samples.size());
  EXPECT_EQ(report.touch_p50, 40U);
  EXPECT_NEAR(static_cast<double>(report.p9999), 999'900, 999'900 * kRelativeBound);
  EXPECT_LE(report.p50, report.p90);
  EXPECT_LE(report.p90, report.p99);
  EXPECT_LE(report.p99, report.p999);
  EXPECT_LE(report.p999, report.p9999);
  EXPECT_LE(report.p9999, report.max);
  EXPECT_EQ(report.max, samples.back());

  const Distribution& d = mapped.control->distribution;
  ASSERT_GT(d.rows, 20U);
  EXPECT_EQ(d.count, samples.size());
  EXPECT_EQ(d.max_ns, samples.back());
  // Uniform over [a, b]: mean (a + b) / 2, standard deviation (b - a) / sqrt(12).
  EXPECT_NEAR(d.mean_ns, 500'050, 5);
  EXPECT_NEAR(d.stddev_ns, (1'000'000 - 100) / std::sqrt(12.0), 1000);
  EXPECT_EQ(d.row[0].percentile, 0.0);
  for (std::uint32_t i = 1; i < d.rows; ++i) {
    EXPECT_GT(d.row[i].percentile, d.row[i - 1].percentile) << "row " << i;
    EXPECT_GE(d.row[i].value_ns, d.row[i - 1].value_ns) << "row " << i;
    EXPECT_GE(d.row[i].total_count, d.row[i - 1].total_count) << "row " << i;
  }
  EXPECT_EQ(d.row[d.rows - 1].percentile, 1.0);
  EXPECT_EQ(d.row[d.rows - 1].value_ns, samples.back());
  EXPECT_EQ(d.row[d.rows - 1].total_count, samples.size());
}

TEST(PerfLatencyRecorder, HgrmTextIsHdrHistogramsPercentileFormat) {
  LatencyRecorder recorder;
  for (std::uint64_t v = 1; v <= 10'000; ++v) recorder.record(v * 10, 5);
  MappedControl mapped;
  SideReport report;
  recorder.report(report, *mapped.control);
  const std::string text = hgrm_text(mapped.control->distribution);
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "       Value     Percentile TotalCount 1/(1-Percentile)");
  std::getline(in, line);
  EXPECT_EQ(line, "");
  std::vector<std::string> rows;
  while (std::getline(in, line) && line.rfind("#[", 0) != 0) rows.push_back(line);
  ASSERT_EQ(rows.size(), mapped.control->distribution.rows);
  // value, percentile, count, 1/(1-p) (not on the 100% row).
  double value = 0, percentile = 0, inverse = 0;
  unsigned long long count = 0;
  ASSERT_EQ(std::sscanf(rows[1].c_str(), "%lf %lf %llu %lf", &value, &percentile, &count, &inverse),
            4)
      << rows[1];
  EXPECT_NEAR(inverse, 1 / (1 - percentile), 0.01);
  ASSERT_EQ(std::sscanf(rows.back().c_str(), "%lf %lf %llu", &value, &percentile, &count), 3);
  EXPECT_EQ(value, 100'000.0);
  EXPECT_EQ(percentile, 1.0);
  EXPECT_EQ(count, 10'000U);
  EXPECT_EQ(line.rfind("#[Mean    = ", 0), 0U) << line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("#[Max     = ", 0), 0U) << line;
  EXPECT_NE(line.find("Total count    =        10000]"), std::string::npos) << line;
}

TEST(PerfLatencyRecorder, AnEmptyRecorderWritesAnEmptyDistribution) {
  LatencyRecorder recorder;
  MappedControl mapped;
  mapped.control->distribution.rows = 7;  // stale from an earlier measurement
  SideReport report;
  recorder.report(report, *mapped.control);
  EXPECT_EQ(mapped.control->distribution.rows, 0U);
  EXPECT_EQ(mapped.control->distribution.count, 0U);
  EXPECT_EQ(report.messages, 0U);
}

}  // namespace
}  // namespace symphony::perf
