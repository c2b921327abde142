// HandoffOwner: allocates and seals memfds, and serves them over a SOCK_SEQPACKET socket from its
// "sym-handoff" thread. Every byte a peer sends is untrusted: anything but a well-formed request
// is counted and the connection closed; a peer that does not read its answers is dropped (every
// send is non-blocking), so no peer can stall the thread or make it grow without bound.

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "handoff_io.hpp"
#include "symphony/controlplane/handoff.hpp"
#include "symphony/engine/process_identity.hpp"
#include "symphony/engine/runtime_dir.hpp"

namespace symphony::controlplane {
namespace {

using engine::Errc;
using engine::Error;
using handoff_io::UniqueFd;
namespace wire = handoff_wire;

constexpr unsigned kAllSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
constexpr int kListenBacklog = 128;
constexpr const char* kBindingSuffix = ".binding";
// Messages handled per connection per wake-up, so that one busy peer cannot starve the others.
constexpr int kMessagesPerWake = 64;
// A serial is (owner instance << 40) | count: unique in the process, contiguous per owner.
constexpr int kInstanceShift = 40;
constexpr std::uint64_t kCountMask = (std::uint64_t{1} << kInstanceShift) - 1;
std::atomic<std::uint64_t> g_next_instance{1};

tl::unexpected<Error> fail(Errc code, std::string message) {
  return tl::unexpected(Error{code, "handoff owner: " + std::move(message)});
}

tl::unexpected<Error> fail_errno(const std::string& what, int errno_value) {
  return tl::unexpected(handoff_io::errno_error("handoff owner: " + what, errno_value));
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 40) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// Connects to the socket at `path` without blocking: true if someone listens there.
enum class Probe { listening, refused, other };
Probe probe_socket(const std::string& path) {
  sockaddr_un address{};
  socklen_t length = 0;
  if (!handoff_io::make_address(path, address, length)) return Probe::other;
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Probe::other;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) == 0) {
    return Probe::listening;
  }
  if (errno == EAGAIN) return Probe::listening;  // a full backlog: alive
  if (errno == ECONNREFUSED) return Probe::refused;
  return Probe::other;
}

// Removes sockets of dead owners (nobody listens) from the runtime directory.
void remove_dead_sockets(const std::filesystem::path& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* entry = ::readdir(d)) {
    const std::string_view name = entry->d_name;
    if (!name.starts_with(handoff_io::kSocketPrefix) || !name.ends_with(handoff_io::kSocketSuffix)) {
      continue;
    }
    const std::string path = (dir / std::string(name)).string();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    if (probe_socket(path) == Probe::refused) ::unlink(path.c_str());
  }
  ::closedir(d);
}

}  // namespace

// ---- PayloadWriter ------------------------------------------------------------------------------

