#pragma once
// The loops that time every transport: ping-pong initiator and echoer, throughput producer and
// consumer. A transport plugs in two small endpoint types (a Sender and a Receiver, concepts
// below); the loops are templates, so each transport's calls inline into the same loop and no
// transport is timed by different code from another.
//
// Every message is written before it is sent and read after it is received (the sequence number
// first, a fixed pattern, the sequence number again at the end; the reader checks all three), as
// an application would. Latency stamps sit between the two: taken after the message is written,
// and after it has arrived but before it is read. The writing and reading ("touch") are timed
// too and reported on their own, so that a transport that copies (inside its send) and one that
// lends its memory (the caller writes in place) are compared on the same terms. In a ping-pong
// the echoer's touch (reading the ping, writing the pong) lies inside the round trip: it times it
// and leaves it in ControlBlock::echo after publishing the pong (off the critical path), and the
// initiator takes it out of that round trip.
//
// Busy mode polls the endpoint's try_* call in a loop; blocking mode calls its wait_* call, which
// uses the transport's own wake-up. With more busy processes than cores, polling yields the core
// after a short spin (the spin_then_yield idea of engine::WaitStrategy::yielding()).

#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "measure.hpp"
#include "symphony/engine/latency_histogram.hpp"
#include "symphony/engine/wait_strategy.hpp"

namespace symphony::perf {

enum class Poll : std::uint8_t {
  ready,        // the loan or message is in hand
  would_block,  // nothing yet (no room / no message)
  failed,       // the transport reported an error: the endpoint's failure() says which
  timed_out,    // only from the wait helpers below: the side's deadline passed
};

using SteadyClock = std::chrono::steady_clock;

// Sends: a writable span for `size` bytes (inside the transport when it lends memory, else a
// staging buffer), then publish() makes it visible. wait_loan blocks with the transport's own
// wake-up until `until`.
template <typename T>
concept Sender = requires(T& tx, std::size_t size, std::span<std::byte>& out,
                          SteadyClock::time_point until) {
  { tx.try_loan(size, out) } -> std::same_as<Poll>;
  { tx.wait_loan(size, out, until) } -> std::same_as<Poll>;
  {tx.publish()};
  { tx.failure() } -> std::convertible_to<std::string>;
};

// Receives: a read-only span of the next message, valid until release().
template <typename T>
concept Receiver = requires(T& rx, std::span<const std::byte>& in, SteadyClock::time_point until) {
  { rx.try_receive(in) } -> std::same_as<Poll>;
  { rx.wait_receive(in, until) } -> std::same_as<Poll>;
  {rx.release()};
  { rx.failure() } -> std::convertible_to<std::string>;
};

// ---- tuning constants -------------------------------------------------------------------------

// Polls between two looks at the clock for the deadline (a clock read costs ~20 ns; 2^16 polls
// take 1-10 ms).
inline constexpr std::uint32_t kDeadlineCheckMask = (1U << 16) - 1;
// Oversubscribed: polls before each sched_yield, as engine::WaitStrategy::yielding() spins 256.
inline constexpr std::uint32_t kSpinsBeforeYield = 256;
// Throughput consumer: idle polls between two looks at the producers' done counter.
inline constexpr std::uint32_t kDoneCheckMask = 1023;
// Throughput over a socket: how long the stream must be quiet, once every producer is done,
// before the consumer concludes that nothing more is in flight.
inline constexpr auto kSettleQuiet = std::chrono::milliseconds(200);
// Ping-pong warm-up, not recorded: until this much time or this many round trips has passed,
// whichever comes first, and at least kMinWarmupRoundTrips.
inline constexpr std::uint64_t kWarmupNs = 20'000'000;
inline constexpr std::uint64_t kMaxWarmupRoundTrips = 20'000;
inline constexpr std::uint64_t kMinWarmupRoundTrips = 16;
// Large payloads take milliseconds per message: fewer warm-up round trips are enough (the first
// already faults every page in).
inline constexpr std::size_t kLargePayload = std::size_t{1} << 20;
inline std::uint64_t min_warmup_round_trips(std::size_t payload) noexcept {
  return payload >= kLargePayload ? 2 : kMinWarmupRoundTrips;
}
// The sequence number of the ping that tells the echoer to stop.
inline constexpr std::uint64_t kStopSequence = ~std::uint64_t{0};
// Throughput: a message's sequence word is (producer index << kProducerShift) | count.
inline constexpr int kProducerShift = 48;
inline constexpr std::uint64_t kCountMask = (std::uint64_t{1} << kProducerShift) - 1;

// ---- payload ----------------------------------------------------------------------------------

// [sequence u64][fixed pattern ...][sequence ^ kTailSalt u64] (the tail only from 16 bytes up).
// check() reads every byte: a torn, stale or misplaced message fails it.
class PayloadPattern {
 public:
  static constexpr std::uint64_t kTailSalt = 0x5A5AC3C30F0F9696ULL;

  explicit PayloadPattern(std::size_t size) : size_(size), fill_(size) {
    for (std::size_t i = 0; i < size; ++i) {
      fill_[i] = static_cast<std::byte>((i * 131 + 17) & 0xff);
    }
    fill_fold_ = fold(std::span<const std::byte>(fill_).subspan(kHead, middle_size()));
  }

  std::size_t size() const noexcept { return size_; }

