// symphony-demo: the README's main job. One command, three processes:
//
//   host ──creates──> /dev/shm/symphony-demo.<pid> (SPSC ring)
//    ├─ fork+exec ──> consumer (--role consumer): reads frames, checks sequence numbers, records
//    │                now - send stamp per frame, prints one live line a second, and hands its
//    │                totals back through a pipe
//    └─ fork+exec ──> producer (--role producer): writes frames (sequence number, send stamp),
//                     paced at --rate or flat out; on SIGTERM it writes an end frame carrying
//                     how many it sent, so the consumer can count messages lost at the end too
//
// The host waits for Ctrl-C, SIGTERM or --duration, stops the producer, collects the consumer's
// totals, prints the summary line CI parses, and removes the segment. Children die with the host
// (PR_SET_PDEATHSIG) and are killed by it on every exit path, so none is ever left behind.

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include "symphony/engine/latency_histogram.hpp"
#include "symphony/engine/shm_segment.hpp"
#include "symphony/engine/spsc_ring.hpp"
#include "symphony/engine/wait_strategy.hpp"

namespace symphony::demo {
namespace {

using Clock = std::chrono::steady_clock;
using engine::LatencyHistogram;
using engine::RingStatus;
using engine::WaitStrategy;
__extension__ using U128 = unsigned __int128;  // pacing: seq * 1e9 overflows 64 bits

constexpr const char* kProgram = "symphony-demo";
constexpr std::string_view kSegmentPrefix = "symphony-demo.";
// A data frame carries its sequence number and send stamp, so it cannot be shorter.
constexpr std::uint64_t kMinPayload = 16;
// The producer's last frame: this long, carrying how many data frames it sent. Shorter than any
// data frame, so the two cannot be confused.
constexpr std::size_t kEndFrameLength = 8;
// A data frame of 24 bytes or more ends with seq ^ kTailSalt: a torn or misplaced frame shows.
constexpr std::uint64_t kTailSalt = 0x5A5AC3C30F0F9696ULL;
constexpr std::uint64_t kMaxRate = 1'000'000'000;
constexpr std::uint64_t kMinCapacity = 4096;
constexpr std::uint64_t kMaxCapacity = 1ULL << 30;
constexpr auto kStartTimeout = std::chrono::seconds(5);
constexpr auto kStopTimeout = std::chrono::seconds(5);
// Well inside kStopTimeout, so that a producer facing a full ring and a dead consumer gives up
// (and says so) before the host loses patience and kills it.
constexpr auto kEndFrameTimeout = std::chrono::seconds(1);
// How long a waiting child goes without looking at its stop flag.
constexpr auto kPollSlice = std::chrono::milliseconds(50);
// Consumed frames are handed back to the producer at least this often (and whenever we wait).
constexpr std::uint64_t kReleaseEvery = 64;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitRing = 3;  // a child found the ring corrupt or could not finish its stream

enum class Role { host, producer, consumer };

struct Options {
  Role role = Role::host;
  std::optional<double> duration_s;  // none: until Ctrl-C
  std::uint64_t rate = 1'000'000;    // messages per second; 0 = flat out
  std::uint64_t payload = 64;
  std::uint64_t capacity = 1 << 20;
  std::string wait_name = "sleep";
  WaitStrategy wait = WaitStrategy::sleeping();
  bool pin = true;
  bool help = false;
  // Set by the host for its children.
  std::string ring;
  int cpu = -1;
  int result_fd = -1;
  pid_t host_pid = 0;
};

void print_usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: %s [options]\n"
      "\n"
      "Starts a producer and a consumer process that stream messages through a\n"
      "shared-memory SPSC ring. The consumer prints the message rate and one-way latency\n"
      "(send stamp to read) once a second; the host prints a summary line at the end and\n"
      "removes the segment.\n"
      "\n"
      "  --duration S   stop after S seconds (default: run until Ctrl-C)\n"
      "  --rate N       messages per second, spin-paced (default 1000000; k, M, G suffixes\n"
      "                 accepted). 0 = flat out: the ring fills up and the latency shown\n"
      "                 is then mostly time spent queued\n"
      "  --payload B    bytes per message, at least %" PRIu64
      " (default 64)\n"
      "  --capacity B   ring data bytes, a power of two from %" PRIu64
      " (default 1048576)\n"
      "  --wait KIND    how the consumer waits for data, and the producer for space:\n"
      "                 busy | yield | sleep (default sleep: spin, yield, then a futex)\n"
      "  --no-pin       do not pin the producer and the consumer to separate CPUs\n"
      "  -h, --help     print this text\n"
      "\n"
      "Exit status: 0 on success; 1 if a process failed, a message was lost or corrupt,\n"
      "or none arrived; 2 on a bad argument.\n",
      kProgram, kMinPayload, kMinCapacity);
}

// ---- argument parsing -------------------------------------------------------------------------

using ParseResult = tl::expected<Options, std::string>;

// Digits with an optional k / M / G suffix (decimal multipliers).
std::optional<std::uint64_t> parse_count(std::string_view text) {
  std::uint64_t multiplier = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k':
      case 'K':
        multiplier = 1'000;
        break;
      case 'M':
        multiplier = 1'000'000;
        break;
      case 'G':
        multiplier = 1'000'000'000;
        break;
      default:
        break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  if (value > UINT64_MAX / multiplier) return std::nullopt;
  return value * multiplier;
}

