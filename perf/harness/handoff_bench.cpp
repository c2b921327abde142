// symphony-handoff-bench: large payloads by reference (controlplane's handoff) against the same
// payload sent as one ZeroMQ message, between two processes pinned to two cores, in one run.
//
//   sender (core A)                                    receiver (core B)
//   allocate + write a fresh memfd ... not timed as handoff ("write")
//   xxh3 of it ("xxh3"), seal ("seal")
//   t0 ─ descriptor JSON ─ DEALER ──ipc://──> ROUTER ─ parse, HandoffReceiver::open ─ t1
//        handoff:        open without verifying: the mapping is established, nothing read
//        handoff+xxh3:   open verifying the checksum (every byte read through a fresh mapping)
//        fresh read:     a second fresh mapping of the same payload, every byte read (baseline)
//   t0 ─ the same bytes as one zmq message ─> recv ─ t1        ("zmq-ipc")
//
// t0 and t1 are CLOCK_MONOTONIC (steady_clock) in two processes: one clock for the machine. For
// each size, every repeat's payload is written and sealed first ("already written"), the machine
// settles (--settle), and then each is handed off after a few small zmq round trips (--warm) that
// make sure neither side starts from a sleeping core, as in a busy control plane. The handoff and
// handoff+xxh3 phases alternate their order every repeat, so that neither always runs on caches
// the other warmed. Each cell is the median of the repeats.
//
// This is a separate binary rather than a symphony-perf transport: the harness's loops time a
// stream of messages of at most 16 MiB, each written and read in full, while the handoff's target
// is one 64 MiB+ payload already written, whose receiver's mapping is established but not read,
// compared with a fresh mapping of the same bytes in the same run.

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "symphony/controlplane/handoff.hpp"
#include "symphony/engine/runtime_dir.hpp"