  // `out` is exactly size() bytes (a loan of the payload size). Its own size is used below so
  // that the compiler, which often knows it, sees every write in bounds.
  void write(std::span<std::byte> out, std::uint64_t sequence) const noexcept {
    std::byte* p = out.data();
    const std::size_t size = out.size();
    std::memcpy(p, &sequence, sizeof sequence);
    if (size >= 2 * kHead) {
      std::memcpy(p + kHead, fill_.data() + kHead, size - 2 * kHead);
      const std::uint64_t tail = sequence ^ kTailSalt;
      std::memcpy(p + size - sizeof tail, &tail, sizeof tail);
    } else {
      std::memcpy(p + kHead, fill_.data() + kHead, size - kHead);
    }
  }

  static std::uint64_t sequence(std::span<const std::byte> in) noexcept {
    std::uint64_t sequence = 0;
    std::memcpy(&sequence, in.data(), sizeof sequence);
    return sequence;
  }

  // True if `in` is exactly what write(_, sequence) wrote. `sink` collects the folded words so
  // that the reads stay observable.
  bool check(std::span<const std::byte> in, std::uint64_t sequence,
             std::uint64_t& sink) const noexcept {
    if (in.size() != size_ || PayloadPattern::sequence(in) != sequence) return false;
    const std::uint64_t folded = fold(in.subspan(kHead, middle_size()));
    sink ^= folded;
    if (folded != fill_fold_) return false;
    if (has_tail()) {
      std::uint64_t tail = 0;
      std::memcpy(&tail, in.data() + size_ - sizeof tail, sizeof tail);
      if (tail != (sequence ^ kTailSalt)) return false;
    }
    return true;
  }

 private:
  static constexpr std::size_t kHead = sizeof(std::uint64_t);

  bool has_tail() const noexcept { return size_ >= 2 * kHead; }
  std::size_t middle_size() const noexcept { return size_ - kHead - (has_tail() ? kHead : 0); }

  // XOR of the bytes as 64-bit words; four accumulators so that loads overlap.
  static std::uint64_t fold(std::span<const std::byte> bytes) noexcept {
    const std::byte* p = bytes.data();
    const std::size_t n = bytes.size();
    std::uint64_t a = 0, b = 0, c = 0, d = 0;
    std::size_t i = 0;
    // Four scalar loads, not one memcpy into an array: the array would go through the stack.
    for (; i + 32 <= n; i += 32) {
      std::uint64_t w0, w1, w2, w3;
      std::memcpy(&w0, p + i, 8);
      std::memcpy(&w1, p + i + 8, 8);
      std::memcpy(&w2, p + i + 16, 8);
      std::memcpy(&w3, p + i + 24, 8);
      a ^= w0;
      b ^= w1;
      c ^= w2;
      d ^= w3;
    }
    for (; i + 8 <= n; i += 8) {
      std::uint64_t w = 0;
      std::memcpy(&w, p + i, sizeof w);
      a ^= w;
    }
    for (; i < n; ++i) b ^= static_cast<std::uint64_t>(p[i]) << (8 * (i % 8));
    return a ^ b ^ c ^ d;
  }

