#pragma once
// LatencyHistogram: an HdrHistogram-style log-linear histogram of 64-bit values (nanoseconds by
// convention) in constant memory, with a bounded relative error.
//
// With s = sub_bucket_bits, values below 2^(s+1) each get their own bucket (exact); above that,
// every power-of-two range [2^k, 2^(k+1)) is split into 2^s equal buckets, so a bucket is never
// wider than 2^-s of the values it holds. percentile() returns the midpoint of the bucket holding
// the requested rank, clamped to the exact [min, max]: within 2^-(s+1) of the true sample at that
// rank (the contract promises 2^-s). The whole uint64 range is covered; count, sum, min and max
// are exact.
//
//   index(v) = (e << s) + (v >> e),  e = max(msb(v) - s, 0)
//
//   value:  0 .. 2^(s+1)-1  | 2^(s+1) .. 2^(s+2)-1 |  ...  | 2^63 .. 2^64-1
//   width:  1               | 2                    |  ...  | 2^(63-s)
//   index:  0 .. 2^(s+1)-1  | 2^(s+1) .. 3*2^s-1   |  ...  | (64-s)*2^s .. (65-s)*2^s-1
//
// All memory is allocated by the constructor ((65 - s) * 2^s counters: 58 KiB for s = 7);
// record() is a handful of instructions with no branch on the value's magnitude and no
// allocation. Not thread-safe: one writer, and readers only when the writer is quiescent
// (give each thread its own histogram and merge() them).

#include <bit>
#include <cstdint>
#include <vector>

namespace symphony::engine {

struct LatencySummary {
  std::uint64_t p50 = 0;
  std::uint64_t p90 = 0;
  std::uint64_t p99 = 0;
  std::uint64_t p999 = 0;
  std::uint64_t max = 0;
  double mean = 0.0;
  std::uint64_t count = 0;
};

class LatencyHistogram {
 public:
  static constexpr int kMinSubBucketBits = 1;
  // 16 bits already means 3.2 M counters (25 MiB); more buys precision no clock has.
  static constexpr int kMaxSubBucketBits = 16;

  // Throws std::invalid_argument unless kMinSubBucketBits <= sub_bucket_bits <= kMaxSubBucketBits.
  explicit LatencyHistogram(int sub_bucket_bits = 7);

  void record(std::uint64_t value_ns) noexcept {
    counts_[bucket_index(value_ns)] += 1;
    count_ += 1;
    sum_ += value_ns;
    min_ = value_ns < min_ ? value_ns : min_;
    max_ = value_ns > max_ ? value_ns : max_;
  }
  // Records `value_ns` `count` times (a count of 0 changes nothing, min and max included).
  void record_n(std::uint64_t value_ns, std::uint64_t count) noexcept;

  // Adds `other`'s samples. Throws std::invalid_argument if its sub_bucket_bits differ (the
  // buckets would not line up).
  void merge(const LatencyHistogram& other);
  void reset() noexcept;

  std::uint64_t count() const noexcept { return count_; }
  // 0 when empty.
  std::uint64_t min() const noexcept { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const noexcept { return max_; }
  // Exact: the sum is kept in 128 bits. 0.0 when empty.
  double mean() const noexcept;

  // The value at rank ceil(p / 100 * count) (at least 1), as its bucket's midpoint clamped to
  // [min, max]; p is clamped to [0, 100] (NaN reads as 0). 0 when empty.
  std::uint64_t percentile(double p) const noexcept;
  // p50, p90, p99, p99.9 in one pass over the buckets, plus max, mean and count.
  LatencySummary summarize() const noexcept;

  int sub_bucket_bits() const noexcept { return sub_bucket_bits_; }
  std::size_t bucket_count() const noexcept { return counts_.size(); }

  // The bucket of `value` and the range [lowest, highest] of values sharing it.
  std::size_t bucket_index(std::uint64_t value) const noexcept {
    // OR-ing in the low s+1 bits makes msb >= s, so e = msb - s needs no clamp; the extra | 1
    // tells the compiler the operand is non-zero, so it drops the zero test around bsr/lzcnt.
    const int e = 63 - sub_bucket_bits_ - std::countl_zero(value | low_mask_ | 1);
    return (static_cast<std::size_t>(e) << sub_bucket_bits_) + static_cast<std::size_t>(value >> e);
  }
  std::uint64_t lowest_equivalent(std::size_t index) const noexcept;
  std::uint64_t highest_equivalent(std::size_t index) const noexcept;

 private:
  // The value that stands for bucket `index`, clamped to the recorded [min, max].
  std::uint64_t representative(std::size_t index) const noexcept;

  // g++ -Wpedantic rejects a bare __int128; __extension__ marks it as intended.
  __extension__ using Sum = unsigned __int128;

  int sub_bucket_bits_;
  std::uint64_t low_mask_;  // 2^(s+1) - 1
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  Sum sum_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
};

}  // namespace symphony::engine
