#include "transport.hpp"

#include <array>

namespace symphony::perf {
namespace {

// The one list of transports.
constexpr std::array kTransports{
    TransportEntry{kFloorName, make_floor_transport},
    TransportEntry{"ring-spsc", make_ring_spsc_transport},
    TransportEntry{"ring-mpmc", make_ring_mpmc_transport},
    TransportEntry{"topic-native", make_topic_native_transport},
    TransportEntry{"control-rr", make_control_rr_transport},
    TransportEntry{"zmq-ipc", make_zmq_ipc_transport},
#if defined(SYMPHONY_PERF_HAVE_ICEORYX)
    TransportEntry{"topic-iceoryx", make_topic_iceoryx_transport},
    TransportEntry{"iceoryx-raw", make_iceoryx_raw_transport},
#endif
    TransportEntry{"boost-spsc", make_boost_spsc_transport},
};

}  // namespace

std::span<const TransportEntry> transport_registry() noexcept {
  return kTransports;
}

std::unique_ptr<Transport> make_transport(std::string_view name) {
  for (const TransportEntry& entry : kTransports) {
    if (entry.name == name) return entry.make();
  }
  return nullptr;
}

}  // namespace symphony::perf
