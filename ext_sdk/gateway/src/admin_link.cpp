// HostLink over the host's admin endpoint. AdminClient is a single-thread object, so calls take
// a client from a small pool (connecting a new one when every client is busy) and give it back.

#include <mutex>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "symphony/cli/admin.hpp"
#include "symphony/gateway/gateway.hpp"

namespace symphony::gateway {

namespace {

using engine::Errc;
using engine::Error;
using Json = nlohmann::json;

engine::Error to_error(const cli::AdminError& e) {
  switch (e.failure) {
    case cli::AdminFailure::no_host:
    case cli::AdminFailure::no_answer:
      return Error{Errc::unavailable, e.message};
    case cli::AdminFailure::unauthorized:
      return Error{Errc::invalid_argument, "the host refused our token: " + e.message};
    case cli::AdminFailure::refused:
      return Error{e.code == "not_found" ? Errc::not_found : Errc::invalid_argument, e.message};
  }
  return Error{Errc::unavailable, e.message};
}

template <typename T>
T field(const Json& o, const char* key, T fallback) {
  const auto it = o.find(key);
  if (it == o.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const Json::exception&) {
    return fallback;
  }
}

class AdminLink final : public HostLink {
 public:
  AdminLink(std::string bus, std::filesystem::path runtime_dir)
      : bus_(std::move(bus)), runtime_dir_(std::move(runtime_dir)) {}

  engine::Result<std::vector<InstanceStatus>> list() override {
    auto reply = request("ext.list", "{}", std::chrono::seconds(5));
    if (!reply) return tl::unexpected(reply.error());
    std::vector<InstanceStatus> all;
    try {
      const Json body = Json::parse(*reply);
      for (const Json& f : body.at("extensions")) {
        InstanceStatus s;
        s.id = field<std::string>(f, "id", "");
        s.instance = field<int>(f, "instance", 0);
        s.version = field<std::string>(f, "version", "");
        s.pid = field<std::int64_t>(f, "pid", 0);
        s.state = field<std::string>(f, "state", "?");
        s.reason = field<std::string>(f, "reason", "");
        s.generation = field<std::uint64_t>(f, "generation", 0);
        s.restarts = field<std::uint64_t>(f, "restarts", 0);
        s.cpu_ns = field<std::int64_t>(f, "cpu_ns", 0);
        s.rss_bytes = field<std::uint64_t>(f, "rss_bytes", 0);
        s.uptime_ns = field<std::int64_t>(f, "uptime_ns", 0);
        if (!s.id.empty()) all.push_back(std::move(s));
      }
    } catch (const Json::exception& e) {
      return tl::unexpected(
          Error{Errc::invalid_argument, std::string("ext.list: unexpected reply: ") + e.what()});
    }
    return all;
  }

  engine::Result<std::string> call(const std::string& id, const std::string& method,
                                   const std::string& payload_json,
                                   std::chrono::milliseconds timeout) override {
    Json args = {{"id", id}, {"method", method}, {"timeout_ms", timeout.count()}};
    try {
      args["payload"] = Json::parse(payload_json);
    } catch (const Json::exception&) {
      return tl::unexpected(Error{Errc::invalid_argument, "payload is not JSON"});
    }
    auto reply = request("ext.call", args.dump(), timeout + std::chrono::seconds(1));
    if (!reply) return tl::unexpected(reply.error());
    try {
      const Json body = Json::parse(*reply);
      const auto it = body.find("reply");
      if (it == body.end()) return std::string("null");
      return it->dump();
    } catch (const Json::exception& e) {
      return tl::unexpected(
          Error{Errc::invalid_argument, std::string("ext.call: unexpected reply: ") + e.what()});
    }
  }

  engine::Result<void> restart(const std::string& id) override {
    const Json args = {{"id", id}, {"wait_ms", 0}};
    auto reply = request("ext.restart", args.dump(), std::chrono::seconds(30));
    if (!reply) return tl::unexpected(reply.error());
    return {};
  }

 private:
  engine::Result<std::string> request(std::string_view method, const std::string& args,
                                      std::chrono::milliseconds timeout) {
    std::optional<cli::AdminClient> client;
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        client.emplace(std::move(idle_.back()));
        idle_.pop_back();
      }
    }
    if (!client) {
      auto connected = cli::AdminClient::connect(bus_, runtime_dir_);
      if (!connected) return tl::unexpected(to_error(connected.error()));
      client.emplace(std::move(*connected));
    }
    auto reply = client->call(method, args, timeout);
    // A client whose request timed out may still receive that late reply: drop it then, so the
    // next caller never reads someone else's answer.
    const bool reusable = reply || reply.error().failure == cli::AdminFailure::refused;
    if (reusable) {
      std::lock_guard lock(mutex_);
      if (idle_.size() < 8) idle_.push_back(std::move(*client));
    }
    if (!reply) return tl::unexpected(to_error(reply.error()));
    return std::move(*reply);
  }

  std::string bus_;
  std::filesystem::path runtime_dir_;
  std::mutex mutex_;
  std::vector<cli::AdminClient> idle_;
};

}  // namespace

std::unique_ptr<HostLink> admin_link(std::string bus, std::filesystem::path runtime_dir) {
  return std::make_unique<AdminLink>(std::move(bus), std::move(runtime_dir));
}

}  // namespace symphony::gateway
