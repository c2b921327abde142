// The session (RouDi lease + this process's iceoryx runtime) and the process-wide Listener
// behind the notify fds.

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_internal.hpp"
#include "iceoryx_posh/mepoo/chunk_settings.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "roudi_config_embedded.hpp"
#include "roudi_lease.hpp"
#include "roudi_protocol.hpp"

namespace symphony::engine::detail {
namespace {

// Our copies of iceoryx's fixed names (the keeper does not include iceoryx) must match.
constexpr bool same(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}
static_assert(same(iox::platform::IOX_UDS_SOCKET_PATH_PREFIX, roudi::kSocketDir));
static_assert(same(iox::roudi::IPC_CHANNEL_ROUDI_NAME, "roudi"));
static_assert(same(roudi::kRoudiSocketPath, "/tmp/roudi"));
static_assert(same(iox::roudi::ROUDI_LOCK_NAME, "iox-unique-roudi"));
static_assert(same(roudi::kRoudiUniqueLockPath, "/tmp/iox-unique-roudi.lock"));
static_assert(same(iox::roudi::SHM_NAME, roudi::kManagementShmName));

// The process's iceoryx runtime: initialised once, by the first session, never torn down
// (iceoryx 2.0 cannot), and unusable in a fork() child.
std::mutex g_runtime_mutex;
pid_t g_runtime_pid = 0;

iox::log::LogLevel iox_log_level() {
  const char* env = std::getenv("SYMPHONY_IOX_LOG_LEVEL");
  const std::string level = env != nullptr ? env : "warning";
  if (level == "off") return iox::log::LogLevel::kOff;
  if (level == "fatal") return iox::log::LogLevel::kFatal;
  if (level == "error") return iox::log::LogLevel::kError;
  if (level == "info") return iox::log::LogLevel::kInfo;
  if (level == "debug") return iox::log::LogLevel::kDebug;
  if (level == "verbose") return iox::log::LogLevel::kVerbose;
  return iox::log::LogLevel::kWarn;
}

Result<bool> ensure_runtime() {
  std::lock_guard lock(g_runtime_mutex);
  if (g_runtime_pid != 0) {
    if (g_runtime_pid == ::getpid()) {
      auto lease = roudi::acquire_lease();  // remembered: no work
      if (!lease) return tl::unexpected(std::move(lease.error()));
      return lease->ours;
    }
    return tl::unexpected(Error{
        Errc::unavailable,
        "iceoryx: this process (pid " + std::to_string(::getpid()) +
            ") is a fork() child of pid " + std::to_string(g_runtime_pid) +
            ", whose iceoryx runtime cannot be used here (iceoryx allows one runtime per "
            "process, and its threads do not survive fork): fork before the first iceoryx "
            "topic, or exec"});
  }
  auto lease = roudi::acquire_lease();
  if (!lease) return tl::unexpected(std::move(lease.error()));
  // initRuntime waits up to 60 s for RouDi and then terminates the process: only call it with
  // RouDi up.
  if (roudi::probe_roudi() != roudi::RoudiProbe::running) {
    return tl::unexpected(Error{Errc::unavailable, std::string("RouDi: nothing listens on ") +
                                                       roudi::kRoudiSocketPath +
                                                       " although the lease was granted"});
  }
  const std::string name = roudi::kRuntimeNamePrefix + std::to_string(::getpid());
  // A process that had our pid before and was killed left its socket and lock file.
  for (const std::string& stale : {std::string(roudi::kSocketDir) + name,
                                   std::string(roudi::kSocketDir) + name + ".lock"}) {
    ::unlink(stale.c_str());
  }
  // (kHideLogLevel: without announcing "Log level set to" on stdout.)
  iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox_log_level(),
                                                           iox::log::LogLevelOutput::kHideLogLevel);
  iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name));
  g_runtime_pid = ::getpid();
  return lease->ours;
}

std::mutex g_hub_mutex;
std::weak_ptr<ListenerHub> g_hub;

void on_data_received(iox::popo::UntypedSubscriber*, ListenerHub::NotifyState* state) {
  ListenerHub::fire(*state);
}

}  // namespace

Result<iox::capro::IdString_t> to_id(std::string_view what, std::string_view name) {
  if (name.empty() || name.size() > kIoxMaxIdLength) {
    return tl::unexpected(Error{
        name.empty() ? Errc::invalid_argument : Errc::unsupported,
        std::string(what) + " '" + std::string(name) + "': iceoryx 2.0 service ids have 1-" +
            std::to_string(kIoxMaxIdLength) + " characters (this one has " +
            std::to_string(name.size()) + ")"});
  }
  return iox::capro::IdString_t(iox::cxx::TruncateToCapacity, name.data(), name.size());
}

