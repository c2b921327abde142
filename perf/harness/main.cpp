// symphony-perf: the cross-process messaging benchmark (see --help, and README.md here).
//
//   parent ──prepare()──> shared state of one measurement (segments named
//    │                    symphony-perf.<pid>.<n>.*, removed when the measurement ends)
//    ├─ fork ──> side A, pinned to core A (initiator / producers)
//    └─ fork ──> side B, pinned to core B (echoer / consumers)
//   each side opens the state by name, waits at a barrier, runs its loop (drivers.hpp), and
//   writes one SideReport into its pipe; the parent turns reports into results.
//
// For ping-pong, every repeat of a subject is preceded by a repeat of the floor on the same cores,
// so that drift (another tenant on the host, frequency changes) moves both; each result is the
// median of its repeats, and its ratio_to_floor uses the floor repeats interleaved with it.

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "child_runner.hpp"
#include "options.hpp"
#include "report.hpp"
#include "shm_region.hpp"
#include "transport.hpp"
#if defined(SYMPHONY_PERF_HAVE_ICEORYX)
#include "run_roudi.hpp"
#endif

namespace symphony::perf {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr double kNoisyPreemptionsPerSecond = 200;
// The standard matrix's sizes: ping-pong for every transport, and the sweep for ours.
constexpr std::size_t kMatrixPayloads[] = {64, 4096, std::size_t{1} << 20};
constexpr std::size_t kSweepPayloads[] = {8,
                                          64,
                                          512,
                                          4096,
                                          32768,
                                          262144,
                                          1 << 20,
                                          std::size_t{2} << 20,
                                          std::size_t{16} << 20,
                                          std::size_t{64} << 20};
constexpr unsigned kMatrixFanouts[] = {1, 8};

// One repeat's result: one-way latency (ping-pong, fan-out, open loop) and/or rates.
struct RepeatResult {
  bool latency = false;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0, mean = 0, touch = 0;
  double msgs_per_s = 0;
  double bytes_per_s = 0;
  std::uint64_t samples = 0;
  // Involuntary context switches of the sides while measuring, per second (noise).
  double preemptions_per_s = 0;
  std::shared_ptr<const Distribution> distribution;  // latency: for the .hgrm file
};

// A result in the making: what to run, and the repeats so far.
struct Point {
  Transport* transport = nullptr;
  MeasureSpec spec;
  std::string pattern_label;
  std::string skipped;  // non-empty: not run, and why
  std::vector<RepeatResult> repeats;
  std::vector<RepeatResult> floors;  // ping-pong: the floor repeat run right before each repeat
};

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

template <typename Field>
double median_of(const std::vector<RepeatResult>& repeats, Field field) {
  std::vector<double> values;
  for (const RepeatResult& r : repeats) values.push_back(r.*field);
  return median(std::move(values));
}

// The repeat whose p50 is the median's (the lower middle for an even count): its distribution
// is the row's .hgrm.
const RepeatResult* median_repeat(const std::vector<RepeatResult>& repeats) {
  if (repeats.empty()) return nullptr;
  std::vector<const RepeatResult*> sorted;
  for (const RepeatResult& r : repeats) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(),
            [](const RepeatResult* a, const RepeatResult* b) { return a->p50 < b->p50; });
  return sorted[(sorted.size() - 1) / 2];
}

const char* pattern_name(Pattern pattern) {
  return to_string(pattern);
}

ResultRow identity_row(const std::string& transport, const Point& point) {
  ResultRow row;
  row.transport = transport;
  row.pattern = pattern_name(point.spec.pattern);
  row.label = point.pattern_label;
  row.mode = to_string(point.spec.mode);
  row.payload = point.spec.payload;
  row.fanout = point.spec.pattern == Pattern::fanout ? point.spec.consumers : 1;
  if (point.spec.pattern == Pattern::openloop) row.rate_per_s = point.spec.rate;
  return row;
}

