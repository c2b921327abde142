#include "log_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace symphony::supervisor {
namespace {

constexpr std::size_t kLastLineMax = 200;

UniqueFd open_append(const std::filesystem::path& file) {
  return UniqueFd(::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
}

}  // namespace

engine::Result<LogSink> LogSink::open(std::filesystem::path file, std::uint64_t max_bytes) {
  LogSink sink;
  sink.file_ = std::move(file);
  sink.file_budget_ = std::max<std::uint64_t>(max_bytes / 2, 1024);
  sink.fd_ = open_append(sink.file_);
  if (!sink.fd_) return tl::unexpected(engine::Error::from_errno("open " + sink.file_.string(), errno));
  struct stat st {};
  if (::fstat(sink.fd_.get(), &st) == 0) sink.written_ = static_cast<std::uint64_t>(st.st_size);
  return sink;
}

void LogSink::rotate() {
  std::filesystem::path older = file_;
  older += ".1";
  ::rename(file_.c_str(), older.c_str());
  fd_ = open_append(file_);
  written_ = 0;
}

void LogSink::write(std::string_view bytes) {
  if (!fd_) return;
  while (!bytes.empty()) {
    if (written_ >= file_budget_) rotate();
    if (!fd_) return;
    const std::size_t room = static_cast<std::size_t>(file_budget_ - written_);
    const std::string_view chunk = bytes.substr(0, std::min(room, bytes.size()));
    const ssize_t n = ::write(fd_.get(), chunk.data(), chunk.size());
    if (n <= 0) return;  // a full disk loses log lines, never the extension
    written_ += static_cast<std::uint64_t>(n);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void LogSink::note(std::string_view line) {
  std::string text = "[supervisor] ";
  text += line;
  text += '\n';
  write(text);
}

bool LogSink::drain(int pipe_fd) {
  char buffer[16384];
  // Bounded per call: a chatty extension must not starve the others' supervision.
  for (int round = 0; round < 16; ++round) {
    const ssize_t n = ::read(pipe_fd, buffer, sizeof buffer);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    const std::string_view bytes(buffer, static_cast<std::size_t>(n));
    write(bytes);
    // Remember the last line for a crash report.
    std::size_t start = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      if (bytes[i] != '\n') continue;
      partial_.append(bytes.substr(start, i - start));
      if (!partial_.empty()) last_line_ = partial_.substr(0, kLastLineMax);
      partial_.clear();
      start = i + 1;
    }
    if (partial_.size() < kLastLineMax) {
      partial_.append(bytes.substr(start, kLastLineMax - partial_.size()));
    }
  }
  return true;
}

}  // namespace symphony::supervisor