std::uint64_t required_chunk_size(std::uint64_t payload) noexcept {
  if (payload > 0xFFFFFFFFULL) return 0;
  auto settings = iox::mepoo::ChunkSettings::create(static_cast<std::uint32_t>(payload),
                                                    kPayloadAlignment, sizeof(SampleUserHeader),
                                                    kUserHeaderAlignment);
  if (settings.has_error()) return 0;
  return settings.value().requiredChunkSize();
}

std::uint64_t IceoryxSession::max_payload_of_config() const noexcept {
  if (!roudi_ours_) return 0;
  // The largest payload whose chunk (header + user header + payload) fits the largest pool.
  const std::uint64_t chunk = roudi::kConfigLargestChunkPayload + sizeof(iox::mepoo::ChunkHeader);
  std::uint64_t lo = 0;
  std::uint64_t hi = roudi::kConfigLargestChunkPayload;
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo + 1) / 2;
    const std::uint64_t need = required_chunk_size(mid);
    if (need != 0 && need <= chunk) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

Result<std::shared_ptr<IceoryxSession>> open_iceoryx_session(std::string_view bus_name) {
  auto id = to_id("bus", bus_name);
  if (!id) return tl::unexpected(std::move(id.error()));
  auto ours = ensure_runtime();
  if (!ours) return tl::unexpected(std::move(ours.error()));
  return std::make_shared<IceoryxSession>(std::string(bus_name), *ours);
}

// ---- ListenerHub ------------------------------------------------------------------------------

Result<std::shared_ptr<ListenerHub>> ListenerHub::get() {
  std::lock_guard lock(g_hub_mutex);
  if (auto hub = g_hub.lock()) return hub;
  std::shared_ptr<ListenerHub> hub(new ListenerHub());
  // A new thread takes its creator's name: the Listener's thread is created inside one named
  // "sym-iox-listen" (iceoryx 2.0 does not name it).
  std::thread maker([&hub] {
    ::pthread_setname_np(::pthread_self(), "sym-iox-listen");
    hub->listener_ = std::make_unique<iox::popo::Listener>();
  });
  maker.join();
  g_hub = hub;
  return hub;
}

ListenerHub::~ListenerHub() = default;

Result<void> ListenerHub::attach(iox::popo::UntypedSubscriber& subscriber, NotifyState& state) {
  std::lock_guard lock(mutex_);
  auto attached = listener_->attachEvent(
      subscriber, iox::popo::SubscriberEvent::DATA_RECEIVED,
      iox::popo::createNotificationCallback(on_data_received, state));
  if (attached.has_error()) {
    return tl::unexpected(Error{
        Errc::unavailable,
        "iceoryx: cannot attach the subscriber to the notify listener (" +
            std::string(attached.get_error() == iox::popo::ListenerError::LISTENER_FULL
                            ? "the listener is full: at most " +
                                  std::to_string(iox::MAX_NUMBER_OF_EVENTS_PER_LISTENER) +
                                  " notifying subscribers per process"
                            : "listener error " +
                                  std::to_string(static_cast<int>(attached.get_error()))) +
            ")"});
  }
  ++attached_;
  return {};
}

void ListenerHub::detach(iox::popo::UntypedSubscriber& subscriber) noexcept {
  std::lock_guard lock(mutex_);
  // Synchronous: a callback running for this subscriber finishes first.
  listener_->detachEvent(subscriber, iox::popo::SubscriberEvent::DATA_RECEIVED);
  --attached_;
}

void ListenerHub::fire(NotifyState& state) noexcept {
  if (!state.armed.exchange(false, std::memory_order_seq_cst)) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t w = ::write(state.fd, &one, sizeof one);
  state.written.fetch_add(1, std::memory_order_release);
}

Error unsupported(std::string_view topic, const std::string& what) {
  return Error{Errc::unsupported, "iceoryx topic '" + std::string(topic) + "': " + what};
}

Result<void> check_max_payload(const IceoryxSession& session, std::string_view topic,
                               const TopicType& type, const TopicOptions& options) {
  if (type.size != 0 && options.max_payload < type.size) {
    return tl::unexpected(Error{Errc::invalid_argument,
                                "iceoryx topic '" + std::string(topic) + "': max_payload " +
                                    std::to_string(options.max_payload) +
                                    " is smaller than its type (" + std::to_string(type.size) +
                                    " bytes)"});
  }
  const std::uint64_t config_limit = session.max_payload_of_config();
  if (config_limit != 0 && options.max_payload > config_limit) {
    return tl::unexpected(unsupported(
        topic, "max_payload " + std::to_string(options.max_payload) +
                   " exceeds the largest sample RouDi's memory pools hold (" +
                   std::to_string(config_limit) + " bytes, engine/src/iceoryx/roudi_config.toml)"));
  }
  return {};
}

}  // namespace symphony::engine::detail