  std::size_t size_;
  std::vector<std::byte> fill_;
  std::uint64_t fill_fold_ = 0;
};

// ---- waiting ----------------------------------------------------------------------------------

// Polls `try_once` until it is not would_block: spinning (busy mode), spinning then yielding
// (more processes than cores), or through `block(until)` (blocking mode). Never returns
// would_block: the side's deadline turns it into timed_out. Out of line: only the slow path
// (the first attempt failed) comes here.
template <typename TryOnce, typename Block>
[[gnu::noinline]] Poll wait_for(TryOnce&& try_once, Block&& block,
                                const SideContext& side) noexcept {
  Poll poll = Poll::would_block;
  if (side.spec->mode == Mode::blocking) {
    for (;;) {
      if (SteadyClock::now() >= side.deadline) return Poll::timed_out;
      poll = block(side.deadline);
      if (poll != Poll::would_block) return poll;
    }
  }
  const bool pause = side.spec->pause_while_spinning;
  for (std::uint32_t polls = 1;; ++polls) {
    if (side.yield && polls > kSpinsBeforeYield) {
      ::sched_yield();
    } else if (pause) {
      engine::cpu_relax();
    }
    poll = try_once();
    if (poll != Poll::would_block) return poll;
    if ((polls & kDeadlineCheckMask) == 0 && SteadyClock::now() >= side.deadline) {
      return Poll::timed_out;
    }
  }
}

// The first attempt inline, so that the common case (ready at once) costs one call into the
// transport and the span stays in registers; the waiting loop out of line.
template <Sender Tx>
[[gnu::always_inline]] inline Poll wait_loan(Tx& tx, std::size_t size, std::span<std::byte>& out,
                                             const SideContext& side) noexcept {
  const Poll poll = tx.try_loan(size, out);
  if (poll != Poll::would_block) [[likely]]
    return poll;
  return wait_for([&] { return tx.try_loan(size, out); },
                  [&](SteadyClock::time_point until) { return tx.wait_loan(size, out, until); },
                  side);
}

template <Receiver Rx>
[[gnu::always_inline]] inline Poll wait_receive(Rx& rx, std::span<const std::byte>& in,
                                                const SideContext& side) noexcept {
  const Poll poll = rx.try_receive(in);
  if (poll != Poll::would_block) [[likely]]
    return poll;
  return wait_for([&] { return rx.try_receive(in); },
                  [&](SteadyClock::time_point until) { return rx.wait_receive(in, until); }, side);
}

// Reports why a wait did not produce a loan or a message.
template <typename Endpoint>
SideReport& fail_wait(SideReport& report, Poll poll, const Endpoint& endpoint, const char* what,
                      std::uint64_t number, const SideContext& side) noexcept {
  if (poll == Poll::timed_out) {
    const double seconds = std::chrono::duration<double>(side.spec->timeout).count();
    return fail(report, "timed out (the measurement's limit is %.1f s) waiting to %s message %llu",
                seconds, what, static_cast<unsigned long long>(number));
  }
  std::string why;
  try {
    why = endpoint.failure();
  } catch (...) {
    why = "(no description)";
  }
  return fail(report, "could not %s message %llu: %s", what,
              static_cast<unsigned long long>(number), why.c_str());
}

// Every side waits here until all sides of the measurement have set up. Yields while waiting:
// the others may need this core to get there.
inline bool arrive_and_wait(const SideContext& side, SideReport& report) noexcept {
  std::atomic_ref<std::uint32_t> arrived(side.control->arrived);
  arrived.fetch_add(1, std::memory_order_acq_rel);
  while (arrived.load(std::memory_order_acquire) < side.sides) {
    ::sched_yield();
    if (SteadyClock::now() >= side.deadline) {
      fail(report, "timed out waiting for the other sides to set up (%u of %u arrived)",
           arrived.load(std::memory_order_relaxed), side.sides);
      return false;
    }
  }
  return true;
}

// Counts what disturbed the measured part of a side: start() after the warm-up, stop() at the
// end of the measured loop.
class NoiseMeter {
 public:
  void start() noexcept {
    switches_ = involuntary_switches();
    start_ns_ = TickClock::steady_ns();
  }
  void stop(SideReport& report) const noexcept {
    report.preemptions = involuntary_switches() - switches_;
    report.measured_ns = TickClock::steady_ns() - start_ns_;
  }

 private:
  static std::uint64_t involuntary_switches() noexcept {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return static_cast<std::uint64_t>(usage.ru_nivcsw);
  }
  std::uint64_t switches_ = 0;
  std::uint64_t start_ns_ = 0;
};

// --fault: the receiving side dies or stops responding, to prove the run fails cleanly.
inline void maybe_inject_fault(const SideContext& side, std::uint64_t received) noexcept {
  if (side.spec->fault == Fault::none || received != kFaultAfterMessages) return;
  if (side.spec->fault == Fault::die) ::raise(SIGKILL);
  for (;;) ::pause();  // Fault::stall: alive, but never takes another message
}

// Runs `body` and turns an exception (allocation, histogram set-up) into a failed report.
template <typename Body>
SideReport guarded(Body&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    SideReport report;
    return fail(report, "%s", e.what());
  } catch (...) {
    SideReport report;
    return fail(report, "unknown exception");
  }
}

// ---- ping-pong --------------------------------------------------------------------------------

// One-way latencies and touch times of the timed side, and what its report and .hgrm file need.
class LatencyRecorder {
 public:
  void record(std::uint64_t latency_ns, std::uint64_t touch_ns) noexcept {
    latency_.record(latency_ns);
    touch_.record(touch_ns);
    const auto value = static_cast<double>(latency_ns);
    sum_squares_ += value * value;
  }
  std::uint64_t count() const noexcept { return latency_.count(); }

  // Fills the report's percentiles and writes the percentile distribution for the parent.
  SideReport& report(SideReport& report, ControlBlock& control) const noexcept {
    const engine::LatencySummary summary = latency_.summarize();
    report.messages = summary.count;
    report.p50 = summary.p50;
    report.p90 = summary.p90;
    report.p99 = summary.p99;
    report.p999 = summary.p999;
    report.p9999 = latency_.percentile(99.99);
    report.max = summary.max;
    report.min = latency_.min();
    report.mean = summary.mean;
    report.touch_p50 = touch_.percentile(50);
    report.has_latency = true;
    write_distribution(control.distribution);
    report.ok = 1;
    return report;
  }

 private:
  // HdrHistogram's outputPercentileDistribution rows: 5 ticks per halving of the distance to
  // 100%, up to the level beyond which only the maximum is left, then 100%.
  void write_distribution(Distribution& out) const noexcept {
    constexpr double kTicksPerHalfDistance = 5;
    const std::uint64_t count = latency_.count();
    out.rows = 0;
    out.count = count;
    out.max_ns = latency_.max();
    out.mean_ns = latency_.mean();
    const double n = static_cast<double>(count);
    const double variance =
        count == 0 ? 0 : std::max(0.0, sum_squares_ / n - out.mean_ns * out.mean_ns);
    out.stddev_ns = std::sqrt(variance);
    if (count == 0) return;
    double level = 0;  // percent
    for (;;) {
      const bool last = level >= 100 || out.rows + 1 == kMaxDistributionRows;
      if (last) level = 100;
      DistributionRow& row = out.row[out.rows++];
      row.percentile = level / 100;
      row.value_ns = latency_.percentile(level);
      row.total_count = std::min<std::uint64_t>(
          count,
          std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(level / 100 * n))));
      if (last) return;
      const double halvings = std::floor(std::log2(100 / (100 - level))) + 1;
      level += 100 / (kTicksPerHalfDistance * std::exp2(halvings));
      // Less than one sample left above: the rest is the maximum.
      if ((100 - level) / 100 * n < 1) level = 100;
    }
  }

  engine::LatencyHistogram latency_;
  engine::LatencyHistogram touch_;
  double sum_squares_ = 0;
};

