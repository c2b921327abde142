#pragma once
// Runs one measurement's sides, each in its own forked process (no exec: the child runs the
// Session it inherited), pinned to its core, and collects their reports through pipes.
//
// Never hangs: a child dies with the parent (PR_SET_PDEATHSIG); a child that dies before
// reporting, reports a failure, or has not reported when the measurement's timeout (plus a grace
// period) has passed fails the measurement with a message naming the side, its pid and what
// happened; the other children are then killed and every child is reaped before returning.

#include <span>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "measure.hpp"
#include "transport.hpp"

namespace symphony::perf {

struct SidePlan {
  Role role = Role::initiator;
  unsigned index = 0;  // among the sides of its role
  int cpu = -1;        // -1: not pinned
};

// SIGINT / SIGTERM in the parent set a flag that run_sides() checks; the children are then
// killed and the caller unwinds normally (so every segment is removed).
void install_interrupt_handlers() noexcept;
bool interrupted() noexcept;

tl::expected<std::vector<SideReport>, std::string> run_sides(Session& session,
                                                             const MeasureSpec& spec,
                                                             std::span<const SidePlan> plan,
                                                             ControlBlock& control,
                                                             const TickClock& clock, bool yield);

}  // namespace symphony::perf