ResultRow summarize(const std::string& transport, const Point& point,
                    const std::vector<RepeatResult>& repeats,
                    const std::vector<RepeatResult>& floors) {
  ResultRow row = identity_row(transport, point);
  row.repeats = static_cast<unsigned>(repeats.size());
  for (const RepeatResult& r : repeats) row.samples += r.samples;
  const bool latency = !repeats.empty() && repeats.front().latency;
  const bool rates = point.spec.pattern == Pattern::throughput ||
                     point.spec.pattern == Pattern::fanout ||
                     point.spec.pattern == Pattern::openloop;
  std::vector<double> headline;
  if (latency) {
    row.p50 = median_of(repeats, &RepeatResult::p50);
    row.p90 = median_of(repeats, &RepeatResult::p90);
    row.p99 = median_of(repeats, &RepeatResult::p99);
    row.p999 = median_of(repeats, &RepeatResult::p999);
    row.p9999 = median_of(repeats, &RepeatResult::p9999);
    row.max = median_of(repeats, &RepeatResult::max);
    row.mean = median_of(repeats, &RepeatResult::mean);
    row.touch = median_of(repeats, &RepeatResult::touch);
    for (const RepeatResult& r : repeats) headline.push_back(r.p50);
    const double floor_p50 = median_of(floors, &RepeatResult::p50);
    if (!floors.empty() && floor_p50 > 0) row.ratio_to_floor = *row.p50 / floor_p50;
  }
  if (rates) {
    row.msgs_per_s = median_of(repeats, &RepeatResult::msgs_per_s);
    row.bytes_per_s = median_of(repeats, &RepeatResult::bytes_per_s);
    if (!latency) {
      for (const RepeatResult& r : repeats) headline.push_back(r.msgs_per_s);
    }
  }
  if (!headline.empty()) {
    row.spread_min = *std::min_element(headline.begin(), headline.end());
    row.spread_max = *std::max_element(headline.begin(), headline.end());
  }
  return row;
}

std::string describe(const Point& point) {
  return std::string(point.transport->name()) + " " + point.pattern_label + " " +
         to_string(point.spec.mode) + " " + format_bytes(point.spec.payload);
}

class Runner {
 public:
  Runner(std::array<int, 2> cores, const TickClock& clock, ControlBlock& control)
      : cores_(cores), clock_(clock), control_(control) {}

  tl::expected<RepeatResult, std::string> run(Transport& transport, const MeasureSpec& spec) {
    const std::string prefix = std::string(kNamePrefix) + std::to_string(::getpid()) + "." +
                               std::to_string(++measurements_) + ".";
    auto session = transport.prepare(spec, prefix);
    if (!session) {
      return tl::unexpected("cannot set up " + std::string(transport.name()) + ": " +
                            session.error().message);
    }
    std::vector<SidePlan> plan;
    if (spec.pattern == Pattern::pingpong) {
      plan.push_back({Role::initiator, 0, cores_[0]});
      plan.push_back({Role::echoer, 0, cores_[1]});
    } else {
      for (unsigned i = 0; i < spec.producers; ++i) plan.push_back({Role::producer, i, cores_[0]});
      for (unsigned i = 0; i < spec.consumers; ++i) plan.push_back({Role::consumer, i, cores_[1]});
    }
    // More busy processes than the two cores: waits must yield.
    const bool yield = plan.size() > cores_.size();
    auto reports = run_sides(**session, spec, plan, control_, clock_, yield);
    if (!reports) return tl::unexpected(std::move(reports.error()));

    RepeatResult result;
    std::uint64_t preemptions = 0;
    std::uint64_t measured_ns = 1;
    for (const SideReport& report : *reports) {
      preemptions += report.preemptions;
      measured_ns = std::max(measured_ns, report.measured_ns);
      if (report.has_latency) {
        result.latency = true;
        result.p50 = static_cast<double>(report.p50);
        result.p90 = static_cast<double>(report.p90);
        result.p99 = static_cast<double>(report.p99);
        result.p999 = static_cast<double>(report.p999);
        result.p9999 = static_cast<double>(report.p9999);
        result.max = static_cast<double>(report.max);
        result.mean = report.mean;
        result.touch = static_cast<double>(report.touch_p50);
        result.samples = report.messages;
        result.distribution = std::make_shared<Distribution>(control_.distribution);
      }
    }
    result.preemptions_per_s =
        static_cast<double>(preemptions) * 1e9 / static_cast<double>(measured_ns);
    switch (spec.pattern) {
      case Pattern::pingpong:
        return result;
      case Pattern::openloop: {
        const SideReport& receiver = reports->back();
        if (receiver.last_ns > receiver.first_ns && receiver.messages > 1) {
          result.msgs_per_s = static_cast<double>(receiver.messages - 1) * 1e9 /
                              static_cast<double>(receiver.last_ns - receiver.first_ns);
          result.bytes_per_s = result.msgs_per_s * static_cast<double>(spec.payload);
        }
        return result;
      }
      case Pattern::fanout: {
        const SideReport& publisher = reports->front();
        std::int64_t last = 0;
        for (std::size_t i = 1; i < reports->size(); ++i) {
          const SideReport& subscriber = (*reports)[i];
          if (subscriber.messages != (*reports)[1].messages) {
            return tl::unexpected("subscribers received different counts (" +
                                  std::to_string(subscriber.messages) + " and " +
                                  std::to_string((*reports)[1].messages) + ")");
          }
          last = std::max(last, subscriber.last_ns);
        }
        if (publisher.streamed == 0 || last <= publisher.first_ns) {
          return tl::unexpected(std::string("nothing was streamed, or the clock went backwards"));
        }
        result.msgs_per_s = static_cast<double>(publisher.streamed) * 1e9 /
                            static_cast<double>(last - publisher.first_ns);
        result.bytes_per_s = result.msgs_per_s * static_cast<double>(spec.payload);
        return result;
      }
      case Pattern::throughput:
        break;
    }
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    std::int64_t first = INT64_MAX;
    std::int64_t last = 0;
    for (std::size_t i = 0; i < plan.size(); ++i) {
      const SideReport& report = (*reports)[i];
      if (plan[i].role == Role::producer) {
        sent += report.messages;
        first = std::min(first, report.first_ns);
      } else {
        received += report.messages;
        last = std::max(last, report.last_ns);
      }
    }
    if (sent != received) {
      return tl::unexpected("producers sent " + std::to_string(sent) +
                            " messages but consumers received " + std::to_string(received));
    }
    if (received == 0 || last <= first) {
      return tl::unexpected(std::string("no message arrived, or the clock went backwards"));
    }
    const double seconds = static_cast<double>(last - first) / 1e9;
    result.msgs_per_s = static_cast<double>(received) / seconds;
    result.bytes_per_s = result.msgs_per_s * static_cast<double>(spec.payload);
    result.samples = received;
    return result;
  }

