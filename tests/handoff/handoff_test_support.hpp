#pragma once
// Test support for the handoff suites: a private runtime directory per test, payload patterns,
// a mailbox to pass descriptors between processes, raw protocol peers (a foreign client and a
// hostile fake owner) written against the documented wire format, and fd bookkeeping.

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "symphony/controlplane/handoff.hpp"
#include "test_scale.hpp"

namespace symphony::test {

namespace cp = symphony::controlplane;
using engine::Errc;

inline constexpr const char* kBus = "handoff-test";

// ---- payload contents ---------------------------------------------------------------------------

inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Word i of the pattern with `seed`, written in place (every byte depends on seed and position).
inline void fill_pattern(std::span<std::byte> bytes, std::uint64_t seed) {
  const std::size_t words = bytes.size() / 8;
  auto* out = bytes.data();
  for (std::size_t i = 0; i < words; ++i) {
    const std::uint64_t w = mix64(seed ^ i);
    std::memcpy(out + i * 8, &w, 8);
  }
  for (std::size_t i = words * 8; i < bytes.size(); ++i) {
    out[i] = static_cast<std::byte>(mix64(seed ^ i) & 0xff);
  }
}

// Index of the first byte that differs from the pattern, or nullopt.
inline std::optional<std::size_t> check_pattern(std::span<const std::byte> bytes,
                                                std::uint64_t seed, std::size_t offset = 0) {
  // `offset`: where `bytes` starts inside the filled buffer (must be a multiple of 8).
  const std::size_t first_word = offset / 8;
  const std::size_t words = bytes.size() / 8;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w;
    std::memcpy(&w, bytes.data() + i * 8, 8);
    if (w != mix64(seed ^ (first_word + i))) return i * 8;
  }
  return std::nullopt;
}

// ---- a private runtime directory ----------------------------------------------------------------

// Every test gets its own runtime directory (0700, removed in TearDown), so that tests never see
// each other's sockets.
class HandoffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    remove_stale_dirs();
    static std::atomic<unsigned> counter{0};
    dir_ = "/tmp/sym-hot-" + std::to_string(::getpid()) + "-" +
           std::to_string(counter.fetch_add(1));
    std::filesystem::remove_all(dir_);
    ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0) << std::strerror(errno);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Directories of test processes that are gone (a crash or a ctest timeout skips TearDown).
  static void remove_stale_dirs() {
    std::error_code ignored;
    for (const auto& entry : std::filesystem::directory_iterator("/tmp", ignored)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("sym-hot-", 0) != 0) continue;
      const long pid = std::strtol(name.c_str() + 8, nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
        std::filesystem::remove_all(entry.path(), ignored);
      }
    }
  }

  cp::HandoffOwner make_owner(std::string_view name = "owner", cp::HandoffOwnerOptions options = {}) {
    options.runtime_dir = dir_;
    auto owner = cp::HandoffOwner::create(kBus, name, options);
    if (!owner) throw std::runtime_error("HandoffOwner::create: " + owner.error().message);
    return std::move(*owner);
  }
  cp::HandoffReceiver make_receiver() {
    auto receiver = cp::HandoffReceiver::create(kBus, {.runtime_dir = dir_});
    if (!receiver) throw std::runtime_error("HandoffReceiver::create: " + receiver.error().message);
    return std::move(*receiver);
  }
  // A sealed payload of `size` bytes filled with the pattern of `seed`.
  static cp::HandoffDescriptor publish(cp::HandoffOwner& owner, std::uint64_t size,
                                       std::uint64_t seed, cp::SealOptions options = {}) {
    auto writer = owner.allocate(size);
    if (!writer) throw std::runtime_error("allocate: " + writer.error().message);
    fill_pattern(writer->bytes(), seed);
    auto descriptor = owner.seal(std::move(*writer), options);
    if (!descriptor) throw std::runtime_error("seal: " + descriptor.error().message);
    return *descriptor;
  }

  std::string dir_;
};

// ---- raw peers ----------------------------------------------------------------------------------