// A stamp left for another side: the fields first, the sequence last (release), so that a reader
// that sees the sequence sees the fields.
inline void leave_stamp(StampSlot& slot, std::uint64_t sequence, std::uint64_t sent,
                        std::uint64_t received, std::uint64_t touch) noexcept {
  std::atomic_ref<std::uint64_t>(slot.sent).store(sent, std::memory_order_relaxed);
  std::atomic_ref<std::uint64_t>(slot.received).store(received, std::memory_order_relaxed);
  std::atomic_ref<std::uint64_t>(slot.touch).store(touch, std::memory_order_relaxed);
  std::atomic_ref<std::uint64_t>(slot.sequence).store(sequence, std::memory_order_release);
}

// Waits (spinning, yielding when oversubscribed) until `slot` carries `sequence`; false past the
// side's deadline. Used after the latency stamp is taken: never inside a measured interval.
inline bool await_stamp(const StampSlot& slot, std::uint64_t sequence, const SideContext& side,
                        StampSlot& out) noexcept {
  std::atomic_ref<std::uint64_t> published(const_cast<std::uint64_t&>(slot.sequence));
  for (std::uint32_t polls = 1; published.load(std::memory_order_acquire) != sequence; ++polls) {
    if (side.yield && polls > kSpinsBeforeYield) {
      ::sched_yield();
    } else {
      engine::cpu_relax();
    }
    if ((polls & kDeadlineCheckMask) == 0 && SteadyClock::now() >= side.deadline) return false;
  }
  out.sequence = sequence;
  out.sent = std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(slot.sent))
                 .load(std::memory_order_relaxed);
  out.received = std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(slot.received))
                     .load(std::memory_order_relaxed);
  out.touch = std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(slot.touch))
                  .load(std::memory_order_relaxed);
  return true;
}

inline std::uint64_t ticks_between(std::uint64_t from, std::uint64_t to) noexcept {
  return to > from ? to - from : 0;  // across cores the TSCs may disagree by a few ticks
}

template <Sender Tx, Receiver Rx>
SideReport pingpong_initiator(Tx& tx, Rx& rx, const SideContext& side) {
  SideReport report;
  const MeasureSpec& spec = *side.spec;
  const TickClock& clock = *side.clock;
  const PayloadPattern pattern(spec.payload);
  LatencyRecorder recorder;
  std::uint64_t sequence = 0;
  std::span<std::byte> out;
  std::span<const std::byte> in;
  StampSlot echo{};

  // One ping and its pong, recorded when `record`; false with `report` failed.
  const auto round_trip = [&](bool record) -> bool {
    ++sequence;
    Poll poll = wait_loan(tx, spec.payload, out, side);
    if (poll != Poll::ready) {
      fail_wait(report, poll, tx, "loan ping", sequence, side);
      return false;
    }
    const std::uint64_t write_start = clock.now();
    pattern.write(out, sequence);
    const std::uint64_t sent = clock.now();
    tx.publish();
    poll = wait_receive(rx, in, side);
    const std::uint64_t received = clock.now();
    if (poll != Poll::ready) {
      fail_wait(report, poll, rx, "receive pong", sequence, side);
      return false;
    }
    if (!pattern.check(in, sequence, report.payload_checksum)) {
      fail(report, "pong %llu is not the ping's echo (sequence %llu, %zu bytes)",
           static_cast<unsigned long long>(sequence),
           static_cast<unsigned long long>(PayloadPattern::sequence(in)), in.size());
      return false;
    }
    const std::uint64_t read_end = clock.now();
    rx.release();
    if (!await_stamp(side.control->echo, sequence, side, echo)) {
      fail(report, "the echoer never stamped pong %llu", static_cast<unsigned long long>(sequence));
      return false;
    }
    if (record) {
      // The round trip without the echoer's touch, halved; the touch of one message each way.
      const std::uint64_t round_trip_ticks = ticks_between(echo.touch, received - sent);
      const std::uint64_t touch_ticks = (sent - write_start) + (read_end - received) + echo.touch;
      recorder.record(clock.to_ns(round_trip_ticks) / 2, clock.to_ns(touch_ticks) / 2);
    }
    return true;
  };

  if (!arrive_and_wait(side, report)) return report;

  const std::uint64_t warmup_end = clock.now() + clock.from_ns(kWarmupNs);
  const std::uint64_t min_warmup = min_warmup_round_trips(spec.payload);
  for (std::uint64_t i = 0; i < kMaxWarmupRoundTrips; ++i) {
    if (i >= min_warmup && clock.now() >= warmup_end) break;
    if (!round_trip(false)) return report;
  }

  NoiseMeter noise;
  noise.start();
  const std::uint64_t run_end =
      clock.now() + clock.from_ns(static_cast<std::uint64_t>(spec.seconds * 1e9));
  for (std::uint64_t i = 0;; ++i) {
    if (spec.messages != 0 ? i == spec.messages : clock.now() >= run_end) break;
    if (!round_trip(true)) return report;
  }
  noise.stop(report);

  // Tell the echoer to stop; it is not timed.
  Poll poll = wait_loan(tx, spec.payload, out, side);
  if (poll != Poll::ready) return fail_wait(report, poll, tx, "loan the stop", sequence + 1, side);
  pattern.write(out, kStopSequence);
  tx.publish();

  return recorder.report(report, *side.control);
}