 private:
  std::array<int, 2> cores_;
  const TickClock& clock_;
  ControlBlock& control_;
  std::uint64_t measurements_ = 0;
};

// Other work on the machine skews every number (two cores: one more runnable process takes a
// side's core). Samples /proc/stat for 200 ms before the run and warns on stderr if the CPUs
// were not idle.
void warn_if_busy() {
  const auto sample = [](std::uint64_t& idle, std::uint64_t& total) {
    std::FILE* file = std::fopen("/proc/stat", "r");
    if (file == nullptr) return false;
    std::uint64_t v[8] = {};
    const int n = std::fscanf(file,
                              "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                              " %" SCNu64 " %" SCNu64 " %" SCNu64,
                              &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    std::fclose(file);
    idle = v[3] + v[4];
    total = 0;
    for (const std::uint64_t x : v) total += x;
    return n == 8;
  };
  std::uint64_t idle0 = 0, total0 = 0, idle1 = 0, total1 = 0;
  if (!sample(idle0, total0)) return;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  if (!sample(idle1, total1) || total1 <= total0) return;
  const double busy =
      1.0 - static_cast<double>(idle1 - idle0) / static_cast<double>(total1 - total0);
  if (busy > 0.05) {
    std::fprintf(stderr,
                 "symphony-perf: warning: the CPUs are %.0f%% busy with other work: results "
                 "will be noisy\n",
                 busy * 100);
  }
}

// The first two CPUs this process may run on, or --cores after checking that we may.
tl::expected<std::array<int, 2>, std::string> choose_cores(const Options& options) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    return tl::unexpected(std::string("sched_getaffinity failed"));
  }
  if (options.cores) {
    for (const int cpu : *options.cores) {
      if (!CPU_ISSET(static_cast<std::size_t>(cpu), &allowed)) {
        return tl::unexpected("--cores: this process may not run on CPU " + std::to_string(cpu));
      }
    }
    return *options.cores;
  }
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu) {
    if (CPU_ISSET(static_cast<std::size_t>(cpu), &allowed)) cpus.push_back(cpu);
  }
  if (cpus.size() < 2) {
    return tl::unexpected(std::string(
        "needs two CPUs (the two sides are pinned to different cores); this process may run "
        "on only one"));
  }
  return std::array<int, 2>{cpus[0], cpus[1]};
}

