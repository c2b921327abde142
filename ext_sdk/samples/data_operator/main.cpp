// data-operator: a sensor pipeline. Samples a source at a set rate, filters it (exponential
// moving average), keeps windowed statistics (mean, min, max, stddev over the last N values) and
// publishes every result on a shared-memory topic (typed: OperatorSample, operator_sample.hpp).
//
//   data-operator [--source stat|loadavg|signal] [--rate HZ] [--window N] [--alpha A]
//     stat:    CPU busy fraction from /proc/stat (0..1; the kernel counts in 10 ms ticks, so at
//              high rates most readings repeat: the filter and the window smooth that)
//     loadavg: the 1-minute load average from /proc/loadavg
//     signal:  a generated 1 Hz sine (amplitude 1) plus a little deterministic noise
// Requests: "stats" -> {"published", "full", "rate_hz", "source", "last": {...}}.
//
// Panel (Extension::ui): a line chart ("cpu") of the mean over each of the last 300 windows (in
// percent for /proc/stat), the measured rate and the mean. The timer calls ui_changed() for
// every sample (1 kHz by default); the SDK folds them into at most one render per 16 ms.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <mutex>
#include <numbers>
#include <string>

#include <symphony/sdk/extension.hpp>

#include "operator_sample.hpp"

using namespace symphony;
using samples::OperatorSample;
using samples::OperatorSource;

namespace {

// CPU busy fraction since the previous reading of /proc/stat's "cpu" line.
class ProcStat {
 public:
  double read() {
    std::FILE* f = std::fopen("/proc/stat", "re");
    if (f == nullptr) return 0;
    unsigned long long v[8] = {};
    const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                              &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    std::fclose(f);
    if (n < 4) return last_;
    unsigned long long total = 0;
    for (unsigned long long x : v) total += x;
    const unsigned long long idle = v[3] + v[4];  // idle + iowait
    if (total > total_ && total_ != 0) {
      last_ = 1.0 - static_cast<double>(idle - idle_) / static_cast<double>(total - total_);
    }
    total_ = total;
    idle_ = idle;
    return last_;
  }

 private:
  unsigned long long total_ = 0, idle_ = 0;
  double last_ = 0;
};

double read_loadavg() {
  std::FILE* f = std::fopen("/proc/loadavg", "re");
  if (f == nullptr) return 0;
  double load = 0;
  if (std::fscanf(f, "%lf", &load) != 1) load = 0;
  std::fclose(f);
  return load;
}

}  // namespace

