#pragma once
// symphony-perf's command line.

#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "measure.hpp"

namespace symphony::perf {

// A fixed set of measurements (main.cpp: plan_matrix), or what the options ask for.
enum class Matrix : std::uint8_t { custom, quick, standard };
const char* to_string(Matrix matrix) noexcept;

struct Options {
  std::vector<std::string> transports;  // registry names, floor included if asked for
  std::vector<Pattern> patterns;
  std::vector<Mode> modes;
  std::vector<std::size_t> payloads;
  std::vector<unsigned> fanouts;  // fan-out: subscriber counts
  double rate = 0;                // open loop: messages per second
  unsigned repeats = 5;
  std::uint64_t messages = 0;  // per repeat; 0: `seconds` per repeat
  double seconds = 0.2;
  unsigned producers = 1;
  unsigned consumers = 1;
  unsigned batch = 1;  // throughput: messages per publish and per release
  std::uint64_t queue_bytes = kDefaultQueueBytes;
  std::optional<std::array<int, 2>> cores;  // default: the first two CPUs we may run on
  double timeout_seconds = 30.0;
  std::string json_path;
  std::string hgrm_dir;  // one .hgrm file per latency row; empty: none
  Matrix matrix = Matrix::custom;
  bool transports_given = false;
  bool pause_while_spinning = true;
  Fault fault = Fault::none;
  bool help = false;
};

// The default payload sweep (--payload 8-1M).
std::vector<std::size_t> default_payloads();

tl::expected<Options, std::string> parse_options(int argc, char** argv);
void print_help(std::FILE* out);

}  // namespace symphony::perf
