#include "report.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string_view>
#include <vector>

#include "perf_build_info.hpp"

namespace symphony::perf {
namespace {

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

// JSON string body: quotes, backslashes and control characters escaped.
std::string json_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string json_string(std::string_view text) {
  return "\"" + json_escape(text) + "\"";
}

// A number with `decimals` digits after the point, or null.
std::string json_number(const std::optional<double>& value, int decimals) {
  if (!value || !std::isfinite(*value)) return "null";
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, *value);
  return text;
}

// Latencies: one decimal below 100 ns (a round trip halved), none above.
std::string format_ns(const std::optional<double>& ns) {
  if (!ns) return "-";
  char text[32];
  std::snprintf(text, sizeof text, *ns < 100 ? "%.1f" : "%.0f", *ns);
  return text;
}

std::string format_rate(double per_second) {
  char text[32];
  if (per_second >= 1e6) {
    std::snprintf(text, sizeof text, "%.2fM", per_second / 1e6);
  } else if (per_second >= 1e3) {
    std::snprintf(text, sizeof text, "%.1fk", per_second / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.0f", per_second);
  }
  return text;
}

}  // namespace

std::string format_bytes(std::size_t bytes) {
  if (bytes >= (std::size_t{1} << 20) && bytes % (std::size_t{1} << 20) == 0) {
    return std::to_string(bytes >> 20) + " MiB";
  }
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " B";
}

MachineInfo collect_machine_info() {
  MachineInfo info;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) info.cpu = trim(std::string_view(line).substr(colon + 1));
      break;
    }
  }
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  info.cores = online > 0 ? static_cast<unsigned>(online) : 0;
  utsname names{};
  if (::uname(&names) == 0) {
    info.kernel = std::string(names.sysname) + " " + names.release + " " + names.version;
  }
#if defined(__clang__)
  info.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  info.compiler = "g++ " __VERSION__;
#else
  info.compiler = "unknown";
#endif
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) info.hostname = host;
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &utc);
  info.date = date;
  info.build_type = kBuildType;
  info.git_commit = kGitCommit;
  return info;
}

void print_table(std::FILE* out, std::span<const ResultRow> rows) {
  const std::vector<std::string> header{
      "transport", "pattern", "mode",    "payload",
      "p50",       "p90",     "p99",     "p99.9",
      "p99.99",    "max",     "mean",    "touch",
      "msgs/s",    "MB/s",    "x floor", "spread (p50 or msgs/s)"};
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> skipped;
  for (const ResultRow& row : rows) {
    if (!row.skipped.empty()) {
      skipped.push_back(row.transport + " " + row.label + " " + row.mode + " " +
                        format_bytes(row.payload) + ": " + row.skipped);
      continue;
    }
    const bool latency = row.p50.has_value();
    std::string spread;
    if (latency) {
      spread = format_ns(row.spread_min) + ".." + format_ns(row.spread_max);
    } else {
      spread = format_rate(row.spread_min) + ".." + format_rate(row.spread_max);
    }
    char mb[32] = "-";
    if (row.bytes_per_s) std::snprintf(mb, sizeof mb, "%.0f", *row.bytes_per_s / 1e6);
    char ratio[32] = "-";
    if (row.ratio_to_floor) std::snprintf(ratio, sizeof ratio, "%.2f", *row.ratio_to_floor);
    cells.push_back({row.transport, row.label, row.mode, format_bytes(row.payload),
                     format_ns(row.p50), format_ns(row.p90), format_ns(row.p99),
                     format_ns(row.p999), format_ns(row.p9999), format_ns(row.max),
                     format_ns(row.mean), format_ns(row.touch),
                     row.msgs_per_s ? format_rate(*row.msgs_per_s) : "-", mb, ratio, spread});
  }
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& line : cells) width[c] = std::max(width[c], line[c].size());
  }
  // Text columns left-aligned, numbers right-aligned.
  const auto print_line = [&](const std::vector<std::string>& line) {
    for (std::size_t c = 0; c < line.size(); ++c) {
      const bool left = c < 3 || c == line.size() - 1;
      const int w = static_cast<int>(width[c]);
      std::fprintf(out, left ? "%-*s" : "%*s", w, line[c].c_str());
      std::fputs(c + 1 < line.size() ? "  " : "\n", out);
    }
  };
  std::fprintf(out,
               "one-way latency in ns (ping-pong: round trip / 2), the payload's write + read "
               "(touch) taken out and shown on its own; medians of the repeats\n");
  print_line(header);
  for (const auto& line : cells) print_line(line);
  for (const std::string& line : skipped) std::fprintf(out, "skipped: %s\n", line.c_str());
}

