#pragma once
// Shared by the checkpoint tests: a bus of their own (its segments removed afterwards), states
// that say which version they are in every word, and a raw view of a checkpoint segment for
// scribbling on it as a hostile writer would.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "symphony/engine/checkpoint.hpp"
#include "symphony/layouts/checkpoint.hpp"
#include "symphony/layouts/segment_header.hpp"
#include "test_scale.hpp"

namespace symphony::engine::checkpoint_test {

using namespace std::chrono_literals;

inline std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* begin = reinterpret_cast<const std::byte*>(text.data());
  return {begin, begin + text.size()};
}

// `size` bytes (rounded down to whole words, at least one) whose every word is `version`.
inline std::vector<std::byte> versioned_state(std::uint64_t version, std::size_t size) {
  std::vector<std::byte> state(std::max<std::size_t>(8, size / 8 * 8));
  for (std::size_t i = 0; i < state.size(); i += 8) std::memcpy(state.data() + i, &version, 8);
  return state;
}

// The version a versioned_state() holds, or nothing if its words disagree (torn).
inline std::optional<std::uint64_t> version_of(std::span<const std::byte> state) {
  if (state.size() < 8 || state.size() % 8 != 0) return std::nullopt;
  std::uint64_t first = 0;
  std::memcpy(&first, state.data(), 8);
  for (std::size_t i = 8; i < state.size(); i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, state.data() + i, 8);
    if (word != first) return std::nullopt;
  }
  return first;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    bus_ = "ck" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  }
  void TearDown() override { test::remove_shm_with_prefix("symphony." + bus_ + "."); }
  std::string bus_;
};

// The segment mapped by hand, as another process would see it.
class RawView {
 public:
  explicit RawView(const std::string& name) {
    const int fd = ::shm_open(("/" + name).c_str(), O_RDWR, 0);
    if (fd < 0) throw std::runtime_error("shm_open " + name);
    struct stat st {};
    ::fstat(fd, &st);
    size_ = static_cast<std::size_t>(st.st_size);
    base_ = static_cast<std::byte*>(::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    ::close(fd);
    if (base_ == MAP_FAILED) throw std::runtime_error("mmap " + name);
  }
  ~RawView() { ::munmap(base_, size_); }
  RawView(const RawView&) = delete;
  RawView& operator=(const RawView&) = delete;

  layouts::CheckpointHeader* header() {
    return reinterpret_cast<layouts::CheckpointHeader*>(base_ + layouts::kSegmentHeaderSize);
  }
  layouts::CheckpointSlotHeader* slot_header(std::uint64_t generation) {
    return reinterpret_cast<layouts::CheckpointSlotHeader*>(
        reinterpret_cast<std::byte*>(header()) +
        layouts::checkpoint_slot_offset(header()->slot_capacity, generation % 2));
  }
  std::byte* slot_data(std::uint64_t generation) {
    return reinterpret_cast<std::byte*>(slot_header(generation)) +
           layouts::kCheckpointSlotHeaderSize;
  }

 private:
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace symphony::engine::checkpoint_test
