#pragma once
// Errors of the engine's set-up paths (open a segment, attach to a ring). Hot paths never
// return these: they report full/empty/oversize/corrupt through small status values.

#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "symphony/layouts/verify.hpp"

namespace symphony::engine {

enum class Errc {
  invalid_argument,    // a bad name, size or option from the caller
  system_error,        // a syscall failed; the message names it and errno
  not_found,           // no segment of that name
  owner_alive,         // the segment's creator still runs: it is never clobbered
  invalid_layout,      // the segment failed verification (the message says which check)
  role_taken,          // e.g. a second live producer on an SPSC ring
  table_full,          // no free participant entry on an MPMC ring or topic
  type_mismatch,       // a topic's publisher and subscriber disagree on the sample type or size
  qos_mismatch,        // a topic's options cannot serve this publisher or subscriber
  unsupported,         // e.g. a QoS the chosen transport cannot honour (never silently degraded)
  unavailable,         // a service we depend on (RouDi) could not be reached or started
};

const char* to_string(Errc code) noexcept;

struct Error {
  Errc code;
  std::string message;

  // "segment '<name>': <what the verifier found>: <its message>"
  static Error from_layout(std::string_view segment_name, const layouts::LayoutError& e);
  // "<what>: <strerror(errno_value)>"
  static Error from_errno(const std::string& what, int errno_value);
};

template <typename T>
using Result = tl::expected<T, Error>;

}  // namespace symphony::engine
