#include "symphony/engine/bus.hpp"

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

#include "symphony/engine/process_identity.hpp"
#include "symphony/engine/runtime_dir.hpp"
#include "topic/native_topic.hpp"
#include "topic/topic_segment.hpp"
#if defined(SYMPHONY_HAVE_ICEORYX)
#include "iceoryx/iceoryx_transport.hpp"
#endif

namespace symphony {

using engine::Errc;
using engine::Error;
using engine::Result;

namespace {

#if defined(SYMPHONY_HAVE_ICEORYX)
// Keeps the topic's directory entry (discovery, counters, the one-publisher rule) alive as long
// as the iceoryx backend it accompanies.
class IceoryxPublisherWithDirectory final : public engine::detail::PublisherBackend {
 public:
  IceoryxPublisherWithDirectory(engine::detail::DirectoryMembership membership,
                                std::unique_ptr<engine::detail::PublisherBackend> inner)
      : membership_(std::move(membership)), inner_(std::move(inner)) {}
  engine::Loan try_loan(std::size_t length) noexcept override { return inner_->try_loan(length); }
  engine::Loan loan(std::size_t length, const engine::WaitStrategy& strategy,
                    std::chrono::steady_clock::time_point deadline) noexcept override {
    return inner_->loan(length, strategy, deadline);
  }
  void publish() noexcept override { inner_->publish(); }
  engine::PublisherCounters counters() const noexcept override { return inner_->counters(); }
  const std::string& topic() const noexcept override { return inner_->topic(); }
  engine::TopicTransport transport() const noexcept override { return inner_->transport(); }

 private:
  engine::detail::DirectoryMembership membership_;  // destroyed after inner_
  std::unique_ptr<engine::detail::PublisherBackend> inner_;
};

class IceoryxSubscriberWithDirectory final : public engine::detail::SubscriberBackend {
 public:
  IceoryxSubscriberWithDirectory(engine::detail::DirectoryMembership membership,
                                 std::unique_ptr<engine::detail::SubscriberBackend> inner)
      : membership_(std::move(membership)), inner_(std::move(inner)) {}
  engine::Frame try_take() noexcept override { return inner_->try_take(); }
  engine::Frame take(const engine::WaitStrategy& strategy,
                     std::chrono::steady_clock::time_point deadline) noexcept override {
    return inner_->take(strategy, deadline);
  }
  void release() noexcept override { inner_->release(); }
  Result<int> notify_fd() override { return inner_->notify_fd(); }
  engine::SubscriberCounters counters() const noexcept override { return inner_->counters(); }
  const std::string& topic() const noexcept override { return inner_->topic(); }
  engine::TopicTransport transport() const noexcept override { return inner_->transport(); }

 private:
  engine::detail::DirectoryMembership membership_;
  std::unique_ptr<engine::detail::SubscriberBackend> inner_;
};
#endif

std::uint64_t load_counter(const std::uint64_t& counter) {
  return std::atomic_ref<const std::uint64_t>(counter).load(std::memory_order_relaxed);
}

}  // namespace

struct Bus::Impl {
  std::string name;
  std::filesystem::path runtime_dir;
  std::mutex flusher_mutex;
  std::shared_ptr<engine::detail::BatchFlusher> flusher;  // started by the first batched publisher

  std::shared_ptr<engine::detail::BatchFlusher> batch_flusher() {
    std::lock_guard lock(flusher_mutex);
    if (!flusher) flusher = std::make_shared<engine::detail::BatchFlusher>();
    return flusher;
  }
#if defined(SYMPHONY_HAVE_ICEORYX)
  std::mutex iceoryx_mutex;
  std::shared_ptr<engine::detail::IceoryxSession> iceoryx;  // opened by the first iceoryx topic

