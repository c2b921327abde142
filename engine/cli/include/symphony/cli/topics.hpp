#pragma once
// `symphony topic list|echo|hz`: they need no host, only the bus (engine/bus.hpp discovery and
// plain subscribers).
//
// list: Bus::topics() sampled twice, `window` apart; rates are the counters' differences.
// echo, hz: attach with Overflow::discard_oldest, so an observer never back-pressures a `block`
// topic's publisher (it loses the oldest samples instead and counts them in `dropped`); they
// take the topic's own type and options from discovery, so they fit any existing topic.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "symphony/engine/bus.hpp"

namespace symphony::cli {

struct TopicReport {
  TopicInfo info;       // as of the second sample
  double window_s = 0;  // 0: sampled once, no rates
  double published_per_s = 0;
  double delivered_per_s = 0;                      // all subscribers together
  double dropped_per_s = 0;                        // all subscribers together
  std::uint64_t dropped = 0;                       // all subscribers, in total
  std::vector<double> subscriber_delivered_per_s;  // per subscriber (NaN: joined in the window)
};

engine::Result<std::vector<TopicReport>> survey_topics(const Bus& bus,
                                                       std::chrono::milliseconds window);
std::string topics_json(const std::vector<TopicReport>& topics, std::string_view bus);
std::string topics_table(const std::vector<TopicReport>& topics);

struct ObserveOptions {
  std::string topic;
  std::uint32_t depth = 256;  // capped to what the topic's capacity leaves after its history
  bool history = true;        // start with the topic's last `history` samples
  // How long to wait for the topic to appear (a publisher or subscriber creates it); zero: fail
  // at once, negative: forever. A readable `stop_fd` ends the wait (Errc::unavailable).
  std::chrono::milliseconds wait{-1};
  int stop_fd = -1;
};

// A discard_oldest subscriber on an existing topic, with its own type and options. `waiting`
// (if not null) gets one line when the topic is not there yet.
engine::Result<engine::RawSubscriber> observe(Bus& bus, const ObserveOptions& options,
                                              std::FILE* waiting = nullptr);

// Arrival intervals over the last `window` samples (like `ros2 topic hz`).
class RateWindow {
 public:
  explicit RateWindow(std::size_t window) : window_(window < 1 ? 1 : window) {}
  void add(std::chrono::steady_clock::time_point at);
  struct Stats {
    double rate = 0;  // 1 / mean interval
    double min_s = 0, max_s = 0, std_s = 0;
    std::size_t window = 0;  // intervals in the window
  };
  std::optional<Stats> stats() const;  // nullopt before two samples
  std::uint64_t count() const noexcept { return count_; }

 private:
  std::size_t window_;
  std::deque<double> intervals_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  std::uint64_t count_ = 0;
};

struct EchoOptions {
  bool text = false;  // samples as text (else a hex dump)
  bool json = false;  // one JSON object per sample: {seq, size, hex | text}
  std::size_t max_bytes = 256;
  std::uint64_t count = 0;                // stop after this many (0: no limit)
  std::chrono::milliseconds duration{0};  // stop after this long (0: no limit)
};

struct HzOptions {
  std::size_t window = 10'000;
  bool json = false;  // one JSON object per report
  std::chrono::milliseconds duration{0};
  std::chrono::milliseconds every{1000};  // report period
};

// The loops: until `stop_fd` is readable (a signalfd), the count or the duration. Output to
// `out`; 0 on success.
int run_echo(engine::RawSubscriber& subscriber, const EchoOptions& options, std::FILE* out,
             int stop_fd);
int run_hz(engine::RawSubscriber& subscriber, const HzOptions& options, std::FILE* out,
           int stop_fd);

}  // namespace symphony::cli
