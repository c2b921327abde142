#pragma once
// symphony::Bus: the facade a host (or an extension) embeds. A bus is a name; every process that
// opens a Bus of the same name on this machine sees the same topics. Nothing to start by hand:
// native topics need no daemon, and the first iceoryx topic brings RouDi up if none runs.
//
// Embedding contract: the library installs no signal handlers, never calls waitpid(-1) or exit,
// opens every fd with O_CLOEXEC, and writes to sockets and pipes without raising SIGPIPE. Its
// threads are listed in the README.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "symphony/engine/error.hpp"
#include "symphony/engine/topic.hpp"

namespace symphony {

struct BusOptions {
  // Letters, digits, '-' and '_', at most 64: it prefixes every segment and runtime file.
  std::string name = "default";
  // Where notify FIFOs and other per-bus files live; empty: $XDG_RUNTIME_DIR/symphony/<name>,
  // else /tmp/symphony-<uid>/<name> (created with mode 0700).
  std::filesystem::path runtime_dir;
};

// One participant of a topic as seen by discovery.
struct TopicParticipant {
  std::uint32_t pid = 0;
  bool alive = false;
  engine::Overflow overflow = engine::Overflow::block;  // subscribers
  std::uint32_t depth = 0;                               // subscribers
  std::uint64_t published = 0, full = 0, flushes = 0, wakeups = 0, priority = 0;  // publisher
  std::string group;                                     // subscribers: its group, if any
  std::uint64_t delivered = 0, dropped = 0, overruns = 0;  // subscribers
};

struct TopicInfo {
  std::string name;
  engine::TopicTransport transport = engine::TopicTransport::native;
  engine::TopicType type;
  std::uint64_t max_payload = 0;
  std::uint32_t history = 0;
  std::uint32_t capacity = 0;
  std::uint32_t priority_capacity = 0;
  std::vector<TopicParticipant> publishers;   // 0 or 1
  std::vector<TopicParticipant> subscribers;
};

class Bus {
 public:
  static engine::Result<Bus> open(BusOptions options = {});

  Bus(Bus&&) noexcept;
  Bus& operator=(Bus&&) noexcept;
  ~Bus();

  const std::string& name() const noexcept;
  const std::filesystem::path& runtime_dir() const noexcept;

  // Topic names: 1-128 characters of letters, digits and "-_./". The first publisher or
  // subscriber creates the topic with `options`; later ones are checked against it.
  engine::Result<engine::RawPublisher> advertise(std::string_view topic,
                                                 const engine::TopicType& type = {},
                                                 const engine::TopicOptions& options = {},
                                                 const engine::PublisherOptions& publisher = {});
  engine::Result<engine::RawSubscriber> subscribe(
      std::string_view topic, const engine::TopicType& type = {},
      const engine::TopicOptions& options = {},
      const engine::SubscriberOptions& subscriber = {});

  template <typename T>
  engine::Result<engine::Publisher<T>> advertise(std::string_view topic,
                                                 std::string_view type_name,
                                                 engine::TopicOptions options = {},
                                                 const engine::PublisherOptions& publisher = {}) {
    options.max_payload = sizeof(T);
    auto raw = advertise(topic, typed<T>(type_name), options, publisher);
    if (!raw) return tl::unexpected(std::move(raw.error()));
    return engine::Publisher<T>(std::move(*raw));
  }
  template <typename T>
  engine::Result<engine::Subscriber<T>> subscribe(std::string_view topic,
                                                  std::string_view type_name,
                                                  engine::TopicOptions options = {},
                                                  const engine::SubscriberOptions& subscriber = {}) {
    options.max_payload = sizeof(T);
    auto raw = subscribe(topic, typed<T>(type_name), options, subscriber);
    if (!raw) return tl::unexpected(std::move(raw.error()));
    return engine::Subscriber<T>(std::move(*raw));
  }

  // Every topic of this bus on this machine, with its participants and their counters.
  engine::Result<std::vector<TopicInfo>> topics() const;

  struct Impl;

 private:
  explicit Bus(std::unique_ptr<Impl> impl) noexcept;
  template <typename T>
  static engine::TopicType typed(std::string_view type_name) {
    return engine::TopicType{std::string(type_name), static_cast<std::uint32_t>(sizeof(T))};
  }
  std::unique_ptr<Impl> impl_;
};

}  // namespace symphony