  Result<std::shared_ptr<engine::detail::IceoryxSession>> iceoryx_session() {
    std::lock_guard lock(iceoryx_mutex);
    if (!iceoryx) {
      auto session = engine::detail::open_iceoryx_session(name);
      if (!session) return tl::unexpected(std::move(session.error()));
      iceoryx = std::move(*session);
    }
    return iceoryx;
  }
#endif
};

Bus::Bus(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Bus::Bus(Bus&&) noexcept = default;
Bus& Bus::operator=(Bus&&) noexcept = default;
Bus::~Bus() = default;

Result<Bus> Bus::open(BusOptions options) {
  auto dir = engine::ensure_runtime_dir(options.name, options.runtime_dir);
  if (!dir) return tl::unexpected(std::move(dir.error()));
  auto impl = std::make_unique<Impl>();
  impl->name = std::move(options.name);
  impl->runtime_dir = std::move(*dir);
  return Bus(std::move(impl));
}

const std::string& Bus::name() const noexcept { return impl_->name; }
const std::filesystem::path& Bus::runtime_dir() const noexcept { return impl_->runtime_dir; }

Result<engine::RawPublisher> Bus::advertise(std::string_view topic, const engine::TopicType& type,
                                            const engine::TopicOptions& options,
                                            const engine::PublisherOptions& publisher) {
  if (options.transport != engine::TopicTransport::native &&
      publisher.route != engine::Route::direct) {
    return tl::unexpected(Error{Errc::unsupported,
                                std::string("the ") + engine::to_string(publisher.route) +
                                    " route needs the native transport"});
  }
  auto segment = engine::detail::TopicSegment::attach(impl_->name, topic, type, options, 0);
  if (!segment) return tl::unexpected(std::move(segment.error()));
  if (options.transport == engine::TopicTransport::native) {
    auto backend = engine::detail::make_native_publisher(
        std::move(*segment), publisher, impl_->runtime_dir,
        publisher.route == engine::Route::batched ? impl_->batch_flusher() : nullptr);
    if (!backend) return tl::unexpected(std::move(backend.error()));
    return engine::RawPublisher(std::move(*backend));
  }
#if defined(SYMPHONY_HAVE_ICEORYX)
  auto session = impl_->iceoryx_session();
  if (!session) return tl::unexpected(std::move(session.error()));
  auto membership = engine::detail::DirectoryMembership::publisher(*segment);
  if (!membership) return tl::unexpected(std::move(membership.error()));
  auto backend = engine::detail::make_iceoryx_publisher(*session, impl_->name, topic, type,
                                                        options, membership->counters());
  if (!backend) return tl::unexpected(std::move(backend.error()));
  return engine::RawPublisher(std::make_unique<IceoryxPublisherWithDirectory>(
      std::move(*membership), std::move(*backend)));
#else
  return tl::unexpected(
      Error{Errc::unsupported, "this build of Symphony has no iceoryx transport"});
#endif
}

Result<engine::RawSubscriber> Bus::subscribe(std::string_view topic,
                                             const engine::TopicType& type,
                                             const engine::TopicOptions& options,
                                             const engine::SubscriberOptions& subscriber) {
  auto segment = engine::detail::TopicSegment::attach(impl_->name, topic, type, options,
                                                      std::max<std::uint32_t>(subscriber.depth, 1));
  if (!segment) return tl::unexpected(std::move(segment.error()));
  if (options.transport != engine::TopicTransport::native && !subscriber.group.empty()) {
    return tl::unexpected(
        Error{Errc::unsupported, "load-balancing groups need the native transport"});
  }
  if (options.transport != engine::TopicTransport::native && subscriber.start_at) {
    return tl::unexpected(Error{Errc::unsupported,
                                "start_at (a successor resuming at a position) needs the native "
                                "transport: iceoryx subscribers have no sample positions"});
  }
  if (options.transport == engine::TopicTransport::native) {
    auto backend = engine::detail::make_native_subscriber(std::move(*segment), subscriber,
                                                          impl_->runtime_dir);
    if (!backend) return tl::unexpected(std::move(backend.error()));
    return engine::RawSubscriber(std::move(*backend));
  }
#if defined(SYMPHONY_HAVE_ICEORYX)
  auto session = impl_->iceoryx_session();
  if (!session) return tl::unexpected(std::move(session.error()));
  auto membership = engine::detail::DirectoryMembership::subscriber(*segment, subscriber);
  if (!membership) return tl::unexpected(std::move(membership.error()));
  auto backend = engine::detail::make_iceoryx_subscriber(*session, impl_->name, topic, type,
                                                         options, subscriber,
                                                         membership->counters());
  if (!backend) return tl::unexpected(std::move(backend.error()));
  return engine::RawSubscriber(std::make_unique<IceoryxSubscriberWithDirectory>(
      std::move(*membership), std::move(*backend)));
#else
  return tl::unexpected(
      Error{Errc::unsupported, "this build of Symphony has no iceoryx transport"});
#endif
}

Result<std::vector<TopicInfo>> Bus::topics() const {
  const std::string prefix = engine::detail::topic_segment_prefix(impl_->name);
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return tl::unexpected(Error::from_errno("opendir /dev/shm", errno));
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view entry(e->d_name);
    if (entry.substr(0, prefix.size()) == prefix) names.emplace_back(entry);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());

  std::vector<TopicInfo> topics;
  for (const std::string& name : names) {
    // A topic may vanish between the listing and the look (its last holder left): skip it.
    auto segment = engine::detail::TopicSegment::inspect(name);
    if (!segment) {
      if (segment.error().code == Errc::not_found) continue;
      return tl::unexpected(std::move(segment.error()));
    }
    const auto& s = **segment;
    const layouts::TopicHeader* h = s.header();
    TopicInfo info;
    info.name = s.topic();
    info.transport = s.transport();
    info.type = engine::TopicType{s.type_name(), s.geometry().type_size};
    info.max_payload = s.geometry().max_payload;
    info.history = s.geometry().history;
    info.capacity = static_cast<std::uint32_t>(s.geometry().capacity);
    info.priority_capacity = static_cast<std::uint32_t>(s.geometry().priority_capacity);
    const engine::ProcessIdentity publisher = engine::load_identity(h->publisher);
    if (publisher.pid != 0) {
      TopicParticipant p;
      p.pid = static_cast<std::uint32_t>(publisher.pid);
      p.alive = engine::is_alive(publisher);
      p.published = load_counter(h->publisher_counters.published);
      p.full = load_counter(h->publisher_counters.full);
      p.flushes = load_counter(h->publisher_counters.flushes);
      p.wakeups = load_counter(h->publisher_counters.wakeups);
      p.priority = load_counter(h->publisher_counters.priority);
      info.publishers.push_back(p);
    }
    for (std::uint32_t i = 0; i < s.geometry().max_subscribers; ++i) {
      const layouts::TopicSubscriberEntry* entry = s.entry(i);
      const engine::ProcessIdentity owner = engine::load_identity(entry->owner);
      if (owner.pid == 0) continue;
      TopicParticipant p;
      p.pid = static_cast<std::uint32_t>(owner.pid);
      p.alive = engine::is_alive(owner);
      p.overflow = std::atomic_ref<const std::uint32_t>(entry->overflow)
                               .load(std::memory_order_relaxed) ==
                           static_cast<std::uint32_t>(layouts::OverflowCode::discard_oldest)
                       ? engine::Overflow::discard_oldest
                       : engine::Overflow::block;
      p.depth = std::atomic_ref<const std::uint32_t>(entry->depth).load(std::memory_order_relaxed);
      p.delivered = load_counter(entry->counters.delivered);
      p.dropped = load_counter(entry->counters.dropped);
      p.overruns = load_counter(entry->counters.overruns);
      p.group.assign(entry->group_name, strnlen(entry->group_name, sizeof entry->group_name));
      info.subscribers.push_back(p);
    }
    topics.push_back(std::move(info));
  }
  return topics;
}

}  // namespace symphony
