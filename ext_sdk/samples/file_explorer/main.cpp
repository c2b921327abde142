// file-explorer: indexes a directory and answers searches — the seed's end-to-end scenario: a
// query goes in through the bus (a request on the control plane), matching files come back.
//
//   file-explorer [--root DIR] [--max-files N]     (root: --root, else $EXPLORER_ROOT, else .)
//
// Requests:
//   search  {"query": "main", "limit": 50}  substring of the relative path (case-insensitive), or
//           a glob ("*.cpp", "src/*/test_*") matched against the path and the file name;
//           -> {"root", "matches": [{"path", "size"}], "total", "truncated"}
//   stats   -> {"root", "files", "dirs", "bytes", "skipped", "searches", "index_ms", "indexed"}
//   reindex {"root"?: DIR} -> the new stats
// Checkpoint: the index's stats, the number of searches served and the panel's last query,
// across restarts.
//
// Panel (Extension::ui): a heading, the number of indexed files, a search box ("search",
// debounced 100 ms in the browser) and a table ("results": Path, Size) of the first 50 matches
// with their count. The query is committed to the checkpoint as it changes, so after a crash or
// a kill the panel comes back with the query and its results.

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include <symphony/controlplane/envelope.hpp>
#include <symphony/sdk/extension.hpp>
#include <symphony/ui/tree.hpp>

namespace fs = std::filesystem;
using namespace symphony;

namespace {

struct Entry {
  std::string path;   // relative to the root
  std::string lower;  // lower-cased, for substring queries
  std::uint64_t size;
};

struct Index {
  fs::path root;
  std::vector<Entry> files;
  std::uint64_t dirs = 0, bytes = 0, skipped = 0;
  double index_ms = 0;
  bool truncated = false;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Index build_index(const fs::path& root, std::size_t max_files) {
  const auto began = std::chrono::steady_clock::now();
  Index index;
  index.root = root;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    std::error_code e;
    if (entry.is_directory(e)) {
      ++index.dirs;
    } else if (entry.is_regular_file(e)) {
      if (index.files.size() >= max_files) {
        index.truncated = true;
        break;
      }
      const std::uint64_t size = entry.file_size(e);
      std::string rel = entry.path().lexically_relative(root).generic_string();
      index.files.push_back({rel, lower(rel), e ? 0 : size});
      index.bytes += e ? 0 : size;
    } else {
      ++index.skipped;  // sockets, fifos, broken links
    }
  }
  std::sort(index.files.begin(), index.files.end(),
            [](const Entry& a, const Entry& b) { return a.path < b.path; });
  index.index_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                             began).count();
  return index;
}

struct Found {
  std::vector<const Entry*> matches;  // the first `limit`
  std::uint64_t total = 0;
};

// Substring of the lower-cased path, or a glob against the path and the file name.
Found search(const Index& index, const std::string& query, std::size_t limit) {
  Found found;
  const bool glob = query.find_first_of("*?[") != std::string::npos;
  const std::string needle = lower(query);
  for (const Entry& e : index.files) {
    const char* name = std::strrchr(e.path.c_str(), '/');
    const bool hit = glob ? (::fnmatch(query.c_str(), e.path.c_str(), 0) == 0 ||
                             ::fnmatch(query.c_str(), name ? name + 1 : e.path.c_str(), 0) == 0)
                          : e.lower.find(needle) != std::string::npos;
    if (!hit) continue;
    if (found.total++ < limit) found.matches.push_back(&e);
  }
  return found;
}

// A row's key: the path itself when it makes a good node id (short, printable UTF-8), else a
// hash of it. Either way stable across searches, so a row that stays is not re-created.
std::string row_key(const std::string& path) {
  bool clean = path.size() <= 100;
  for (char c : path) clean = clean && static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
  symphony::ui::Node probe;  // the protocol's id rules (UTF-8 among them)
  probe.id = path;
  probe.type = "text";
  if (clean && symphony::ui::validate(probe)) return path;
  char hex[24];
  std::snprintf(hex, sizeof hex, "#%016zx", std::hash<std::string>{}(path));
  return hex;
}

std::string human_size(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

constexpr std::size_t kPanelRows = 50;
constexpr std::size_t kMaxQuery = 256;

}  // namespace

