#include "options.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "report.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

constexpr std::size_t kSweepFactor = 8;
constexpr const char* kDefaultSweep = "8-1M";
constexpr double kDefaultSeconds = 0.2;
constexpr double kQuickSeconds = 0.05;
constexpr unsigned kQuickRepeats = 3;
// The standard matrix: 5 repeats of 0.1 s fit ~10 minutes on a 2-core machine.
constexpr double kStandardSeconds = 0.1;
constexpr double kDefaultRate = 10'000;

using Parsed = tl::expected<Options, std::string>;

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (;;) {
    const auto at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// A byte count: digits with an optional binary suffix K / M / G (KiB, MiB, GiB; a trailing
// "B" or "iB" is accepted).
std::optional<std::uint64_t> parse_bytes(std::string_view text) {
  if (text.ends_with("iB")) {
    text.remove_suffix(2);
  } else if (text.ends_with("B") || text.ends_with("b")) {
    text.remove_suffix(1);
  }
  std::uint64_t multiplier = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k':
      case 'K':
        multiplier = 1ULL << 10;
        break;
      case 'm':
      case 'M':
        multiplier = 1ULL << 20;
        break;
      case 'g':
      case 'G':
        multiplier = 1ULL << 30;
        break;
      default:
        break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  const auto value = parse_unsigned(text);
  if (!value || *value > UINT64_MAX / multiplier) return std::nullopt;
  return *value * multiplier;
}

// A count: digits with an optional decimal suffix k / M / G.
std::optional<std::uint64_t> parse_count(std::string_view text) {
  std::uint64_t multiplier = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k':
      case 'K':
        multiplier = 1'000;
        break;
      case 'M':
        multiplier = 1'000'000;
        break;
      case 'G':
        multiplier = 1'000'000'000;
        break;
      default:
        break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  const auto value = parse_unsigned(text);
  if (!value || *value > UINT64_MAX / multiplier) return std::nullopt;
  return *value * multiplier;
}

std::optional<double> parse_seconds(std::string_view text) {
  if (text.ends_with("s")) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  const std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || !std::isfinite(value) || value <= 0) return std::nullopt;
  return value;
}

// "8,64,1K" or a sweep "8-1M" (each size x8 the last, the upper end always included), or both.
tl::expected<std::vector<std::size_t>, std::string> parse_payloads(std::string_view text) {
  std::vector<std::size_t> sizes;
  const auto check = [](std::uint64_t size) { return size >= kMinPayload && size <= kMaxPayload; };
  const std::string bounds =
      "between " + format_bytes(kMinPayload) + " and " + format_bytes(kMaxPayload);
  for (const std::string_view item : split(text, ',')) {
    const auto dash = item.find('-');
    if (dash == std::string_view::npos) {
      const auto size = parse_bytes(item);
      if (!size || !check(*size)) {
        return tl::unexpected("payload '" + std::string(item) + "' is not a size " + bounds);
      }
      sizes.push_back(*size);
      continue;
    }
    const auto first = parse_bytes(item.substr(0, dash));
    const auto last = parse_bytes(item.substr(dash + 1));
    if (!first || !last || !check(*first) || !check(*last) || *first > *last) {
      return tl::unexpected("payload sweep '" + std::string(item) + "' is not LOW-HIGH with both " +
                            bounds);
    }
    for (std::uint64_t size = *first; size < *last; size *= kSweepFactor) sizes.push_back(size);
    sizes.push_back(*last);
  }
  // Each size once, in the order given.
  std::vector<std::size_t> unique;
  for (const std::size_t size : sizes) {
    if (std::find(unique.begin(), unique.end(), size) == unique.end()) unique.push_back(size);
  }
  return unique;
}

std::string pad(std::string_view text, std::size_t width) {
  std::string out(text);
  if (out.size() < width) out.append(width - out.size(), ' ');
  return out;
}

// `text` as lines of at most kHelpWidth columns, the first starting with `lead` and the others
// indented as deep.
std::string wrap(std::string_view text, const std::string& lead) {
  constexpr std::size_t kHelpWidth = 90;
  std::string out = lead;
  std::size_t column = lead.size();
  const std::string indent(lead.size(), ' ');
  bool first_word = true;
  for (const std::string_view word : split(text, ' ')) {
    if (!first_word && column + 1 + word.size() > kHelpWidth) {
      out += "\n" + indent;
      column = indent.size();
      first_word = true;
    }
    if (!first_word) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    first_word = false;
  }
  return out + "\n";
}

}  // namespace