// Seconds as a decimal number, with an optional trailing "s".
std::optional<double> parse_seconds(std::string_view text) {
  if (!text.empty() && text.back() == 's') text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  const std::string copy(text);
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(copy.c_str(), &end);
  if (errno != 0 || end != copy.c_str() + copy.size() || !std::isfinite(value) || value <= 0) {
    return std::nullopt;
  }
  return value;
}

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

ParseResult parse_args(int argc, char** argv) {
  Options o;
  auto bad = [](std::string_view option, std::string_view value, std::string_view want) {
    return tl::unexpected("option " + std::string(option) + ": '" + std::string(value) +
                          "' is not " + std::string(want));
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      o.help = true;
      continue;
    }
    if (arg == "--no-pin") {
      o.pin = false;
      continue;
    }
    std::string_view name = arg;
    std::string_view value;
    bool has_value = false;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    static constexpr std::string_view kValued[] = {
        "--duration", "--rate", "--payload", "--capacity",  "--wait",
        "--role",     "--ring", "--cpu",     "--result-fd", "--host-pid"};
    if (std::find(std::begin(kValued), std::end(kValued), name) == std::end(kValued)) {
      return tl::unexpected("unknown option '" + std::string(arg) + "'");
    }
    if (!has_value) {
      if (i + 1 >= argc) return tl::unexpected("option " + std::string(name) + " needs a value");
      value = argv[++i];
    }
    if (name == "--duration") {
      o.duration_s = parse_seconds(value);
      if (!o.duration_s || *o.duration_s > 1e7) {
        return bad(name, value, "a number of seconds above 0 (e.g. 5 or 0.5)");
      }
    } else if (name == "--rate") {
      const auto rate = parse_count(value);
      if (!rate || *rate > kMaxRate) return bad(name, value, "a message rate from 0 to 1G");
      o.rate = *rate;
    } else if (name == "--payload") {
      const auto payload = parse_count(value);
      if (!payload || *payload < kMinPayload) {
        return bad(name, value, "a byte count of at least " + std::to_string(kMinPayload));
      }
      o.payload = *payload;
    } else if (name == "--capacity") {
      const auto capacity = parse_count(value);
      if (!capacity || !layouts::is_power_of_two(*capacity) || *capacity < kMinCapacity ||
          *capacity > kMaxCapacity) {
        return bad(name, value, "a power of two from 4096 to 1073741824");
      }
      o.capacity = *capacity;
    } else if (name == "--wait") {
      if (value == "busy") {
        // Not WaitStrategy::busy(): with no spin phase it polls only every 64 pauses plus a
        // clock read (a microsecond or more), which triples the median latency here. Polling
        // after every pause, and checking the deadline every 2^16 polls (~1-2 ms), is what a
        // busy-spinning consumer wants.
        o.wait = WaitStrategy{engine::WaitKind::busy_spin, 1U << 16, 0};
      } else if (value == "yield") {
        o.wait = WaitStrategy::yielding();
      } else if (value == "sleep") {
        o.wait = WaitStrategy::sleeping();
      } else {
        return bad(name, value, "busy, yield or sleep");
      }
      o.wait_name = value;
    } else if (name == "--role") {
      if (value == "producer") {
        o.role = Role::producer;
      } else if (value == "consumer") {
        o.role = Role::consumer;
      } else {
        return bad(name, value, "producer or consumer");
      }
    } else if (name == "--ring") {
      o.ring = value;
    } else if (name == "--cpu") {
      const auto cpu = parse_int(value);
      if (!cpu) return bad(name, value, "a CPU number");
      o.cpu = *cpu;
    } else if (name == "--result-fd") {
      const auto fd = parse_int(value);
      if (!fd || *fd < 0) return bad(name, value, "a file descriptor");
      o.result_fd = *fd;
    } else if (name == "--host-pid") {
      const auto pid = parse_int(value);
      if (!pid || *pid <= 0) return bad(name, value, "a pid");
      o.host_pid = *pid;
    }
  }
  const std::uint64_t largest = layouts::spsc_max_payload_for(o.capacity);
  if (o.payload > largest) {
    return tl::unexpected("option --payload: " + std::to_string(o.payload) +
                          " bytes do not fit a ring of " + std::to_string(o.capacity) +
                          " bytes (at most " + std::to_string(largest) + "); raise --capacity");
  }
  if (o.role != Role::host && (o.ring.empty() || o.host_pid == 0)) {
    return tl::unexpected(
        std::string("--role is for the demo's own children: it needs --ring and --host-pid"));
  }
  if (o.role == Role::consumer && o.result_fd < 0) {
    return tl::unexpected(std::string("--role consumer needs --result-fd"));
  }
  return o;
}

// ---- small helpers ----------------------------------------------------------------------------

std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