int main(int argc, char** argv) {
  sdk::Extension ext;
  std::shared_mutex mutex;  // the index: searches read it concurrently, reindex replaces it
  Index index;
  std::uint64_t searches = 0, reindexes = 0;  // under `mutex` (exclusive)
  std::string query;  // the panel's, under `mutex` (save() reads it on a worker)
  std::size_t max_files = 200'000;

  auto stats = [&] {  // under `mutex`
    return sdk::Json()
        .add("root", index.root.string())
        .add("files", static_cast<std::uint64_t>(index.files.size()))
        .add("dirs", index.dirs)
        .add("bytes", index.bytes)
        .add("skipped", index.skipped)
        .add("truncated", index.truncated)
        .add("searches", searches)
        .add("reindexes", reindexes)
        .add_raw("index_ms", std::to_string(index.index_ms))
        .add("query", query)
        .str();
  };

  ext.on_request("search", [&](const sdk::Request& request) -> sdk::Reply {
    const auto wanted = request.string("query");
    if (!wanted || wanted->empty()) return sdk::fail("search wants {\"query\": \"...\"}");
    const auto limit = static_cast<std::size_t>(std::clamp<std::int64_t>(
        request.integer("limit").value_or(50), 1, 1000));
    std::string matches = "[";
    std::uint64_t total = 0;
    {
      std::shared_lock lock(mutex);
      const Found found = search(index, *wanted, limit);
      for (const Entry* e : found.matches) {
        if (matches.size() > 1) matches += ",";
        matches += sdk::Json().add("path", e->path).add("size", e->size).str();
      }
      total = found.total;
    }
    std::string root;
    {
      std::unique_lock lock(mutex);
      ++searches;
      root = index.root.string();
    }
    return sdk::Json()
        .add("root", root)
        .add_raw("matches", matches + "]")
        .add("total", total)
        .add("truncated", total > limit)
        .str();
  });
  ext.on_request("stats", [&](const sdk::Request&) -> sdk::Reply {
    std::shared_lock lock(mutex);
    return stats();
  });
  ext.on_request("reindex", [&](const sdk::Request& request) -> sdk::Reply {
    fs::path root;
    {
      std::shared_lock lock(mutex);
      root = request.string("root").value_or(index.root.string());
    }
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return sdk::fail("not a directory: " + root.string());
    Index fresh = build_index(fs::canonical(root, ec), max_files);  // outside the lock
    std::unique_lock lock(mutex);
    index = std::move(fresh);
    ++reindexes;
    ext.ui_changed();
    return stats();
  });

  ext.on_checkpoint(
      [&] {
        std::shared_lock lock(mutex);
        const std::string text = stats();
        const auto* data = reinterpret_cast<const std::byte*>(text.data());
        return std::vector<std::byte>(data, data + text.size());
      },
      [&](std::span<const std::byte> bytes) {
        const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        auto last = controlplane::JsonReader::parse(text);
        if (!last) return;
        std::unique_lock lock(mutex);
        searches = static_cast<std::uint64_t>(last->integer("searches").value_or(0));
        reindexes = static_cast<std::uint64_t>(last->integer("reindexes").value_or(0));
        query = last->string("query").value_or("");
        ext.log().info("restored: the last index had {} files under {}; {} searches served",
                       last->integer("files").value_or(0), last->string("root").value_or("?"),
                       searches);
      });

  ext.on_start([&] {
    fs::path root = ".";
    if (const char* env = std::getenv("EXPLORER_ROOT")) root = env;
    const auto& args = ext.args();
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "--root") root = args[i + 1];
      if (args[i] == "--max-files") max_files = std::stoul(args[i + 1]);
    }
    std::error_code ec;
    if (!fs::is_directory(root, ec)) throw std::runtime_error("not a directory: " + root.string());
    Index fresh = build_index(fs::canonical(root, ec), max_files);
    std::unique_lock lock(mutex);
    index = std::move(fresh);
    ext.log().info("indexed {} files ({} bytes) under {} in {:.1f} ms", index.files.size(),
                   index.bytes, index.root.string(), index.index_ms);
  });

  // The panel. The view reads the index and the query under the shared lock; the search box's
  // handler runs on the UI thread too, so the view never sees a half-set query.
  ext.ui([&] {
    using namespace sdk::ui;
    std::shared_lock lock(mutex);
    std::vector<Element> rows;
    std::uint64_t total = 0;
    if (!query.empty()) {
      const Found found = search(index, query, kPanelRows);
      total = found.total;
      for (const Entry* e : found.matches) {
        const std::string key = row_key(e->path);
        rows.push_back(row("r:" + key, {text("p:" + key, e->path).prop("mono", true),
                                        text("s:" + key, human_size(e->size))}));
      }
    }
    std::string count = query.empty() ? "Type to search " + index.root.string()
                        : total == 1  ? "1 match"
                                      : std::to_string(total) + " matches";
    if (total > kPanelRows) count += " (first " + std::to_string(kPanelRows) + " shown)";
    return stack("root",
                 {heading("title", "File explorer"),
                  hstack("stats", {stat("files", "Indexed files",
                                        static_cast<std::uint64_t>(index.files.size())),
                                   stat("bytes", "Indexed", human_size(index.bytes))}),
                  input("search", query)
                      .prop("placeholder", "file name or glob (*.cpp)")
                      .prop("debounce_ms", 100)
                      .on("change",
                          [&](const UiEvent& e) {
                            {
                              std::unique_lock write(mutex);
                              query = e.value().substr(0, kMaxQuery);
                            }
                            if (auto kept = ext.commit_checkpoint();
                                !kept && kept.error().code != sdk::Errc::not_found) {
                              ext.log().warn("the query is not kept: {}", kept.error().message);
                            }
                          }),
                  text("match-count", count).prop("tone", "muted"),
                  table("results", {"Path", "Size"}, std::move(rows))});
  });
  return ext.run(argc, argv);
}