PayloadWriter::PayloadWriter(PayloadWriter&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

PayloadWriter& PayloadWriter::operator=(PayloadWriter&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

PayloadWriter::~PayloadWriter() { reset(); }

void PayloadWriter::reset() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  data_ = nullptr;
  size_ = 0;
}

// ---- the owner's state ----------------------------------------------------------------------------

struct HandoffOwner::Impl {
  struct Payload {
    UniqueFd fd;
    std::uint64_t size = 0;
    bool retired = false;
    std::uint64_t fetched = 0;
    std::uint64_t released = 0;
  };
  struct Connection {
    UniqueFd fd;
    std::unordered_map<std::uint64_t, std::uint64_t> holds;  // serial -> fetches not released
    std::uint64_t hold_count = 0;
  };

  std::string endpoint;
  dev_t socket_dev = 0;
  ino_t socket_ino = 0;
  HandoffOwnerOptions options;
  engine::ProcessIdentity self;
  std::uint64_t instance = 0;
  UniqueFd listen_fd;
  UniqueFd epoll_fd;
  UniqueFd wake_fd;
  std::thread thread;

  mutable std::mutex mutex;  // guards everything below (the API and the thread both use it)
  std::unordered_map<std::uint64_t, Payload> payloads;
  std::uint64_t issued = 0;  // count part of the last serial issued
  HandoffCounters counters;

  // The thread's own state (no lock).
  std::unordered_map<int, Connection> connections;

  ~Impl() { stop(); }

  void stop() noexcept {
    if (thread.joinable()) {
      const std::uint64_t one = 1;
      while (::write(wake_fd.get(), &one, sizeof one) < 0 && errno == EINTR) {
      }
      thread.join();
    }
    connections.clear();
    // Remove the socket if it is still the one we bound (a successor may have replaced it).
    struct stat st {};
    if (!endpoint.empty() && ::lstat(endpoint.c_str(), &st) == 0 && st.st_dev == socket_dev &&
        st.st_ino == socket_ino) {
      ::unlink(endpoint.c_str());
    }
  }

  // ---- under the lock ----
  void reclaim_if_done(std::unordered_map<std::uint64_t, Payload>::iterator it) {
    Payload& p = it->second;
    if (p.retired && p.fetched == p.released) {
      payloads.erase(it);  // closes the memfd
      ++counters.reclaimed;
      --counters.live;
    }
  }

  void give_back(std::uint64_t serial, std::uint64_t count, bool by_disconnect) {
    counters.released += count;
    if (by_disconnect) counters.released_by_disconnect += count;
    const auto it = payloads.find(serial);
    if (it == payloads.end()) return;
    it->second.released += count;
    reclaim_if_done(it);
  }

  // ---- the thread ----
  void run() noexcept {
    ::pthread_setname_np(::pthread_self(), "sym-handoff");
    epoll_event events[32];
    for (;;) {
      const int n = ::epoll_wait(epoll_fd.get(), events, 32, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;  // cannot happen with valid fds; the owner then serves nobody, which is safe
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == wake_fd.get()) return;
        if (fd == listen_fd.get()) {
          accept_all();
        } else {
          serve(fd, events[i].events);
        }
      }
    }
  }

  void count_refused() {
    const std::lock_guard lock(mutex);
    ++counters.refused;
  }

  void accept_all() noexcept {
    for (;;) {
      UniqueFd fd(::accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd.valid()) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN, or out of fds (EMFILE): the backlog waits for the next round
      }
      ucred peer{};
      socklen_t peer_length = sizeof peer;
      const bool same_user =
          ::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &peer_length) == 0 &&
          (peer.uid == ::geteuid() || peer.uid == 0);
      if (!same_user || connections.size() >= options.max_connections) {
        count_refused();
        continue;  // closed
      }
      epoll_event event{};
      event.events = EPOLLIN | EPOLLRDHUP;
      event.data.fd = fd.get();
      if (::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, fd.get(), &event) != 0) {
        count_refused();
        continue;
      }
      try {
        Connection connection;
        const int raw = fd.get();
        connection.fd = std::move(fd);
        connections.emplace(raw, std::move(connection));
      } catch (...) {
        continue;  // out of memory: the fd closes (and leaves epoll)
      }
      const std::lock_guard lock(mutex);
      ++counters.connections;
      ++counters.connections_total;
    }
  }

  // Closes a connection; everything it held is given back.
  void drop(int fd) noexcept {
    const auto it = connections.find(fd);
    if (it == connections.end()) return;
    ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, fd, nullptr);
    {
      const std::lock_guard lock(mutex);
      for (const auto& [serial, count] : it->second.holds) give_back(serial, count, true);
      --counters.connections;
    }
    connections.erase(it);
  }

  void answer(int fd, wire::Status status, std::uint64_t serial, std::uint64_t size,
              int pass_fd) noexcept {
    wire::Reply reply;
    reply.status = static_cast<std::uint16_t>(status);
    reply.serial = serial;
    reply.size = size;
    (void)handoff_io::send_message(fd, &reply, sizeof reply, pass_fd);
  }

  void serve(int fd, std::uint32_t events) noexcept {
    const auto it = connections.find(fd);
    if (it == connections.end()) return;
    Connection& connection = it->second;
    for (int m = 0; m < kMessagesPerWake; ++m) {
      alignas(8) unsigned char buffer[wire::kMessageSize * 2];
      handoff_io::Received in = handoff_io::receive_message(fd, buffer, sizeof buffer, 1);
      if (in.error == EAGAIN || in.error == EWOULDBLOCK) {
        if ((events & (EPOLLHUP | EPOLLERR)) != 0) drop(fd);
        return;
      }
      if (in.error != 0 || in.closed) {
        drop(fd);
        return;
      }
      wire::Request request;
      if (in.bytes == sizeof request) std::memcpy(&request, buffer, sizeof request);
      const bool well_formed = in.fd_count == 0 && !in.control_lost && !in.truncated &&
                               in.bytes == sizeof request && request.magic == wire::kMagic &&
                               request.version == wire::kVersion && request.reserved == 0 &&
                               (request.op == static_cast<std::uint16_t>(wire::Op::fetch) ||
                                request.op == static_cast<std::uint16_t>(wire::Op::release));
      if (!well_formed) {
        count_refused();
        answer(fd, wire::Status::bad_request, 0, 0, -1);
        drop(fd);
        return;
      }
      const bool ours = request.pid == static_cast<std::uint32_t>(self.pid) &&
                        request.start_time == self.start_time &&
                        (request.serial >> kInstanceShift) == instance;
      if (request.op == static_cast<std::uint16_t>(wire::Op::release)) {
        const auto hold = connection.holds.find(request.serial);
        if (!ours || hold == connection.holds.end()) {
          count_refused();  // not held by this connection: ignored
          continue;
        }
        if (--hold->second == 0) connection.holds.erase(hold);
        --connection.hold_count;
        const std::lock_guard lock(mutex);
        give_back(request.serial, 1, false);
        continue;
      }
      if (!fetch(connection, request, ours)) {
        drop(fd);
        return;
      }
    }
  }

  // Answers one fetch. False if the connection must be dropped (it does not take our answers).
  bool fetch(Connection& connection, const wire::Request& request, bool ours) noexcept {
    const int fd = connection.fd.get();
    std::unique_lock lock(mutex);
    const auto it = ours ? payloads.find(request.serial) : payloads.end();
    if (it == payloads.end() || it->second.retired) {
      // Issued by us and no longer served: retired (and maybe reclaimed already).
      const bool was_ours = ours && (request.serial & kCountMask) != 0 &&
                            (request.serial & kCountMask) <= issued;
      ++counters.not_found;
      lock.unlock();
      answer(fd, was_ours ? wire::Status::retired : wire::Status::unknown, request.serial, 0, -1);
      return true;
    }
    if (connection.hold_count >= options.max_holds_per_connection) {
      ++counters.refused;
      lock.unlock();
      answer(fd, wire::Status::limit, request.serial, 0, -1);
      return true;
    }
    Payload& payload = it->second;
    wire::Reply reply;
    reply.status = static_cast<std::uint16_t>(wire::Status::ok);
    reply.serial = request.serial;
    reply.size = payload.size;
    // Sent under the lock: a concurrent retire() cannot close the fd meanwhile. Never blocks.
    if (handoff_io::send_message(fd, &reply, sizeof reply, payload.fd.get()) != 0) {
      ++counters.refused;
      return false;
    }
    try {
      ++connection.holds[request.serial];
    } catch (...) {
      // Out of memory: count it as released at once (the receiver keeps its mapping anyway).
      ++payload.fetched;
      ++counters.fetched;
      give_back(request.serial, 1, false);
      return true;
    }
    ++connection.hold_count;
    ++payload.fetched;
    ++counters.fetched;
    return true;
  }
};