const char* to_string(Matrix matrix) noexcept {
  switch (matrix) {
    case Matrix::custom:
      return "custom";
    case Matrix::quick:
      return "quick";
    case Matrix::standard:
      return "standard";
  }
  return "?";
}

std::vector<std::size_t> default_payloads() {
  return *parse_payloads(kDefaultSweep);
}

void print_help(std::FILE* out) {
  std::fprintf(
      out,
      "usage: symphony-perf [options]\n"
      "\n"
      "Cross-process messaging benchmark. For each transport, pattern, mode and payload size it\n"
      "forks one process per side (pinned: the sending side to the first core, the receiving\n"
      "side(s) to the second) and measures:\n"
      "  pingpong    one-way latency = round trip / 2 (p50, p90, p99, p99.9, p99.99, max, mean)\n"
      "  throughput  one-way messages/s and bytes/s, first send to last receive\n"
      "  fanout      one publisher, N subscribers (topics): publish -> the last subscriber's\n"
      "              receive (lock-step), and messages/s streaming to all N\n"
      "  openloop    a sender at a fixed --rate; latency from each message's intended send time\n"
      "              (no coordinated omission)\n"
      "Every message is written before it is sent and read (and checked) after it is received;\n"
      "latency stamps are taken after the write and before the read, and the write + read\n"
      "(\"touch\") is timed separately and reported as touch_ns (in a ping-pong the echoer's\n"
      "touch is taken out of the round trip too).\n"
      "\n"
      "In the same run it measures the machine's floor (a bare 64-byte-aligned word each way\n"
      "between the same two cores, busy spin), interleaved with every ping-pong measurement:\n"
      "floor, subject, floor, subject, ... for each repeat. Each result is the median over the\n"
      "repeats; ratio_to_floor = subject p50 / p50 of the floor repeats interleaved with it\n"
      "(null for the other patterns).\n"
      "\n"
      "options:\n"
      "  --matrix standard|quick   a fixed set of measurements (--pattern, --mode and\n"
      "                 --payload are not allowed with it; --transport narrows it):\n"
      "                 standard: every transport ping-pong at 64 B, 4 KiB and 1 MiB in both\n"
      "                 modes; throughput at 64 B in both modes; fan-out 1 and 8 for topics; the\n"
      "                 payload sweep 8 B - 64 MiB (x8) ping-pong for ours, iceoryx-raw and\n"
      "                 floor-buffer (busy ping-pong only); %.2g s per repeat, 5 repeats (under\n"
      "                 10 minutes on 2 cores)\n"
      "                 quick: every transport ping-pong and throughput at 64 B in both modes,\n"
      "                 %.2g s per repeat, %u repeats (under a minute)\n"
      "  --quick        --matrix quick\n"
      "  --transport NAME[,NAME...]|all   transports to run (default all):\n",
      kStandardSeconds, kQuickSeconds, kQuickRepeats);
  for (const TransportEntry& entry : transport_registry()) {
    const auto transport = entry.make();
    std::fprintf(out, "%s", wrap(transport->summary(), "      " + pad(entry.name, 14)).c_str());
  }
  std::fprintf(
      out,
      "  --pattern P[,P...]   pingpong, throughput, fanout, openloop, or all (= pingpong,\n"
      "                 throughput; the default)\n"
      "  --mode busy|blocking|both   how a receiver waits (default busy): busy spins on the\n"
      "                 transport's poll (try-take, MSG_DONTWAIT, try_receive, take()); blocking\n"
      "                 uses its own wake-up (futex doorbell, blocking read, receive, zmq_poll,\n"
      "                 WaitSet). The floor is always busy.\n"
      "  --payload SIZES  comma-separated sizes and sweeps, e.g. 8,64,1K or 8-1M (a sweep\n"
      "                 multiplies by %zu, both ends included); K, M = KiB, MiB; from %zu B to\n"
      "                 %zu MiB (default 8-1M: 8 B, 64 B, 512 B, 4 KiB, 32 KiB, 256 KiB, 1 MiB)\n"
      "  --fanout N[,N...]   fan-out: subscriber processes (1 to %u; default 1,8)\n"
      "  --rate R       open loop: messages per second (k, M = 10^3, 10^6; default %.0f)\n"
      "  --repeats N    repeats per result, median reported (default 5)\n"
      "  --messages N   measured messages per repeat (round trips, or the total over all\n"
      "                 producers); k, M, G = 10^3, 10^6, 10^9\n"
      "  --seconds S    measured time per repeat instead (default %.2g; ping-pong adds a warm-up\n"
      "                 of up to 20 ms; fan-out measures S of latency, then S of streaming)\n"
      "  --producers P, --consumers C   throughput with P producer and C consumer processes\n"
      "                 (ring-mpmc only; default 1 and 1). Producers share the first core,\n"
      "                 consumers the second; with more processes than cores, waits yield.\n"
      "  --batch N      throughput: publish every N messages and release every N (default 1:\n"
      "                 each message on its own); transports that cannot batch skip N > 1\n"
      "  --queue-bytes B  bytes each queue holds (default %llu, and at least 4 messages);\n"
      "                 boost-spsc's capacity is fixed at compile time at the default\n"
      "  --cores A,B    the two CPUs (default: the first two this process may run on)\n"
      "  --spin pause|tight   busy polling with a pause instruction between polls (default)\n"
      "                 or none; the same for every transport and the floor\n"
      "  --timeout S    a measurement that takes longer fails the run (default 30)\n"
      "  --json FILE    also write the results as JSON (schema_version 2, below)\n"
      "  --hgrm DIR     also write one HdrHistogram-style .hgrm percentile file per latency row\n"
      "                 (the distribution of its median repeat, warm-up excluded)\n"
      "  --fault die|stall  testing: the receiving side dies / stops after %llu messages;\n"
      "                 the run must fail with a clear error (use a short --timeout)\n"
      "  -h, --help     this text\n"
      "\n"
      "A transport that cannot run a measurement here (a mode it does not have, a payload too\n"
      "large for its limits or for RouDi's memory pools) gets a row saying \"skipped\" and why.\n"
      "\n"
      "Output: a table on stdout (latencies in ns, one-way; touch = write + read of one\n"
      "message; msgs/s; MB/s = 10^6 bytes/s; ratio to floor; spread = min..max over the\n"
      "repeats of p50, or of msgs/s for throughput); progress on stderr (row i of n, elapsed,\n"
      "ETA). JSON (perf/harness/README.md has the whole schema): {\"schema_version\": 2,\n"
      "\"machine\": {cpu, cores, kernel, compiler, hostname, date, build_type, git_commit,\n"
      "placement}, \"run\": {command, matrix, repeats, seconds_per_repeat}, \"transports\":\n"
      "[{name, description}], \"results\": [{transport, pattern, mode, payload_bytes, fanout,\n"
      "repeats, p50_ns, p90_ns, p99_ns, p999_ns, p9999_ns, max_ns, mean_ns, touch_ns,\n"
      "msgs_per_s, bytes_per_s, rate_per_s, samples, ratio_to_floor, spread {min, max}, hgrm,\n"
      "skipped}]}; null where a field does not apply.\n"
      "\n"
      "Exit status: 0 on success, 1 if a measurement failed (a side died, stalled past\n"
      "--timeout, or lost or corrupted a message), 2 on a bad argument.\n",
      kSweepFactor, kMinPayload, kMaxPayload >> 20, kMaxFanout, kDefaultRate, kDefaultSeconds,
      static_cast<unsigned long long>(kDefaultQueueBytes),
      static_cast<unsigned long long>(kFaultAfterMessages));
}

