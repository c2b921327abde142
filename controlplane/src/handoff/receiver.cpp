// HandoffReceiver: fetches a payload's memfd from its owner, refuses anything that is not a memfd
// carrying all four seals, checks the descriptor against the file's size, maps it read-only and
// verifies its checksum. The owner is as untrusted as the descriptor: every answer is checked,
// every fd that comes with one is closed unless it is the one we keep, and every wait is bounded.

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "handoff_io.hpp"
#include "symphony/controlplane/handoff.hpp"
#include "symphony/engine/runtime_dir.hpp"

namespace symphony::controlplane {
namespace {

using engine::Errc;
using engine::Error;
using handoff_io::UniqueFd;
using Clock = std::chrono::steady_clock;
namespace wire = handoff_wire;

constexpr unsigned kAllSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
// How long release() waits for room in the socket before it gives up on telling the owner.
constexpr auto kReleaseWait = std::chrono::milliseconds(500);
// How long open() polls for the owner's answer before it sleeps.
constexpr auto kSpinForAnswer = std::chrono::microseconds(50);

tl::unexpected<Error> fail(Errc code, const HandoffDescriptor& d, std::string message) {
  return tl::unexpected(
      Error{code, "handoff payload " + d.id.to_string() + " from " + d.owner + ": " + message});
}

std::string seal_names(unsigned seals) {
  std::string out;
  const auto add = [&](unsigned bit, const char* name) {
    if ((seals & bit) == 0) return;
    if (!out.empty()) out += '|';
    out += name;
  };
  add(F_SEAL_SHRINK, "SHRINK");
  add(F_SEAL_GROW, "GROW");
  add(F_SEAL_WRITE, "WRITE");
  add(F_SEAL_SEAL, "SEAL");
  return out.empty() ? "none" : out;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return 0;
  return left.count() > 1'000'000 ? 1'000'000 : static_cast<int>(left.count());
}

}  // namespace

namespace detail {

struct ReceiverStats {
  std::atomic<std::uint64_t> opened{0};
  std::atomic<std::uint64_t> released{0};
  std::atomic<std::uint64_t> failed{0};
};

// One connection to one owner, shared by the receiver and the payloads fetched through it. Only
// fetches need the mutex (a request and its answer); releases are single messages that need no
// answer, sent by any thread (a SOCK_SEQPACKET send is atomic).
struct OwnerConnection {
  UniqueFd fd;
  std::shared_ptr<ReceiverStats> stats;
  std::mutex fetch_mutex;
  std::atomic<bool> broken{false};