template <Sender Tx, Receiver Rx>
SideReport pingpong_echoer(Tx& tx, Rx& rx, const SideContext& side) {
  SideReport report;
  const MeasureSpec& spec = *side.spec;
  const TickClock& clock = *side.clock;
  const PayloadPattern pattern(spec.payload);
  std::span<std::byte> out;
  std::span<const std::byte> in;
  if (!arrive_and_wait(side, report)) return report;
  NoiseMeter noise;  // the echoer cannot tell warm-up from run: it counts both
  noise.start();
  for (std::uint64_t expected = 1;; ++expected) {
    Poll poll = wait_receive(rx, in, side);
    if (poll != Poll::ready) return fail_wait(report, poll, rx, "receive ping", expected, side);
    const std::uint64_t read_start = clock.now();
    const std::uint64_t sequence = PayloadPattern::sequence(in);
    if (sequence == kStopSequence) {
      rx.release();
      break;
    }
    if (!pattern.check(in, expected, report.payload_checksum)) {
      return fail(report, "ping %llu is wrong (sequence %llu, %zu bytes)",
                  static_cast<unsigned long long>(expected),
                  static_cast<unsigned long long>(sequence), in.size());
    }
    const std::uint64_t read_end = clock.now();
    poll = wait_loan(tx, spec.payload, out, side);
    if (poll != Poll::ready) return fail_wait(report, poll, tx, "loan pong", expected, side);
    const std::uint64_t write_start = clock.now();
    pattern.write(out, sequence);
    const std::uint64_t write_end = clock.now();
    tx.publish();
    // After the publish: the stamp's cache line never delays the pong.
    leave_stamp(side.control->echo, sequence, 0, 0,
                (read_end - read_start) + (write_end - write_start));
    // Released after the pong is on its way: the initiator is not kept waiting for it.
    rx.release();
    ++report.messages;
    maybe_inject_fault(side, report.messages);
  }
  noise.stop(report);
  report.ok = 1;
  return report;
}

// ---- throughput -------------------------------------------------------------------------------

template <Sender Tx>
SideReport throughput_producer(Tx& tx, const SideContext& side) {
  SideReport report;
  const MeasureSpec& spec = *side.spec;
  const TickClock& clock = *side.clock;
  const PayloadPattern pattern(spec.payload);
  // --messages is the total over all producers.
  const std::uint64_t quota =
      spec.messages == 0
          ? 0
          : spec.messages / spec.producers + (side.index < spec.messages % spec.producers ? 1 : 0);
  const std::uint64_t base = static_cast<std::uint64_t>(side.index) << kProducerShift;
  std::span<std::byte> out;
  if (!arrive_and_wait(side, report)) return report;

  NoiseMeter noise;
  noise.start();
  report.first_ns = static_cast<std::int64_t>(TickClock::steady_ns());
  const std::uint64_t run_end =
      clock.now() + clock.from_ns(static_cast<std::uint64_t>(spec.seconds * 1e9));
  std::uint64_t sent = 0;
  const unsigned batch = spec.batch;
  unsigned unpublished = 0;
  for (;;) {
    if (quota != 0) {
      if (sent == quota) break;
    } else if ((sent & 63) == 0 && clock.now() >= run_end) {
      break;
    }
    Poll poll = tx.try_loan(spec.payload, out);
    if (poll == Poll::would_block) [[unlikely]] {
      // Full: what is loaned but unpublished must become visible, or the consumer never frees
      // the room we wait for.
      if (unpublished != 0) {
        tx.publish();
        unpublished = 0;
      }
      poll = wait_loan(tx, spec.payload, out, side);
    }
    if (poll != Poll::ready) return fail_wait(report, poll, tx, "loan", sent + 1, side);
    ++sent;
    pattern.write(out, base | sent);
    if (++unpublished == batch) {
      tx.publish();
      unpublished = 0;
    }
  }
  if (unpublished != 0) tx.publish();
  noise.stop(report);
  report.messages = sent;
  // After the last publish: a consumer that sees every producer done and then an empty queue has
  // taken everything.
  std::atomic_ref<std::uint32_t>(side.control->producers_done)
      .fetch_add(1, std::memory_order_acq_rel);
  report.ok = 1;
  return report;
}