// ---- HandoffOwner -------------------------------------------------------------------------------

HandoffOwner::HandoffOwner(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
HandoffOwner::HandoffOwner(HandoffOwner&&) noexcept = default;
HandoffOwner& HandoffOwner::operator=(HandoffOwner&&) noexcept = default;
HandoffOwner::~HandoffOwner() = default;

engine::Result<HandoffOwner> HandoffOwner::create(std::string_view bus, std::string_view name,
                                                  const HandoffOwnerOptions& options) {
  if (!valid_name(name)) {
    return fail(Errc::invalid_argument,
                "name '" + std::string(name) + "' must be 1-40 letters, digits, '-' or '_'");
  }
  if (options.max_connections == 0 || options.max_holds_per_connection == 0) {
    return fail(Errc::invalid_argument, "max_connections and max_holds_per_connection must be > 0");
  }
  auto dir = engine::ensure_runtime_dir(bus, options.runtime_dir);
  if (!dir) return tl::unexpected(dir.error());

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->self = engine::self_identity();
  if (impl->self.start_time == 0) {
    return fail(Errc::system_error, "cannot read this process's start time from /proc/self/stat");
  }
  impl->instance = g_next_instance.fetch_add(1, std::memory_order_relaxed);
  const std::string path = (*dir / (std::string(handoff_io::kSocketPrefix) + std::string(name) +
                                    "-" + std::to_string(impl->self.pid) +
                                    std::string(handoff_io::kSocketSuffix)))
                               .string();
  sockaddr_un address{};
  socklen_t address_length = 0;
  if (!handoff_io::make_address(path, address, address_length)) {
    return fail(Errc::invalid_argument,
                "socket path " + path + " is " + std::to_string(path.size()) +
                    " bytes; a Unix socket path holds at most " +
                    std::to_string(handoff_io::kMaxSocketPath) +
                    " (use a shorter bus name, owner name or runtime directory)");
  }
  remove_dead_sockets(*dir);
  if (probe_socket(path) == Probe::listening) {
    return fail(Errc::invalid_argument,
                "an owner named '" + std::string(name) + "' already listens at " + path);
  }

  // Bound and listening under a name no sweep looks at, then renamed into place: another
  // owner's sweep never sees ours bound but not yet listening (which looks dead, and would be
  // removed).
  const std::string binding = path + kBindingSuffix;
  sockaddr_un binding_address{};
  socklen_t binding_length = 0;
  if (!handoff_io::make_address(binding, binding_address, binding_length)) {
    return fail(Errc::invalid_argument,
                "socket path " + binding + " is too long for a Unix socket (use a shorter bus "
                "name, owner name or runtime directory)");
  }
  impl->listen_fd.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!impl->listen_fd.valid()) return fail_errno("socket", errno);
  ::unlink(binding.c_str());  // ours from an earlier attempt in this process, or a dead one's
  if (::bind(impl->listen_fd.get(), reinterpret_cast<const sockaddr*>(&binding_address),
             binding_length) != 0) {
    return fail_errno("bind " + binding, errno);
  }
  if (::listen(impl->listen_fd.get(), kListenBacklog) != 0) {
    const int e = errno;
    ::unlink(binding.c_str());
    return fail_errno("listen", e);
  }
  if (::rename(binding.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(binding.c_str());
    return fail_errno("rename " + binding + " to " + path, e);
  }
  impl->endpoint = path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    impl->socket_dev = st.st_dev;
    impl->socket_ino = st.st_ino;
  }

  impl->epoll_fd.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!impl->epoll_fd.valid()) return fail_errno("epoll_create1", errno);
  impl->wake_fd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl->wake_fd.valid()) return fail_errno("eventfd", errno);
  for (const int fd : {impl->listen_fd.get(), impl->wake_fd.get()}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (::epoll_ctl(impl->epoll_fd.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
      return fail_errno("epoll_ctl", errno);
    }
  }
  try {
    Impl* raw = impl.get();
    impl->thread = std::thread([raw] { raw->run(); });
  } catch (const std::system_error& e) {
    return fail(Errc::system_error, std::string("cannot start the sym-handoff thread: ") + e.what());
  }
  return HandoffOwner(std::move(impl));
}