inline int connect_seqpacket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  // An owner need not read a foreign peer's garbage: a send it never takes fails after a while
  // (EAGAIN) instead of blocking the test forever.
  const timeval send_timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends `bytes` as one message, with `pass_fd` attached when >= 0. Returns errno or 0.
inline int send_raw(int socket, const void* bytes, std::size_t size, int pass_fd = -1) {
  iovec iov{const_cast<void*>(bytes), size};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int) * 2)] = {};
  if (pass_fd >= 0) {
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    if (c == nullptr) return EINVAL;
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  return ::sendmsg(socket, &message, MSG_NOSIGNAL) < 0 ? errno : 0;
}

// Sends `fds` (0-2) with `bytes` as one message.
inline int send_with_fds(int socket, const void* bytes, std::size_t size, std::vector<int> fds) {
  iovec iov{const_cast<void*>(bytes), size};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  if (!fds.empty()) {
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    if (c == nullptr) return EINVAL;
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return ::sendmsg(socket, &message, MSG_NOSIGNAL) < 0 ? errno : 0;
}

// Receives one message within `timeout`: its size (or -1 on timeout / error, 0 on hang-up); any
// fds that came with it are closed.
inline long receive_raw(int socket, void* buffer, std::size_t capacity,
                        std::chrono::milliseconds timeout) {
  pollfd p{socket, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return -1;
  iovec iov{buffer, capacity};
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int) * 8)];
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
  if (n < 0) return -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        ::close(fd);
      }
    }
  }
  return static_cast<long>(n);
}

inline cp::handoff_wire::Request make_request(const cp::PayloadId& id, cp::handoff_wire::Op op) {
  cp::handoff_wire::Request request;
  request.op = static_cast<std::uint16_t>(op);
  request.pid = id.pid;
  request.start_time = id.start_time;
  request.serial = id.serial;
  return request;
}

// A hostile (or broken) owner: listens on a handoff socket in `dir` and answers every fetch with
// whatever `answer` decides (a reply and the fds to attach). Records the requests it received.
class FakeOwner {
 public:
  struct Answer {
    std::optional<std::vector<std::byte>> raw;  // sent as is instead of a Reply
    cp::handoff_wire::Reply reply;
    std::vector<int> fds;  // attached (and closed after sending)
    bool silent = false;   // send nothing at all
  };
  using Answerer = std::function<Answer(const cp::handoff_wire::Request&)>;

  FakeOwner(const std::string& dir, const std::string& name, Answerer answer)
      : path_(dir + "/handoff-" + name + "-" + std::to_string(::getpid()) + ".sock"),
        answer_(std::move(answer)) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
    if (listen_fd_ < 0 ||
        ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listen_fd_, 8) != 0) {
      throw std::runtime_error("fake owner: cannot listen at " + path_);
    }
    thread_ = std::thread([this] { run(); });
  }
  ~FakeOwner() {
    stop_.store(true);
    thread_.join();
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }

  const std::string& path() const { return path_; }
  // A descriptor naming this fake owner.
  cp::HandoffDescriptor descriptor(std::uint64_t serial, std::uint64_t length,
                                   std::optional<std::uint64_t> xxh3 = std::nullopt) const {
    cp::HandoffDescriptor d;
    d.id = {static_cast<std::uint32_t>(::getpid()), 1, serial};
    d.owner = path_;
    d.offset = 0;
    d.length = length;
    d.xxh3 = xxh3;
    return d;
  }
  std::vector<cp::handoff_wire::Request> requests() const {
    const std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t releases() const {
    std::size_t n = 0;
    for (const auto& r : requests()) {
      if (r.op == static_cast<std::uint16_t>(cp::handoff_wire::Op::release)) ++n;
    }
    return n;
  }

 private:
  void run() {
    std::vector<int> clients;
    while (!stop_.load()) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (const int c : clients) fds.push_back({c, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if ((fds[0].revents & POLLIN) != 0) {
        const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) clients.push_back(c);
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        cp::handoff_wire::Request request;
        const long n = receive_raw(fds[i].fd, &request, sizeof request, std::chrono::milliseconds(0));
        if (n != static_cast<long>(sizeof request)) {
          ::close(fds[i].fd);
          clients.erase(std::find(clients.begin(), clients.end(), fds[i].fd));
          break;
        }
        {
          const std::lock_guard lock(mutex_);
          requests_.push_back(request);
        }
        if (request.op != static_cast<std::uint16_t>(cp::handoff_wire::Op::fetch)) continue;
        Answer answer = answer_(request);
        if (!answer.silent) {
          if (answer.raw) {
            send_with_fds(fds[i].fd, answer.raw->data(), answer.raw->size(), answer.fds);
          } else {
            send_with_fds(fds[i].fd, &answer.reply, sizeof answer.reply, answer.fds);
          }
        }
        for (const int fd : answer.fds) ::close(fd);
      }
    }
    for (const int c : clients) ::close(c);
  }

  std::string path_;
  Answerer answer_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<cp::handoff_wire::Request> requests_;
};