template <Receiver Rx>
SideReport throughput_consumer(Rx& rx, const SideContext& side) {
  SideReport report;
  const MeasureSpec& spec = *side.spec;
  const PayloadPattern pattern(spec.payload);
  // The last count seen from each producer: one consumer sees each producer's messages in
  // order and without gaps; several consumers see them in order, each with gaps.
  std::vector<std::uint64_t> last(spec.producers, 0);
  const bool sole_consumer = spec.consumers == 1;
  std::span<const std::byte> in;
  // A message arrived since the last stamp: the next empty poll stamps the time, so the
  // consumer's last receive is known without a clock read per message.
  bool fresh = false;
  const unsigned batch = spec.batch;
  unsigned unreleased = 0;

  const auto take = [&]() -> bool {
    const std::uint64_t sequence = PayloadPattern::sequence(in);
    const std::uint64_t producer = sequence >> kProducerShift;
    const std::uint64_t count = sequence & kCountMask;
    if (producer >= spec.producers ||
        (sole_consumer ? count != last[producer] + 1 : count <= last[producer]) ||
        !pattern.check(in, sequence, report.payload_checksum)) {
      fail(report,
           "message %llu is wrong: producer %llu, count %llu (last from it: %llu), %zu bytes",
           static_cast<unsigned long long>(report.messages + 1),
           static_cast<unsigned long long>(producer), static_cast<unsigned long long>(count),
           static_cast<unsigned long long>(producer < last.size() ? last[producer] : 0), in.size());
      return false;
    }
    last[producer] = count;
    if (++unreleased == batch) {
      rx.release();
      unreleased = 0;
    }
    ++report.messages;
    fresh = true;
    maybe_inject_fault(side, report.messages);
    return true;
  };

  if (!arrive_and_wait(side, report)) return report;
  std::atomic_ref<std::uint32_t> producers_done(side.control->producers_done);
  NoiseMeter noise;
  noise.start();
  std::uint32_t idle = 0;
  for (;;) {
    Poll poll = rx.try_receive(in);
    if (poll == Poll::ready) [[likely]] {
      if (!take()) return report;
      idle = 0;
      continue;
    }
    if (poll == Poll::failed)
      return fail_wait(report, poll, rx, "receive", report.messages + 1, side);
    if (unreleased != 0) {
      // Nothing more to read now: hand the room back rather than let the producer wait for it.
      rx.release();
      unreleased = 0;
    }
    if (fresh) {
      report.last_ns = static_cast<std::int64_t>(TickClock::steady_ns());
      fresh = false;
    }
    ++idle;
    if ((idle & kDoneCheckMask) == 0 || side.yield || spec.mode == Mode::blocking) {
      if (producers_done.load(std::memory_order_acquire) == spec.producers) {
        // Everything the producers published is visible now: take what is left and stop. A
        // socket transport still has messages in flight after its sender's last send returned:
        // it drains until the stream has been quiet for kSettleQuiet.
        const auto next = [&] {
          if constexpr (requires { Rx::kInFlightAfterSend; }) {
            return rx.wait_receive(in, SteadyClock::now() + kSettleQuiet);
          } else {
            return rx.try_receive(in);
          }
        };
        while ((poll = next()) == Poll::ready) {
          if (!take()) return report;
          // Stamped here: the quiet period that ends the drain is not transfer time.
          report.last_ns = static_cast<std::int64_t>(TickClock::steady_ns());
          fresh = false;
        }
        if (poll == Poll::failed) {
          return fail_wait(report, poll, rx, "receive", report.messages + 1, side);
        }
        if (fresh) report.last_ns = static_cast<std::int64_t>(TickClock::steady_ns());
        noise.stop(report);
        break;
      }
      if (SteadyClock::now() >= side.deadline) {
        return fail_wait(report, Poll::timed_out, rx, "receive", report.messages + 1, side);
      }
    }
    if (spec.mode == Mode::blocking) {
      // Short naps: nobody rings the doorbell once the producers are done.
      constexpr auto kNap = std::chrono::milliseconds(5);
      poll = rx.wait_receive(in, std::min(side.deadline, SteadyClock::now() + kNap));
      if (poll == Poll::ready) {
        if (!take()) return report;
        idle = 0;
      } else if (poll == Poll::failed) {
        return fail_wait(report, poll, rx, "receive", report.messages + 1, side);
      }
    } else if (side.yield && idle > kSpinsBeforeYield) {
      ::sched_yield();
    } else if (spec.pause_while_spinning) {
      engine::cpu_relax();
    }
  }
  std::atomic_ref<std::uint32_t>(side.control->consumers_done)
      .fetch_add(1, std::memory_order_acq_rel);
  report.ok = 1;
  return report;
}

// ---- fan-out ----------------------------------------------------------------------------------