std::string json_document(const MachineInfo& machine, const RunInfo& run,
                          std::span<const TransportInfo> transports,
                          std::span<const ResultRow> rows) {
  const auto optional_string = [](const std::string& text) {
    return text.empty() ? std::string("null") : json_string(text);
  };
  std::string text = "{\n  \"schema_version\": 2,\n  \"machine\": {";
  text += "\"cpu\": " + json_string(machine.cpu);
  text += ", \"cores\": " + std::to_string(machine.cores);
  text += ", \"kernel\": " + json_string(machine.kernel);
  text += ", \"compiler\": " + json_string(machine.compiler);
  text += ", \"hostname\": " + json_string(machine.hostname);
  text += ", \"date\": " + json_string(machine.date);
  text += ", \"build_type\": " + json_string(machine.build_type);
  text += ", \"git_commit\": " + json_string(machine.git_commit);
  text += ", \"placement\": " + json_string(machine.placement);
  text += "},\n  \"run\": {";
  text += "\"command\": " + json_string(run.command);
  text += ", \"matrix\": " + json_string(run.matrix);
  text += ", \"repeats\": " + std::to_string(run.repeats);
  text += ", \"seconds_per_repeat\": " + json_number(run.seconds_per_repeat, 3);
  text += "},\n  \"transports\": [";
  for (std::size_t i = 0; i < transports.size(); ++i) {
    text += i == 0 ? "\n" : ",\n";
    text += "    {\"name\": " + json_string(transports[i].name) +
            ", \"description\": " + json_string(transports[i].description) + "}";
  }
  text += transports.empty() ? "],\n" : "\n  ],\n";
  text += "  \"results\": [";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const ResultRow& row = rows[i];
    const bool measured = row.skipped.empty();
    text += i == 0 ? "\n" : ",\n";
    text += "    {\"transport\": " + json_string(row.transport);
    text += ", \"pattern\": " + json_string(row.pattern);
    text += ", \"mode\": " + json_string(row.mode);
    text += ", \"payload_bytes\": " + std::to_string(row.payload);
    text += ", \"fanout\": " + std::to_string(row.fanout);
    text += ", \"repeats\": " + std::to_string(row.repeats);
    text += ", \"p50_ns\": " + json_number(row.p50, 1);
    text += ", \"p90_ns\": " + json_number(row.p90, 1);
    text += ", \"p99_ns\": " + json_number(row.p99, 1);
    text += ", \"p999_ns\": " + json_number(row.p999, 1);
    text += ", \"p9999_ns\": " + json_number(row.p9999, 1);
    text += ", \"max_ns\": " + json_number(row.max, 1);
    text += ", \"mean_ns\": " + json_number(row.mean, 1);
    text += ", \"touch_ns\": " + json_number(row.touch, 1);
    text += ", \"msgs_per_s\": " + json_number(row.msgs_per_s, 0);
    text += ", \"bytes_per_s\": " + json_number(row.bytes_per_s, 0);
    text += ", \"rate_per_s\": " + json_number(row.rate_per_s, 0);
    text += ", \"samples\": " + std::to_string(row.samples);
    text += ", \"ratio_to_floor\": " + json_number(row.ratio_to_floor, 3);
    text += ", \"spread\": ";
    text += measured ? "{\"min\": " + json_number(row.spread_min, 1) +
                           ", \"max\": " + json_number(row.spread_max, 1) + "}"
                     : std::string("null");
    text += ", \"hgrm\": " + optional_string(row.hgrm);
    text += ", \"skipped\": " + optional_string(row.skipped) + "}";
  }
  text += rows.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return text;
}

std::optional<std::string> write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  std::FILE* file = std::fopen(temporary.c_str(), "w");
  if (file == nullptr) return "cannot write " + temporary + ": " + std::strerror(errno);
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const bool closed = std::fclose(file) == 0;
  if (!written || !closed) {
    std::remove(temporary.c_str());
    return "cannot write " + temporary + ": " + std::strerror(errno);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    std::remove(temporary.c_str());
    return "cannot rename " + temporary + " to " + path + ": " + std::strerror(saved);
  }
  return std::nullopt;
}

std::optional<std::string> write_json(const std::string& path, const MachineInfo& machine,
                                      const RunInfo& run, std::span<const TransportInfo> transports,
                                      std::span<const ResultRow> rows) {
  return write_file_atomically(path, json_document(machine, run, transports, rows));
}

std::string hgrm_text(const Distribution& distribution) {
  std::string text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n";
  char line[128];
  for (std::uint32_t i = 0; i < distribution.rows; ++i) {
    const DistributionRow& row = distribution.row[i];
    if (row.percentile < 1) {
      std::snprintf(line, sizeof line, "%12.3f %2.12f %10llu %14.2f\n",
                    static_cast<double>(row.value_ns), row.percentile,
                    static_cast<unsigned long long>(row.total_count), 1 / (1 - row.percentile));
    } else {
      std::snprintf(line, sizeof line, "%12.3f %2.12f %10llu\n", static_cast<double>(row.value_ns),
                    row.percentile, static_cast<unsigned long long>(row.total_count));
    }
    text += line;
  }
  std::snprintf(line, sizeof line, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n",
                distribution.mean_ns, distribution.stddev_ns);
  text += line;
  std::snprintf(line, sizeof line, "#[Max     = %12.3f, Total count    = %12llu]\n",
                static_cast<double>(distribution.max_ns),
                static_cast<unsigned long long>(distribution.count));
  text += line;
  return text;
}

}  // namespace symphony::perf
