#include "symphony/cli/text.hpp"

#include <cmath>
#include <cstdio>

#include <simdjson.h>

namespace symphony::cli {

std::string render_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string human_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(units)) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

std::string human_duration(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  char text[32];
  const double s = duration<double>(d).count();
  if (s < 1.0) {
    std::snprintf(text, sizeof text, "%.0f ms", s * 1000.0);
  } else if (s < 60.0) {
    std::snprintf(text, sizeof text, "%.1f s", s);
  } else if (s < 3600.0) {
    const auto total = static_cast<long>(s);
    std::snprintf(text, sizeof text, "%ldm%02lds", total / 60, total % 60);
  } else {
    const auto total = static_cast<long>(s) / 60;
    std::snprintf(text, sizeof text, "%ldh%02ldm", total / 60, total % 60);
  }
  return text;
}

std::string human_rate(double per_second) {
  if (!std::isfinite(per_second)) return "-";
  char text[32];
  if (per_second == 0.0) return "0";
  if (per_second < 1000.0) {
    std::snprintf(text, sizeof text, "%.1f", per_second);
  } else if (per_second < 1e6) {
    std::snprintf(text, sizeof text, "%.1fk", per_second / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.2fM", per_second / 1e6);
  }
  return text;
}

std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

engine::Result<std::vector<std::string>> json_array_items(std::string_view array_json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(array_json);
  simdjson::dom::element root;
  if (auto error = parser.parse(padded).get(root); error) {
    return tl::unexpected(
        engine::Error{engine::Errc::invalid_argument,
                      std::string("not valid JSON: ") + simdjson::error_message(error)});
  }
  simdjson::dom::array array;
  if (root.get(array) != simdjson::SUCCESS) {
    return tl::unexpected(engine::Error{engine::Errc::invalid_argument, "not a JSON array"});
  }
  std::vector<std::string> items;
  for (simdjson::dom::element item : array) items.push_back(simdjson::minify(item));
  return items;
}

std::string hex_dump(std::span<const std::byte> bytes, std::size_t max_bytes) {
  const std::size_t shown = std::min(bytes.size(), max_bytes);
  std::string out;
  for (std::size_t line = 0; line < shown; line += 16) {
    char head[32];
    std::snprintf(head, sizeof head, "%04zx  ", line);
    out += head;
    std::string ascii;
    for (std::size_t i = line; i < line + 16; ++i) {
      if (i < shown) {
        const auto b = static_cast<unsigned char>(bytes[i]);
        char hex[4];
        std::snprintf(hex, sizeof hex, "%02x ", b);
        out += hex;
        ascii += (b >= 0x20 && b < 0x7f) ? static_cast<char>(b) : '.';
      } else {
        out += "   ";
      }
      if (i == line + 7) out += ' ';
    }
    out += " |" + ascii + "|\n";
  }
  if (shown < bytes.size()) {
    out += "... " + std::to_string(bytes.size() - shown) + " more bytes\n";
  }
  return out;
}

std::string printable_text(std::span<const std::byte> bytes, std::size_t max_bytes) {
  const std::size_t shown = std::min(bytes.size(), max_bytes);
  std::string out;
  for (std::size_t i = 0; i < shown; ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (b == '\n' || b == '\t' || (b >= 0x20 && b != 0x7f)) {
      out += static_cast<char>(b);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", b);
      out += hex;
    }
  }
  if (shown < bytes.size()) out += "... (" + std::to_string(bytes.size() - shown) + " more bytes)";
  return out;
}

std::string hex_string(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const std::byte b : bytes) {
    out += kDigits[static_cast<unsigned>(b) >> 4];
    out += kDigits[static_cast<unsigned>(b) & 0xf];
  }
  return out;
}

}  // namespace symphony::cli