// Three significant digits and a unit: "850 ns", "2.14 us", "15.0 us", "1.20 ms".
std::string format_ns(std::uint64_t ns) {
  char text[32];
  if (ns < 1000) {
    std::snprintf(text, sizeof text, "%" PRIu64 " ns", ns);
    return text;
  }
  const double value = static_cast<double>(ns);
  const char* unit = "us";
  double scaled = value / 1e3;
  if (value >= 1e9) {
    unit = "s";
    scaled = value / 1e9;
  } else if (value >= 1e6) {
    unit = "ms";
    scaled = value / 1e6;
  }
  const int decimals = scaled < 10 ? 2 : scaled < 100 ? 1 : 0;
  std::snprintf(text, sizeof text, "%.*f %s", decimals, scaled, unit);
  return text;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           ::strsignal(WTERMSIG(status)) + ")";
  }
  return "stopped with wait status " + std::to_string(status);
}

bool write_all(int fd, std::string_view text) noexcept {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Page faults on the ring's first lap would otherwise show up as latency outliers. Page tables
// are per process, so each process populates its own mapping; failure (old kernel) is harmless.
void prefault(engine::ShmSegment& segment) noexcept {
#ifdef MADV_POPULATE_WRITE
  (void)::madvise(segment.base(), segment.size(), MADV_POPULATE_WRITE);
#else
  (void)segment;
#endif
}

void pin_to_cpu(int cpu, const char* role) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<std::size_t>(cpu), &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    std::fprintf(stderr, "%s %s: warning: cannot pin to CPU %d: %s\n", kProgram, role, cpu,
                 std::strerror(errno));
  }
}

// ---- children: stop flag ----------------------------------------------------------------------

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the stop flag is set from a signal handler");

void on_stop_signal(int /*signal*/) {
  g_stop.store(true, std::memory_order_relaxed);
}

bool stop_requested() noexcept {
  return g_stop.load(std::memory_order_relaxed);
}

// The host starts each child with SIGTERM blocked and SIGINT ignored: a SIGTERM sent before this
// runs stays pending instead of killing the child, and Ctrl-C (which the terminal sends to the
// whole process group) reaches the host alone, which then stops the children in order.
void install_child_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a host gone mid-report must not kill the consumer
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ::sigprocmask(SIG_UNBLOCK, &term, nullptr);
}

// ---- producer ---------------------------------------------------------------------------------

