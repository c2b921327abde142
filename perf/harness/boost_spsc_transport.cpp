// boost-spsc: the peer. boost::lockfree::spsc_queue placed in shared memory. Only its
// compile-time capacity<N> form can live there (the run-time form allocates its buffer with
// new), and its element type is fixed, so every payload size is its own instantiation:
// std::array<std::byte, N> for the sizes in kBoostPayloads. A message is written into a staging
// array and push()ed (boost copies it in: it cannot lend its slot), and read in place through
// front() before pop(). It has no wake-up of its own, so it is busy mode only.

#include <array>
#include <boost/lockfree/spsc_queue.hpp>
#include <new>
#include <utility>

#include "drivers.hpp"
#include "shm_region.hpp"
#include "transport.hpp"

namespace symphony::perf {
namespace {

// Every power of two from 8 B to 1 MiB (the default sweep is a subset).
constexpr std::array<std::size_t, 18> kBoostPayloads{8,     16,    32,     64,     128,    256,
                                                     512,   1024,  2048,   4096,   8192,   16384,
                                                     32768, 65536, 131072, 262144, 524288, 1048576};

// Elements per queue: kDefaultQueueBytes of payload like our rings, and at least 4.
constexpr std::size_t queue_elements(std::size_t payload) {
  return std::max<std::size_t>(4, kDefaultQueueBytes / payload);
}

template <std::size_t N>
using Element = std::array<std::byte, N>;
template <std::size_t N>
using Queue = boost::lockfree::spsc_queue<Element<N>, boost::lockfree::capacity<queue_elements(N)>>;

// boost cannot lend a slot: the message is written into a staging array and push() copies it
// in. try_loan always succeeds; publish() waits for room when the queue is full (push() checks
// that before copying), so each message reads the consumer's index once, as push() does.
template <std::size_t N>
class BoostSender {
 public:
  BoostSender(Queue<N>& queue, const SideContext& side)
      : queue_(queue), side_(side), staging_(new Element<N>()) {}
  Poll try_loan(std::size_t, std::span<std::byte>& out) noexcept {
    if (timed_out_) return Poll::failed;
    out = std::span<std::byte>(staging_->data(), N);
    return Poll::ready;
  }
  Poll wait_loan(std::size_t size, std::span<std::byte>& out, SteadyClock::time_point) noexcept {
    return try_loan(size, out);  // never called: boost-spsc is busy only
  }
  void publish() noexcept {
    if (queue_.push(*staging_)) [[likely]]
      return;
    const bool pause = side_.spec->pause_while_spinning;
    for (std::uint32_t polls = 1; !queue_.push(*staging_); ++polls) {
      if (side_.yield && polls > kSpinsBeforeYield) {
        ::sched_yield();
      } else if (pause) {
        engine::cpu_relax();
      }
      if ((polls & kDeadlineCheckMask) == 0 && SteadyClock::now() >= side_.deadline) {
        timed_out_ = true;  // reported by the next try_loan
        return;
      }
    }
  }
  std::string failure() const { return "boost-spsc: timed out waiting for room in the queue"; }

 private:
  Queue<N>& queue_;
  const SideContext& side_;
  std::unique_ptr<Element<N>> staging_;  // up to 1 MiB: not on the stack
  bool timed_out_ = false;
};

template <std::size_t N>
class BoostReceiver {
 public:
  explicit BoostReceiver(Queue<N>& queue) noexcept : queue_(queue) {}
  Poll try_receive(std::span<const std::byte>& in) noexcept {
    if (queue_.read_available() == 0) return Poll::would_block;
    in = std::span<const std::byte>(queue_.front().data(), N);
    return Poll::ready;
  }
  Poll wait_receive(std::span<const std::byte>& in, SteadyClock::time_point) noexcept {
    return try_receive(in);
  }
  void release() noexcept { (void)queue_.pop(); }
  std::string failure() const { return "boost-spsc cannot fail"; }

 private:
  Queue<N>& queue_;
};

template <std::size_t N>
class BoostSession final : public Session {
 public:
  explicit BoostSession(std::vector<ShmRegion> regions) noexcept : regions_(std::move(regions)) {}
  // The queues hold trivially destructible arrays, and no side runs any more: nothing to destroy
  // but the mappings.
  ~BoostSession() override = default;