int main(int argc, char** argv) {
  sdk::Extension ext;
  auto out = ext.advertise<OperatorSample>(samples::kOperatorTopic, samples::kOperatorType);
  if (!out) {
    ext.log().error("{}", out.error().message);
    return 2;
  }
  OperatorSource source = OperatorSource::proc_stat;
  double rate = 1000, alpha = 0.05;
  std::size_t window_size = 64;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string arg = argv[i], value = argv[i + 1];
    if (arg == "--source") {
      source = value == "loadavg" ? OperatorSource::loadavg
               : value == "signal" ? OperatorSource::signal : OperatorSource::proc_stat;
    }
    if (arg == "--rate") rate = std::clamp(std::stod(value), 1.0, 100'000.0);
    if (arg == "--window") window_size = std::clamp<std::size_t>(std::stoul(value), 1, 100'000);
    if (arg == "--alpha") alpha = std::clamp(std::stod(value), 0.0001, 1.0);
  }

  // Only the timer thread touches the pipeline; `mutex` guards what "stats" reads.
  ProcStat stat;
  std::deque<double> window;
  double sum = 0, sum_sq = 0, filtered = 0;
  std::mutex mutex;
  OperatorSample last{};
  std::uint64_t seq = 0, full = 0;
  const auto began = std::chrono::steady_clock::now();
  // The panel's, under `mutex`: one point per completed window, the measured rate.
  constexpr std::size_t kChartPoints = 300;
  std::deque<double> history;
  std::size_t in_window = 0;
  double measured_rate = 0;
  std::uint64_t rate_seq = 0;
  auto rate_since = began;
  const double scale = source == OperatorSource::proc_stat ? 100.0 : 1.0;  // busy in percent

  ext.every(std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / rate)), [&] {
    const auto now = std::chrono::steady_clock::now();
    double raw = 0;
    switch (source) {
      case OperatorSource::proc_stat: raw = stat.read(); break;
      case OperatorSource::loadavg: raw = read_loadavg(); break;
      case OperatorSource::signal: {
        const double t = std::chrono::duration<double>(now - began).count();
        raw = std::sin(2 * std::numbers::pi * t) + 0.05 * std::sin(977.0 * t);
        break;
      }
    }
    filtered = seq == 0 ? raw : filtered + alpha * (raw - filtered);
    window.push_back(raw);
    sum += raw;
    sum_sq += raw * raw;
    if (window.size() > window_size) {
      sum -= window.front();
      sum_sq -= window.front() * window.front();
      window.pop_front();
    }
    const auto n = static_cast<double>(window.size());
    const auto [lo, hi] = std::minmax_element(window.begin(), window.end());
    const double mean = sum / n;
    const auto status = out->publish_with([&](OperatorSample& s) {
      s.seq = seq;
      s.taken_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch())
                       .count();
      s.raw = raw;
      s.filtered = filtered;
      s.mean = mean;
      s.min = *lo;
      s.max = *hi;
      s.stddev = std::sqrt(std::max(0.0, sum_sq / n - mean * mean));
      s.window = static_cast<std::uint32_t>(window.size());
      s.source = source;
      std::lock_guard lock(mutex);
      last = s;
    });
    {
      std::lock_guard lock(mutex);
      if (status == sdk::PublishStatus::ok) ++seq;
      if (status == sdk::PublishStatus::full) ++full;
      if (++in_window >= window_size) {
        in_window = 0;
        history.push_back(mean * scale);
        if (history.size() > kChartPoints) history.pop_front();
      }
      const double elapsed = std::chrono::duration<double>(now - rate_since).count();
      if (elapsed >= 1.0) {
        measured_rate = static_cast<double>(seq - rate_seq) / elapsed;
        rate_seq = seq;
        rate_since = now;
      }
    }
    ext.ui_changed();  // every sample: the SDK coalesces
  });

  ext.ui([&] {
    using namespace sdk::ui;  // (stat is the pipeline's ProcStat here: sdk::ui::stat below)
    std::lock_guard lock(mutex);
    const char* unit = source == OperatorSource::proc_stat ? "%" : "";
    char mean_text[32];
    std::snprintf(mean_text, sizeof mean_text, "%.1f", last.mean * scale);
    Element chart = line_chart("cpu", {{source == OperatorSource::proc_stat ? "CPU busy" : "mean",
                                        std::vector<double>(history.begin(), history.end())}})
                        .prop("unit", unit)
                        .prop("height", 160);
    if (source == OperatorSource::proc_stat) chart.prop("min", 0).prop("max", 100);
    return stack("root",
                 {heading("title", "Data operator"),
                  hstack("stats", {sdk::ui::stat("rate", "Rate", std::lround(measured_rate), "/s"),
                                   sdk::ui::stat("mean", "Mean busy", mean_text, unit),
                                   sdk::ui::stat("published", "Published", seq)}),
                  std::move(chart),
                  text("window", "mean of each window of " + std::to_string(window_size) +
                                     " samples, last " + std::to_string(kChartPoints) + " windows")
                      .prop("tone", "muted")});
  });

  ext.on_request("stats", [&](const sdk::Request&) -> sdk::Reply {
    std::lock_guard lock(mutex);
    const char* names[] = {"stat", "loadavg", "signal"};
    return sdk::Json()
        .add("published", seq)
        .add("full", full)
        .add_raw("rate_hz", std::to_string(rate))
        .add("source", names[static_cast<int>(source)])
        .add_raw("last", sdk::Json()
                             .add("seq", last.seq)
                             .add_raw("raw", std::to_string(last.raw))
                             .add_raw("filtered", std::to_string(last.filtered))
                             .add_raw("mean", std::to_string(last.mean))
                             .str())
        .str();
  });
  ext.on_start([&] {
    const char* names[] = {"/proc/stat", "/proc/loadavg", "a generated signal"};
    ext.log().info("sampling {} at {} Hz, window {}, publishing on '{}'",
                   names[static_cast<int>(source)], rate, window_size, samples::kOperatorTopic);
  });
  return ext.run(argc, argv);
}
