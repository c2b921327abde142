#pragma once
// The transport interface of symphony-perf. One class per transport, each in its own file
// (<name>_transport.cpp), listed once in transport_registry.cpp; nothing else names them.
//
// A Transport says what it supports and, in the parent, prepare()s a Session for one
// measurement: the shared state both sides need (segments, queues), created before any fork and
// removed when the Session is destroyed. The parent then forks one child per side; each child
// calls run_side() on its copy of the Session, which opens that state by name (as an unrelated
// process would), attaches, and runs the side's loop — usually by handing two small endpoint
// objects to the generic loops in drivers.hpp, so that every transport is timed by the same code.
// The virtual call is made once per side, never per message.
//
// Adding a transport: write <name>_transport.cpp with a Transport subclass and a factory, add the
// factory to transport_registry.cpp and the file to CMakeLists.txt.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "measure.hpp"
#include "symphony/engine/error.hpp"

namespace symphony::perf {

class Session {
 public:
  virtual ~Session() = default;
  // Runs in a forked child: plays `side.role`, and returns what the parent gets. Never throws
  // (a failure is a report with ok == 0).
  virtual SideReport run_side(const SideContext& side) noexcept = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string_view name() const noexcept = 0;
  // One line for --help: what it is, and what it cannot do.
  virtual std::string_view summary() const noexcept = 0;
  // One paragraph for the JSON "transports" array and the README: exactly what it does with the
  // bytes (copies, in place, by reference), how it waits in each mode, and how it is configured
  // (queue sizes, socket options, HWM, history).
  virtual std::string_view description() const noexcept = 0;
  // One publisher reaching N subscribers (the fan-out pattern): topics only.
  virtual bool broadcasts() const noexcept { return false; }
  // Empty if `spec` can be measured, else why not (printed as a skip note).
  virtual std::string unsupported(const MeasureSpec& spec) const = 0;
  // Creates the shared state for one measurement (in the parent, before forking). Segment names
  // start with `name_prefix`, which is unique to this run and measurement.
  virtual engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec& spec,
                                                           const std::string& name_prefix) = 0;
};

using TransportFactory = std::unique_ptr<Transport> (*)();

// Whose transport it is: the standard matrix sweeps payloads for ours (and iceoryx-raw).
enum class Origin : std::uint8_t { floor, reference, ours, peer };

struct TransportEntry {
  std::string_view name;
  TransportFactory make;
  Origin origin;
};

// Every transport, in the order `--transport all` runs them; the machine floor comes first.
std::span<const TransportEntry> transport_registry() noexcept;
// nullptr if no transport has that name.
std::unique_ptr<Transport> make_transport(std::string_view name);

// The factories, one per <name>_transport.cpp.
std::unique_ptr<Transport> make_floor_transport();
std::unique_ptr<Transport> make_floor_buffer_transport();
std::unique_ptr<Transport> make_ring_spsc_transport();
std::unique_ptr<Transport> make_ring_mpmc_transport();
std::unique_ptr<Transport> make_topic_native_transport();
std::unique_ptr<Transport> make_topic_iceoryx_transport();  // SYMPHONY_PERF_HAVE_ICEORYX only
std::unique_ptr<Transport> make_boost_spsc_transport();
std::unique_ptr<Transport> make_control_rr_transport();
std::unique_ptr<Transport> make_handoff_transport();
std::unique_ptr<Transport> make_zmq_ipc_transport();
std::unique_ptr<Transport> make_uds_transport();
std::unique_ptr<Transport> make_boost_mq_transport();
#if defined(SYMPHONY_PERF_HAVE_ICEORYX)
std::unique_ptr<Transport> make_iceoryx_raw_transport();
#endif

inline constexpr std::string_view kFloorName = "floor";

}  // namespace symphony::perf