  SideReport run_side(const SideContext& side) noexcept override {
    return guarded([&]() -> SideReport {
      std::vector<ShmRegion> mapped;
      for (const ShmRegion& region : regions_) {
        auto opened = ShmRegion::open(region.name(), region.size());
        if (!opened) {
          SideReport report;
          return fail(report, "%s", opened.error().message.c_str());
        }
        prefault(opened->base(), opened->size());
        mapped.push_back(std::move(*opened));
      }
      const auto queue = [&](std::size_t i) -> Queue<N>& {
        return *std::launder(reinterpret_cast<Queue<N>*>(mapped[i].base()));
      };
      // Ping-pong: queue 0 carries pings, queue 1 pongs. Throughput: queue 0.
      switch (side.role) {
        case Role::initiator: {
          BoostSender<N> ping(queue(0), side);
          BoostReceiver<N> pong(queue(1));
          return pingpong_initiator(ping, pong, side);
        }
        case Role::echoer: {
          BoostSender<N> pong(queue(1), side);
          BoostReceiver<N> ping(queue(0));
          return pingpong_echoer(pong, ping, side);
        }
        case Role::producer: {
          BoostSender<N> tx(queue(0), side);
          return run_sender_side(tx, side);
        }
        case Role::consumer: {
          BoostReceiver<N> rx(queue(0));
          return run_receiver_side(rx, side);
        }
      }
      SideReport report;
      return fail(report, "unknown role");
    });
  }

 private:
  std::vector<ShmRegion> regions_;
};

template <std::size_t N>
engine::Result<std::unique_ptr<Session>> prepare_sized(const MeasureSpec& spec,
                                                       const std::string& name_prefix) {
  static_assert(std::is_trivially_destructible_v<Element<N>>);
  std::vector<ShmRegion> regions;
  const int count = spec.pattern == Pattern::pingpong ? 2 : 1;
  for (int i = 0; i < count; ++i) {
    auto region = ShmRegion::create(name_prefix + "boost" + std::to_string(i), sizeof(Queue<N>));
    if (!region) return tl::unexpected(std::move(region.error()));
    // mmap returns page-aligned memory: enough for the queue's cache-line alignment.
    new (region->base()) Queue<N>();
    regions.push_back(std::move(*region));
  }
  return std::unique_ptr<Session>(new BoostSession<N>(std::move(regions)));
}

// Dispatches the run-time payload size to its instantiation.
template <std::size_t... I>
engine::Result<std::unique_ptr<Session>> prepare_any(const MeasureSpec& spec,
                                                     const std::string& name_prefix,
                                                     std::index_sequence<I...>) {
  engine::Result<std::unique_ptr<Session>> result =
      tl::unexpected(engine::Error{engine::Errc::invalid_argument, "unsupported payload size"});
  ((spec.payload == kBoostPayloads[I]
        ? (result = prepare_sized<kBoostPayloads[I]>(spec, name_prefix), 0)
        : 0),
   ...);
  return result;
}

class BoostTransport final : public Transport {
 public:
  std::string_view name() const noexcept override { return "boost-spsc"; }
  std::string_view summary() const noexcept override {
    return "the peer: boost::lockfree::spsc_queue<std::array<std::byte, N>, capacity<K>> "
           "placed in a shm segment; push copies the message in, front()/pop() read it in "
           "place; busy only (no wake-up of its own); payloads: powers of two from 8 B to "
           "1 MiB only (one instantiation each)";
  }
  std::string_view description() const noexcept override {
    return "Peer: boost::lockfree::spsc_queue<std::array<std::byte, N>, capacity<K>> "
           "placement-new'd in a named shm segment (only the compile-time-capacity form can live "
           "in shared memory), one queue per direction, K = 64 KiB / N elements (at least 4). "
           "The sender writes the payload into a staging array and push() copies it into the "
           "queue; the receiver reads it in place through front() and pop()s it. Busy only: it "
           "has no wake-up of its own. Payloads are powers of two from 8 B to 1 MiB (one "
           "template instantiation each).";
  }

  std::string unsupported(const MeasureSpec& spec) const override {
    if (spec.mode != Mode::busy) return "boost::lockfree::spsc_queue has no wake-up of its own";
    if (spec.batch != 1) return "each element is pushed on its own (no batching)";
    if (spec.producers != 1 || spec.consumers != 1) {
      return "an SPSC queue has exactly one producer and one consumer";
    }
    if (std::find(kBoostPayloads.begin(), kBoostPayloads.end(), spec.payload) ==
        kBoostPayloads.end()) {
      return "its element size is fixed at compile time: payloads must be a power of two "
             "from 8 B to 1 MiB";
    }
    return {};
  }
  engine::Result<std::unique_ptr<Session>> prepare(const MeasureSpec& spec,
                                                   const std::string& name_prefix) override {
    return prepare_any(spec, name_prefix, std::make_index_sequence<kBoostPayloads.size()>());
  }
};

}  // namespace

std::unique_ptr<Transport> make_boost_spsc_transport() {
  return std::make_unique<BoostTransport>();
}

}  // namespace symphony::perf