// Sleeps through long gaps (low rates) and spins through the rest: a sleep wakes up tens of
// microseconds late, a spin on the clock within tens of nanoseconds.
bool pace_until(std::uint64_t due_ns) noexcept {
  constexpr std::uint64_t kSpinWindowNs = 200'000;
  for (;;) {
    const std::uint64_t now = now_ns();
    if (now >= due_ns) return true;
    if (stop_requested()) return false;
    if (due_ns - now > kSpinWindowNs) {
      const std::uint64_t nap = due_ns - now - kSpinWindowNs / 2;
      timespec ts{static_cast<std::time_t>(nap / 1'000'000'000),
                  static_cast<long>(nap % 1'000'000'000)};
      ::nanosleep(&ts, nullptr);
    } else {
      engine::cpu_relax();
    }
  }
}

void fill_frame(std::span<std::byte> bytes, std::uint64_t seq) noexcept {
  std::byte* p = bytes.data();
  const std::size_t size = bytes.size();
  std::memcpy(p, &seq, sizeof seq);
  const std::size_t tail = size >= 24 ? 8 : 0;
  // The filler makes the producer pay for writing a whole message, as a real one would.
  std::memset(p + 16, static_cast<int>(seq & 0xff), size - 16 - tail);
  if (tail != 0) {
    const std::uint64_t check = seq ^ kTailSalt;
    std::memcpy(p + size - 8, &check, sizeof check);
  }
}

int run_producer(const Options& o) {
  install_child_signals();
  if (::getppid() != o.host_pid) return kExitFailed;  // the host is already gone
  pin_to_cpu(o.cpu, "producer");
  auto ring = engine::SpscRing::open(o.ring);
  if (!ring) {
    std::fprintf(stderr, "%s producer: cannot open ring '%s': %s\n", kProgram, o.ring.c_str(),
                 ring.error().message.c_str());
    return kExitFailed;
  }
  prefault(ring->segment());
  auto producer = engine::SpscProducer::attach(*ring);
  if (!producer) {
    std::fprintf(stderr, "%s producer: cannot attach to ring '%s': %s\n", kProgram, o.ring.c_str(),
                 producer.error().message.c_str());
    return kExitFailed;
  }
  const std::size_t payload = o.payload;
  const std::uint64_t start = now_ns();
  std::uint64_t seq = 0;
  while (!stop_requested()) {
    if (o.rate != 0) {
      // Paced against the start time, not the previous send: a late send is followed by
      // catch-up sends, so the average rate is exactly --rate.
      const auto offset = static_cast<std::uint64_t>(U128{seq} * 1'000'000'000u / o.rate);
      if (!pace_until(start + offset)) break;
    }
    engine::Loan loan = producer->try_loan(payload);
    while (loan.would_block() && !stop_requested()) {
      loan = producer->loan(payload, o.wait, Clock::now() + kPollSlice);
    }
    if (loan.would_block()) break;  // stopped while the ring was full
    if (!loan.ok()) {
      std::fprintf(stderr, "%s producer: the ring refused frame %" PRIu64 ": %s\n", kProgram, seq,
                   engine::to_string(loan.status));
      return kExitRing;
    }
    fill_frame(loan.bytes(), seq);
    // Stamped last, right before publish: the latency is the ring's, not the fill's.
    const std::uint64_t stamp = now_ns();
    std::memcpy(loan.bytes().data() + 8, &stamp, sizeof stamp);
    producer->publish();
    ++seq;
  }
  // The end frame tells the consumer how many were sent, so loss at the very end shows too.
  const engine::Loan end = producer->loan(kEndFrameLength, o.wait, Clock::now() + kEndFrameTimeout);
  if (!end.ok()) {
    std::fprintf(stderr, "%s producer: cannot write the end frame: ring %s\n", kProgram,
                 engine::to_string(end.status));
    return kExitRing;
  }
  std::memcpy(end.bytes().data(), &seq, sizeof seq);
  producer->publish();
  return kExitOk;
}

// ---- consumer ---------------------------------------------------------------------------------

struct StreamCheck {
  std::uint64_t received = 0;
  std::uint64_t lost = 0;     // sequence numbers skipped
  std::uint64_t corrupt = 0;  // bad length or tail, duplicated or reordered sequence numbers
  std::uint64_t next_seq = 0;
  std::uint64_t first_stamp_ns = 0;  // send time of the first message
  std::uint64_t last_ns = 0;         // arrival of the last
  bool ended = false;
  std::uint64_t producer_sent = 0;
};

// Checks one frame (copied out of shared memory first: the peer could still change it) and
// records its latency.
void consume_frame(std::span<const std::byte> bytes, std::uint64_t now, std::uint64_t payload,
                   StreamCheck& check, LatencyHistogram& latency) noexcept {
  if (bytes.size() == kEndFrameLength) {
    std::memcpy(&check.producer_sent, bytes.data(), sizeof check.producer_sent);
    check.ended = true;
    return;
  }
  if (bytes.size() != payload) {
    ++check.corrupt;
    return;
  }
  std::uint64_t seq = 0;
  std::uint64_t stamp = 0;
  std::memcpy(&seq, bytes.data(), sizeof seq);
  std::memcpy(&stamp, bytes.data() + 8, sizeof stamp);
  if (bytes.size() >= 24) {
    std::uint64_t tail = 0;
    std::memcpy(&tail, bytes.data() + bytes.size() - 8, sizeof tail);
    if (tail != (seq ^ kTailSalt)) {
      ++check.corrupt;
      return;
    }
  }
  if (seq == check.next_seq) {
    ++check.next_seq;
  } else if (seq > check.next_seq) {
    check.lost += seq - check.next_seq;
    check.next_seq = seq + 1;
  } else {
    ++check.corrupt;  // a duplicate or a reordering: the ring promises neither
    return;
  }
  // CLOCK_MONOTONIC is one clock for all processes; the guard only protects against a stamp
  // from a frame the checks above could not catch.
  latency.record(now > stamp ? now - stamp : 0);
  if (check.received == 0) check.first_stamp_ns = stamp;
  check.last_ns = now;
  ++check.received;
}

void print_live_line(std::uint64_t second, std::uint64_t interval_ns,
                     const LatencyHistogram& interval, const StreamCheck& check) {
  const engine::LatencySummary s = interval.summarize();
  const double rate = interval_ns == 0
                          ? 0.0
                          : static_cast<double>(s.count) * 1e9 / static_cast<double>(interval_ns);
  char head[64];
  std::snprintf(head, sizeof head, "[%3" PRIu64 "s] %.0f msgs/s", second, rate);
  std::string line = head;
  if (s.count != 0) {
    line += "  p50 " + format_ns(s.p50) + "  p99 " + format_ns(s.p99) + "  p99.9 " +
            format_ns(s.p999) + "  max " + format_ns(s.max);
  }
  line += "  lost " + std::to_string(check.lost);
  if (check.corrupt != 0) line += "  corrupt " + std::to_string(check.corrupt);
  line += '\n';
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

int run_consumer(const Options& o) {
  install_child_signals();
  if (::getppid() != o.host_pid) return kExitFailed;
  pin_to_cpu(o.cpu, "consumer");
  auto ring = engine::SpscRing::open(o.ring);
  if (!ring) {
    std::fprintf(stderr, "%s consumer: cannot open ring '%s': %s\n", kProgram, o.ring.c_str(),
                 ring.error().message.c_str());
    return kExitFailed;
  }
  prefault(ring->segment());
  auto consumer = engine::SpscConsumer::attach(*ring);
  if (!consumer) {
    std::fprintf(stderr, "%s consumer: cannot attach to ring '%s': %s\n", kProgram, o.ring.c_str(),
                 consumer.error().message.c_str());
    return kExitFailed;
  }
  if (!write_all(o.result_fd, "ready\n")) return kExitFailed;

  LatencyHistogram interval;
  LatencyHistogram total;
  StreamCheck check;
  bool ring_corrupt = false;
  std::uint64_t unreleased = 0;
  std::uint64_t second = 0;
  std::uint64_t interval_start = 0;
  std::uint64_t next_report = UINT64_MAX;  // the clock starts with the first message
  for (;;) {
    engine::Frame frame = consumer->try_read();
    if (frame.would_block()) {
      consumer->release();
      unreleased = 0;
      if (stop_requested()) break;  // drained
      const auto report_at = Clock::time_point(
          std::chrono::nanoseconds(std::min<std::uint64_t>(next_report, INT64_MAX)));
      frame = consumer->read(o.wait, std::min(report_at, Clock::now() + kPollSlice));
    }
    const std::uint64_t now = now_ns();
    if (frame.ok()) {
      consume_frame(frame.bytes(), now, o.payload, check, interval);
      if (++unreleased == kReleaseEvery) {
        consumer->release();
        unreleased = 0;
      }
      if (check.ended) break;
      if (next_report == UINT64_MAX && check.received != 0) {
        // Seconds count from the first send, not its arrival: a slow first wake-up (a cold
        // consumer asleep on the futex) would otherwise shorten the first interval.
        interval_start = std::min(check.first_stamp_ns, now);
        next_report = interval_start + 1'000'000'000;
      }
    } else if (!frame.would_block()) {
      std::fprintf(stderr, "%s consumer: the ring reports %s after %" PRIu64 " messages\n",
                   kProgram, engine::to_string(frame.status), check.received);
      ring_corrupt = true;
      break;
    }
    if (now >= next_report) {
      print_live_line(++second, now - interval_start, interval, check);
      total.merge(interval);
      interval.reset();
      interval_start = now;
      // Keep to whole seconds since the first message, even after a late wake-up.
      while (next_report <= now) next_report += 1'000'000'000;
    }
  }
  consumer->release();
  total.merge(interval);
  if (check.ended && check.producer_sent > check.next_seq) {
    check.lost += check.producer_sent - check.next_seq;
  }
  const engine::LatencySummary s = total.summarize();
  char result[512];
  std::snprintf(
      result, sizeof result,
      "result %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
      " %" PRIu64 " %.1f %d %" PRIu64 " %" PRIu64 "\n",
      check.received, check.lost, check.corrupt,
      check.received == 0 ? 0 : check.last_ns - std::min(check.first_stamp_ns, check.last_ns),
      s.p50, s.p99, s.p999, s.max, s.mean, check.ended ? 1 : 0, check.producer_sent,
      consumer->wait_stats().sleeps);
  if (!write_all(o.result_fd, result)) return kExitFailed;
  return ring_corrupt ? kExitRing : kExitOk;
}

struct ConsumerResult {
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t corrupt = 0;
  std::uint64_t span_ns = 0;  // first send to last arrival
  std::uint64_t p50 = 0;
  std::uint64_t p99 = 0;
  std::uint64_t p999 = 0;
  std::uint64_t max = 0;
  double mean = 0;
  int ended = 0;
  std::uint64_t producer_sent = 0;
  std::uint64_t sleeps = 0;
};

std::optional<ConsumerResult> parse_result(const std::string& line) {
  ConsumerResult r;
  const int fields = std::sscanf(line.c_str(),
                                 "result %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                                 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %lf %d %" SCNu64 " %" SCNu64,
                                 &r.received, &r.lost, &r.corrupt, &r.span_ns, &r.p50, &r.p99,
                                 &r.p999, &r.max, &r.mean, &r.ended, &r.producer_sent, &r.sleeps);
  if (fields != 12) return std::nullopt;
  return r;
}

// ---- host -------------------------------------------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  ~Fd() { close(); }
  int get() const noexcept { return fd_; }
  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// A child process that is never left behind: the destructor kills and reaps it if it still runs.
class Child {
 public:
  Child() = default;
  Child(Child&& other) noexcept
      : name_(std::move(other.name_)),
        pid_(std::exchange(other.pid_, 0)),
        status_(other.status_),
        reaped_(other.reaped_) {}
  Child& operator=(Child&&) = delete;
  ~Child() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // fork + exec of this same binary with `args`; `keep_fd` survives the exec.
  static tl::expected<Child, std::string> spawn(std::string name,
                                                const std::vector<std::string>& args, int keep_fd) {
    // Everything the child needs is prepared before fork: between fork and exec only
    // async-signal-safe calls are allowed.
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t host = ::getpid();
    sigset_t term_only;
    sigemptyset(&term_only);
    sigaddset(&term_only, SIGTERM);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    std::fflush(nullptr);  // or buffered output would be written twice

    const pid_t pid = ::fork();
    if (pid < 0) return tl::unexpected("fork: " + std::string(std::strerror(errno)));
    if (pid == 0) {
      // Die with the host, even by SIGKILL; if it is already gone, do not start at all.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != host) ::_exit(kExitFailed);
      ::sigaction(SIGINT, &ignore, nullptr);
      ::sigprocmask(SIG_SETMASK, &term_only, nullptr);
      if (keep_fd >= 0) ::fcntl(keep_fd, F_SETFD, 0);
      ::execv("/proc/self/exe", argv.data());
      ::_exit(127);
    }
    Child child;
    child.name_ = std::move(name);
    child.pid_ = pid;
    return child;
  }

  const std::string& name() const noexcept { return name_; }
  pid_t pid() const noexcept { return pid_; }
  bool running() const noexcept { return pid_ > 0 && !reaped_; }
  bool succeeded() const noexcept {
    return reaped_ && WIFEXITED(status_) && WEXITSTATUS(status_) == kExitOk;
  }
  std::string describe() const {
    return name_ + " (pid " + std::to_string(pid_) + ") " + describe_status(status_);
  }

  // Reaps the child if it has exited. True once it has.
  bool poll_exit() noexcept {
    if (!running()) return reaped_;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = status;
      reaped_ = true;
    }
    return reaped_;
  }
  void signal(int sig) noexcept {
    if (running()) ::kill(pid_, sig);
  }

 private:
  std::string name_;
  pid_t pid_ = 0;
  int status_ = 0;
  bool reaped_ = false;
};

// SIGINT, SIGTERM and SIGCHLD are blocked and read from a signalfd, so the host waits on one poll
// with no async handler, and a signal between a check and the wait is never missed.
class HostEvents {
 public:
  enum class Event { timeout, interrupt, child, readable };

  static tl::expected<HostEvents, std::string> create() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) {
      return tl::unexpected("sigprocmask: " + std::string(std::strerror(errno)));
    }
    const int fd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) return tl::unexpected("signalfd: " + std::string(std::strerror(errno)));
    ::signal(SIGPIPE, SIG_IGN);
    return HostEvents(fd);
  }

  // Waits until `deadline`, a signal, or `fd` (if >= 0) is readable or closed.
  Event wait(Clock::time_point deadline, int fd = -1) {
    for (;;) {
      pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {fd, POLLIN, 0}};
      const auto now = Clock::now();
      if (now >= deadline) return Event::timeout;
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
      const int timeout_ms = static_cast<int>(std::min<std::int64_t>(left, 60'000));
      const int n = ::poll(fds, fd >= 0 ? 2 : 1, timeout_ms);
      if (n < 0 && errno != EINTR) return Event::timeout;
      if (n <= 0) continue;
      if ((fds[0].revents & POLLIN) != 0) {
        Event event = Event::child;
        signalfd_siginfo info{};
        while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
          if (info.ssi_signo == SIGINT || info.ssi_signo == SIGTERM) {
            ++interrupts_;
            event = Event::interrupt;
          }
        }
        return event;
      }
      if (fd >= 0 && fds[1].revents != 0) return Event::readable;
    }
  }
  int interrupts() const noexcept { return interrupts_; }

 private:
  explicit HostEvents(int fd) noexcept : signal_fd_(fd) {}
  Fd signal_fd_;
  int interrupts_ = 0;
};

// Collects '\n'-terminated lines from the consumer's result pipe.
class LineReader {
 public:
  explicit LineReader(int fd) noexcept : fd_(fd) {}
  int fd() const noexcept { return eof_ ? -1 : fd_; }
  bool eof() const noexcept { return eof_; }
  // Reads what is there (after poll said readable); false at end of file or on error.
  bool read_some() {
    char chunk[512];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) return true;
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  std::optional<std::string> next_line() {
    const auto newline = buffer_.find('\n');
    if (newline == std::string::npos) return std::nullopt;
    std::string line = buffer_.substr(0, newline);
    buffer_.erase(0, newline + 1);
    return line;
  }

 private:
  int fd_;
  std::string buffer_;
  bool eof_ = false;
};

// Removes demo segments whose host died without cleaning up (SIGKILL, power loss). A name
// whose pid still runs is left alone; for the rest, ShmSegment::create decides with the engine's
// own ownership test (flock + creator identity), and our temporary owner unlinks the name.
void sweep_stale_segments() {
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return;
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name.starts_with(kSegmentPrefix)) names.emplace_back(name);
  }
  ::closedir(dir);
  for (const auto& name : names) {
    const auto pid = parse_int(std::string_view(name).substr(kSegmentPrefix.size()));
    if (!pid || *pid <= 0 || *pid == ::getpid()) continue;
    if (::kill(*pid, 0) == 0 || errno == EPERM) continue;
    auto stale = engine::ShmSegment::create(name, layouts::SegmentKind::spsc_ring,
                                            layouts::spsc_body_size(layouts::kSpscMinCapacity));
    if (stale)
      std::printf("demo: removed stale segment /dev/shm/%s (its host is gone)\n", name.c_str());
  }
}