// One publisher, N subscribers (consumers), each its own process. Two phases:
//  latency    lock-step: one message, then the publisher waits until every subscriber has
//             stamped its receive (ControlBlock::subscriber); latency = the last receive - the
//             publish (stamps on two cores: the TSC is invariant and synchronised on this kind
//             of machine; steady_clock otherwise), touch = the write + that subscriber's read;
//  streaming  as fast as the slowest subscriber takes (block subscribers): messages/s from the
//             first publish to the last subscriber's last receive.
// A stop message (kStopSequence) ends the subscribers.
template <Sender Tx>
SideReport fanout_publisher(Tx& tx, const SideContext& side) {
  SideReport report;
  const MeasureSpec& spec = *side.spec;
  const TickClock& clock = *side.clock;
  const PayloadPattern pattern(spec.payload);
  const unsigned subscribers = spec.consumers;
  LatencyRecorder recorder;
  std::span<std::byte> out;
  std::uint64_t sequence = 0;
  StampSlot stamp{};

  const auto send = [&](std::uint64_t value, std::uint64_t& write_start) -> bool {
    const Poll poll = wait_loan(tx, spec.payload, out, side);
    if (poll != Poll::ready) {
      fail_wait(report, poll, tx, "loan", sequence, side);
      return false;
    }
    write_start = clock.now();
    pattern.write(out, value);
    return true;
  };
  const auto one_to_all = [&](bool record) -> bool {
    ++sequence;
    std::uint64_t write_start = 0;
    if (!send(sequence, write_start)) return false;
    const std::uint64_t sent = clock.now();
    tx.publish();
    std::uint64_t last_received = sent;
    std::uint64_t last_touch = 0;
    for (unsigned i = 0; i < subscribers; ++i) {
      if (!await_stamp(side.control->subscriber[i], sequence, side, stamp)) {
        fail(report, "subscriber %u never received message %llu", i,
             static_cast<unsigned long long>(sequence));
        return false;
      }
      if (stamp.received >= last_received) {
        last_received = stamp.received;
        last_touch = stamp.touch;
      }
    }
    if (record) {
      recorder.record(clock.to_ns(last_received - sent),
                      clock.to_ns((sent - write_start) + last_touch));
    }
    return true;
  };

  if (!arrive_and_wait(side, report)) return report;
  const std::uint64_t warmup_end = clock.now() + clock.from_ns(kWarmupNs);
  for (std::uint64_t i = 0; i < kMaxWarmupRoundTrips; ++i) {
    if (i >= min_warmup_round_trips(spec.payload) && clock.now() >= warmup_end) break;
    if (!one_to_all(false)) return report;
  }
  NoiseMeter noise;
  noise.start();
  std::uint64_t run_end =
      clock.now() + clock.from_ns(static_cast<std::uint64_t>(spec.seconds * 1e9));
  for (std::uint64_t i = 0;; ++i) {
    if (spec.messages != 0 ? i == spec.messages : clock.now() >= run_end) break;
    if (!one_to_all(true)) return report;
  }

  // Streaming: the same number of messages as the latency phase took, or as many as fit the
  // same time.
  const std::uint64_t latency_samples = recorder.count();
  report.first_ns = static_cast<std::int64_t>(TickClock::steady_ns());
  run_end = clock.now() + clock.from_ns(static_cast<std::uint64_t>(spec.seconds * 1e9));
  std::uint64_t streamed = 0;
  for (;;) {
    if (spec.messages != 0 ? streamed == spec.messages
                           : ((streamed & 63) == 0 && clock.now() >= run_end)) {
      break;
    }
    ++sequence;
    std::uint64_t write_start = 0;
    if (!send(sequence, write_start)) return report;
    tx.publish();
    ++streamed;
  }
  std::uint64_t write_start = 0;
  if (!send(kStopSequence, write_start)) return report;
  tx.publish();
  noise.stop(report);
  recorder.report(report, *side.control);
  report.messages = latency_samples;
  report.streamed = streamed;
  return report;
}

template <Receiver Rx>
SideReport fanout_subscriber(Rx& rx, const SideContext& side) {
  SideReport report;
  const MeasureSpec& spec = *side.spec;
  const TickClock& clock = *side.clock;
  const PayloadPattern pattern(spec.payload);
  std::span<const std::byte> in;
  StampSlot& mine = side.control->subscriber[side.index];
  if (!arrive_and_wait(side, report)) return report;
  NoiseMeter noise;
  noise.start();
  for (std::uint64_t expected = 1;; ++expected) {
    const Poll poll = wait_receive(rx, in, side);
    if (poll != Poll::ready) return fail_wait(report, poll, rx, "receive", expected, side);
    const std::uint64_t received = clock.now();
    const std::uint64_t sequence = PayloadPattern::sequence(in);
    if (sequence == kStopSequence) {
      rx.release();
      break;
    }
    if (!pattern.check(in, expected, report.payload_checksum)) {
      return fail(report, "message %llu is wrong (sequence %llu, %zu bytes)",
                  static_cast<unsigned long long>(expected),
                  static_cast<unsigned long long>(sequence), in.size());
    }
    const std::uint64_t read_end = clock.now();
    rx.release();
    leave_stamp(mine, sequence, 0, received, read_end - received);
    report.last_ns = static_cast<std::int64_t>(TickClock::steady_ns());
    ++report.messages;
    maybe_inject_fault(side, report.messages);
  }
  noise.stop(report);
  report.ok = 1;
  return report;
}

// ---- open loop --------------------------------------------------------------------------------

// The sender schedules message k at start + k / rate and sends it then (spinning on the clock in
// both modes: the mode is how the receiver waits), however late the previous send made it; the
// receiver's latency runs from that intended time (plus the time the write took), so a stall
// shows in every message it delayed (no coordinated omission, as wrk2 measures). Stamps travel
// in ControlBlock::stamps, left after the publish.
inline std::uint64_t openloop_warmup_messages(const MeasureSpec& spec) noexcept {
  return std::max<std::uint64_t>(kMinWarmupRoundTrips,
                                 static_cast<std::uint64_t>(spec.rate * kWarmupNs / 1e9));
}