MeasureSpec base_spec(const Options& options) {
  MeasureSpec spec;
  spec.messages = options.messages;
  spec.seconds = options.seconds;
  spec.queue_bytes = options.queue_bytes;
  spec.rate = options.rate;
  spec.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(options.timeout_seconds));
  spec.pause_while_spinning = options.pause_while_spinning;
  spec.fault = options.fault;
  return spec;
}

// What one (transport, pattern, mode, payload, fan-out) measures, or why it is skipped.
class Planner {
 public:
  Planner(const Options& options, const MeasureSpec& base,
          std::map<std::string, std::unique_ptr<Transport>>& transports)
      : options_(options), base_(base), transports_(transports) {}

  void add(const std::string& name, Pattern pattern, Mode mode, std::size_t payload,
           unsigned fanout = 1) {
    Point point;
    point.transport = transports_.at(name).get();
    point.spec = base_;
    point.spec.pattern = pattern;
    point.spec.mode = mode;
    point.spec.payload = payload;
    point.pattern_label = to_string(pattern);
    if (pattern == Pattern::throughput && (options_.producers != 1 || options_.consumers != 1)) {
      point.spec.producers = options_.producers;
      point.spec.consumers = options_.consumers;
      point.pattern_label += "(" + std::to_string(options_.producers) + "->" +
                             std::to_string(options_.consumers) + ")";
    }
    if (pattern == Pattern::throughput && options_.batch != 1) {
      point.spec.batch = options_.batch;
      point.pattern_label += "(batch " + std::to_string(options_.batch) + ")";
    }
    if (pattern == Pattern::fanout) {
      point.spec.consumers = fanout;
      point.pattern_label += "(1->" + std::to_string(fanout) + ")";
    }
    if (pattern == Pattern::openloop) {
      char rate[32];
      std::snprintf(rate, sizeof rate, "(%.0f/s)", options_.rate);
      point.pattern_label += rate;
    }
    if (pattern == Pattern::fanout && !point.transport->broadcasts()) {
      point.skipped = "fan-out (one publisher, N subscribers) is measured for topics only";
    } else {
      point.skipped = point.transport->unsupported(point.spec);
    }
    if (!point.skipped.empty()) {
      std::fprintf(stderr, "symphony-perf: skipped %s: %s\n", describe(point).c_str(),
                   point.skipped.c_str());
    }
    points_.push_back(std::move(point));
  }

  std::vector<Point> take() { return std::move(points_); }

 private:
  const Options& options_;
  const MeasureSpec& base_;
  std::map<std::string, std::unique_ptr<Transport>>& transports_;
  std::vector<Point> points_;
};

bool selected(const Options& options, std::string_view name) {
  return std::find(options.transports.begin(), options.transports.end(), name) !=
         options.transports.end();
}