namespace {

namespace cp = symphony::controlplane;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxSizes = 16;
constexpr std::size_t kMaxRepeats = 64;
constexpr const char* kBus = "handoff-bench";

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

struct Sample {
  std::uint64_t write_ns;       // allocate a fresh memfd and write every byte (sender)
  std::uint64_t checksum_ns;    // xxh3 of the written payload (sender, warm)
  std::uint64_t seal_ns;        // unmap the writer, add the seals (sender)
  std::uint64_t handoff_ns;     // t0 (sealed) -> receiver holds an unverified mapping
  std::uint64_t descriptor_ns;  //   of which: t0 -> the descriptor is received and parsed
  std::uint64_t open_ns;        //   of which: HandoffReceiver::open (fetch, checks, mmap)
  std::uint64_t steady_ns;      // median handoff of the same payload, back to back (--steady)
  std::uint64_t steady_runs[64];  // the back-to-back handoffs (receiver)
  std::uint64_t verify_ns;      // t0 (sealed) -> receiver holds a verified mapping
  std::uint64_t fresh_read_ns;  // read every byte of a fresh mapping (receiver)
  std::uint64_t zmq_ns;         // t0 -> the receiver has the zmq message
  std::uint64_t zmq_t0;         // the sender's t0 for the zmq phase
  std::uint64_t folded;         // what the fresh read summed (so it cannot be optimised away)
};

// Shared with both children (MAP_SHARED | MAP_ANONYMOUS, made before fork).
struct Shared {
  Sample samples[kMaxSizes][kMaxRepeats];
  std::uint64_t reclaimed;
  std::uint64_t sealed;
  char error[2][512];
};

struct Options {
  std::vector<std::uint64_t> sizes{1ULL << 20, 16ULL << 20, 64ULL << 20, 256ULL << 20};
  unsigned repeats = 7;
  std::optional<std::array<int, 2>> cores;
  double timeout_seconds = 120;
  double settle_ms = 1000;  // after writing a size's payloads, before handing them off
  bool busy = true;
  unsigned warm_round_trips = 3;
  unsigned steady = 15;  // back-to-back handoffs of each payload (at most 64)  // small zmq round trips right before each handoff  // wait for messages by polling (and yielding), not by sleeping
};

// Receives one message. Busy: polls with ZMQ_DONTWAIT and yields the core between polls (so
// that a thread woken on it, such as the owner's sym-handoff thread, runs at once), as
// symphony-perf's busy mode does; blocking: sleeps in libzmq. False after `timeout`.
bool receive(zmq::socket_t& socket, zmq::message_t& message, bool busy,
             std::chrono::duration<double> timeout) {
  if (!busy) return socket.recv(message).has_value();
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
  for (std::uint32_t polls = 0;; ++polls) {
    if (socket.recv(message, zmq::recv_flags::dontwait)) return true;
    if ((polls & 1023) == 0 && std::chrono::steady_clock::now() > deadline) return false;
    ::sched_yield();
  }
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t multiplier = 1;
  if (text.ends_with("iB")) text.remove_suffix(2);
  if (text.ends_with("B")) text.remove_suffix(1);
  if (!text.empty()) {
    switch (text.back()) {
      case 'K': case 'k': multiplier = 1ULL << 10; break;
      case 'M': case 'm': multiplier = 1ULL << 20; break;
      case 'G': case 'g': multiplier = 1ULL << 30; break;
      default: break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value == 0 ||
      value > (64ULL << 30) / multiplier) {
    return std::nullopt;
  }
  return value * multiplier;
}

std::string format_size(std::uint64_t bytes) {
  if (bytes >= (1ULL << 30) && bytes % (1ULL << 30) == 0) return std::to_string(bytes >> 30) + " GiB";
  if (bytes >= (1ULL << 20) && bytes % (1ULL << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " B";
}

void print_help() {
  std::printf(
      "usage: symphony-handoff-bench [--sizes 1M,16M,64M,256M] [--repeats 7] [--cores A,B]\n"
      "                              [--mode busy|blocking] [--warm 3] [--settle 1000]\n"
      "                              [--timeout 120]\n"
      "  --mode    busy (default): both sides poll for zmq messages and yield between polls;\n"
      "            blocking: they sleep in libzmq (each hop then wakes a sleeping core)\n"
      "  --warm    small zmq round trips right before each timed phase (default 3)\n"
      "  --settle  ms to wait after writing a size's payloads, before handing them off\n"
      "            (default 1000: the VM's host is still busy with the fresh pages for a while)\n"
      "\n"
      "Hands payloads off between two processes pinned to two cores, and prints one table:\n"
      "  write        sender: allocate a fresh memfd and write every byte (not part of a handoff)\n"
      "  xxh3         sender: XXH3-64 of the written payload (warm)\n"
      "  seal         sender: unmap the writable mapping, add F_SEAL_SHRINK|GROW|WRITE|SEAL\n"
      "  handoff      sealed -> descriptor JSON over a ZeroMQ DEALER/ROUTER (ipc://) -> parse ->\n"
      "               fetch the memfd over the owner's Unix socket -> checks -> read-only mapping\n"
      "               established, nothing read (the issue's target: <= 200 us at 64 MiB, flat)\n"
      "  handoff+xxh3 the same, the receiver verifying the checksum through its fresh mapping\n"
      "  fresh read   the receiver reading every byte of another fresh mapping of the same payload\n"
      "               (the baseline: handoff+xxh3 should reach >= 0.8x its bandwidth)\n"
      "  zmq-ipc      the same bytes as one ZeroMQ message, DEALER -> ROUTER over ipc://\n"
      "Each cell is the median of the repeats; GB/s = size / time (10^9 bytes per second).\n");
}

std::optional<Options> parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> std::optional<std::string_view> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string_view(argv[++i]);
    };
    if (arg == "--help" || arg == "-h") {
      print_help();
      std::exit(0);
    } else if (arg == "--sizes") {
      const auto text = value();
      if (!text) return std::nullopt;
      options.sizes.clear();
      std::string_view rest = *text;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const auto size = parse_size(rest.substr(0, comma));
        if (!size) {
          std::fprintf(stderr, "symphony-handoff-bench: bad size in '%.*s' (1 B to 64 GiB)\n",
                       static_cast<int>(text->size()), text->data());
          return std::nullopt;
        }
        options.sizes.push_back(*size);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
      if (options.sizes.empty() || options.sizes.size() > kMaxSizes) return std::nullopt;
    } else if (arg == "--repeats") {
      const auto text = value();
      unsigned n = 0;
      if (!text || std::from_chars(text->data(), text->data() + text->size(), n).ec != std::errc{} ||
          n == 0 || n > kMaxRepeats) {
        std::fprintf(stderr, "symphony-handoff-bench: --repeats takes 1-%zu\n", kMaxRepeats);
        return std::nullopt;
      }
      options.repeats = n;
    } else if (arg == "--cores") {
      const auto text = value();
      int a = -1, b = -1;
      if (!text || std::sscanf(std::string(*text).c_str(), "%d,%d", &a, &b) != 2 || a < 0 || b < 0) {
        std::fprintf(stderr, "symphony-handoff-bench: --cores takes A,B\n");
        return std::nullopt;
      }
      options.cores = std::array<int, 2>{a, b};
    } else if (arg == "--mode") {
      const auto text = value();
      if (!text || (*text != "busy" && *text != "blocking")) {
        std::fprintf(stderr, "symphony-handoff-bench: --mode takes busy or blocking\n");
        return std::nullopt;
      }
      options.busy = *text == "busy";
    } else if (arg == "--steady") {
      const auto text = value();
      if (!text || std::from_chars(text->data(), text->data() + text->size(), options.steady).ec !=
                       std::errc{} || options.steady > 64) {
        return std::nullopt;
      }
    } else if (arg == "--warm") {
      const auto text = value();
      if (!text || std::from_chars(text->data(), text->data() + text->size(),
                                   options.warm_round_trips).ec != std::errc{}) {
        return std::nullopt;
      }
    } else if (arg == "--settle") {
      const auto text = value();
      if (!text) return std::nullopt;
      options.settle_ms = std::atof(std::string(*text).c_str());
    } else if (arg == "--timeout") {
      const auto text = value();
      if (!text) return std::nullopt;
      options.timeout_seconds = std::atof(std::string(*text).c_str());
      if (!(options.timeout_seconds > 0)) return std::nullopt;
    } else {
      std::fprintf(stderr, "symphony-handoff-bench: unknown option '%s' (--help)\n", argv[i]);
      return std::nullopt;
    }
  }
  return options;
}

std::optional<std::array<int, 2>> choose_cores(const Options& options) {
  if (options.cores) return options.cores;
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return std::nullopt;
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu) {
    if (CPU_ISSET(static_cast<std::size_t>(cpu), &allowed)) cpus.push_back(cpu);
  }
  if (cpus.size() < 2) return std::nullopt;
  return std::array<int, 2>{cpus[0], cpus[1]};
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<std::size_t>(cpu), &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

// Word i = i * odd constant ^ seed: cheap to write, different for every repeat.
void fill(std::span<std::byte> bytes, std::uint64_t seed) {
  const std::size_t words = bytes.size() / 8;
  for (std::size_t i = 0; i < words; ++i) {
    const std::uint64_t w = (i * 0x9e3779b97f4a7c15ULL) ^ seed;
    std::memcpy(bytes.data() + i * 8, &w, 8);
  }
  for (std::size_t i = words * 8; i < bytes.size(); ++i) bytes[i] = std::byte{0x5a};
}

// Reads every 8-byte word (the baseline for a fresh mapping's read bandwidth).
std::uint64_t read_all(std::span<const std::byte> bytes) {
  const std::size_t words = bytes.size() / 8;
  const auto* p = reinterpret_cast<const std::uint64_t*>(static_cast<const void*>(bytes.data()));
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  std::size_t i = 0;
  for (; i + 4 <= words; i += 4) {
    a += p[i];
    b ^= p[i + 1];
    c += p[i + 2];
    d ^= p[i + 3];
  }
  for (; i < words; ++i) a += p[i];
  return a ^ b ^ c ^ d;
}

[[noreturn]] void die(Shared& shared, int side, const std::string& what) {
  std::snprintf(shared.error[side], sizeof shared.error[side], "%s", what.c_str());
  std::fflush(nullptr);
  ::_exit(1);
}

void no_free(void*, void*) noexcept {}

// ---- the sender -------------------------------------------------------------------------------------

void run_sender(const Options& options, const std::string& endpoint, Shared& shared, int cpu) {
  pin(cpu);
  auto owner = cp::HandoffOwner::create(kBus, "bench");
  if (!owner) die(shared, 0, "HandoffOwner::create: " + owner.error().message);
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::routing_id, "sender");
  socket.set(zmq::sockopt::rcvtimeo, static_cast<int>(options.timeout_seconds * 1000));
  socket.connect(endpoint);
  const std::chrono::duration<double> timeout(options.timeout_seconds);
  const auto await_ack = [&](const char* phase) {
    zmq::message_t ack;
    if (!receive(socket, ack, options.busy, timeout)) die(shared, 0, std::string("no answer from the receiver after ") + phase);
    if (ack.to_string_view() != "ok") die(shared, 0, "receiver: " + ack.to_string());
  };

