#include "measure.hpp"

#include <cstdarg>
#include <cstdio>

namespace symphony::perf {

const char* to_string(Pattern pattern) noexcept {
  switch (pattern) {
    case Pattern::pingpong:
      return "pingpong";
    case Pattern::throughput:
      return "throughput";
    case Pattern::fanout:
      return "fanout";
    case Pattern::openloop:
      return "openloop";
  }
  return "?";
}

const char* to_string(Mode mode) noexcept {
  switch (mode) {
    case Mode::busy:
      return "busy";
    case Mode::blocking:
      return "blocking";
  }
  return "?";
}

const char* to_string(Role role) noexcept {
  switch (role) {
    case Role::initiator:
      return "initiator";
    case Role::echoer:
      return "echoer";
    case Role::producer:
      return "producer";
    case Role::consumer:
      return "consumer";
  }
  return "?";
}

SideReport& fail(SideReport& report, const char* format, ...) noexcept {
  std::va_list args;
  va_start(args, format);
  std::vsnprintf(report.error, sizeof report.error, format, args);
  va_end(args);
  report.ok = 0;
  return report;
}

}  // namespace symphony::perf
