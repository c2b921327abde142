#include "symphony/cli/admin.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "symphony/controlplane/host.hpp"
#include "symphony/engine/runtime_dir.hpp"

namespace symphony::cli {

namespace fs = std::filesystem;
using controlplane::Envelope;
using controlplane::JsonObject;
using controlplane::JsonReader;
using controlplane::MessageType;
using engine::Errc;
using engine::Error;

namespace {

constexpr std::size_t kMaxMessage = 1 << 20;

// Equal without an early exit on the first difference.
bool same_token(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = static_cast<unsigned char>(
        diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
  }
  return diff == 0;
}

std::string error_body(std::string_view code, std::string_view message) {
  return JsonObject().add("code", code).add("message", message).str();
}

}  // namespace

// ---- server -------------------------------------------------------------------------------------

struct AdminServer::Impl {
  AdminHandler handler;
  std::string bus;
  fs::path runtime_dir;
  fs::path token_file;
  fs::path socket_file;
  std::string endpoint;
  std::string token;
  int token_fd = -1;
  bool bound = false;  // the socket file is ours to remove
  zmq::context_t context{1};
  zmq::socket_t router{context, zmq::socket_type::router};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> refused{0};
  std::thread thread;

  ~Impl() {
    stop.store(true);
    if (thread.joinable()) thread.join();
    router.close();
    std::error_code ec;
    if (bound) fs::remove(socket_file, ec);
    // Unlink while still holding the lock: a host starting now either locked the old inode
    // (and sees it was replaced) or creates a fresh file.
    if (token_fd >= 0) {
      fs::remove(token_file, ec);
      ::close(token_fd);
    }
  }

  void run() {
    ::pthread_setname_np(::pthread_self(), "sym-cli-admin");
    while (!stop.load()) {
      zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 1, std::chrono::milliseconds(100));
      } catch (const zmq::error_t&) {
        continue;
      }
      if ((items[0].revents & ZMQ_POLLIN) == 0) continue;
      for (;;) {
        zmq::multipart_t message;
        try {
          if (!message.recv(router, static_cast<int>(zmq::recv_flags::dontwait))) break;
        } catch (const zmq::error_t&) {
          break;
        }
        serve(message);
      }
    }
  }

  void serve(zmq::multipart_t& message) {
    if (message.size() != 2) return;  // [identity, envelope]: a DEALER's frames
    const std::string identity = message[0].to_string();
    const std::string frame = message[1].to_string();
    Envelope reply;
    reply.from = "host";
    auto request = controlplane::decode(std::string_view(frame));
    if (!request || request->type != MessageType::request) {
      reply.type = MessageType::error;
      reply.body = error_body(
          "malformed", request ? "expected a request" : "bad envelope: " + request.error().message);
      if (request) reply.id = request->id;
      send(identity, reply);
      return;
    }
    reply.id = request->id;
    reply.to = request->from;
    auto body = JsonReader::parse(request->body);
    const std::string presented = body ? body->string("token").value_or("") : "";
    if (!same_token(presented, token)) {
      refused.fetch_add(1);
      reply.type = MessageType::error;
      reply.body = error_body("unauthorized",
                              "wrong admin token (the host's is in " + token_file.string() + ")");
      send(identity, reply);
      return;
    }
    const std::string method = body->string("method").value_or("");
    auto args = JsonReader::parse(body->raw("args").value_or("{}"));
    if (!args) {
      reply.type = MessageType::error;
      reply.body = error_body("malformed", "'args' must be an object");
      send(identity, reply);
      return;
    }
    engine::Result<std::string> result = tl::unexpected(Error{Errc::invalid_argument, "?"});
    try {
      result = handler(method, *args);
    } catch (const std::exception& e) {
      result =
          tl::unexpected(Error{Errc::system_error, std::string("internal error: ") + e.what()});
    }
    if (result) {
      reply.type = MessageType::reply;
      reply.body = std::move(*result);
    } else {
      reply.type = MessageType::error;
      reply.body = error_body(engine::to_string(result.error().code), result.error().message);
    }
    send(identity, reply);
  }

  void send(const std::string& identity, const Envelope& reply) {
    zmq::multipart_t out;
    out.addstr(identity);
    out.addstr(controlplane::encode(reply));
    try {
      out.send(router, static_cast<int>(zmq::send_flags::dontwait));
    } catch (const zmq::error_t&) {
      // The client went away: nothing to do.
    }
  }
};