struct CpuPlan {
  int producer = -1;
  int consumer = -1;
};

CpuPlan plan_cpus(bool pin) {
  if (!pin) return {};
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return {};
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  if (cpus.size() < 2) return {};  // one CPU: pinning both to it would only hurt
  return {cpus[0], cpus[1]};
}

std::vector<std::string> child_args(const char* argv0, const Options& o, const char* role,
                                    const std::string& ring, int cpu, int result_fd) {
  std::vector<std::string> args{argv0,
                                "--role",
                                role,
                                "--ring",
                                ring,
                                "--payload",
                                std::to_string(o.payload),
                                "--rate",
                                std::to_string(o.rate),
                                "--capacity",
                                std::to_string(o.capacity),
                                "--wait",
                                o.wait_name,
                                "--cpu",
                                std::to_string(cpu),
                                "--host-pid",
                                std::to_string(::getpid())};
  if (result_fd >= 0) {
    args.emplace_back("--result-fd");
    args.push_back(std::to_string(result_fd));
  }
  return args;
}

// What one run of the host produced; the segment is already gone when this is returned.
struct Session {
  std::optional<ConsumerResult> result;
  std::vector<std::string> failures;
};

// Waits up to `timeout` for `child` to exit, then kills it. Returns false if it had to be killed.
bool reap_within(Child& child, HostEvents& events, Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!child.poll_exit()) {
    if (Clock::now() >= deadline || events.interrupts() >= 2) {
      child.signal(SIGKILL);
      while (!child.poll_exit()) events.wait(Clock::now() + std::chrono::milliseconds(10));
      return false;
    }
    // A short slice: a SIGCHLD consumed by an earlier wait must not make us sleep the timeout.
    events.wait(std::min(deadline, Clock::now() + std::chrono::milliseconds(20)));
  }
  return true;
}

