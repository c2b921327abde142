#pragma once
// The data operator's sample on its topic ("operator/cpu", type "symphony.OperatorSample"):
// what a subscriber in any process reads in place from shared memory. Plain data, fixed layout.

#include <cstdint>
#include <type_traits>

namespace symphony::samples {

enum class OperatorSource : std::uint32_t { proc_stat = 0, loadavg = 1, signal = 2 };

struct OperatorSample {
  std::uint64_t seq = 0;        // 0, 1, 2, ... per run of the operator
  std::int64_t taken_ns = 0;    // CLOCK_MONOTONIC (steady_clock) when the source was read
  double raw = 0;               // the source's value: CPU busy fraction 0..1, load, or signal
  double filtered = 0;          // exponential moving average of raw (alpha per --alpha)
  double mean = 0;              // over the last `window` raw values
  double min = 0;
  double max = 0;
  double stddev = 0;
  std::uint32_t window = 0;     // values in the window so far (up to --window)
  OperatorSource source = OperatorSource::proc_stat;
};

inline constexpr const char* kOperatorTopic = "operator/cpu";
inline constexpr const char* kOperatorType = "symphony.OperatorSample";

static_assert(std::is_trivially_copyable_v<OperatorSample>);
static_assert(sizeof(OperatorSample) == 72, "the topic's sample layout is an ABI: keep it");

}  // namespace symphony::samples
