// The socket-free pieces of the gateway's HTTP side: token comparison, content types, static
// path resolution, query parameters.

#include <algorithm>
#include <cctype>
#include <string>
#include <system_error>

#include "symphony/gateway/gateway.hpp"

namespace symphony::gateway::detail {

namespace fs = std::filesystem;

bool equal_constant_time(std::string_view a, std::string_view b) noexcept {
  // Every byte of the expected value (b) is looked at whatever a holds, so the time taken says
  // nothing about how much of a guess was right (the length of b is not a secret: 32).
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ static_cast<unsigned char>(b[i])));
  }
  return diff == 0;
}

std::string content_type(const fs::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  struct Type {
    const char* ext;
    const char* type;
  };
  static constexpr Type kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".woff", "font/woff"},
      {".ttf", "font/ttf"},
      {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"},
  };
  for (const Type& t : kTypes) {
    if (ext == t.ext) return t.type;
  }
  return "application/octet-stream";
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_value(text[i + 1]);
      const int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

std::optional<fs::path> resolve_static(const fs::path& root, std::string_view target) {
  const auto query = target.find_first_of("?#");
  std::string_view path = target.substr(0, query);
  if (path.empty() || path.front() != '/') return std::nullopt;
  auto decoded = percent_decode(path);
  if (!decoded) return std::nullopt;
  // Checked segment by segment on the decoded text: no "..", no ".", no NUL or backslash, no
  // empty segment inside ("//"); so the result can only name something below root.
  std::string relative;
  std::size_t at = 1;
  while (at <= decoded->size()) {
    const std::size_t end = std::min(decoded->find('/', at), decoded->size());
    const std::string segment = decoded->substr(at, end - at);
    if (segment.empty()) {
      if (end != decoded->size()) return std::nullopt;  // "//" inside
    } else {
      if (segment == "." || segment == "..") return std::nullopt;
      for (const char c : segment) {
        if (c == '\0' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return std::nullopt;
      }
      if (!relative.empty()) relative += '/';
      relative += segment;
    }
    at = end + 1;
  }
  if (relative.empty() || decoded->back() == '/') {
    relative += relative.empty() ? "index.html" : "/index.html";
  }
  fs::path file = root / relative;
  // A symlink inside the app must not lead out of it either.
  std::error_code ec;
  const fs::path real_root = fs::weakly_canonical(root, ec);
  if (ec) return std::nullopt;
  const fs::path real = fs::weakly_canonical(file, ec);
  if (ec) return std::nullopt;
  const auto [r, f] = std::mismatch(real_root.begin(), real_root.end(), real.begin(), real.end());
  if (r != real_root.end()) return std::nullopt;
  return real;
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  const auto hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      if (eq == std::string_view::npos) return std::string();
      return percent_decode(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return std::nullopt;
}

}  // namespace symphony::gateway::detail