Session run_session(const char* argv0, const Options& o, HostEvents& events,
                    const std::string& name) {
  Session session;
  auto fail = [&session](std::string why) { session.failures.push_back(std::move(why)); };

  engine::SpscRingOptions ring_options;
  ring_options.capacity = o.capacity;
  auto ring = engine::SpscRing::create(name, ring_options);
  if (!ring) {
    fail("cannot create ring '" + name + "': " + ring.error().message);
    return session;
  }
  const CpuPlan cpus = plan_cpus(o.pin);
  char rate_text[64];
  if (o.rate == 0) {
    std::snprintf(rate_text, sizeof rate_text, "flat out (latency includes queueing)");
  } else {
    std::snprintf(rate_text, sizeof rate_text, "%" PRIu64 " msgs/s", o.rate);
  }
  std::string pinning = cpus.producer < 0
                            ? std::string("not pinned")
                            : "producer on CPU " + std::to_string(cpus.producer) +
                                  ", consumer on CPU " + std::to_string(cpus.consumer);
  std::printf(
      "demo: ring /dev/shm/%s (%" PRIu64 " KiB), payload %" PRIu64 " B, rate %s, wait %s, %s\n",
      name.c_str(), o.capacity / 1024, o.payload, rate_text, o.wait_name.c_str(), pinning.c_str());
  std::printf(
      "demo: %s; Ctrl-C stops\n",
      o.duration_s
          ? ("running for " + format_ns(static_cast<std::uint64_t>(*o.duration_s * 1e9))).c_str()
          : "running until stopped");

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    fail("pipe: " + std::string(std::strerror(errno)));
    return session;
  }
  Fd result_read(pipe_fds[0]);
  Fd result_write(pipe_fds[1]);
  LineReader reader(result_read.get());

  auto consumer_spawn = Child::spawn(
      "consumer", child_args(argv0, o, "consumer", name, cpus.consumer, result_write.get()),
      result_write.get());
  if (!consumer_spawn) {
    fail("cannot start the consumer: " + consumer_spawn.error());
    return session;
  }
  Child consumer = std::move(*consumer_spawn);
  result_write.close();  // so that the consumer's exit reads as end of file

  std::optional<std::string> result_line;
  // Reads whatever the consumer sent; true when its result (or end of file) has arrived.
  auto drain_reader = [&]() {
    if (!reader.read_some()) return true;
    while (auto line = reader.next_line()) {
      if (line->starts_with("result ")) result_line = std::move(line);
    }
    return result_line.has_value();
  };

  // 1. The consumer attaches first, so the producer never runs ahead into an unread ring.
  bool ready = false;
  const auto ready_deadline = Clock::now() + kStartTimeout;
  while (!ready) {
    const auto event = events.wait(ready_deadline, reader.fd());
    if (event == HostEvents::Event::readable) {
      if (!reader.read_some()) break;
      while (auto line = reader.next_line()) ready = ready || *line == "ready";
    } else if (event == HostEvents::Event::timeout || event == HostEvents::Event::interrupt) {
      break;
    } else if (consumer.poll_exit()) {
      break;
    }
  }
  if (!ready) {
    if (events.interrupts() > 0) {
      fail("interrupted before the consumer was ready");
    } else if (consumer.poll_exit()) {
      fail(consumer.describe() + " before it was ready");
    } else {
      fail("the consumer was not ready within " +
           std::to_string(std::chrono::seconds(kStartTimeout).count()) + " s");
    }
    consumer.signal(SIGTERM);
    reap_within(consumer, events, kStopTimeout);
    return session;
  }

  auto producer_spawn =
      Child::spawn("producer", child_args(argv0, o, "producer", name, cpus.producer, -1), -1);
  if (!producer_spawn) {
    fail("cannot start the producer: " + producer_spawn.error());
    consumer.signal(SIGTERM);
    reap_within(consumer, events, kStopTimeout);
    return session;
  }
  Child producer = std::move(*producer_spawn);

  // 2. Run until the duration passes, a signal arrives, or a child stops by itself.
  const auto started = Clock::now();
  const auto run_deadline = o.duration_s
                                ? started + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(*o.duration_s))
                                : Clock::time_point::max();
  for (bool running = true; running;) {
    switch (events.wait(run_deadline, reader.fd())) {
      case HostEvents::Event::timeout:
      case HostEvents::Event::interrupt:
        running = false;
        break;
      case HostEvents::Event::readable:
        running = !drain_reader() && !reader.eof();
        break;
      case HostEvents::Event::child:
        running = !producer.poll_exit() && !consumer.poll_exit();
        break;
    }
  }
  const double ran_s = std::chrono::duration<double>(Clock::now() - started).count();
  const bool early = producer.poll_exit() || consumer.poll_exit() || reader.eof();
  if (early) fail("a child stopped before it was asked to");

  // 3. Stop the producer; it writes the end frame, which stops the consumer after the last
  // message. Without an end frame coming, the consumer is told to drain and report.
  producer.signal(SIGTERM);
  if (!reap_within(producer, events, kStopTimeout)) fail("the producer did not stop: killed");
  // The end frame reaches a live consumer within microseconds; give it a generous moment, then
  // tell the consumer to drain what is there and report.
  auto await_result = [&](Clock::time_point deadline) {
    while (!result_line && !reader.eof() && events.interrupts() < 2) {
      const auto event = events.wait(deadline, reader.fd());
      if (event == HostEvents::Event::readable) {
        drain_reader();
      } else if (event == HostEvents::Event::timeout) {
        return;
      }
    }
  };
  if (producer.succeeded()) await_result(Clock::now() + kStopTimeout / 2);
  if (!result_line && !reader.eof()) {
    consumer.signal(SIGTERM);
    await_result(Clock::now() + kStopTimeout);
  }
  if (!reap_within(consumer, events, kStopTimeout)) fail("the consumer did not stop: killed");

  if (!producer.succeeded()) fail(producer.describe());
  if (!consumer.succeeded()) fail(consumer.describe());
  if (result_line) {
    session.result = parse_result(*result_line);
    if (!session.result) fail("unreadable consumer result '" + *result_line + "'");
  } else {
    fail("the consumer reported no result");
  }
  if (session.result && producer.succeeded() && session.result->ended == 0) {
    fail("the consumer never saw the producer's end frame");
  }
  std::printf("demo: stopped after %.2f s (%s)\n", ran_s,
              events.interrupts() > 0 ? "signal"
              : early                 ? "a child exited"
                                      : "duration");
  return session;  // children reaped, then the ring unlinks its segment
}

