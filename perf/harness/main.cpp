// symphony-perf: the cross-process messaging benchmark (see --help, and README.md here).
//
//   parent ──prepare()──> shared state of one measurement (segments named
//    │                    symphony-perf.<pid>.<n>.*, removed when the measurement ends)
//    ├─ fork ──> side A, pinned to core A (initiator / producers)
//    └─ fork ──> side B, pinned to core B (echoer / consumers)
//   each side opens the state by name, waits at a barrier, runs its loop (drivers.hpp), and
//   writes one SideReport into its pipe; the parent turns reports into results.
//
// For latency, every repeat of a subject is preceded by a repeat of the floor on the same cores,
// so that drift (another tenant on the host, frequency changes) moves both; each result is the
// median of its repeats, and its ratio_to_floor uses the floor repeats interleaved with it.

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
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

namespace symphony::perf {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr double kNoisyPreemptionsPerSecond = 200;

// One repeat's result: one-way latency (ping-pong) or rates (throughput).
struct RepeatResult {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
  double msgs_per_s = 0;
  double bytes_per_s = 0;
  std::uint64_t samples = 0;
  // Involuntary context switches of the sides while measuring, per second (noise).
  double preemptions_per_s = 0;
};

// A result in the making: what to run, and the repeats so far.
struct Point {
  Transport* transport = nullptr;
  MeasureSpec spec;
  std::string pattern_label;
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

ResultRow summarize(const std::string& transport, const std::string& pattern, Mode mode,
                    std::size_t payload, bool latency, const std::vector<RepeatResult>& repeats,
                    const std::vector<RepeatResult>& floors) {
  ResultRow row;
  row.transport = transport;
  row.pattern = pattern;
  row.mode = to_string(mode);
  row.payload = payload;
  row.repeats = static_cast<unsigned>(repeats.size());
  for (const RepeatResult& r : repeats) row.samples += r.samples;
  std::vector<double> headline;
  if (latency) {
    row.p50 = median_of(repeats, &RepeatResult::p50);
    row.p90 = median_of(repeats, &RepeatResult::p90);
    row.p99 = median_of(repeats, &RepeatResult::p99);
    row.p999 = median_of(repeats, &RepeatResult::p999);
    row.max = median_of(repeats, &RepeatResult::max);
    row.mean = median_of(repeats, &RepeatResult::mean);
    for (const RepeatResult& r : repeats) headline.push_back(r.p50);
    const double floor_p50 = median_of(floors, &RepeatResult::p50);
    if (!floors.empty() && floor_p50 > 0) row.ratio_to_floor = *row.p50 / floor_p50;
  } else {
    row.msgs_per_s = median_of(repeats, &RepeatResult::msgs_per_s);
    row.bytes_per_s = median_of(repeats, &RepeatResult::bytes_per_s);
    for (const RepeatResult& r : repeats) headline.push_back(r.msgs_per_s);
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
    }
    result.preemptions_per_s =
        static_cast<double>(preemptions) * 1e9 / static_cast<double>(measured_ns);
    if (spec.pattern == Pattern::pingpong) {
      const SideReport& initiator = reports->front();
      result.p50 = static_cast<double>(initiator.rtt_p50) / 2;
      result.p90 = static_cast<double>(initiator.rtt_p90) / 2;
      result.p99 = static_cast<double>(initiator.rtt_p99) / 2;
      result.p999 = static_cast<double>(initiator.rtt_p999) / 2;
      result.max = static_cast<double>(initiator.rtt_max) / 2;
      result.mean = initiator.rtt_mean / 2;
      result.samples = initiator.messages;
      return result;
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
  spec.mode = options.mode;
  spec.messages = options.messages;
  spec.seconds = options.seconds;
  spec.queue_bytes = options.queue_bytes;
  spec.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(options.timeout_seconds));
  spec.pause_while_spinning = options.pause_while_spinning;
  spec.fault = options.fault;
  return spec;
}

// What the run measures, in order: for each pattern and payload, each transport that supports
// it (the others become notes). The floor is not a subject: it runs interleaved with the
// latency subjects, and on its own only when it is all that was asked for.
std::vector<Point> plan_points(const Options& options, const MeasureSpec& base,
                               const MeasureSpec& floor_spec,
                               std::map<std::string, std::unique_ptr<Transport>>& transports,
                               Transport& floor, std::vector<std::string>& notes) {
  std::vector<Point> points;
  for (const Pattern pattern : options.patterns) {
    for (const std::size_t payload : options.payloads) {
      for (const std::string& name : options.transports) {
        if (name == kFloorName) continue;
        Point point;
        point.transport = transports.at(name).get();
        point.spec = base;
        point.spec.pattern = pattern;
        point.spec.payload = payload;
        point.pattern_label = to_string(pattern);
        if (pattern == Pattern::throughput && (options.producers != 1 || options.consumers != 1)) {
          point.spec.producers = options.producers;
          point.spec.consumers = options.consumers;
          point.pattern_label += "(" + std::to_string(options.producers) + "->" +
                                 std::to_string(options.consumers) + ")";
        }
        if (pattern == Pattern::throughput && options.batch != 1) {
          point.spec.batch = options.batch;
          point.pattern_label += "(batch " + std::to_string(options.batch) + ")";
        }
        if (const std::string why = point.transport->unsupported(point.spec); !why.empty()) {
          notes.push_back("skipped " + describe(point) + ": " + why);
          std::fprintf(stderr, "symphony-perf: %s\n", notes.back().c_str());
          continue;
        }
        points.push_back(std::move(point));
      }
    }
  }
  const bool any_latency = std::any_of(points.begin(), points.end(), [](const Point& p) {
    return p.spec.pattern == Pattern::pingpong;
  });
  const bool floor_listed = transports.count(std::string(kFloorName)) != 0;
  if (floor_listed && !any_latency) {
    Point point;
    point.transport = &floor;
    point.spec = floor_spec;
    // --fault applies to the floor only when it is the only transport.
    if (options.transports.size() == 1) point.spec.fault = options.fault;
    point.pattern_label = to_string(Pattern::pingpong);
    points.insert(points.begin(), std::move(point));
  }
  return points;
}

bool interleaves_floor(const Point& point, const Transport& floor) {
  return point.spec.pattern == Pattern::pingpong && point.transport != &floor;
}

void print_plan(const Options& options, const std::vector<Point>& points, const Transport& floor,
                std::array<int, 2> cores, const TickClock& clock) {
  std::fprintf(stderr, "symphony-perf: %zu results x %u repeats on cpus %d,%d (%s clock)",
               points.size(), options.repeats, cores[0], cores[1],
               clock.uses_tsc() ? "TSC" : "steady_clock");
  if (options.messages == 0) {
    // Measured time, warm-up, and ~10 ms to set up and fork each run.
    double estimate = 0;
    for (const Point& point : points) {
      const double warmup = point.spec.pattern == Pattern::pingpong ? 0.02 : 0;
      estimate += options.repeats * (interleaves_floor(point, floor) ? 2 : 1) *
                  (options.seconds + warmup + 0.01);
    }
    std::fprintf(stderr, ", about %.0f s", estimate);
  }
  std::fprintf(stderr, "\n");
}

// Runs every repeat of `point` (each latency repeat after a floor repeat). Returns a failure
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

// One progress line on stderr. Returns true if the result looks disturbed by other processes.
bool print_progress(std::size_t index, std::size_t count, const Point& point, const ResultRow& row,
                    double seconds) {
  // A quiet 2-core VM still switches a spinning side out a few dozen times a second (kernel
  // workers); far more means that other processes wanted the cores.
  double worst = 0;
  for (const RepeatResult& r : point.repeats) worst = std::max(worst, r.preemptions_per_s);
  for (const RepeatResult& r : point.floors) worst = std::max(worst, r.preemptions_per_s);
  const bool noisy = worst > kNoisyPreemptionsPerSecond;
  char noise[64] = "";
  if (noisy) std::snprintf(noise, sizeof noise, "  [noisy: %.0f preemptions/s]", worst);
  if (row.p50) {
    std::fprintf(stderr, "[%2zu/%zu] %-44s p50 %7.1f ns  p99 %7.1f ns  %.2fx floor  (%.1f s)%s\n",
                 index + 1, count, describe(point).c_str(), *row.p50, *row.p99,
                 row.ratio_to_floor.value_or(0), seconds, noise);
  } else {
    std::fprintf(stderr, "[%2zu/%zu] %-44s %8.2f M msgs/s  %8.0f MB/s  (%.1f s)%s\n", index + 1,
                 count, describe(point).c_str(), row.msgs_per_s.value_or(0) / 1e6,
                 row.bytes_per_s.value_or(0) / 1e6, seconds, noise);
  }
  return noisy;
}

int run(const Options& options) {
  install_interrupt_handlers();
  if (const int removed = remove_stale_regions(); removed > 0) {
    std::fprintf(stderr, "symphony-perf: removed %d segment(s) left by dead runs\n", removed);
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
  // The floor runs whether or not it was asked for: every latency result is relative to it.
  const std::unique_ptr<Transport> floor = make_transport(kFloorName);
  const MeasureSpec base = base_spec(options);
  MeasureSpec floor_spec = base;
  floor_spec.pattern = Pattern::pingpong;
  floor_spec.mode = Mode::busy;
  floor_spec.payload = 8;
  floor_spec.fault = Fault::none;  // faults are for the subjects

  std::vector<std::string> notes;
  std::vector<Point> points = plan_points(options, base, floor_spec, transports, *floor, notes);
  if (points.empty()) {
    std::fprintf(stderr, "symphony-perf: nothing to measure\n");
    return kExitUsage;
  }
  print_plan(options, points, *floor, *cores, clock);

  Runner runner(*cores, clock, *control);
  std::vector<RepeatResult> all_floors;
  std::vector<ResultRow> rows;
  std::optional<std::string> failure;
  unsigned noisy_results = 0;
  const auto run_start = std::chrono::steady_clock::now();
  for (std::size_t p = 0; p < points.size() && !failure; ++p) {
    Point& point = points[p];
    const auto started = std::chrono::steady_clock::now();
    failure = measure_point(runner, *floor, floor_spec, options.repeats, point, all_floors);
    if (failure) break;
    const bool latency = point.spec.pattern == Pattern::pingpong;
    // The floor measured on its own is its own reference.
    const auto& floors = point.transport == floor.get() ? point.repeats : point.floors;
    rows.push_back(summarize(std::string(point.transport->name()), point.pattern_label,
                             point.spec.mode, point.spec.payload, latency, point.repeats, floors));
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (print_progress(p, points.size(), point, rows.back(), took)) ++noisy_results;
  }

  // The floor row: every floor repeat of the run (it is the reference, so its ratio is 1).
  if (!all_floors.empty()) {
    rows.insert(rows.begin(),
                summarize(std::string(kFloorName), to_string(Pattern::pingpong), Mode::busy,
                          floor_spec.payload, true, all_floors, all_floors));
  }
  if (!rows.empty()) {
    print_table(stdout, rows);
    for (const std::string& note : notes) std::printf("note: %s\n", note.c_str());
  }
  std::fflush(stdout);
  if (noisy_results > 0) {
    std::fprintf(stderr,
                 "symphony-perf: warning: in %u of %zu results the sides were often preempted "
                 "(other processes wanted the cores): rerun on a quiet machine for clean "
                 "tails\n",
                 noisy_results, points.size());
  }
  if (failure) {
    std::fprintf(stderr, "symphony-perf: FAILED: %s\n", failure->c_str());
    if (!rows.empty()) std::fprintf(stderr, "symphony-perf: the table above is incomplete\n");
    return interrupted() ? 130 : kExitFailed;
  }
  if (!options.json_path.empty()) {
    if (const auto error = write_json(options.json_path, collect_machine_info(), rows)) {
      std::fprintf(stderr, "symphony-perf: %s\n", error->c_str());
      return kExitFailed;
    }
    std::fprintf(stderr, "symphony-perf: wrote %s\n", options.json_path.c_str());
  }
  std::fprintf(stderr, "symphony-perf: done in %.1f s\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count());
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
    return run(*options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "symphony-perf: %s\n", e.what());
    return kExitFailed;
  }
}