// The fixed matrices (see --help), narrowed to the transports selected.
void plan_matrix(const Options& options, Planner& planner) {
  std::vector<const TransportEntry*> entries;
  for (const TransportEntry& entry : transport_registry()) {
    if (entry.origin != Origin::floor && selected(options, entry.name)) entries.push_back(&entry);
  }
  const Mode modes[] = {Mode::busy, Mode::blocking};
  // A reference (floor-buffer) is a busy ping-pong: the matrix has no skipped rows for it.
  const auto in_matrix = [](const TransportEntry& entry, Pattern pattern, Mode mode) {
    return entry.origin != Origin::reference ||
           (pattern == Pattern::pingpong && mode == Mode::busy);
  };
  if (options.matrix == Matrix::quick) {
    for (const Pattern pattern : {Pattern::pingpong, Pattern::throughput}) {
      for (const Mode mode : modes) {
        for (const TransportEntry* entry : entries) {
          if (in_matrix(*entry, pattern, mode)) planner.add(std::string(entry->name), pattern, mode, 64);
        }
      }
    }
    return;
  }
  for (const Mode mode : modes) {
    for (const std::size_t payload : kMatrixPayloads) {
      for (const TransportEntry* entry : entries) {
        if (in_matrix(*entry, Pattern::pingpong, mode)) {
          planner.add(std::string(entry->name), Pattern::pingpong, mode, payload);
        }
      }
    }
  }
  for (const Mode mode : modes) {
    for (const TransportEntry* entry : entries) {
      if (in_matrix(*entry, Pattern::throughput, mode)) {
        planner.add(std::string(entry->name), Pattern::throughput, mode, 64);
      }
    }
  }
  for (const Mode mode : modes) {
    for (const unsigned fanout : kMatrixFanouts) {
      for (const TransportEntry* entry : entries) {
        if (entry->make()->broadcasts()) {
          planner.add(std::string(entry->name), Pattern::fanout, mode, 64, fanout);
        }
      }
    }
  }
  // The sweep: ours, iceoryx-raw and the floor for each size (floor-buffer), busy (or blocking
  // for a transport that only blocks), the sizes the rows above have not measured yet.
  for (const std::size_t payload : kSweepPayloads) {
    if (std::find(std::begin(kMatrixPayloads), std::end(kMatrixPayloads), payload) !=
        std::end(kMatrixPayloads)) {
      continue;
    }
    for (const TransportEntry* entry : entries) {
      if (entry->origin == Origin::peer && entry->name != "iceoryx-raw") continue;
      MeasureSpec busy;
      busy.mode = Mode::busy;
      busy.payload = payload;
      const bool blocking_only = !entry->make()->unsupported(busy).empty() && [&] {
        MeasureSpec blocking = busy;
        blocking.mode = Mode::blocking;
        return entry->make()->unsupported(blocking).empty();
      }();
      planner.add(std::string(entry->name), Pattern::pingpong,
                  blocking_only ? Mode::blocking : Mode::busy, payload);
    }
  }
}

void plan_custom(const Options& options, Planner& planner) {
  for (const Pattern pattern : options.patterns) {
    for (const Mode mode : options.modes) {
      for (const std::size_t payload : options.payloads) {
        for (const std::string& name : options.transports) {
          if (name == kFloorName) continue;
          if (pattern == Pattern::fanout) {
            for (const unsigned fanout : options.fanouts)
              planner.add(name, pattern, mode, payload, fanout);
          } else {
            planner.add(name, pattern, mode, payload);
          }
        }
      }
    }
  }
}

bool interleaves_floor(const Point& point, const Transport& floor) {
  return point.spec.pattern == Pattern::pingpong && point.transport != &floor;
}

// Seconds one point should take: its repeats (and their floors), warm-up, set-up and forks.
double estimate_seconds(const Point& point, const Transport& floor, unsigned repeats) {
  if (!point.skipped.empty()) return 0;
  const MeasureSpec& spec = point.spec;
  double measured = spec.messages == 0 ? spec.seconds : 0.05;
  if (spec.pattern == Pattern::fanout) measured *= 2;  // latency, then streaming
  const double warmup = spec.pattern == Pattern::throughput ? 0 : 0.02;
  // iceoryx ports take ~0.1-0.2 s to connect; large payloads fill and fault their memory.
  double setup = 0.01 * static_cast<double>(spec.producers + spec.consumers);
  const std::string_view name = point.transport->name();
  if (name.find("iceoryx") != std::string_view::npos || name == "control-rr") setup += 0.2;
  setup += static_cast<double>(spec.payload) / 1e9 * 8;
  double per_repeat = measured + warmup + setup;
  if (interleaves_floor(point, floor)) per_repeat += spec.seconds + 0.03;
  return repeats * per_repeat;
}

void print_plan(const Options& options, const std::vector<Point>& points, double estimate,
                std::array<int, 2> cores, const TickClock& clock) {
  const auto measured =
      std::count_if(points.begin(), points.end(), [](const Point& p) { return p.skipped.empty(); });
  std::fprintf(stderr,
               "symphony-perf: %zu rows (%zu skipped) x %u repeats on cpus %d,%d (%s clock), "
               "about %.0f s\n",
               points.size(), points.size() - static_cast<std::size_t>(measured), options.repeats,
               cores[0], cores[1], clock.uses_tsc() ? "TSC" : "steady_clock", estimate);
}

