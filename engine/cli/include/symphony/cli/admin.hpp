#pragma once
// The host's admin endpoint, and the client the `symphony` verbs use to talk to it.
//
// A host (`symphony up`) binds a ZeroMQ ROUTER on ipc://<runtime dir>/admin and writes a random
// 128-bit token to <runtime dir>/admin.token (mode 0600; the runtime dir is 0700, so only the
// same user can read it). A client reads the token and sends control-plane envelopes
// (controlplane/envelope.hpp) over a DEALER:
//
//   request: {"v":2,"type":"request","id":N,"from":"cli","to":"host",
//             "body":{"method":"ext.list","token":"<hex>","args":{...}}}
//   reply:   {"type":"reply","id":N,"body":{...}}   or   {"type":"error","id":N,
//             "body":{"code":"unauthorized"|"not_found"|...,"message":"..."}}
//
// A wrong or missing token is refused (code "unauthorized") and the request is not run.
// The token file is also the host's lock: the host holds an exclusive flock on it for its whole
// life, so a second host on the same bus is refused instead of stealing the first one's sockets.
// Both files are removed when the server stops.
//
// Threads: AdminServer owns one thread, "sym-cli-admin", which runs the handler for one request
// at a time (a slow `ext stop` delays the next request, never the supervisor). AdminClient is a
// plain blocking object for one thread.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "symphony/controlplane/envelope.hpp"
#include "symphony/engine/error.hpp"

namespace symphony::cli {

inline constexpr const char* kAdminSocket = "admin";
inline constexpr const char* kAdminTokenFile = "admin.token";

// What a handler returns: the reply body (a JSON object), or an error whose code becomes the
// error reply's "code" (engine::to_string of it) and whose message its "message".
using AdminHandler = std::function<engine::Result<std::string>(
    const std::string& method, const controlplane::JsonReader& args)>;

struct AdminServerOptions {
  std::string bus;
  std::filesystem::path runtime_dir;  // empty: engine::ensure_runtime_dir(bus)
};

class AdminServer {
 public:
  // Refused (Errc::owner_alive) while another host holds this bus's token file.
  static engine::Result<std::unique_ptr<AdminServer>> start(AdminServerOptions options,
                                                            AdminHandler handler);
  // Stops the thread, then removes the socket and the token file.
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  const std::string& endpoint() const noexcept;              // ipc://<runtime dir>/admin
  const std::filesystem::path& token_file() const noexcept;  // <runtime dir>/admin.token
  std::uint64_t refused() const noexcept;                    // requests with a wrong token

  struct Impl;

 private:
  explicit AdminServer(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// Why a call failed, for the command's exit code and one-line message.
enum class AdminFailure {
  no_host,       // no token file / socket: no host runs on this bus
  no_answer,     // a host seems to be there but did not answer in time
  unauthorized,  // the host refused our token
  refused,       // the host ran the request and said no (unknown extension, ...)
};

struct AdminError {
  AdminFailure failure;
  std::string code;  // the host's error code when refused ("not_found", ...)
  std::string message;
};

class AdminClient {
 public:
  // Reads the token (unless `token` is given) and connects; no_host if there is no host.
  static tl::expected<AdminClient, AdminError> connect(
      std::string_view bus, const std::filesystem::path& runtime_dir = {},
      std::optional<std::string> token = std::nullopt);

  AdminClient(AdminClient&&) noexcept;
  AdminClient& operator=(AdminClient&&) noexcept;
  ~AdminClient();

  // Sends `method` with `args_json` (an object) and waits up to `timeout` for the reply body.
  tl::expected<std::string, AdminError> call(
      std::string_view method, std::string_view args_json = "{}",
      std::chrono::milliseconds timeout = std::chrono::seconds(5));

  const std::string& endpoint() const noexcept;

  struct Impl;

 private:
  explicit AdminClient(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace symphony::cli
