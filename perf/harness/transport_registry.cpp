#include "transport.hpp"

#include <array>

namespace symphony::perf {
namespace {

// The one list of transports.
// The one list of transports: ours, then the peers.
constexpr std::array kTransports{
    TransportEntry{kFloorName, make_floor_transport, Origin::floor},
    TransportEntry{"floor-buffer", make_floor_buffer_transport, Origin::reference},
    TransportEntry{"ring-spsc", make_ring_spsc_transport, Origin::ours},
    TransportEntry{"ring-mpmc", make_ring_mpmc_transport, Origin::ours},
    TransportEntry{"topic-native", make_topic_native_transport, Origin::ours},
#if defined(SYMPHONY_PERF_HAVE_ICEORYX)
    TransportEntry{"topic-iceoryx", make_topic_iceoryx_transport, Origin::ours},
#endif
    TransportEntry{"control-rr", make_control_rr_transport, Origin::ours},
    TransportEntry{"handoff", make_handoff_transport, Origin::ours},
#if defined(SYMPHONY_PERF_HAVE_ICEORYX)
    TransportEntry{"iceoryx-raw", make_iceoryx_raw_transport, Origin::peer},
#endif
    TransportEntry{"zmq-ipc", make_zmq_ipc_transport, Origin::peer},
    TransportEntry{"uds", make_uds_transport, Origin::peer},
    TransportEntry{"boost-mq", make_boost_mq_transport, Origin::peer},
    TransportEntry{"boost-spsc", make_boost_spsc_transport, Origin::peer},
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