  for (std::size_t s = 0; s < options.sizes.size(); ++s) {
    const std::uint64_t size = options.sizes[s];
    // Every payload of this size is written and sealed first ("already written"), then the
    // machine settles, then they are handed off one by one.
    std::vector<cp::HandoffDescriptor> descriptors;
    for (unsigned r = 0; r < options.repeats; ++r) {
      Sample& sample = shared.samples[s][r];
      std::uint64_t t = now_ns();
      auto writer = owner->allocate(size);
      if (!writer) die(shared, 0, "allocate: " + writer.error().message);
      fill(writer->bytes(), r);
      sample.write_ns = now_ns() - t;
      t = now_ns();
      const std::uint64_t checksum = cp::handoff_checksum(writer->bytes());
      sample.checksum_ns = now_ns() - t;
      t = now_ns();
      auto descriptor = owner->seal(std::move(*writer), {.offset = 0, .length = std::nullopt,
                                                         .checksum = false});
      sample.seal_ns = now_ns() - t;
      if (!descriptor) die(shared, 0, "seal: " + descriptor.error().message);
      descriptor->xxh3 = checksum;
      descriptors.push_back(*descriptor);
    }
    // The zmq sender's payload: written once, warm, sent without a copy on our side.
    std::vector<std::byte> zmq_payload(size);
    fill(zmq_payload, 42);
    if (options.settle_ms > 0) {
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(options.settle_ms));
    }
    for (unsigned r = 0; r < options.repeats; ++r) {
      Sample& sample = shared.samples[s][r];
      const cp::HandoffDescriptor& descriptor = descriptors[r];
      const auto hand_off = [&](char phase) {
        // Small round trips first, so that neither side starts from a sleeping core.
        for (unsigned w = 0; w < options.warm_round_trips; ++w) {
          socket.send(zmq::str_buffer("W"), zmq::send_flags::none);
          await_ack("a warm-up round trip");
        }
        const std::uint64_t t0 = now_ns();
        std::string message(1, phase);
        message += ' ';
        message += std::to_string(s) + ' ' + std::to_string(r) + ' ' + std::to_string(t0) + ' ';
        message += descriptor.to_json();
        socket.send(zmq::buffer(message), zmq::send_flags::none);
        await_ack(phase == 'A' ? "the handoff" : "the verified handoff");
      };
      if (r % 2 == 0) {
        hand_off('A');
        hand_off('B');
      } else {
        hand_off('B');
        hand_off('A');
      }
      // The same payload again, back to back: the handoff itself once caches and cores are warm.
      for (unsigned k = 0; k < options.steady; ++k) {
        const std::uint64_t t0 = now_ns();
        std::string message = "S " + std::to_string(s) + ' ' + std::to_string(r) + ' ' +
                              std::to_string(t0) + ' ' + descriptor.to_json();
        socket.send(zmq::buffer(message), zmq::send_flags::none);
        await_ack("a back-to-back handoff");
      }
      // The same bytes through ZeroMQ.
      for (unsigned w = 0; w < options.warm_round_trips; ++w) {
        socket.send(zmq::str_buffer("W"), zmq::send_flags::none);
        await_ack("a warm-up round trip");
      }
      const std::string header = "C " + std::to_string(s) + ' ' + std::to_string(r);
      std::atomic_ref<std::uint64_t>(sample.zmq_t0).store(now_ns(), std::memory_order_release);
      socket.send(zmq::buffer(header), zmq::send_flags::sndmore);
      zmq::message_t body(zmq_payload.data(), zmq_payload.size(), no_free, nullptr);
      socket.send(body, zmq::send_flags::none);
      await_ack("the zmq message");

      if (auto retired = owner->retire(descriptor.id); !retired) {
        die(shared, 0, "retire: " + retired.error().message);
      }
    }
  }
  socket.send(zmq::str_buffer("Q"), zmq::send_flags::none);
  // Every payload is reclaimed once the receiver's releases have arrived.
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (owner->counters().live != 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  shared.sealed = owner->counters().sealed;
  shared.reclaimed = owner->counters().reclaimed;
}