inline cp::handoff_wire::Reply ok_reply(std::uint64_t serial, std::uint64_t size) {
  cp::handoff_wire::Reply reply;
  reply.status = static_cast<std::uint16_t>(cp::handoff_wire::Status::ok);
  reply.serial = serial;
  reply.size = size;
  return reply;
}

// A memfd of `size` bytes filled with the pattern of `seed`, with `seals` added.
inline int make_memfd(std::size_t size, std::uint64_t seed, unsigned seals, bool allow_sealing = true) {
  const int fd = ::memfd_create("test-payload", MFD_CLOEXEC | (allow_sealing ? MFD_ALLOW_SEALING : 0U));
  if (fd < 0) return -1;
  std::vector<std::byte> bytes(size);
  fill_pattern(bytes, seed);
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0 ||
      ::pwrite(fd, bytes.data(), size, 0) != static_cast<ssize_t>(size) ||
      (seals != 0 && ::fcntl(fd, F_ADD_SEALS, seals) != 0)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// ---- fds ----------------------------------------------------------------------------------------

// The fds this process has open, with what they point to.
inline std::vector<std::pair<int, std::string>> open_fds() {
  std::vector<std::pair<int, std::string>> out;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return out;
  const int self = ::dirfd(d);
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd == self) continue;
    char target[512] = {};
    const ssize_t n = ::readlink(("/proc/self/fd/" + std::string(e->d_name)).c_str(), target,
                                 sizeof target - 1);
    out.emplace_back(fd, n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "");
  }
  ::closedir(d);
  return out;
}

// How many of our fds are handoff memfds (what an owner still holds).
inline int handoff_memfds_open() {
  int n = 0;
  for (const auto& [fd, target] : open_fds()) {
    if (target.rfind("/memfd:symphony-handoff", 0) == 0) ++n;
  }
  return n;
}

// ---- cross-process mailbox ----------------------------------------------------------------------

// One message slot in memory shared with forked children (a SharedArray<Mailbox>).
struct Mailbox {
  std::uint32_t ready;  // sequence number of the message in `text`
  std::uint32_t length;
  char text[2040];
};

inline void post(Mailbox& box, std::string_view text) {
  const std::size_t n = std::min(text.size(), sizeof box.text);
  std::memcpy(box.text, text.data(), n);
  box.length = static_cast<std::uint32_t>(n);
  std::atomic_ref<std::uint32_t>(box.ready).fetch_add(1, std::memory_order_release);
}

// Waits for message number `sequence` (1, 2, ...); nullopt after `timeout`.
inline std::optional<std::string> wait_post(Mailbox& box, std::uint32_t sequence,
                                            Clock::duration timeout) {
  const bool arrived = eventually(
      [&] { return std::atomic_ref<std::uint32_t>(box.ready).load(std::memory_order_acquire) >= sequence; },
      timeout);
  if (!arrived) return std::nullopt;
  return std::string(box.text, box.length);
}

}  // namespace symphony::test
