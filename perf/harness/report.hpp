#pragma once
// Results as the user sees them: the table on stdout and the JSON file.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>

#include "measure.hpp"

namespace symphony::perf {

// One line of the table / one element of "results": medians over the repeats. A skipped row
// (the transport cannot run this here) has only its identity and `skipped`.
struct ResultRow {
  std::string transport;
  std::string pattern;  // pingpong, throughput, fanout, openloop (JSON)
  std::string label;    // the table's pattern column: e.g. "throughput(2->2)", "fanout(1->8)"
  std::string mode;
  std::size_t payload = 0;
  unsigned fanout = 1;  // subscribers (fan-out), else 1
  unsigned repeats = 0;
  // One-way latency in ns.
  std::optional<double> p50, p90, p99, p999, p9999, max, mean;
  std::optional<double> touch;  // median time to write + read one message
  std::optional<double> msgs_per_s, bytes_per_s;
  std::optional<double> rate_per_s;  // open loop: the intended rate
  std::uint64_t samples = 0;         // measured round trips or messages, summed over the repeats
  std::optional<double> ratio_to_floor;
  // min..max over the repeats of p50 (latency rows) or msgs/s (throughput).
  double spread_min = 0;
  double spread_max = 0;
  std::string hgrm;     // path of the .hgrm file relative to the JSON file; empty: none
  std::string skipped;  // why the row was not measured; empty: measured
};

struct MachineInfo {
  std::string cpu;
  unsigned cores = 0;
  std::string kernel;
  std::string compiler;
  std::string hostname;
  std::string date;  // ISO 8601, UTC
  std::string build_type;
  std::string git_commit;  // short hash, "+dirty" if the tree had changes at build time
  std::string placement;
};

struct RunInfo {
  std::string command;  // argv joined
  std::string matrix;   // standard, quick or custom
  unsigned repeats = 0;
  double seconds_per_repeat = 0;
};

struct TransportInfo {
  std::string name;
  std::string description;
};

MachineInfo collect_machine_info();

// "64 B", "4 KiB", "1 MiB".
std::string format_bytes(std::size_t bytes);

void print_table(std::FILE* out, std::span<const ResultRow> rows);

// Writes FILE.tmp and renames it over FILE, so a reader never sees half a file. Returns an
// error message, or nothing on success.
std::optional<std::string> write_json(const std::string& path, const MachineInfo& machine,
                                      const RunInfo& run, std::span<const TransportInfo> transports,
                                      std::span<const ResultRow> rows);

// The JSON document write_json writes (schema_version 2).
std::string json_document(const MachineInfo& machine, const RunInfo& run,
                          std::span<const TransportInfo> transports,
                          std::span<const ResultRow> rows);

// HdrHistogram's outputPercentileDistribution text for one latency distribution (values in ns).
std::string hgrm_text(const Distribution& distribution);

// Writes `text` to `path` through path.tmp and a rename. Returns an error message, or nothing.
std::optional<std::string> write_file_atomically(const std::string& path, const std::string& text);

}  // namespace symphony::perf
