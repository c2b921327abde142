#include "symphony/engine/latency_histogram.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

namespace symphony::engine {
namespace {

// ceil(p / 100 * count), at least 1 and at most count. The product is nudged down by a relative
// 1e-12 first: 99.9 / 100 * 1000 is 999.0000000000001 in doubles and must mean rank 999.
std::uint64_t rank_of(double p, std::uint64_t count) noexcept {
  if (!(p > 0.0)) return 1;  // also catches NaN
  if (p >= 100.0) return count;
  const double exact = p / 100.0 * static_cast<double>(count);
  const double rank = std::ceil(exact * (1.0 - 1e-12));
  if (rank < 1.0) return 1;
  if (rank >= static_cast<double>(count)) return count;
  return static_cast<std::uint64_t>(rank);
}

}  // namespace

LatencyHistogram::LatencyHistogram(int sub_bucket_bits) : sub_bucket_bits_(sub_bucket_bits) {
  if (sub_bucket_bits < kMinSubBucketBits || sub_bucket_bits > kMaxSubBucketBits) {
    throw std::invalid_argument("LatencyHistogram: sub_bucket_bits " +
                                std::to_string(sub_bucket_bits) + " must be between " +
                                std::to_string(kMinSubBucketBits) + " and " +
                                std::to_string(kMaxSubBucketBits));
  }
  low_mask_ = (std::uint64_t{1} << (sub_bucket_bits + 1)) - 1;
  counts_.assign(static_cast<std::size_t>(65 - sub_bucket_bits) << sub_bucket_bits, 0);
}

void LatencyHistogram::record_n(std::uint64_t value_ns, std::uint64_t count) noexcept {
  if (count == 0) return;
  counts_[bucket_index(value_ns)] += count;
  count_ += count;
  sum_ += static_cast<Sum>(value_ns) * count;
  min_ = std::min(min_, value_ns);
  max_ = std::max(max_, value_ns);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.sub_bucket_bits_ != sub_bucket_bits_) {
    throw std::invalid_argument("LatencyHistogram::merge: sub_bucket_bits " +
                                std::to_string(other.sub_bucket_bits_) + " differ from " +
                                std::to_string(sub_bucket_bits_));
  }
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LatencyHistogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

double LatencyHistogram::mean() const noexcept {
  if (count_ == 0) return 0.0;
  // long double keeps 64 mantissa bits, so the quotient is rounded once, at the end.
  return static_cast<double>(static_cast<long double>(sum_) / static_cast<long double>(count_));
}

std::uint64_t LatencyHistogram::lowest_equivalent(std::size_t index) const noexcept {
  // Inverts bucket_index: the first 2^(s+1) buckets are exact, then each group of 2^s doubles
  // the width.
  const std::size_t group = index >> sub_bucket_bits_;
  const int e = group > 1 ? static_cast<int>(group) - 1 : 0;
  const std::uint64_t mantissa = index - (static_cast<std::size_t>(e) << sub_bucket_bits_);
  return mantissa << e;
}

std::uint64_t LatencyHistogram::highest_equivalent(std::size_t index) const noexcept {
  const std::size_t group = index >> sub_bucket_bits_;
  const int e = group > 1 ? static_cast<int>(group) - 1 : 0;
  // Written as lowest + (width - 1) so the top bucket ends at UINT64_MAX without overflowing.
  return lowest_equivalent(index) + ((std::uint64_t{1} << e) - 1);
}

std::uint64_t LatencyHistogram::representative(std::size_t index) const noexcept {
  const std::uint64_t low = lowest_equivalent(index);
  const std::uint64_t mid = low + (highest_equivalent(index) - low) / 2;
  return std::clamp(mid, min_, max_);
}

std::uint64_t LatencyHistogram::percentile(double p) const noexcept {
  if (count_ == 0) return 0;
  const std::uint64_t rank = rank_of(p, count_);
  // The first and last ranks are the exact min and max; no need to round them to a bucket.
  if (rank == 1) return min_;
  if (rank == count_) return max_;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return representative(i);
  }
  return max_;  // unreachable while count_ equals the sum of counts_
}

LatencySummary LatencyHistogram::summarize() const noexcept {
  LatencySummary summary;
  summary.count = count_;
  summary.max = max_;
  summary.mean = mean();
  if (count_ == 0) return summary;
  constexpr std::array<double, 4> kPercentiles{50.0, 90.0, 99.0, 99.9};
  std::array<std::uint64_t*, 4> out{&summary.p50, &summary.p90, &summary.p99, &summary.p999};
  std::array<std::uint64_t, 4> ranks{};
  for (std::size_t k = 0; k < ranks.size(); ++k) ranks[k] = rank_of(kPercentiles[k], count_);
  // The ranks ascend, so one walk over the buckets serves all four.
  std::size_t next = 0;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size() && next < ranks.size(); ++i) {
    seen += counts_[i];
    while (next < ranks.size() && seen >= ranks[next]) {
      *out[next] = ranks[next] == count_ ? max_ : ranks[next] == 1 ? min_ : representative(i);
      ++next;
    }
  }
  return summary;
}

}  // namespace symphony::engine
