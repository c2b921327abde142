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
  fanout,      // one publisher, N subscribers: publish -> the last subscriber's receive, and
               // messages/s when streaming to all N
  openloop,    // one sender at a fixed rate: latency from each message's intended send time
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
inline constexpr std::size_t kMaxPayload = std::size_t{64} << 20;
// Fan-out: subscribers of one publisher (each its own process).
inline constexpr unsigned kMaxFanout = 64;
// Open loop: stamps in flight (the sender may run this many messages ahead of the receiver).
inline constexpr std::size_t kStampSlots = std::size_t{1} << 16;
// Rows of a percentile distribution (the .hgrm file): HdrHistogram's 5 ticks per halving of
// the remaining tail reach 1 - 2^-40 within 200 rows.
inline constexpr std::size_t kMaxDistributionRows = 256;

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
  unsigned consumers = 1;  // throughput: consumer processes; fan-out: subscribers
  double rate = 0;         // open loop: intended messages per second
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

// A stamp one side leaves for another, tagged with the message's sequence number so that the
// reader can tell it belongs to the message in hand. Ticks of the run's TickClock.
struct alignas(64) StampSlot {
  std::uint64_t sequence;
  std::uint64_t sent;      // open loop: the intended send time, plus the time the write took
  std::uint64_t received;  // fan-out: when the subscriber had the message (before reading it)
  std::uint64_t touch;     // ticks spent writing (sender) or reading + writing (echoer) the payload
};

// One row of a percentile distribution: HdrHistogram's outputPercentileDistribution.
struct DistributionRow {
  double percentile;          // 0..1
  std::uint64_t value_ns;     // one-way latency at that percentile
  std::uint64_t total_count;  // samples at or below it
};

// The timed side's latency distribution, for the .hgrm file of its result (one-way ns).
struct Distribution {
  std::uint32_t rows;
  DistributionRow row[kMaxDistributionRows];
  double mean_ns;
  double stddev_ns;
  std::uint64_t max_ns;
  std::uint64_t count;
};

// Run-wide coordination between the children of one measurement, in an anonymous shared
// mapping that only this process and its forked children ever see (never named, never opened
// by another build), so it is not a shm ABI and does not belong in shm_layouts/. Plain integers,
// accessed through std::atomic_ref as everywhere else. Zeroed before every measurement.
struct ControlBlock {
  // Sides that finished setting up; every side waits until all have, so that none measures
  // while another is still mapping and faulting in its pages.
  alignas(64) std::uint32_t arrived;
  // Throughput: producers that sent their last message (incremented after it was published).
  alignas(64) std::uint32_t producers_done;
  // Throughput: consumers that took their last message. A socket sender waits for this before
  // it closes (a closing peer can take undelivered messages with it).
  alignas(64) std::uint32_t consumers_done;
  // Ping-pong: how long the echoer spent reading the ping and writing its pong (`touch`), for
  // the pong with this `sequence`; the initiator takes it out of the round trip.
  StampSlot echo;
  // Fan-out: each subscriber's receive of the message in flight, and its acknowledgement.
  StampSlot subscriber[kMaxFanout];
  // Fan-out streaming: the publisher is done; every subscriber stops after the last message.
  alignas(64) std::uint64_t last_sequence;
  Distribution distribution;
  // Open loop: slot sequence % kStampSlots holds the stamp of message `sequence`.
  StampSlot stamps[kStampSlots];
};
static_assert(std::is_trivially_copyable_v<ControlBlock>);

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
  // The timed side (ping-pong initiator, fan-out publisher, open-loop receiver): one-way
  // latency in nanoseconds, the payload's touch time taken out; and the median touch (writing
  // plus reading one message).
  std::uint64_t p50 = 0;
  std::uint64_t p90 = 0;
  std::uint64_t p99 = 0;
  std::uint64_t p999 = 0;
  std::uint64_t p9999 = 0;
  std::uint64_t max = 0;
  std::uint64_t min = 0;
  double mean = 0.0;
  std::uint64_t touch_p50 = 0;
  std::uint64_t streamed = 0;  // fan-out publisher: messages of the streaming phase
  bool has_latency = false;
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