engine::Result<PayloadWriter> HandoffOwner::allocate(std::uint64_t size) {
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (size == 0 || size > kMax) {
    return fail(Errc::invalid_argument,
                "cannot allocate a payload of " + std::to_string(size) + " bytes (1 to 2^63-1)");
  }
  if (size > std::numeric_limits<std::size_t>::max()) {
    return fail(Errc::invalid_argument, "payload too large for this address space");
  }
  UniqueFd fd(::memfd_create("symphony-handoff", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return fail_errno("memfd_create", errno);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return fail_errno("ftruncate to " + std::to_string(size) + " bytes", errno);
  }
  // The size is final from now on; the contents once seal() adds F_SEAL_WRITE.
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    return fail_errno("fcntl(F_ADD_SEALS)", errno);
  }
  void* data = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ | PROT_WRITE, MAP_SHARED,
                      fd.get(), 0);
  if (data == MAP_FAILED) return fail_errno("mmap " + std::to_string(size) + " bytes", errno);
  // A fork() must not copy the writable mapping into the child: seal() could not add
  // F_SEAL_WRITE while the child lives.
  ::madvise(data, static_cast<std::size_t>(size), MADV_DONTFORK);
  PayloadWriter writer;
  writer.fd_ = fd.release();
  writer.data_ = static_cast<std::byte*>(data);
  writer.size_ = size;
  const std::lock_guard lock(impl_->mutex);
  ++impl_->counters.allocated;
  return writer;
}