// Runs every repeat of `point` (each ping-pong repeat after a floor repeat). Returns a failure
// message, or nothing.
std::optional<std::string> measure_point(Runner& runner, Transport& floor,
                                         const MeasureSpec& floor_spec, unsigned repeats,
                                         Point& point, std::vector<RepeatResult>& all_floors) {
  const auto where = [&](unsigned r) {
    return ", repeat " + std::to_string(r + 1) + "/" + std::to_string(repeats) + ": ";
  };
  for (unsigned r = 0; r < repeats; ++r) {
    if (interleaves_floor(point, floor)) {
      auto floor_result = runner.run(floor, floor_spec);
      if (!floor_result)
        return "floor (before " + describe(point) + ")" + where(r) + floor_result.error();
      point.floors.push_back(*floor_result);
      all_floors.push_back(*floor_result);
    }
    auto result = runner.run(*point.transport, point.spec);
    if (!result) return describe(point) + where(r) + result.error();
    point.repeats.push_back(*result);
  }
  return std::nullopt;
}

// One progress line on stderr: row i of n, its headline, elapsed and ETA. Returns true if the
// result looks disturbed by other processes.
bool print_progress(std::size_t index, std::size_t count, const Point& point, const ResultRow& row,
                    double elapsed, double eta) {
  // A quiet 2-core VM still switches a spinning side out a few dozen times a second (kernel
  // workers); far more means that other processes wanted the cores.
  double worst = 0;
  for (const RepeatResult& r : point.repeats) worst = std::max(worst, r.preemptions_per_s);
  for (const RepeatResult& r : point.floors) worst = std::max(worst, r.preemptions_per_s);
  const bool noisy = worst > kNoisyPreemptionsPerSecond;
  char noise[64] = "";
  if (noisy) std::snprintf(noise, sizeof noise, "  [noisy: %.0f preemptions/s]", worst);
  char headline[96];
  if (!point.skipped.empty()) {
    std::snprintf(headline, sizeof headline, "skipped");
  } else if (row.p50) {
    std::snprintf(headline, sizeof headline, "p50 %8.1f ns  p99 %8.1f ns  %6.2fx floor", *row.p50,
                  *row.p99, row.ratio_to_floor.value_or(0));
  } else {
    std::snprintf(headline, sizeof headline, "%8.2f M msgs/s  %8.0f MB/s",
                  row.msgs_per_s.value_or(0) / 1e6, row.bytes_per_s.value_or(0) / 1e6);
  }
  std::fprintf(stderr, "[%3zu/%zu] %-48s %s  (elapsed %.0f s, ETA %.0f s)%s\n", index + 1, count,
               describe(point).c_str(), headline, elapsed, eta, noise);
  return noisy;
}

// "ring-spsc-pingpong-busy-64B.hgrm".
std::string hgrm_name(const ResultRow& row) {
  std::string name =
      row.transport + "-" + row.pattern + "-" + row.mode + "-" + std::to_string(row.payload) + "B";
  if (row.pattern == "fanout") name += "-n" + std::to_string(row.fanout);
  if (row.rate_per_s) name += "-r" + std::to_string(static_cast<std::uint64_t>(*row.rate_per_s));
  if (row.label.find("->") != std::string::npos && row.pattern == "throughput") name += "-pc";
  return name + ".hgrm";
}

// Writes the .hgrm file of every latency row into `dir`, and sets the rows' paths (relative to
// the JSON file's directory when there is one). Returns an error message, or nothing.
std::optional<std::string> write_hgrm_files(const Options& options, std::vector<ResultRow>& rows,
                                            const std::vector<const Distribution*>& distributions) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(options.hgrm_dir, error);
  if (error) return "cannot create " + options.hgrm_dir + ": " + error.message();
  const fs::path json_dir = options.json_path.empty()
                                ? fs::current_path()
                                : fs::absolute(fs::path(options.json_path)).parent_path();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (distributions[i] == nullptr || distributions[i]->count == 0) continue;
    const fs::path file = fs::absolute(fs::path(options.hgrm_dir) / hgrm_name(rows[i]));
    if (auto failed = write_file_atomically(file.string(), hgrm_text(*distributions[i]))) {
      return failed;
    }
    rows[i].hgrm = file.lexically_relative(json_dir).string();
  }
  return std::nullopt;
}

