#pragma once
// Fixture for topic tests: a bus name unique to the test, and a check that the test's topics
// leave nothing in /dev/shm (each test diffs only its own bus prefix).

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>

#include "symphony/engine/bus.hpp"
#include "test_scale.hpp"

namespace symphony::test {

inline std::string unique_bus_name() {
  static std::atomic<int> counter{0};
  return "t" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

// Samples in these tests carry one u64.
inline std::span<const std::byte> bytes_of(const std::uint64_t& value) {
  return std::as_bytes(std::span<const std::uint64_t, 1>(&value, 1));
}

inline std::uint64_t read_u64(const engine::Frame& frame) {
  std::uint64_t value = 0;
  std::memcpy(&value, frame.data, sizeof value);
  return value;
}

class TopicTest : public ::testing::Test {
 protected:
  void SetUp() override { bus_name_ = unique_bus_name(); }
  void TearDown() override {
    const int left = remove_shm_with_prefix(shm_prefix());
    if (std::filesystem::path dir = runtime_dir_; !dir.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
    EXPECT_EQ(left, 0) << "topic segments left behind in /dev/shm with prefix " << shm_prefix();
  }

  std::string shm_prefix() const { return "symphony." + bus_name_ + "."; }
  int shm_entries() const {
    int count = 0;
    for (const auto& e : std::filesystem::directory_iterator("/dev/shm")) {
      if (e.path().filename().string().rfind(shm_prefix(), 0) == 0) ++count;
    }
    return count;
  }

  // Opens this test's bus (in the calling process: call it again in a child after fork).
  Bus open_bus() {
    BusOptions options;
    options.name = bus_name_;
    auto bus = Bus::open(options);
    if (!bus) throw std::runtime_error(bus.error().message);
    runtime_dir_ = bus->runtime_dir();
    return std::move(*bus);
  }

  std::string bus_name_;
  std::filesystem::path runtime_dir_;
};

}  // namespace symphony::test