// ---- the receiver -----------------------------------------------------------------------------------

void run_receiver(const Options& options, const std::string& endpoint, Shared& shared, int cpu) {
  pin(cpu);
  auto receiver = cp::HandoffReceiver::create(kBus);
  if (!receiver) die(shared, 1, "HandoffReceiver::create: " + receiver.error().message);
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::router);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::rcvtimeo, static_cast<int>(options.timeout_seconds * 1000));
  socket.bind(endpoint);
  const std::chrono::duration<double> timeout(options.timeout_seconds);
  for (;;) {
    zmq::message_t identity;
    zmq::message_t head;
    if (!receive(socket, identity, options.busy, timeout) || !socket.recv(head)) {
      die(shared, 1, "no message from the sender");
    }
    const std::string_view text = head.to_string_view();
    if (text == "Q") return;
    if (text == "W") {
      socket.send(identity, zmq::send_flags::sndmore);
      socket.send(zmq::str_buffer("ok"), zmq::send_flags::none);
      continue;
    }
    const auto answer = [&](const std::string& what) {
      socket.send(identity, zmq::send_flags::sndmore);
      socket.send(zmq::buffer(what), zmq::send_flags::none);
    };
    std::size_t s = 0, r = 0;
    std::uint64_t t0 = 0;
    int consumed = 0;
    const std::string copy(text.substr(0, std::min<std::size_t>(text.size(), 96)));
    if (std::sscanf(copy.c_str(), "%*c %zu %zu%n", &s, &r, &consumed) < 2 || s >= kMaxSizes ||
        r >= kMaxRepeats) {
      die(shared, 1, "bad message from the sender");
    }
    Sample& sample = shared.samples[s][r];
    const std::uint64_t size = options.sizes[s];
    if (text[0] == 'C') {
      zmq::message_t body;
      if (!socket.recv(body)) die(shared, 1, "no zmq payload");
      const std::uint64_t t1 = now_ns();
      sample.zmq_ns = t1 - std::atomic_ref<std::uint64_t>(sample.zmq_t0).load(std::memory_order_acquire);
      if (body.size() != size) die(shared, 1, "zmq payload of the wrong size");
      answer("ok");
      continue;
    }
    // "A|B s r t0 json"
    std::string_view rest = text.substr(static_cast<std::size_t>(consumed));
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const auto space = rest.find(' ');
    std::from_chars(rest.data(), rest.data() + space, t0);
    const auto descriptor = cp::HandoffDescriptor::from_json(rest.substr(space + 1));
    if (!descriptor) die(shared, 1, "descriptor: " + descriptor.error().message);
    if (text[0] == 'S') {
      auto mapped = receiver->open(*descriptor, {.verify = cp::Verify::skip,
                                                 .timeout = std::chrono::seconds(10)});
      const std::uint64_t t1 = now_ns();
      if (!mapped) die(shared, 1, "open: " + mapped.error().message);
      if (sample.steady_ns < std::size(sample.steady_runs)) {
        sample.steady_runs[sample.steady_ns++] = t1 - t0;  // a count until the table is made
      }
    } else if (text[0] == 'A') {
      const std::uint64_t parsed = now_ns();
      auto mapped = receiver->open(*descriptor, {.verify = cp::Verify::skip,
                                                 .timeout = std::chrono::seconds(10)});
      const std::uint64_t t1 = now_ns();
      if (!mapped) die(shared, 1, "open: " + mapped.error().message);
      sample.handoff_ns = t1 - t0;
      sample.descriptor_ns = parsed - t0;
      sample.open_ns = t1 - parsed;
      // The baseline: another fresh mapping of the same payload, every byte read.
      auto fresh = receiver->open(*descriptor, {.verify = cp::Verify::skip,
                                                .timeout = std::chrono::seconds(10)});
      if (!fresh) die(shared, 1, "open: " + fresh.error().message);
      const std::uint64_t t = now_ns();
      sample.folded = read_all(fresh->bytes());
      sample.fresh_read_ns = now_ns() - t;
    } else {
      auto mapped = receiver->open(*descriptor, {.verify = cp::Verify::required,
                                                 .timeout = std::chrono::seconds(10)});
      const std::uint64_t t1 = now_ns();
      if (!mapped) die(shared, 1, "verified open: " + mapped.error().message);
      sample.verify_ns = t1 - t0;
    }
    answer("ok");
  }
}

