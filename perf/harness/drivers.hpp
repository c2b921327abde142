#pragma once
// The loops that time every transport: ping-pong initiator and echoer, throughput producer and
// consumer. A transport plugs in two small endpoint types (a Sender and a Receiver, concepts
// below); the loops are templates, so each transport's calls inline into the same loop and no
// transport is timed by different code from another.
//
// Every message is written before it is sent and read after it is received (the sequence number
// first, a fixed pattern, the sequence number again at the end; the reader checks all three), as
// an application would. The initiator's stamps sit between the two: taken after the ping is
// written, and after the pong has arrived but before it is read.
//
// Busy mode polls the endpoint's try_* call in a loop; blocking mode calls its wait_* call, which
// uses the transport's own wake-up. With more busy processes than cores, polling yields the core
// after a short spin (the spin_then_yield idea of engine::WaitStrategy::yielding()).

#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <thread>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <string>
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

// A ping-pong initiator's successful report: its round trips' percentiles.
inline SideReport& report_round_trips(SideReport& report,
                                      const engine::LatencyHistogram& histogram) noexcept {
  const engine::LatencySummary summary = histogram.summarize();
  report.messages = summary.count;
  report.rtt_p50 = summary.p50;
  report.rtt_p90 = summary.p90;
  report.rtt_p99 = summary.p99;
  report.rtt_p999 = summary.p999;
  report.rtt_max = summary.max;
  report.rtt_min = histogram.min();
  report.rtt_mean = summary.mean;
  report.ok = 1;
  return report;
}

template <Sender Tx, Receiver Rx>
SideReport pingpong_initiator(Tx& tx, Rx& rx, const SideContext& side) {
  SideReport report;
  const MeasureSpec& spec = *side.spec;
  const TickClock& clock = *side.clock;
  const PayloadPattern pattern(spec.payload);
  engine::LatencyHistogram histogram;
  std::uint64_t sequence = 0;
  std::span<std::byte> out;
  std::span<const std::byte> in;

  // One ping and its pong; the round trip in ticks, or nullopt with `report` failed.
  const auto round_trip = [&]() -> std::optional<std::uint64_t> {
    ++sequence;
    Poll poll = wait_loan(tx, spec.payload, out, side);
    if (poll != Poll::ready) {
      fail_wait(report, poll, tx, "loan ping", sequence, side);
      return std::nullopt;
    }
    pattern.write(out, sequence);
    const std::uint64_t sent = clock.now();
    tx.publish();
    poll = wait_receive(rx, in, side);
    const std::uint64_t received = clock.now();
    if (poll != Poll::ready) {
      fail_wait(report, poll, rx, "receive pong", sequence, side);
      return std::nullopt;
    }
    if (!pattern.check(in, sequence, report.payload_checksum)) {
      fail(report, "pong %llu is not the ping's echo (sequence %llu, %zu bytes)",
           static_cast<unsigned long long>(sequence),
           static_cast<unsigned long long>(PayloadPattern::sequence(in)), in.size());
      return std::nullopt;
    }
    rx.release();
    return received - sent;
  };

  if (!arrive_and_wait(side, report)) return report;

  const std::uint64_t warmup_end = clock.now() + clock.from_ns(kWarmupNs);
  for (std::uint64_t i = 0; i < kMaxWarmupRoundTrips; ++i) {
    if (i >= kMinWarmupRoundTrips && clock.now() >= warmup_end) break;
    if (!round_trip()) return report;
  }

  NoiseMeter noise;
  noise.start();
  const std::uint64_t run_end =
      clock.now() + clock.from_ns(static_cast<std::uint64_t>(spec.seconds * 1e9));
  for (std::uint64_t i = 0;; ++i) {
    if (spec.messages != 0 ? i == spec.messages : clock.now() >= run_end) break;
    const auto ticks = round_trip();
    if (!ticks) return report;
    histogram.record(clock.to_ns(*ticks));
  }
  noise.stop(report);

  // Tell the echoer to stop; it is not timed.
  Poll poll = wait_loan(tx, spec.payload, out, side);
  if (poll != Poll::ready) return fail_wait(report, poll, tx, "loan the stop", sequence + 1, side);
  pattern.write(out, kStopSequence);
  tx.publish();

  return report_round_trips(report, histogram);
}

template <Sender Tx, Receiver Rx>
SideReport pingpong_echoer(Tx& tx, Rx& rx, const SideContext& side) {
  SideReport report;
  const MeasureSpec& spec = *side.spec;
  const PayloadPattern pattern(spec.payload);
  std::span<std::byte> out;
  std::span<const std::byte> in;
  if (!arrive_and_wait(side, report)) return report;
  NoiseMeter noise;  // the echoer cannot tell warm-up from run: it counts both
  noise.start();
  for (std::uint64_t expected = 1;; ++expected) {
    Poll poll = wait_receive(rx, in, side);
    if (poll != Poll::ready) return fail_wait(report, poll, rx, "receive ping", expected, side);
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
    poll = wait_loan(tx, spec.payload, out, side);
    if (poll != Poll::ready) return fail_wait(report, poll, tx, "loan pong", expected, side);
    pattern.write(out, sequence);
    tx.publish();
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