AdminServer::AdminServer(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
AdminServer::~AdminServer() = default;

const std::string& AdminServer::endpoint() const noexcept {
  return impl_->endpoint;
}
const fs::path& AdminServer::token_file() const noexcept {
  return impl_->token_file;
}
std::uint64_t AdminServer::refused() const noexcept {
  return impl_->refused.load();
}

engine::Result<std::unique_ptr<AdminServer>> AdminServer::start(AdminServerOptions options,
                                                                AdminHandler handler) {
  auto dir = engine::ensure_runtime_dir(options.bus, options.runtime_dir);
  if (!dir) return tl::unexpected(dir.error());
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->bus = options.bus;
  impl->runtime_dir = *dir;
  impl->token_file = *dir / kAdminTokenFile;
  impl->socket_file = *dir / kAdminSocket;
  impl->endpoint = "ipc://" + impl->socket_file.string();
  if (impl->endpoint.size() > 107 + 6) {
    return tl::unexpected(
        Error{Errc::invalid_argument, "admin socket path too long for ipc://: " + impl->endpoint});
  }

  // The token file is the lock: take it, and make sure the file we locked is still the one at
  // the path (a host stopping right now unlinks it while holding the lock).
  for (int attempt = 0;; ++attempt) {
    const int fd =
        ::open(impl->token_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
      return tl::unexpected(Error::from_errno("open " + impl->token_file.string(), errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return tl::unexpected(Error{Errc::owner_alive, "a host is already running on bus '" +
                                                           options.bus + "' (it holds " +
                                                           impl->token_file.string() + ")"});
      }
      return tl::unexpected(Error::from_errno("flock " + impl->token_file.string(), err));
    }
    struct stat locked {};
    struct stat at_path {};
    if (::fstat(fd, &locked) == 0 && ::stat(impl->token_file.c_str(), &at_path) == 0 &&
        locked.st_ino == at_path.st_ino && locked.st_dev == at_path.st_dev) {
      impl->token_fd = fd;
      break;
    }
    ::close(fd);
    if (attempt > 100) {
      return tl::unexpected(Error{Errc::system_error, "cannot lock " + impl->token_file.string()});
    }
  }
  if (::fchmod(impl->token_fd, 0600) != 0 || ::ftruncate(impl->token_fd, 0) != 0) {
    return tl::unexpected(Error::from_errno("prepare " + impl->token_file.string(), errno));
  }

  try {
    impl->router.set(zmq::sockopt::linger, 0);
    impl->router.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kMaxMessage));
    impl->router.set(zmq::sockopt::router_mandatory, 1);
    impl->router.bind(impl->endpoint);
    impl->bound = true;
  } catch (const zmq::error_t& e) {
    return tl::unexpected(
        Error{Errc::system_error, "bind " + impl->endpoint + ": " + std::string(e.what())});
  }
  ::chmod(impl->socket_file.c_str(), 0600);

  // Only now the token: a client that finds it finds a bound socket.
  impl->token = controlplane::make_token();
  const std::string line = impl->token + "\n";
  if (::pwrite(impl->token_fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) {
    return tl::unexpected(Error::from_errno("write " + impl->token_file.string(), errno));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

// ---- client -------------------------------------------------------------------------------------

struct AdminClient::Impl {
  std::string bus;
  std::string endpoint;
  std::string token;
  std::uint64_t next_id = 1;
  zmq::context_t context{1};
  zmq::socket_t dealer{context, zmq::socket_type::dealer};
};

AdminClient::AdminClient(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
AdminClient::AdminClient(AdminClient&&) noexcept = default;
AdminClient& AdminClient::operator=(AdminClient&&) noexcept = default;
AdminClient::~AdminClient() = default;

const std::string& AdminClient::endpoint() const noexcept {
  return impl_->endpoint;
}

tl::expected<AdminClient, AdminError> AdminClient::connect(std::string_view bus,
                                                           const fs::path& runtime_dir,
                                                           std::optional<std::string> token) {
  auto no_host = [&](const std::string& why) {
    return tl::unexpected(AdminError{AdminFailure::no_host, "",
                                     "no host is running on bus '" + std::string(bus) + "' (" +
                                         why + "); start one with: symphony up"});
  };
  // Only a directory that exists is checked (ours, 0700): asking must not create one.
  auto where = engine::runtime_dir_path(bus, runtime_dir);
  if (!where) return tl::unexpected(AdminError{AdminFailure::no_host, "", where.error().message});
  std::error_code missing;
  if (!fs::exists(*where, missing)) return no_host("no " + (*where / kAdminTokenFile).string());
  auto dir = engine::ensure_runtime_dir(bus, runtime_dir);
  if (!dir) return tl::unexpected(AdminError{AdminFailure::no_host, "", dir.error().message});
  const fs::path token_file = *dir / kAdminTokenFile;
  const fs::path socket_file = *dir / kAdminSocket;
  const int fd = ::open(token_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return no_host("no " + token_file.string());
  // A token file nobody holds is what a host killed with -9 left behind.
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::close(fd);
    return no_host(token_file.string() + " is left over from a host that is gone");
  }
  std::string text(256, '\0');
  const ssize_t n = ::pread(fd, text.data(), text.size(), 0);
  ::close(fd);
  text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  if (const auto eol = text.find('\n'); eol != std::string::npos) text.resize(eol);
  if (!token && text.empty()) return no_host("it is starting: no token yet");
  std::error_code ec;
  if (!fs::exists(socket_file, ec)) return no_host("no " + socket_file.string());

  auto impl = std::make_unique<Impl>();
  impl->bus = bus;
  impl->endpoint = "ipc://" + socket_file.string();
  impl->token = token ? *token : text;
  try {
    impl->dealer.set(zmq::sockopt::linger, 0);
    impl->dealer.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kMaxMessage));
    impl->dealer.connect(impl->endpoint);
  } catch (const zmq::error_t& e) {
    return tl::unexpected(
        AdminError{AdminFailure::no_host, "", "connect " + impl->endpoint + ": " + e.what()});
  }
  return AdminClient(std::move(impl));
}

tl::expected<std::string, AdminError> AdminClient::call(std::string_view method,
                                                        std::string_view args_json,
                                                        std::chrono::milliseconds timeout) {
  Envelope request;
  request.type = MessageType::request;
  request.id = impl_->next_id++;
  request.from = "cli";
  request.to = "host";
  request.body = JsonObject()
                     .add("method", method)
                     .add("token", impl_->token)
                     .add_raw("args", args_json.empty() ? "{}" : args_json)
                     .str();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  try {
    const std::string frame = controlplane::encode(request);
    impl_->dealer.send(zmq::buffer(frame), zmq::send_flags::dontwait);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      zmq::pollitem_t items[] = {{impl_->dealer.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, left);
      if ((items[0].revents & ZMQ_POLLIN) == 0) continue;
      zmq::message_t message;
      if (!impl_->dealer.recv(message, zmq::recv_flags::dontwait)) continue;
      auto reply = controlplane::decode(message.to_string_view());
      if (!reply || reply->id != request.id) continue;  // not ours (an earlier call's, late)
      if (reply->type == MessageType::reply) return reply->body;
      auto body = JsonReader::parse(reply->body);
      const std::string code = body ? body->string("code").value_or("error") : "error";
      const std::string text = body ? body->string("message").value_or("") : reply->body;
      return tl::unexpected(AdminError{
          code == "unauthorized" ? AdminFailure::unauthorized : AdminFailure::refused, code, text});
    }
  } catch (const zmq::error_t& e) {
    return tl::unexpected(AdminError{AdminFailure::no_answer, "", std::string(e.what())});
  }
  return tl::unexpected(AdminError{
      AdminFailure::no_answer, "",
      "the host on bus '" + impl_->bus + "' did not answer '" + std::string(method) + "' within " +
          std::to_string(timeout.count()) + " ms (" + impl_->endpoint + ")"});
}

}  // namespace symphony::cli