// ---- the table --------------------------------------------------------------------------------------

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t m = values.size() / 2;
  return values.size() % 2 == 1 ? values[m] : (values[m - 1] + values[m]) / 2;
}

int run(const Options& options) {
  const auto cores = choose_cores(options);
  if (!cores) {
    std::fprintf(stderr, "symphony-handoff-bench: needs two CPUs to pin the two sides to\n");
    return 2;
  }
  auto dir = symphony::engine::ensure_runtime_dir(kBus);
  if (!dir) {
    std::fprintf(stderr, "symphony-handoff-bench: %s\n", dir.error().message.c_str());
    return 1;
  }
  const std::string endpoint = "ipc://" + (*dir / ("zmq-" + std::to_string(::getpid()))).string();
  void* mapping = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) {
    std::perror("symphony-handoff-bench: mmap");
    return 1;
  }
  auto& shared = *static_cast<Shared*>(mapping);
  std::fprintf(stderr,
               "symphony-handoff-bench: sizes up to %s, %u repeats, sender on cpu %d, receiver on "
               "cpu %d\n",
               format_size(*std::max_element(options.sizes.begin(), options.sizes.end())).c_str(),
               options.repeats, (*cores)[0], (*cores)[1]);
  std::fflush(nullptr);

  const pid_t parent = ::getpid();
  const auto spawn = [&](auto&& body) -> pid_t {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      try {
        body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "symphony-handoff-bench: child: %s\n", e.what());
        std::fflush(nullptr);
        ::_exit(1);
      }
      std::fflush(nullptr);
      ::_exit(0);
    }
    return pid;
  };
  const pid_t receiver = spawn([&] { run_receiver(options, endpoint, shared, (*cores)[1]); });
  const pid_t sender = spawn([&] { run_sender(options, endpoint, shared, (*cores)[0]); });
  if (receiver < 0 || sender < 0) {
    std::perror("symphony-handoff-bench: fork");
    if (receiver > 0) ::kill(receiver, SIGKILL);
    if (sender > 0) ::kill(sender, SIGKILL);
    return 1;
  }

  // Wait for both, with a deadline for the whole run.
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options.timeout_seconds * 4 + 60));
  int status[2] = {-1, -1};
  const pid_t pids[2] = {sender, receiver};
  bool done[2] = {false, false};
  bool failed = false;
  while (!(done[0] && done[1])) {
    for (int i = 0; i < 2; ++i) {
      if (done[i]) continue;
      const pid_t r = ::waitpid(pids[i], &status[i], WNOHANG);
      if (r == pids[i]) {
        done[i] = true;
        if (!WIFEXITED(status[i]) || WEXITSTATUS(status[i]) != 0) {
          failed = true;
          // The other side would wait for it until its own time-out: stop it now.
          const int other = 1 - i;
          if (!done[other]) ::kill(pids[other], SIGKILL);
        }
      }
    }
    if (!failed && Clock::now() > deadline) {
      for (int i = 0; i < 2; ++i) {
        if (!done[i]) ::kill(pids[i], SIGKILL);
      }
      std::fprintf(stderr, "symphony-handoff-bench: FAILED: timed out\n");
      failed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // libzmq leaves an ipc:// socket file behind when its process is killed (or even on close).
  ::unlink(endpoint.substr(std::strlen("ipc://")).c_str());
  if (failed) {
    for (int i = 0; i < 2; ++i) {
      if (shared.error[i][0] != '\0') {
        std::fprintf(stderr, "symphony-handoff-bench: FAILED: %s: %s\n", i == 0 ? "sender" : "receiver",
                     shared.error[i]);
      } else if (!WIFEXITED(status[i]) || WEXITSTATUS(status[i]) != 0) {
        std::fprintf(stderr, "symphony-handoff-bench: FAILED: %s (pid %d) %s %d\n",
                     i == 0 ? "sender" : "receiver", static_cast<int>(pids[i]),
                     WIFSIGNALED(status[i]) ? "was killed by signal" : "exited with",
                     WIFSIGNALED(status[i]) ? WTERMSIG(status[i]) : WEXITSTATUS(status[i]));
      }
    }
    return 1;
  }

  const auto gbps = [](std::uint64_t bytes, double ns) { return static_cast<double>(bytes) / ns; };
  std::printf("%-8s %7s %6s %6s | %8s %8s | %8s %8s | %7s %6s | %7s %6s | %5s | %7s %6s\n",
              "payload", "write", "xxh3", "seal", "handoff", "", "steady", "", "+xxh3", "",
              "fresh", "read", "xxh3/", "zmq-ipc", "");
  std::printf("%-8s %7s %6s %6s | %8s %8s | %8s %8s | %7s %6s | %7s %6s | %5s | %7s %6s\n", "",
              "ms", "ms", "ms", "us", "GB/s", "us", "GB/s", "ms", "GB/s", "ms", "GB/s", "read",
              "ms", "GB/s");
  struct Row {
    std::uint64_t size;
    double handoff_us;
    double steady_us;
    double ratio;
    double descriptor_us;
    double open_us;
  };
  std::vector<Row> rows;
  for (std::size_t s = 0; s < options.sizes.size(); ++s) {
    const std::uint64_t size = options.sizes[s];
    std::vector<double> write, checksum, seal, handoff, verify, fresh, zmq, descriptor, open, steady;
    for (unsigned r = 0; r < options.repeats; ++r) {
      const Sample& x = shared.samples[s][r];
      write.push_back(static_cast<double>(x.write_ns));
      checksum.push_back(static_cast<double>(x.checksum_ns));
      seal.push_back(static_cast<double>(x.seal_ns));
      handoff.push_back(static_cast<double>(x.handoff_ns));
      verify.push_back(static_cast<double>(x.verify_ns));
      fresh.push_back(static_cast<double>(x.fresh_read_ns));
      zmq.push_back(static_cast<double>(x.zmq_ns));
      descriptor.push_back(static_cast<double>(x.descriptor_ns));
      open.push_back(static_cast<double>(x.open_ns));
      for (std::uint64_t k = 0; k < x.steady_ns; ++k) {
        steady.push_back(static_cast<double>(x.steady_runs[k]));
      }
    }
    const double h = median(handoff), v = median(verify), f = median(fresh), z = median(zmq);
    const double st = steady.empty() ? 0 : median(steady);
    const double ratio = gbps(size, v) / gbps(size, f);
    std::printf(
        "%-8s %7.2f %6.2f %6.2f | %8.1f %8.1f | %8.1f %8.1f | %7.2f %6.2f | %7.2f %6.2f | %5.2f | "
        "%7.2f %6.2f\n",
        format_size(size).c_str(), median(write) / 1e6, median(checksum) / 1e6, median(seal) / 1e6,
        h / 1e3, gbps(size, h), st / 1e3, st > 0 ? gbps(size, st) : 0.0, v / 1e6, gbps(size, v),
        f / 1e6, gbps(size, f), ratio, z / 1e6, gbps(size, z));
    rows.push_back({size, h / 1e3, st / 1e3, ratio, median(descriptor) / 1e3, median(open) / 1e3});
  }
  std::printf("handoff = the first handoff of a payload (descriptor over zmq %s):",
              options.busy ? "busy-polled" : "blocking");
  for (const Row& row : rows) {
    std::printf("%s %s %.0f + open %.0f us", &row == &rows.front() ? "" : ";",
                format_size(row.size).c_str(), row.descriptor_us, row.open_us);
  }
  std::printf("\nsteady = median of %u back-to-back handoffs of each payload\n", options.steady);
  std::printf("reclaimed %llu of %llu payloads\n", static_cast<unsigned long long>(shared.reclaimed),
              static_cast<unsigned long long>(shared.sealed));
  // The targets, at 64 MiB when it was measured.
  for (const Row& row : rows) {
    if (row.size != (64ULL << 20)) continue;
    std::printf("target: handoff of 64 MiB <= 200 us: first %.1f us (%s), steady %.1f us (%s)\n",
                row.handoff_us, row.handoff_us <= 200 ? "met" : "MISSED", row.steady_us,
                row.steady_us <= 200 ? "met" : "MISSED");
    std::printf("target: handoff+xxh3 >= 0.8x the fresh-read bandwidth: %.2fx (%s)\n", row.ratio,
                row.ratio >= 0.8 ? "met" : "MISSED");
  }
  if (rows.size() > 1) {
    const auto [lo, hi] = std::minmax_element(
        rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.steady_us < b.steady_us; });
    std::printf("steady handoff from %s to %s: %.1f-%.1f us (x%.0f in size, x%.2f in time)\n",
                format_size(rows.front().size).c_str(), format_size(rows.back().size).c_str(),
                lo->steady_us, hi->steady_us,
                static_cast<double>(rows.back().size) / static_cast<double>(rows.front().size),
                hi->steady_us / std::max(lo->steady_us, 1e-9));
  }
  return shared.reclaimed == shared.sealed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = parse_options(argc, argv);
  if (!options) return 2;
  try {
    return run(*options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "symphony-handoff-bench: %s\n", e.what());
    return 1;
  }
}