template <Sender Tx>
SideReport openloop_sender(Tx& tx, const SideContext& side) {
  SideReport report;
  const MeasureSpec& spec = *side.spec;
  const TickClock& clock = *side.clock;
  const PayloadPattern pattern(spec.payload);
  const std::uint64_t warmup = openloop_warmup_messages(spec);
  const std::uint64_t measured =
      spec.messages != 0
          ? spec.messages
          : std::max<std::uint64_t>(1, static_cast<std::uint64_t>(spec.rate * spec.seconds));
  const double interval = clock.ticks_per_ns() * 1e9 / spec.rate;
  std::span<std::byte> out;
  if (!arrive_and_wait(side, report)) return report;
  NoiseMeter noise;
  noise.start();
  const std::uint64_t start = clock.now();
  for (std::uint64_t k = 1; k <= warmup + measured; ++k) {
    const std::uint64_t intended =
        start + static_cast<std::uint64_t>(static_cast<double>(k - 1) * interval);
    for (std::uint32_t polls = 1; clock.now() < intended; ++polls) {
      engine::cpu_relax();
      if ((polls & kDeadlineCheckMask) == 0 && SteadyClock::now() >= side.deadline) {
        return fail_wait(report, Poll::timed_out, tx, "send", k, side);
      }
    }
    const Poll poll = wait_loan(tx, spec.payload, out, side);
    if (poll != Poll::ready) return fail_wait(report, poll, tx, "loan", k, side);
    const std::uint64_t write_start = clock.now();
    pattern.write(out, k);
    const std::uint64_t write_ticks = clock.now() - write_start;
    tx.publish();
    leave_stamp(side.control->stamps[k % kStampSlots], k, intended + write_ticks, 0, write_ticks);
  }
  const Poll poll = wait_loan(tx, spec.payload, out, side);
  if (poll != Poll::ready) return fail_wait(report, poll, tx, "loan the stop", 0, side);
  pattern.write(out, kStopSequence);
  tx.publish();
  noise.stop(report);
  report.messages = warmup + measured;
  report.ok = 1;
  return report;
}

template <Receiver Rx>
SideReport openloop_receiver(Rx& rx, const SideContext& side) {
  SideReport report;
  const MeasureSpec& spec = *side.spec;
  const TickClock& clock = *side.clock;
  const PayloadPattern pattern(spec.payload);
  const std::uint64_t warmup = openloop_warmup_messages(spec);
  LatencyRecorder recorder;
  std::span<const std::byte> in;
  StampSlot stamp{};
  std::uint64_t checksum = 0;
  if (!arrive_and_wait(side, report)) return report;
  NoiseMeter noise;
  noise.start();
  for (std::uint64_t expected = 1;; ++expected) {
    const Poll poll = wait_receive(rx, in, side);
    if (poll != Poll::ready) return fail_wait(report, poll, rx, "receive", expected, side);
    const std::uint64_t received = clock.now();
    const std::uint64_t sequence = PayloadPattern::sequence(in);
    if (sequence == kStopSequence) {
      rx.release();
      break;
    }
    if (!pattern.check(in, expected, checksum)) {
      return fail(report, "message %llu is wrong (sequence %llu, %zu bytes)",
                  static_cast<unsigned long long>(expected),
                  static_cast<unsigned long long>(sequence), in.size());
    }
    const std::uint64_t read_end = clock.now();
    rx.release();
    if (!await_stamp(side.control->stamps[sequence % kStampSlots], sequence, side, stamp)) {
      return fail(report,
                  "no stamp for message %llu (the sender ran more than %zu messages ahead?)",
                  static_cast<unsigned long long>(sequence), kStampSlots);
    }
    if (sequence == warmup + 1) report.first_ns = static_cast<std::int64_t>(TickClock::steady_ns());
    if (sequence > warmup) {
      recorder.record(clock.to_ns(ticks_between(stamp.sent, received)),
                      clock.to_ns(stamp.touch + (read_end - received)));
      report.last_ns = static_cast<std::int64_t>(TickClock::steady_ns());
    }
  }
  noise.stop(report);
  recorder.report(report, *side.control);
  report.payload_checksum = checksum;
  std::atomic_ref<std::uint32_t>(side.control->consumers_done)
      .fetch_add(1, std::memory_order_acq_rel);
  return report;
}

// ---- one-way roles ----------------------------------------------------------------------------

// A producer or consumer side, whatever the one-way pattern: what a transport's run_side calls.
template <Sender Tx>
SideReport run_sender_side(Tx& tx, const SideContext& side) {
  switch (side.spec->pattern) {
    case Pattern::fanout:
      return fanout_publisher(tx, side);
    case Pattern::openloop:
      return openloop_sender(tx, side);
    default:
      return throughput_producer(tx, side);
  }
}

template <Receiver Rx>
SideReport run_receiver_side(Rx& rx, const SideContext& side) {
  switch (side.spec->pattern) {
    case Pattern::fanout:
      return fanout_subscriber(rx, side);
    case Pattern::openloop:
      return openloop_receiver(rx, side);
    default:
      return throughput_consumer(rx, side);
  }
}

// For senders whose close can lose what is still in flight: waits (yielding) until every
// consumer took its last message, or the deadline.
inline void wait_for_consumers(const SideContext& side) noexcept {
  std::atomic_ref<std::uint32_t> done(side.control->consumers_done);
  while (done.load(std::memory_order_acquire) < side.spec->consumers &&
         SteadyClock::now() < side.deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

}  // namespace symphony::perf
