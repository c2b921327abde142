// Longer soaks of the cross-process streams (label `stress`, not required by CI's label filter
// but run by the release and asan presets): twice the counts of multiprocess_test.cpp, with a
// small SPSC ring so that it wraps (and pads) constantly.

#include <gtest/gtest.h>

#include "stream_scenarios.hpp"
#include "test_scale.hpp"

namespace {

using namespace symphony::test;

class Stress : public ShmTest {};

TEST_F(Stress, SpscSoakWithASmallRing) {
  run_spsc_stream(name(), scaled(20'000'000), 1 << 14, 300s);
}

TEST_F(Stress, MpmcSoak) {
  run_mpmc_stream(name(), scaled(1'000'000), 300s);
}

}  // namespace