Parsed parse_options(int argc, char** argv) {
  Options o;
  bool have_payload = false;
  bool have_seconds = false;
  bool have_messages = false;
  bool have_repeats = false;
  bool have_layout = false;  // --pattern, --mode or --payload: what a matrix fixes itself
  const auto bad = [](std::string_view option, std::string_view value, std::string_view want) {
    return tl::unexpected("option " + std::string(option) + ": '" + std::string(value) +
                          "' is not " + std::string(want));
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      o.help = true;
      continue;
    }
    if (arg == "--quick") {
      o.matrix = Matrix::quick;
      continue;
    }
    std::string_view name = arg;
    std::string_view value;
    bool has_value = false;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    static constexpr std::string_view kValued[] = {
        "--transport",   "--pattern", "--mode",      "--payload",   "--repeats",
        "--messages",    "--seconds", "--producers", "--consumers", "--batch",
        "--queue-bytes", "--cores",   "--spin",      "--timeout",   "--json",
        "--fault",       "--hgrm",    "--matrix",    "--fanout",    "--rate"};
    if (std::find(std::begin(kValued), std::end(kValued), name) == std::end(kValued)) {
      return tl::unexpected("unknown option '" + std::string(arg) + "' (see --help)");
    }
    if (!has_value) {
      if (i + 1 >= argc) return tl::unexpected("option " + std::string(name) + " needs a value");
      value = argv[++i];
    }
    if (name == "--transport") {
      o.transports.clear();
      for (const std::string_view item : split(value, ',')) {
        if (item == "all") {
          for (const TransportEntry& entry : transport_registry()) {
            o.transports.emplace_back(entry.name);
          }
          continue;
        }
        if (!make_transport(item)) {
          std::string known;
          for (const TransportEntry& entry : transport_registry()) {
            known += (known.empty() ? "" : ", ") + std::string(entry.name);
          }
          return bad(name, item, "a transport (" + known + ", or all)");
        }
        o.transports.emplace_back(item);
      }
      o.transports_given = true;
    } else if (name == "--pattern") {
      o.patterns.clear();
      for (const std::string_view item : split(value, ',')) {
        if (item == "pingpong") {
          o.patterns.push_back(Pattern::pingpong);
        } else if (item == "throughput") {
          o.patterns.push_back(Pattern::throughput);
        } else if (item == "fanout") {
          o.patterns.push_back(Pattern::fanout);
        } else if (item == "openloop") {
          o.patterns.push_back(Pattern::openloop);
        } else if (item == "all") {
          o.patterns.push_back(Pattern::pingpong);
          o.patterns.push_back(Pattern::throughput);
        } else {
          return bad(name, item, "pingpong, throughput, fanout, openloop or all");
        }
      }
      have_layout = true;
    } else if (name == "--mode") {
      o.modes.clear();
      for (const std::string_view item : split(value, ',')) {
        if (item == "busy") {
          o.modes.push_back(Mode::busy);
        } else if (item == "blocking") {
          o.modes.push_back(Mode::blocking);
        } else if (item == "both") {
          o.modes.push_back(Mode::busy);
          o.modes.push_back(Mode::blocking);
        } else {
          return bad(name, item, "busy, blocking or both");
        }
      }
      have_layout = true;
    } else if (name == "--fanout") {
      o.fanouts.clear();
      for (const std::string_view item : split(value, ',')) {
        const auto count = parse_unsigned(item);
        if (!count || *count < 1 || *count > kMaxFanout) {
          return bad(name, item, "a subscriber count from 1 to " + std::to_string(kMaxFanout));
        }
        o.fanouts.push_back(static_cast<unsigned>(*count));
      }
    } else if (name == "--rate") {
      const auto rate = parse_count(value);
      if (!rate || *rate < 1 || *rate > 100'000'000) {
        return bad(name, value, "messages per second from 1 to 100M");
      }
      o.rate = static_cast<double>(*rate);
    } else if (name == "--matrix") {
      if (value == "standard") {
        o.matrix = Matrix::standard;
      } else if (value == "quick") {
        o.matrix = Matrix::quick;
      } else {
        return bad(name, value, "standard or quick");
      }
    } else if (name == "--hgrm") {
      if (value.empty()) return bad(name, value, "a directory");
      o.hgrm_dir = value;
    } else if (name == "--payload") {
      auto payloads = parse_payloads(value);
      if (!payloads) return tl::unexpected("option --payload: " + payloads.error());
      o.payloads = std::move(*payloads);
      have_payload = true;
      have_layout = true;
    } else if (name == "--repeats") {
      const auto repeats = parse_unsigned(value);
      if (!repeats || *repeats < 1 || *repeats > 1000) return bad(name, value, "1 to 1000");
      o.repeats = static_cast<unsigned>(*repeats);
      have_repeats = true;
    } else if (name == "--messages") {
      const auto messages = parse_count(value);
      if (!messages || *messages < 1 || *messages > (1ULL << 40)) {
        return bad(name, value, "a message count from 1 to 2^40");
      }
      o.messages = *messages;
      have_messages = true;
    } else if (name == "--seconds") {
      const auto seconds = parse_seconds(value);
      if (!seconds || *seconds > 3600) return bad(name, value, "a number of seconds (0 to 3600)");
      o.seconds = *seconds;
      have_seconds = true;
    } else if (name == "--producers" || name == "--consumers") {
      const auto count = parse_unsigned(value);
      if (!count || *count < 1 || *count > 64) return bad(name, value, "1 to 64");
      (name == "--producers" ? o.producers : o.consumers) = static_cast<unsigned>(*count);
    } else if (name == "--batch") {
      const auto count = parse_unsigned(value);
      if (!count || *count < 1 || *count > 4096) return bad(name, value, "1 to 4096");
      o.batch = static_cast<unsigned>(*count);
    } else if (name == "--queue-bytes") {
      const auto bytes = parse_bytes(value);
      if (!bytes || *bytes < 256 || *bytes > (1ULL << 32)) {
        return bad(name, value, "a size from 256 B to 4 GiB");
      }
      o.queue_bytes = *bytes;
    } else if (name == "--cores") {
      const auto parts = split(value, ',');
      const auto a = parts.size() == 2 ? parse_unsigned(parts[0]) : std::nullopt;
      const auto b = parts.size() == 2 ? parse_unsigned(parts[1]) : std::nullopt;
      if (!a || !b || *a == *b || *a >= CPU_SETSIZE || *b >= CPU_SETSIZE) {
        return bad(name, value, "two different CPU numbers A,B");
      }
      o.cores = std::array<int, 2>{static_cast<int>(*a), static_cast<int>(*b)};
    } else if (name == "--spin") {
      if (value == "pause") {
        o.pause_while_spinning = true;
      } else if (value == "tight") {
        o.pause_while_spinning = false;
      } else {
        return bad(name, value, "pause or tight");
      }
    } else if (name == "--timeout") {
      const auto seconds = parse_seconds(value);
      if (!seconds || *seconds > 86400) return bad(name, value, "a number of seconds");
      o.timeout_seconds = *seconds;
    } else if (name == "--json") {
      if (value.empty()) return bad(name, value, "a file name");
      o.json_path = value;
    } else if (name == "--fault") {
      if (value == "die") {
        o.fault = Fault::die;
      } else if (value == "stall") {
        o.fault = Fault::stall;
      } else {
        return bad(name, value, "die or stall");
      }
    }
  }
  if (have_seconds && have_messages) {
    return tl::unexpected(std::string("--messages and --seconds are alternatives: give one"));
  }
  if (o.matrix != Matrix::custom && have_layout) {
    return tl::unexpected("--matrix " + std::string(to_string(o.matrix)) +
                          " fixes the patterns, modes and payloads: drop --pattern, --mode and "
                          "--payload (--transport narrows it)");
  }
  if (o.transports.empty()) {
    for (const TransportEntry& entry : transport_registry()) o.transports.emplace_back(entry.name);
  }
  // Each transport once, in the order given.
  std::vector<std::string> unique;
  for (const std::string& name : o.transports) {
    if (std::find(unique.begin(), unique.end(), name) == unique.end()) unique.push_back(name);
  }
  o.transports = std::move(unique);
  if (o.patterns.empty()) o.patterns = {Pattern::pingpong, Pattern::throughput};
  if (o.modes.empty()) o.modes = {Mode::busy};
  if (o.fanouts.empty()) o.fanouts = {1, 8};
  if (o.rate == 0) o.rate = kDefaultRate;
  if (!have_payload)
    o.payloads = o.matrix == Matrix::quick ? std::vector<std::size_t>{64} : default_payloads();
  if (o.matrix == Matrix::quick && !have_repeats) o.repeats = kQuickRepeats;
  if (!have_seconds && !have_messages) {
    o.seconds = o.matrix == Matrix::quick      ? kQuickSeconds
                : o.matrix == Matrix::standard ? kStandardSeconds
                                               : kDefaultSeconds;
  }
  if (have_messages) o.seconds = 0;
  if (!have_messages && o.seconds * 2 > o.timeout_seconds) {
    return tl::unexpected("--seconds " + std::to_string(o.seconds) +
                          " leaves no room in --timeout " + std::to_string(o.timeout_seconds) +
                          ": raise --timeout");
  }
  return o;
}

}  // namespace symphony::perf
