#include "symphony/engine/error.hpp"

#include <cstring>

#include "symphony/engine/ring_status.hpp"

namespace symphony::engine {

const char* to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument: return "invalid argument";
    case Errc::system_error: return "system error";
    case Errc::not_found: return "not found";
    case Errc::owner_alive: return "owner alive";
    case Errc::invalid_layout: return "invalid layout";
    case Errc::role_taken: return "role taken";
    case Errc::table_full: return "participant table full";
    case Errc::type_mismatch: return "type mismatch";
    case Errc::qos_mismatch: return "QoS mismatch";
    case Errc::unsupported: return "unsupported";
    case Errc::unavailable: return "unavailable";
  }
  return "unknown error";
}

const char* to_string(RingStatus status) noexcept {
  switch (status) {
    case RingStatus::ok: return "ok";
    case RingStatus::full: return "full";
    case RingStatus::empty: return "empty";
    case RingStatus::oversize: return "oversize";
    case RingStatus::corrupt: return "corrupt";
    case RingStatus::busy: return "busy";
    case RingStatus::refused: return "refused";
  }
  return "unknown";
}

Error Error::from_layout(std::string_view segment_name, const layouts::LayoutError& e) {
  return Error{Errc::invalid_layout, "segment '" + std::string(segment_name) + "': " +
                                         layouts::to_string(e.code) + ": " + e.message};
}

Error Error::from_errno(const std::string& what, int errno_value) {
  return Error{Errc::system_error, what + ": " + std::strerror(errno_value)};
}

}  // namespace symphony::engine