  void send_release(std::uint64_t pid, std::uint64_t start_time, std::uint64_t serial) noexcept {
    if (broken.load(std::memory_order_acquire)) return;
    wire::Request request;
    request.op = static_cast<std::uint16_t>(wire::Op::release);
    request.pid = static_cast<std::uint32_t>(pid);
    request.start_time = start_time;
    request.serial = serial;
    const auto deadline = Clock::now() + kReleaseWait;
    for (;;) {
      const int e = handoff_io::send_message(fd.get(), &request, sizeof request, -1);
      if (e == 0) return;
      if (e != EAGAIN && e != EWOULDBLOCK) {
        broken.store(true, std::memory_order_release);  // the owner is gone: nobody to tell
        return;
      }
      pollfd p{fd.get(), POLLOUT, 0};
      const int wait = remaining_ms(deadline);
      if (wait == 0 || ::poll(&p, 1, wait) == 0) {
        // The owner does not read: hang up, which gives back everything this connection held
        // (our mappings stay valid: they do not depend on the owner).
        broken.store(true, std::memory_order_release);
        ::shutdown(fd.get(), SHUT_RDWR);
        return;
      }
    }
  }
};

}  // namespace detail

// ---- MappedPayload ------------------------------------------------------------------------------

MappedPayload::MappedPayload(MappedPayload&& other) noexcept
    : connection_(std::move(other.connection_)),
      descriptor_(std::move(other.descriptor_)),
      map_base_(std::exchange(other.map_base_, nullptr)),
      map_length_(std::exchange(other.map_length_, 0)),
      data_(std::exchange(other.data_, nullptr)),
      length_(std::exchange(other.length_, 0)),
      verified_(std::exchange(other.verified_, false)) {}

MappedPayload& MappedPayload::operator=(MappedPayload&& other) noexcept {
  if (this != &other) {
    release();
    connection_ = std::move(other.connection_);
    descriptor_ = std::move(other.descriptor_);
    map_base_ = std::exchange(other.map_base_, nullptr);
    map_length_ = std::exchange(other.map_length_, 0);
    data_ = std::exchange(other.data_, nullptr);
    length_ = std::exchange(other.length_, 0);
    verified_ = std::exchange(other.verified_, false);
  }
  return *this;
}

MappedPayload::~MappedPayload() { release(); }

void MappedPayload::release() noexcept {
  if (map_base_ != nullptr) {
    ::munmap(map_base_, map_length_);
    map_base_ = nullptr;
    map_length_ = 0;
    data_ = nullptr;
    length_ = 0;
  }
  if (connection_) {
    connection_->send_release(descriptor_.id.pid, descriptor_.id.start_time,
                              descriptor_.id.serial);
    connection_->stats->released.fetch_add(1, std::memory_order_relaxed);
    connection_.reset();
  }
}

// ---- HandoffReceiver ----------------------------------------------------------------------------

struct HandoffReceiver::Impl {
  std::filesystem::path runtime_dir;
  std::shared_ptr<detail::ReceiverStats> stats = std::make_shared<detail::ReceiverStats>();
  std::mutex mutex;  // guards `connections`
  std::unordered_map<std::string, std::shared_ptr<detail::OwnerConnection>> connections;

  // A connected socket to the owner at `path`, or Errc::unavailable saying why not.
  engine::Result<std::shared_ptr<detail::OwnerConnection>> connect(const HandoffDescriptor& d,
                                                                   Clock::time_point deadline) {
    sockaddr_un address{};
    socklen_t length = 0;
    if (!handoff_io::make_address(d.owner, address, length)) {
      return fail(Errc::invalid_argument, d, "the owner path is not a valid socket path");
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return tl::unexpected(handoff_io::errno_error("handoff: socket", errno));
    for (;;) {
      if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) == 0) break;
      const int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN && Clock::now() < deadline) {
        // The owner's backlog is full: it is alive but busy.
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      if (e == ENOENT) return fail(Errc::unavailable, d, "owner gone: no socket at that path");
      if (e == ECONNREFUSED) {
        return fail(Errc::unavailable, d, "owner gone: nobody listens on its socket");
      }
      if (e == EAGAIN) return fail(Errc::unavailable, d, "owner busy: connection timed out");
      return fail(Errc::unavailable, d, std::string("cannot connect to the owner: ") +
                                            std::strerror(e));
    }
    ucred peer{};
    socklen_t peer_length = sizeof peer;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &peer_length) != 0 ||
        (peer.uid != ::geteuid() && peer.uid != 0)) {
      return fail(Errc::invalid_layout, d, "the owner's socket belongs to another user");
    }
    auto connection = std::make_shared<detail::OwnerConnection>();
    connection->fd = std::move(fd);
    connection->stats = stats;
    return connection;
  }

  std::shared_ptr<detail::OwnerConnection> cached(const std::string& path) {
    const std::lock_guard lock(mutex);
    const auto it = connections.find(path);
    if (it == connections.end()) return nullptr;
    if (it->second->broken.load(std::memory_order_acquire)) {
      connections.erase(it);
      return nullptr;
    }
    return it->second;
  }

  void remember(const std::string& path, const std::shared_ptr<detail::OwnerConnection>& c) {
    try {
      const std::lock_guard lock(mutex);
      connections[path] = c;
    } catch (...) {
      // Not cached: the next open connects again.
    }
  }

  void forget(const std::string& path, const detail::OwnerConnection* c) {
    const std::lock_guard lock(mutex);
    const auto it = connections.find(path);
    if (it != connections.end() && it->second.get() == c) connections.erase(it);
  }
};

