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
// Checkpoint: the index's stats and the number of searches served, across restarts.

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

}  // namespace

int main(int argc, char** argv) {
  sdk::Extension ext;
  std::shared_mutex mutex;  // the index: searches read it concurrently, reindex replaces it
  Index index;
  std::uint64_t searches = 0, reindexes = 0;  // under `mutex` (exclusive)
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
        .str();
  };

  ext.on_request("search", [&](const sdk::Request& request) -> sdk::Reply {
    const auto query = request.string("query");
    if (!query || query->empty()) return sdk::fail("search wants {\"query\": \"...\"}");
    const auto limit = static_cast<std::size_t>(std::clamp<std::int64_t>(
        request.integer("limit").value_or(50), 1, 1000));
    const bool glob = query->find_first_of("*?[") != std::string::npos;
    const std::string needle = lower(*query);
    std::string matches = "[";
    std::uint64_t total = 0;
    {
      std::shared_lock lock(mutex);
      for (const Entry& e : index.files) {
        const char* name = std::strrchr(e.path.c_str(), '/');
        const bool hit = glob ? (::fnmatch(query->c_str(), e.path.c_str(), 0) == 0 ||
                                 ::fnmatch(query->c_str(), name ? name + 1 : e.path.c_str(), 0) == 0)
                              : e.lower.find(needle) != std::string::npos;
        if (!hit) continue;
        if (total++ < limit) {
          if (matches.size() > 1) matches += ",";
          matches += sdk::Json().add("path", e.path).add("size", e.size).str();
        }
      }
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
  return ext.run(argc, argv);
}
