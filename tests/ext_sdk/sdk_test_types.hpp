#pragma once
// Shared by the SDK's test extension and its tests.
#include <cstdint>

namespace symphony::test {

struct Seq {
  std::uint64_t seq;
};
inline constexpr const char* kSeqTopic = "handover/seq";
inline constexpr const char* kSeqType = "test.Seq";

}  // namespace symphony::test
