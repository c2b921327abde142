#pragma once
// Internals of the iceoryx transport shared by its .cpp files: the session, the process-wide
// Listener that feeds notify fds, the user header our samples carry and the publisher's status
// chunk. See README.md here for the design.

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

// iceoryx headers come in as SYSTEM includes (the imported target's include directories).
#include "iceoryx_posh/capro/service_description.hpp"
#include "iceoryx_posh/iceoryx_posh_types.hpp"
#include "iceoryx_posh/internal/popo/ports/publisher_port_data.hpp"
#include "iceoryx_posh/internal/popo/ports/subscriber_port_data.hpp"
#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/listener.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_transport.hpp"
#include "iceoryx_versions.hpp"

static_assert(ICEORYX_VERSION_MAJOR == 2 && ICEORYX_VERSION_MINOR == 0,
              "the iceoryx transport reads iceoryx 2.0's port data (queue fill levels, queue ids); "
              "check iceoryx_publisher.cpp before building against another version");

namespace symphony::engine::detail {

// iceoryx 2.0's compile-time limits that our QoS maps onto.
inline constexpr std::uint32_t kIoxMaxHistory = static_cast<std::uint32_t>(iox::MAX_PUBLISHER_HISTORY);
inline constexpr std::uint32_t kIoxMaxDepth = iox::MAX_SUBSCRIBER_QUEUE_CAPACITY;
inline constexpr std::uint32_t kIoxMaxLoans = iox::MAX_CHUNKS_ALLOCATED_PER_PUBLISHER_SIMULTANEOUSLY;
inline constexpr std::uint32_t kIoxMaxHeld = iox::MAX_CHUNKS_HELD_PER_SUBSCRIBER_SIMULTANEOUSLY;
inline constexpr std::size_t kIoxMaxIdLength = iox::capro::IdString_t::capacity();
// One loan slot of the publisher holds its status chunk for its whole life.
inline constexpr std::uint32_t kMaxPendingLoans = kIoxMaxLoans - 1;
inline constexpr std::uint32_t kPayloadAlignment = 8;
inline constexpr const char kServiceName[] = "symphony";

// In front of every sample our publishers send (iceoryx's user header; plain iceoryx
// subscribers ignore it and read the payload as usual).
struct SampleUserHeader {
  static constexpr std::uint32_t kMagic = 0x494d5953;  // "SYMI"
  std::uint32_t magic;
  std::uint32_t version;  // 1
  // From this sample's chunk header to the publisher's status chunk header (same segment).
  std::int64_t status_offset;
};
static_assert(sizeof(SampleUserHeader) == 16);
inline constexpr std::uint32_t kUserHeaderAlignment = alignof(SampleUserHeader);

// A chunk each publisher loans once and never publishes. It records, for every subscriber queue
// connected to the publisher, the publisher's sequence number when the queue joined, so that a
// discard_oldest subscriber knows which samples it should have seen and counts drops exactly,
// even those before its first take. Written by the publisher only (under its distributor lock),
// read by subscribers (std::atomic_ref; an entry's join is written before its queue id).
struct PublisherStatus {
  static constexpr std::uint64_t kMagic = 0x3154415453594d53ULL;  // "SMYSTAT1"
  static constexpr std::uint32_t kEntries = 60;  // fits a 1 KiB pool chunk
  struct Entry {
    std::uint64_t queue_id;  // the subscriber queue's unique id; 0: free
    std::uint64_t join;      // the sequence number of the first fresh sample it gets
  };
  std::uint64_t magic;
  std::uint64_t origin;            // the publisher port's unique id (chunk headers' originId)
  std::uint64_t history_capacity;  // the publisher's history
  std::uint64_t reserved;
  Entry entries[kEntries];
};
static_assert(sizeof(PublisherStatus) <= 1024 - 32);

// The data of an iceoryx port (in the management segment). BasePort::getMembers() is protected
// (and the ports' own getMembers() private): a pointer to it, formed in a class derived from
// BasePort, may be applied to any port.
inline iox::popo::BasePortData* port_members(iox::popo::BasePort& port) noexcept {
  struct Access : iox::popo::BasePort {
    static iox::popo::BasePortData* get(iox::popo::BasePort& p) noexcept {
      iox::popo::BasePortData* (iox::popo::BasePort::*members)() noexcept = &Access::getMembers;
      return (p.*members)();
    }
  };
  return Access::get(port);
}

// The largest chunk payload (without iceoryx's chunk header) a sample of `payload` bytes with
// our user header needs, as iceoryx computes it. 0 if iceoryx refuses the combination.
std::uint64_t required_chunk_size(std::uint64_t payload) noexcept;

// Feeds the notify fds: one iox::popo::Listener (one thread, "sym-iox-listen") for the whole
// process, alive while any subscriber is attached to it.
class ListenerHub {
 public:
  // A subscriber's notify state, shared by the listener thread and the subscriber's thread.
  // Armed: the subscriber found its queue empty and drained the eventfd; the first sample after
  // that writes it (whoever claims the arm with exchange(false) writes, then counts the write).
  struct NotifyState {
    int fd = -1;                        // eventfd, EFD_CLOEXEC | EFD_NONBLOCK
    std::atomic<bool> armed{false};
    std::atomic<std::uint64_t> written{0};  // writes made to fd (counted after each write)
  };

  static Result<std::shared_ptr<ListenerHub>> get();
  ~ListenerHub();

  Result<void> attach(iox::popo::UntypedSubscriber& subscriber, NotifyState& state);
  void detach(iox::popo::UntypedSubscriber& subscriber) noexcept;

  // If armed: disarms and writes the eventfd (the listener thread, per sample; the subscriber,
  // when a sample slipped in while it was arming).
  static void fire(NotifyState& state) noexcept;

 private:
  ListenerHub() = default;
  std::mutex mutex_;
  std::unique_ptr<iox::popo::Listener> listener_;
  std::uint64_t attached_ = 0;
};

class IceoryxSession {
 public:
  IceoryxSession(std::string bus_name, bool roudi_ours) noexcept
      : bus_name_(std::move(bus_name)), roudi_ours_(roudi_ours) {}
  const std::string& bus_name() const noexcept { return bus_name_; }
  // RouDi runs with our memory-pool config (else it is someone else's, used as is).
  bool roudi_ours() const noexcept { return roudi_ours_; }
  // The largest max_payload our RouDi config serves; 0 if RouDi is not ours (unknown).
  std::uint64_t max_payload_of_config() const noexcept;

 private:
  std::string bus_name_;
  bool roudi_ours_;
};

// Checks a name used as an iceoryx service id (instance: the bus; event: the topic).
Result<iox::capro::IdString_t> to_id(std::string_view what, std::string_view name);

// Errc::unsupported, "iceoryx topic '<topic>': <what>".
Error unsupported(std::string_view topic, const std::string& what);
// max_payload against the type's size and RouDi's largest pool, for both backends' factories.
Result<void> check_max_payload(const IceoryxSession& session, std::string_view topic,
                               const TopicType& type, const TopicOptions& options);

}  // namespace symphony::engine::detail