HandoffReceiver::HandoffReceiver(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
HandoffReceiver::HandoffReceiver(HandoffReceiver&&) noexcept = default;
HandoffReceiver& HandoffReceiver::operator=(HandoffReceiver&&) noexcept = default;
HandoffReceiver::~HandoffReceiver() = default;

engine::Result<HandoffReceiver> HandoffReceiver::create(std::string_view bus,
                                                        const HandoffReceiverOptions& options) {
  auto dir = engine::ensure_runtime_dir(bus, options.runtime_dir);
  if (!dir) return tl::unexpected(dir.error());
  auto impl = std::make_shared<Impl>();
  impl->runtime_dir = *dir;
  return HandoffReceiver(std::move(impl));
}

const std::filesystem::path& HandoffReceiver::runtime_dir() const noexcept {
  return impl_->runtime_dir;
}

ReceiverCounters HandoffReceiver::counters() const {
  return ReceiverCounters{impl_->stats->opened.load(std::memory_order_relaxed),
                          impl_->stats->released.load(std::memory_order_relaxed),
                          impl_->stats->failed.load(std::memory_order_relaxed)};
}

namespace {

// The answer to one fetch: the reply and the fd that came with it (at most one is kept).
struct Fetched {
  wire::Reply reply;
  UniqueFd fd;
};

enum class SendOutcome { sent, peer_gone, timed_out };

SendOutcome send_request(int fd, const wire::Request& request, Clock::time_point deadline) {
  for (;;) {
    const int e = handoff_io::send_message(fd, &request, sizeof request, -1);
    if (e == 0) return SendOutcome::sent;
    if (e != EAGAIN && e != EWOULDBLOCK) return SendOutcome::peer_gone;
    pollfd p{fd, POLLOUT, 0};
    const int wait = remaining_ms(deadline);
    if (wait == 0) return SendOutcome::timed_out;
    ::poll(&p, 1, wait);
  }
}

}  // namespace

engine::Result<MappedPayload> HandoffReceiver::open(const HandoffDescriptor& d,
                                                    const OpenOptions& options) {
  auto result = [&]() -> engine::Result<MappedPayload> {
    if (auto valid = d.validate(); !valid) return tl::unexpected(valid.error());
    if (options.verify == Verify::required && !d.xxh3) {
      return fail(Errc::invalid_argument, d, "no checksum, and Verify::required asks for one");
    }
    // Only sockets of our bus: a descriptor cannot make us connect anywhere else.
    const std::filesystem::path owner_path(d.owner);
    const std::string file = owner_path.filename().string();
    if ((impl_->runtime_dir / file).string() != d.owner ||
        !file.starts_with(handoff_io::kSocketPrefix) || !file.ends_with(handoff_io::kSocketSuffix)) {
      return fail(Errc::invalid_argument, d,
                  "the owner is not a handoff socket of this bus's runtime directory " +
                      impl_->runtime_dir.string());
    }
    const auto deadline = Clock::now() + options.timeout;

    wire::Request request;
    request.op = static_cast<std::uint16_t>(wire::Op::fetch);
    request.pid = d.id.pid;
    request.start_time = d.id.start_time;
    request.serial = d.id.serial;

    // Send the fetch, on the cached connection if there is one (reconnecting once if the owner
    // closed it: it may have restarted), then wait for the answer.
    std::shared_ptr<detail::OwnerConnection> connection = impl_->cached(d.owner);
    const bool was_cached = connection != nullptr;
    if (!connection) {
      auto made = impl_->connect(d, deadline);
      if (!made) return tl::unexpected(made.error());
      connection = std::move(*made);
      impl_->remember(d.owner, connection);
    }
    std::unique_lock fetch_lock(connection->fetch_mutex);
    SendOutcome sent = send_request(connection->fd.get(), request, deadline);
    if (sent == SendOutcome::peer_gone && was_cached) {
      connection->broken.store(true, std::memory_order_release);
      impl_->forget(d.owner, connection.get());
      fetch_lock.unlock();
      auto made = impl_->connect(d, deadline);
      if (!made) return tl::unexpected(made.error());
      connection = std::move(*made);
      impl_->remember(d.owner, connection);
      fetch_lock = std::unique_lock(connection->fetch_mutex);
      sent = send_request(connection->fd.get(), request, deadline);
    }
    const auto give_up = [&](Errc code, std::string why) {
      // The connection is out of step with the owner (or the owner with us): never reuse it.
      connection->broken.store(true, std::memory_order_release);
      impl_->forget(d.owner, connection.get());
      return fail(code, d, std::move(why));
    };
    if (sent == SendOutcome::peer_gone) {
      return give_up(Errc::unavailable, "owner gone: it closed the connection");
    }
    if (sent == SendOutcome::timed_out) {
      return give_up(Errc::unavailable, "the owner did not take the request in time");
    }

    Fetched fetched;
    // The answer usually comes within tens of microseconds: look for it without sleeping first
    // (a sleeping core takes ~30 us to wake in a VM), then sleep in poll().
    const auto spin_until = Clock::now() + kSpinForAnswer;
    for (;;) {
      pollfd p{connection->fd.get(), POLLIN, 0};
      const bool spinning = Clock::now() < spin_until;
      const int wait = spinning ? 0 : remaining_ms(deadline);
      const int ready = ::poll(&p, 1, wait);
      if (ready == 0 && spinning) {
        ::sched_yield();
        continue;
      }
      if (ready < 0 && errno != EINTR) {
        return give_up(Errc::system_error, std::string("poll: ") + std::strerror(errno));
      }
      if (ready == 0 && wait == 0) {
        return give_up(Errc::unavailable, "the owner did not answer within " +
                                              std::to_string(options.timeout.count()) + " ms");
      }
      alignas(8) unsigned char buffer[wire::kMessageSize * 2];
      handoff_io::Received in =
          handoff_io::receive_message(connection->fd.get(), buffer, sizeof buffer, 4);
      if (in.error == EAGAIN || in.error == EWOULDBLOCK || in.error == EINTR) continue;
      if (in.error != 0) {
        return give_up(Errc::unavailable,
                       std::string("owner gone: ") + std::strerror(in.error));
      }
      if (in.closed) return give_up(Errc::unavailable, "owner gone: it closed the connection");
      if (in.truncated || in.bytes != sizeof fetched.reply) {
        return give_up(Errc::invalid_layout, "malformed answer from the owner (" +
                                                 std::to_string(in.bytes) + " bytes)");
      }
      std::memcpy(&fetched.reply, buffer, sizeof fetched.reply);
      if (fetched.reply.magic != wire::kMagic || fetched.reply.version != wire::kVersion ||
          fetched.reply.serial != d.id.serial) {
        return give_up(Errc::invalid_layout, "malformed answer from the owner (magic, version or "
                                             "serial)");
      }
      const auto status = static_cast<wire::Status>(fetched.reply.status);
      if (status != wire::Status::ok) {
        switch (status) {
          case wire::Status::unknown:
            return fail(Errc::not_found, d, "the owner does not know this id");
          case wire::Status::retired:
            return fail(Errc::not_found, d, "retired by its owner (no longer served)");
          case wire::Status::limit:
            return fail(Errc::unavailable, d,
                        "the owner refuses: this receiver holds too many of its payloads");
          case wire::Status::bad_request:
            return give_up(Errc::invalid_layout, "the owner calls our request malformed");
          default:
            return give_up(Errc::invalid_layout,
                           "unknown status " + std::to_string(fetched.reply.status) +
                               " from the owner");
        }
      }
      if (in.fd_count != 1 || in.control_lost) {
        fetch_lock.unlock();
        // The owner said ok, so it counts us as a holder: give it back.
        connection->send_release(d.id.pid, d.id.start_time, d.id.serial);
        return fail(Errc::invalid_layout, d,
                    "foreign payload: the owner's answer carries " +
                        std::to_string(in.fd_count) + (in.control_lost ? "+" : "") +
                        " file descriptors instead of one");
      }
      fetched.fd = std::move(in.fds[0]);
      break;
    }
    fetch_lock.unlock();

    // From here on the owner counts us as a holder: every failure gives the fetch back.
    MappedPayload mapped;
    mapped.connection_ = connection;
    mapped.descriptor_ = d;
    const auto refuse = [&](Errc code, std::string why) {
      if (mapped.map_base_ != nullptr) ::munmap(mapped.map_base_, mapped.map_length_);
      mapped.map_base_ = nullptr;
      mapped.connection_.reset();
      connection->send_release(d.id.pid, d.id.start_time, d.id.serial);
      return fail(code, d, std::move(why));
    };

    struct stat st {};
    if (::fstat(fetched.fd.get(), &st) != 0) {
      return refuse(Errc::system_error, std::string("fstat: ") + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
      return refuse(Errc::invalid_layout, "foreign payload: not a memfd (not a regular file)");
    }
    // Only memfds (shmem, hugetlbfs) support seals: any other file fails F_GET_SEALS.
    const int seals = ::fcntl(fetched.fd.get(), F_GET_SEALS);
    if (seals < 0) {
      return refuse(Errc::invalid_layout, std::string("foreign payload: not a memfd (F_GET_SEALS: ") +
                                              std::strerror(errno) + ")");
    }
    if ((static_cast<unsigned>(seals) & kAllSeals) != kAllSeals) {
      return refuse(Errc::invalid_layout,
                    "foreign payload: not sealed (has " + seal_names(static_cast<unsigned>(seals)) +
                        ", needs SHRINK|GROW|WRITE|SEAL): its owner could still truncate or "
                        "rewrite it");
    }
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    if (st.st_size < 0 || d.offset > file_size || d.length > file_size - d.offset) {
      return refuse(Errc::invalid_argument,
                    "descriptor outside the payload: offset " + std::to_string(d.offset) +
                        " + length " + std::to_string(d.length) + " > size " +
                        std::to_string(file_size));
    }
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const std::uint64_t map_offset = d.offset - d.offset % page;
    const std::uint64_t map_length = d.length + (d.offset - map_offset);
    if (map_length > SIZE_MAX) return refuse(Errc::invalid_argument, "too large to map here");
    void* base = ::mmap(nullptr, static_cast<std::size_t>(map_length), PROT_READ, MAP_SHARED,
                        fetched.fd.get(), static_cast<off_t>(map_offset));
    if (base == MAP_FAILED) {
      return refuse(Errc::system_error, "mmap " + std::to_string(map_length) +
                                            " bytes: " + std::strerror(errno));
    }
    fetched.fd.reset();  // the mapping keeps the file
    mapped.map_base_ = base;
    mapped.map_length_ = static_cast<std::size_t>(map_length);
    mapped.data_ = static_cast<const std::byte*>(base) + (d.offset - map_offset);
    mapped.length_ = static_cast<std::size_t>(d.length);
    if (d.xxh3 && options.verify != Verify::skip) {
      const std::uint64_t actual = handoff_checksum(mapped.bytes());
      if (actual != *d.xxh3) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "checksum mismatch: xxh3 %016llx, descriptor says %016llx",
                      static_cast<unsigned long long>(actual),
                      static_cast<unsigned long long>(*d.xxh3));
        return refuse(Errc::invalid_layout, buf);
      }
      mapped.verified_ = true;
    }
    impl_->stats->opened.fetch_add(1, std::memory_order_relaxed);
    return mapped;
  }();
  if (!result) impl_->stats->failed.fetch_add(1, std::memory_order_relaxed);
  return result;
}

}  // namespace symphony::controlplane
