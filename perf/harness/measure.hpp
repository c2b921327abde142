#pragma once
// What one measurement is (MeasureSpec), which side a child process plays in it (Role,
// SideContext), and what that side hands back to the parent (SideReport).
//
// A measurement is one repeat of one transport, pattern, mode and payload size. The parent
// creates the transport's shared state, forks one child per side, and each child runs its side
// and writes a SideReport into a pipe. Nothing here is shared memory except ControlBlock.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "tick_clock.hpp"

namespace symphony::perf {

enum class Pattern : std::uint8_t {
  pingpong,    // one message each way, one at a time: one-way latency = round trip / 2
  throughput,  // producers stream as fast as consumers take: messages and bytes per second
};

enum class Mode : std::uint8_t {
  busy,      // the receiver spins on its transport's non-blocking poll
  blocking,  // the receiver waits with the transport's own wake-up (our rings: a futex)
};

// Deliberate failures, to check that a dead or stalled side fails the run instead of hanging it.
enum class Fault : std::uint8_t {
  none,
  die,    // the receiving side kills itself (SIGKILL) after kFaultAfterMessages
  stall,  // the receiving side stops taking messages after kFaultAfterMessages
};

const char* to_string(Pattern pattern) noexcept;
const char* to_string(Mode mode) noexcept;

inline constexpr std::uint64_t kFaultAfterMessages = 1000;

// Every payload starts with its sequence number, so none can be shorter.
inline constexpr std::size_t kMinPayload = 8;
inline constexpr std::size_t kMaxPayload = std::size_t{16} << 20;

// What a queue holds by default, in bytes, for every queue transport (ours and the peers), so
// that none wins by having more slack: the largest of this and a few messages.
inline constexpr std::uint64_t kDefaultQueueBytes = 64 * 1024;

struct MeasureSpec {
  Pattern pattern = Pattern::pingpong;
  Mode mode = Mode::busy;
  std::size_t payload = 64;
  // Messages to measure (round trips for ping-pong; the total over all producers for
  // throughput), after the warm-up. 0: run for `seconds` instead.
  std::uint64_t messages = 0;
  double seconds = 0.2;
  unsigned producers = 1;  // throughput only; ping-pong is always one initiator, one echoer
  unsigned consumers = 1;
  // Throughput: the producer publishes every `batch` messages (and before it waits for room),
  // the consumer releases every `batch` messages (and whenever it finds the queue empty).
  unsigned batch = 1;
  std::uint64_t queue_bytes = kDefaultQueueBytes;
  // Any wait longer than this fails the measurement.
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);
  // Busy polling: a pause instruction between polls (what engine::WaitStrategy spins with), or
  // none. The same for every transport and the floor.
  bool pause_while_spinning = true;
  Fault fault = Fault::none;
};

enum class Role : std::uint8_t {
  initiator,  // ping-pong: sends pings, times round trips
  echoer,     // ping-pong: answers each ping with a pong of the same size
  producer,   // throughput
  consumer,   // throughput
};

const char* to_string(Role role) noexcept;

// Run-wide coordination between the children of one measurement, in an anonymous shared
// mapping that only this process and its forked children ever see (never named, never opened
// by another build), so it is not a shm ABI and does not belong in shm_layouts/. Plain integers,
// accessed through std::atomic_ref as everywhere else.
struct ControlBlock {
  // Sides that finished setting up; every side waits until all have, so that none measures
  // while another is still mapping and faulting in its pages.
  alignas(64) std::uint32_t arrived;
  // Throughput: producers that sent their last message (incremented after it was published).
  alignas(64) std::uint32_t producers_done;
  // Throughput: consumers that took their last message. A socket sender waits for this before
  // it closes (a closing peer can take undelivered messages with it).
  alignas(64) std::uint32_t consumers_done;
};
static_assert(std::is_trivially_copyable_v<ControlBlock>);
static_assert(sizeof(ControlBlock) == 3 * 64, "each counter on its own cache line");

// The side a child plays, and everything it needs besides the transport's own state.
struct SideContext {
  Role role = Role::initiator;
  unsigned index = 0;  // among the sides of the same role (producer 0, 1, ...)
  unsigned sides = 2;  // children in this measurement (the barrier waits for all of them)
  const MeasureSpec* spec = nullptr;
  ControlBlock* control = nullptr;
  const TickClock* clock = nullptr;
  // More busy processes than cores: spinning must give the core away (sched_yield), or a
  // spinner would burn its time slice while the process it waits for cannot run.
  bool yield = false;
  // Every wait gives up here and the side reports a time-out.
  std::chrono::steady_clock::time_point deadline{};
};

// What a child writes into its pipe when its side is done: a fixed-size, trivially copyable
// record (well under PIPE_BUF, so the write is atomic).
struct SideReport {
  static constexpr std::uint32_t kMagic = 0x53505246;  // "FRPS"
  std::uint32_t magic = kMagic;
  std::uint32_t ok = 0;        // 1: the side did all its work; 0: `error` says why not
  std::uint64_t messages = 0;  // measured messages sent (producer, initiator) or received
  // Throughput, steady_clock nanoseconds: a producer's first send, a consumer's last receive.
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
  // Ping-pong initiator: round-trip times in nanoseconds.
  std::uint64_t rtt_p50 = 0;
  std::uint64_t rtt_p90 = 0;
  std::uint64_t rtt_p99 = 0;
  std::uint64_t rtt_p999 = 0;
  std::uint64_t rtt_max = 0;
  std::uint64_t rtt_min = 0;
  double rtt_mean = 0.0;
  std::uint64_t payload_checksum = 0;  // folded payload words: proof the bytes were read
  // Involuntary context switches while measuring, and how long that was: a pinned, spinning
  // side is only switched out when something else needs its core (noise in the tail).
  std::uint64_t preemptions = 0;
  std::uint64_t measured_ns = 0;
  char error[256] = {};
};
static_assert(std::is_trivially_copyable_v<SideReport>);
static_assert(sizeof(SideReport) <= 512, "a report must fit one atomic pipe write");

// Formats `error` into the report and marks it failed. Returns the report for `return fail(...)`.
SideReport& fail(SideReport& report, const char* format, ...) noexcept
    __attribute__((format(printf, 2, 3)));

}  // namespace symphony::perf
