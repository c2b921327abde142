#pragma once
// The gateway's own panel: the live bus dashboard as a ui::Node tree (docs/ui-protocol.md
// section 5 components). Pure: figures in, tree out; the gateway diffs successive trees.

#include <optional>
#include <string>
#include <vector>

#include "symphony/gateway/gateway.hpp"
#include "symphony/ui/tree.hpp"

namespace symphony::gateway {

struct InstanceRow {
  InstanceStatus status;
  std::optional<double> cpu_percent;  // from cpu_ns deltas; nullopt on the first sample
};

struct TopicRow {
  std::string name;
  std::string transport;
  std::size_t publishers = 0;
  std::size_t subscribers = 0;
  std::uint64_t published = 0;
  double published_per_s = 0;
  std::uint64_t dropped = 0;
  double dropped_per_s = 0;
  // ui/<id> topics only: publish-to-gateway delay of the last frame, from the frame's `t`.
  std::optional<double> frame_latency_ms;
};

struct DashboardInput {
  std::string bus;
  std::string self_id;
  std::vector<InstanceRow> instances;
  std::vector<TopicRow> topics;
  std::size_t browsers = 0;
};

// Node ids of the restart buttons: "restart:<extension id>" (event "click").
inline constexpr const char* kRestartPrefix = "restart:";

ui::Node build_dashboard(const DashboardInput& input);

}  // namespace symphony::gateway