int run_host(const char* argv0, const Options& o) {
  auto events = HostEvents::create();
  if (!events) {
    std::fprintf(stderr, "%s: %s\n", kProgram, events.error().c_str());
    return kExitFailed;
  }
  sweep_stale_segments();
  const std::string name = std::string(kSegmentPrefix) + std::to_string(::getpid());
  Session session = run_session(argv0, o, *events, name);

  if (engine::ShmSegment::exists(name)) {
    session.failures.push_back("segment /dev/shm/" + name + " was left behind: removed it");
    (void)engine::ShmSegment::unlink(name);
  }
  ConsumerResult r = session.result.value_or(ConsumerResult{});
  const double rate = r.received >= 2 && r.span_ns > 0 ? static_cast<double>(r.received - 1) * 1e9 /
                                                             static_cast<double>(r.span_ns)
                                                       : 0.0;
  if (session.result) {
    std::printf("demo: producer sent %s, consumer received %" PRIu64
                ", mean latency %.0f ns, consumer slept %" PRIu64 " times\n",
                r.ended != 0 ? std::to_string(r.producer_sent).c_str() : "?", r.received, r.mean,
                r.sleeps);
    if (r.lost != 0) session.failures.push_back(std::to_string(r.lost) + " messages lost");
    if (r.corrupt != 0) {
      session.failures.push_back(std::to_string(r.corrupt) + " messages corrupt");
    }
    if (rate <= 0) session.failures.push_back("no messages arrived");
  }
  std::printf("demo: total %" PRIu64 " messages, %.0f msgs/s, p50 %" PRIu64 " ns, p99 %" PRIu64
              " ns, p99.9 %" PRIu64 " ns, max %" PRIu64 " ns, lost %" PRIu64 ", corrupt %" PRIu64
              "\n",
              r.received, rate, r.p50, r.p99, r.p999, r.max, r.lost, r.corrupt);
  std::fflush(stdout);
  for (const auto& why : session.failures)
    std::fprintf(stderr, "%s: FAILED: %s\n", kProgram, why.c_str());
  return session.failures.empty() ? kExitOk : kExitFailed;
}

}  // namespace
}  // namespace symphony::demo

int main(int argc, char** argv) {
  using namespace symphony::demo;
  auto options = parse_args(argc, argv);
  if (!options) {
    std::fprintf(stderr, "%s: %s (try --help)\n", kProgram, options.error().c_str());
    return kExitUsage;
  }
  if (options->help) {
    print_usage(stdout);
    return kExitOk;
  }
  try {
    switch (options->role) {
      case Role::producer:
        return run_producer(*options);
      case Role::consumer:
        return run_consumer(*options);
      case Role::host:
        break;
    }
    return run_host(argv[0], *options);
  } catch (const std::exception& e) {
    // Only set-up can throw (allocation); report it once, here at the boundary.
    std::fprintf(stderr, "%s: %s\n", kProgram, e.what());
    return kExitFailed;
  }
}