engine::Result<HandoffDescriptor> HandoffOwner::seal(PayloadWriter&& writer_in,
                                                     const SealOptions& options) {
  PayloadWriter writer(std::move(writer_in));
  if (!writer.valid()) return fail(Errc::invalid_argument, "seal: the writer holds no payload");
  const std::uint64_t size = writer.size_;
  if (options.offset >= size) {
    return fail(Errc::invalid_argument, "seal: offset " + std::to_string(options.offset) +
                                            " is outside the payload of " + std::to_string(size) +
                                            " bytes");
  }
  const std::uint64_t length = options.length.value_or(size - options.offset);
  if (length == 0 || length > size - options.offset) {
    return fail(Errc::invalid_argument, "seal: range offset " + std::to_string(options.offset) +
                                            " length " + std::to_string(length) +
                                            " is outside the payload of " + std::to_string(size) +
                                            " bytes (or empty)");
  }
  std::optional<std::uint64_t> checksum;
  if (options.checksum) {
    checksum = handoff_checksum(writer.bytes().subspan(static_cast<std::size_t>(options.offset),
                                                       static_cast<std::size_t>(length)));
  }
  // F_SEAL_WRITE needs every writable shared mapping gone.
  ::munmap(writer.data_, static_cast<std::size_t>(size));
  writer.data_ = nullptr;
  if (::fcntl(writer.fd_, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    const int e = errno;
    return fail_errno(e == EBUSY ? "seal: another writable mapping of the payload exists "
                                   "(fcntl(F_ADD_SEALS, F_SEAL_WRITE))"
                                 : "seal: fcntl(F_ADD_SEALS)",
                      e);
  }
  const int seals = ::fcntl(writer.fd_, F_GET_SEALS);
  if (seals < 0 || (static_cast<unsigned>(seals) & kAllSeals) != kAllSeals) {
    return fail(Errc::system_error, "seal: the kernel did not keep the seals");
  }
  Impl::Payload payload;
  payload.fd.reset(std::exchange(writer.fd_, -1));
  payload.size = size;
  writer.size_ = 0;

  HandoffDescriptor descriptor;
  descriptor.owner = impl_->endpoint;
  descriptor.offset = options.offset;
  descriptor.length = length;
  descriptor.xxh3 = checksum;
  descriptor.id.pid = static_cast<std::uint32_t>(impl_->self.pid);
  descriptor.id.start_time = impl_->self.start_time;
  const std::lock_guard lock(impl_->mutex);
  if (impl_->issued >= kCountMask) {
    return fail(Errc::unavailable, "seal: this owner has issued all 2^40 serials");
  }
  const std::uint64_t serial = (impl_->instance << kInstanceShift) | ++impl_->issued;
  descriptor.id.serial = serial;
  impl_->payloads.emplace(serial, std::move(payload));
  ++impl_->counters.sealed;
  ++impl_->counters.live;
  return descriptor;
}

engine::Result<void> HandoffOwner::retire(const PayloadId& id) {
  const bool ours = id.pid == static_cast<std::uint32_t>(impl_->self.pid) &&
                    id.start_time == impl_->self.start_time;
  const std::lock_guard lock(impl_->mutex);
  const auto it = ours ? impl_->payloads.find(id.serial) : impl_->payloads.end();
  if (it == impl_->payloads.end()) {
    return fail(Errc::not_found, "retire: no live payload " + id.to_string() + " here");
  }
  if (it->second.retired) return {};
  it->second.retired = true;
  ++impl_->counters.retired;
  impl_->reclaim_if_done(it);
  return {};
}

std::optional<PayloadStatus> HandoffOwner::status(const PayloadId& id) const {
  const std::lock_guard lock(impl_->mutex);
  if (id.pid != static_cast<std::uint32_t>(impl_->self.pid) ||
      id.start_time != impl_->self.start_time) {
    return std::nullopt;
  }
  const auto it = impl_->payloads.find(id.serial);
  if (it == impl_->payloads.end()) return std::nullopt;
  return PayloadStatus{it->second.retired, it->second.size, it->second.fetched,
                       it->second.released};
}

HandoffCounters HandoffOwner::counters() const {
  const std::lock_guard lock(impl_->mutex);
  return impl_->counters;
}

const std::string& HandoffOwner::endpoint() const noexcept { return impl_->endpoint; }

}  // namespace symphony::controlplane