std::string join_command(int argc, char** argv) {
  std::string command;
  for (int i = 0; i < argc; ++i) {
    if (i != 0) command += ' ';
    command += argv[i];
  }
  return command;
}

int run(const Options& options, const std::string& command) {
  install_interrupt_handlers();
#if defined(SYMPHONY_PERF_HAVE_ICEORYX)
  // The harness's own RouDi, if an iceoryx transport started one, stops with the run however it
  // ends (after the children that used it are gone).
  struct StopRoudi {
    ~StopRoudi() { run_roudi().stop(); }
  } stop_roudi;
#endif
  if (const int removed = remove_stale_regions(); removed > 0) {
    std::fprintf(stderr,
                 "symphony-perf: removed %d shm segment(s) and ipc socket(s) left by dead runs\n",
                 removed);
  }
  const auto cores = choose_cores(options);
  if (!cores) {
    std::fprintf(stderr, "symphony-perf: %s\n", cores.error().c_str());
    return kExitUsage;
  }
  warn_if_busy();
  const TickClock clock = TickClock::calibrate();
  void* mapping = ::mmap(nullptr, sizeof(ControlBlock), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) {
    std::perror("symphony-perf: mmap");
    return kExitFailed;
  }
  auto* control = static_cast<ControlBlock*>(mapping);

  std::map<std::string, std::unique_ptr<Transport>> transports;
  for (const std::string& name : options.transports) transports[name] = make_transport(name);
  // The floor runs whether or not it was asked for: every ping-pong result is relative to it.
  const std::unique_ptr<Transport> floor = make_transport(kFloorName);
  const MeasureSpec base = base_spec(options);
  MeasureSpec floor_spec = base;
  floor_spec.pattern = Pattern::pingpong;
  floor_spec.mode = Mode::busy;
  floor_spec.payload = 8;
  floor_spec.fault = Fault::none;  // faults are for the subjects

  Planner planner(options, base, transports);
  if (options.matrix == Matrix::custom) {
    plan_custom(options, planner);
  } else {
    plan_matrix(options, planner);
  }
  std::vector<Point> points = planner.take();
  const bool any_pingpong = std::any_of(points.begin(), points.end(), [](const Point& p) {
    return p.spec.pattern == Pattern::pingpong && p.skipped.empty();
  });
  if (transports.count(std::string(kFloorName)) != 0 && !any_pingpong) {
    // The floor alone: its own reference.
    Point point;
    point.transport = floor.get();
    point.spec = floor_spec;
    // --fault applies to the floor only when it is the only transport.
    if (options.transports.size() == 1) point.spec.fault = options.fault;
    point.pattern_label = to_string(Pattern::pingpong);
    points.insert(points.begin(), std::move(point));
  }
  if (points.empty()) {
    std::fprintf(stderr, "symphony-perf: nothing to measure\n");
    return kExitUsage;
  }
  std::vector<double> estimates;
  double estimate = 0;
  for (const Point& point : points) {
    estimates.push_back(estimate_seconds(point, *floor, options.repeats));
    estimate += estimates.back();
  }
  print_plan(options, points, estimate, *cores, clock);

  Runner runner(*cores, clock, *control);
  std::vector<RepeatResult> all_floors;
  std::vector<ResultRow> rows;
  std::vector<const Distribution*> distributions;
  std::vector<std::string> failures;
  unsigned noisy_results = 0;
  const auto run_start = std::chrono::steady_clock::now();
  double estimated_done = 0;
  for (std::size_t p = 0; p < points.size() && !interrupted(); ++p) {
    Point& point = points[p];
    const std::string name(point.transport->name());
    if (point.skipped.empty()) {
      // A failed measurement fails the run (exit status 1), but the rest still runs: a flaky
      // row must not lose a ten-minute matrix. Its row says what failed.
      if (auto failure =
              measure_point(runner, *floor, floor_spec, options.repeats, point, all_floors)) {
        std::fprintf(stderr, "symphony-perf: FAILED: %s\n", failure->c_str());
        failures.push_back(*failure);
        point.skipped = "failed: " + *failure;
        point.repeats.clear();
        point.floors.clear();
      }
    }
    if (point.skipped.empty()) {
      // The floor measured on its own is its own reference.
      const auto& floors = point.transport == floor.get() ? point.repeats : point.floors;
      rows.push_back(summarize(name, point, point.repeats, floors));
      const RepeatResult* middle = median_repeat(point.repeats);
      distributions.push_back(middle != nullptr && middle->distribution ? middle->distribution.get()
                                                                        : nullptr);
    } else {
      ResultRow row = identity_row(name, point);
      row.skipped = point.skipped;
      rows.push_back(std::move(row));
      distributions.push_back(nullptr);
    }
    estimated_done += estimates[p];
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    // The estimate, scaled by how the run has gone against it so far.
    const double pace = estimated_done > 0 ? elapsed / estimated_done : 1;
    const double eta = (estimate - estimated_done) * pace;
    if (print_progress(p, points.size(), point, rows.back(), elapsed, eta)) ++noisy_results;
  }

  // The floor row: every floor repeat of the run (it is the reference, so its ratio is 1).
  if (!all_floors.empty()) {
    Point floor_point;
    floor_point.transport = floor.get();
    floor_point.spec = floor_spec;
    floor_point.pattern_label = to_string(Pattern::pingpong);
    rows.insert(rows.begin(),
                summarize(std::string(kFloorName), floor_point, all_floors, all_floors));
    const RepeatResult* middle = median_repeat(all_floors);
    distributions.insert(distributions.begin(), middle != nullptr && middle->distribution
                                                    ? middle->distribution.get()
                                                    : nullptr);
  }
  if (!rows.empty()) print_table(stdout, rows);
  std::fflush(stdout);
  if (noisy_results > 0) {
    std::fprintf(stderr,
                 "symphony-perf: warning: in %u of %zu results the sides were often preempted "
                 "(other processes wanted the cores): rerun on a quiet machine for clean "
                 "tails\n",
                 noisy_results, points.size());
  }
  if (interrupted()) {
    std::fprintf(stderr, "symphony-perf: interrupted: the table above is incomplete\n");
    return 130;
  }
  if (!options.hgrm_dir.empty()) {
    if (const auto error = write_hgrm_files(options, rows, distributions)) {
      std::fprintf(stderr, "symphony-perf: %s\n", error->c_str());
      return kExitFailed;
    }
    std::fprintf(stderr, "symphony-perf: wrote the .hgrm files into %s\n",
                 options.hgrm_dir.c_str());
  }
  if (!options.json_path.empty()) {
    MachineInfo machine = collect_machine_info();
    machine.placement = "sender side (ping-pong initiator, producers, fan-out publisher) on cpu " +
                        std::to_string((*cores)[0]) +
                        "; receiver side (echoer, consumers, subscribers) on cpu " +
                        std::to_string((*cores)[1]);
    RunInfo run;
    run.command = command;
    run.matrix = to_string(options.matrix);
    run.repeats = options.repeats;
    run.seconds_per_repeat = options.seconds;
    std::vector<TransportInfo> described;
    described.push_back({std::string(kFloorName), std::string(floor->description())});
    for (const TransportEntry& entry : transport_registry()) {
      if (entry.origin == Origin::floor || !selected(options, entry.name)) continue;
      described.push_back({std::string(entry.name),
                           std::string(transports.at(std::string(entry.name))->description())});
    }
    if (const auto error = write_json(options.json_path, machine, run, described, rows)) {
      std::fprintf(stderr, "symphony-perf: %s\n", error->c_str());
      return kExitFailed;
    }
    std::fprintf(stderr, "symphony-perf: wrote %s\n", options.json_path.c_str());
  }
  std::fprintf(stderr, "symphony-perf: done in %.1f s\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count());
  if (!failures.empty()) {
    std::fprintf(stderr,
                 "symphony-perf: FAILED: %zu measurement(s) failed (rows \"failed: ...\"):\n",
                 failures.size());
    for (const std::string& failure : failures) std::fprintf(stderr, "  %s\n", failure.c_str());
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace
}  // namespace symphony::perf

int main(int argc, char** argv) {
  using namespace symphony::perf;
  const auto options = parse_options(argc, argv);
  if (!options) {
    std::fprintf(stderr, "symphony-perf: %s\n", options.error().c_str());
    return kExitUsage;
  }
  if (options->help) {
    print_help(stdout);
    return kExitOk;
  }
  try {
    return run(*options, join_command(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "symphony-perf: %s\n", e.what());
    return kExitFailed;
  }
}
