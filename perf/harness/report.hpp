#pragma once
// Results as the user sees them: the table on stdout and the JSON file.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>

namespace symphony::perf {

// One line of the table / one element of "results": medians over the repeats.
struct ResultRow {
  std::string transport;
  std::string pattern;  // "pingpong", "throughput", or "throughput(P->C)"
  std::string mode;
  std::size_t payload = 0;
  unsigned repeats = 0;
  // Ping-pong rows: one-way latency in ns (round trip / 2).
  std::optional<double> p50, p90, p99, p999, max, mean;
  // Throughput rows.
  std::optional<double> msgs_per_s, bytes_per_s;
  std::uint64_t samples = 0;  // measured round trips or messages, summed over the repeats
  std::optional<double> ratio_to_floor;
  // min..max over the repeats of p50 (ping-pong) or msgs/s (throughput).
  double spread_min = 0;
  double spread_max = 0;
};

struct MachineInfo {
  std::string cpu;
  unsigned cores = 0;
  std::string kernel;
  std::string compiler;
  std::string hostname;
  std::string date;  // ISO 8601, UTC
};

MachineInfo collect_machine_info();

void print_table(std::FILE* out, std::span<const ResultRow> rows);

// Writes FILE.tmp and renames it over FILE, so a reader never sees half a file. Returns an
// error message, or nothing on success.
std::optional<std::string> write_json(const std::string& path, const MachineInfo& machine,
                                      std::span<const ResultRow> rows);

}  // namespace symphony::perf
