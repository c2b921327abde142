#pragma once
// An extension instance's stdout/stderr, drained from a pipe by the supervisor thread into
// <log dir>/<id>.<instance>.log, bounded: when the file reaches half the budget it becomes
// <name>.1 (replacing the older one) and a new file starts, so both together never exceed
// max_bytes. The last line is kept in memory for the CRASHED event.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "symphony/engine/error.hpp"
#include "unique_fd.hpp"

namespace symphony::supervisor {

class LogSink {
 public:
  LogSink() = default;
  static engine::Result<LogSink> open(std::filesystem::path file, std::uint64_t max_bytes);

  // Appends (rotating first if this would pass the budget of the current file).
  void write(std::string_view bytes);
  // A line of the supervisor's own ("[supervisor] generation 3 started, pid 1234").
  void note(std::string_view line);
  // Reads everything the pipe holds now (non-blocking); false once the pipe reports EOF.
  bool drain(int pipe_fd);
  // The last complete line the extension wrote, at most 200 bytes (for the CRASHED reason).
  const std::string& last_line() const noexcept { return last_line_; }
  const std::filesystem::path& file() const noexcept { return file_; }

 private:
  void rotate();

  std::filesystem::path file_;
  std::uint64_t file_budget_ = 0;  // half of max_bytes
  std::uint64_t written_ = 0;      // bytes in the current file
  UniqueFd fd_;
  std::string partial_;    // the current unfinished line (for last_line_)
  std::string last_line_;
};

}  // namespace symphony::supervisor
