#pragma once
// A hand-made extension UI for the gateway's in-process tests: a tree (counter, button, pad),
// frames written as JSON, published on a real topic ui/<id> of a real bus in this process, and
// the requests the gateway sends (snapshot, event) answered through a fake HostLink.

#include <atomic>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "symphony/engine/bus.hpp"
#include "symphony/gateway/gateway.hpp"
#include "symphony/ui/tree.hpp"

namespace symphony::test {

class FakeUi {
 public:
  using Json = nlohmann::json;

  FakeUi(Bus& bus, std::string id) : id_(std::move(id)) {
    engine::TopicOptions o;
    o.max_payload = 256 * 1024;
    o.history = 1;
    o.capacity = 64;
    auto pub = bus.advertise("ui/" + id_, {}, o);
    if (pub) out_.emplace(std::move(*pub));
  }
  bool ok() const { return out_.has_value(); }
  const std::string& id() const { return id_; }

  // False when the topic refused it (all slots busy): like the SDK, try again.
  bool publish_snapshot() {
    std::lock_guard lock(mutex_);
    return publish(snapshot().dump());
  }
  void bump(std::size_t pad = 0) {
    std::lock_guard lock(mutex_);
    bump_locked(pad);
  }
  void gap() {
    std::lock_guard lock(mutex_);
    ++seq_;
    bump_locked(0);
  }
  void publish_raw(const std::string& text) {
    std::lock_guard lock(mutex_);
    publish(text);
  }
  std::uint64_t counter() const {
    std::lock_guard lock(mutex_);
    return counter_;
  }
  std::uint64_t seq() const {
    std::lock_guard lock(mutex_);
    return seq_;
  }
  std::atomic<std::uint64_t> snapshots{0}, events{0}, publish_failures{0};

  engine::Result<std::string> call(const std::string& method, const std::string& payload) {
    std::lock_guard lock(mutex_);
    if (method == "symphony.ui.snapshot") {
      ++snapshots;
      return snapshot().dump();
    }
    if (method == "symphony.ui.event") {
      ++events;
      const Json body = Json::parse(payload, nullptr, false);
      if (!body.is_object() || body.value("node", "") != "btn") {
        return tl::unexpected(engine::Error{engine::Errc::invalid_argument, "unknown node"});
      }
      bump_locked(0);
      return Json({{"handled", true}, {"tree_seq", seq_}}).dump();
    }
    return tl::unexpected(engine::Error{engine::Errc::invalid_argument, "no method " + method});
  }

 private:
  static double now_ms() { return ui::wall_clock_ms(); }
  Json tree() const {
    return {{"id", "root"},
            {"type", "stack"},
            {"children",
             Json::array({{{"id", "counter"}, {"type", "text"}, {"props", {{"text", std::to_string(counter_)}}}},
                          {{"id", "btn"}, {"type", "button"}, {"props", {{"label", "add"}}},
                           {"events", {"click"}}},
                          {{"id", "pad"}, {"type", "text"}, {"props", {{"text", pad_}}}}})}};
  }
  Json snapshot() const {
    return {{"v", 1}, {"kind", "snapshot"}, {"extension", id_}, {"seq", seq_}, {"t", now_ms()},
            {"tree", tree()}};
  }
  void bump_locked(std::size_t pad) {
    ++counter_;
    const std::uint64_t base = seq_++;
    Json ops = Json::array(
        {{{"op", "props"}, {"id", "counter"}, {"set", {{"text", std::to_string(counter_)}}}}});
    if (pad > 0) {
      pad_ = std::string(pad, 'x') + std::to_string(counter_);
      ops.push_back({{"op", "props"}, {"id", "pad"}, {"set", {{"text", pad_}}}});
    }
    publish(Json({{"v", 1}, {"kind", "patch"}, {"extension", id_}, {"seq", seq_}, {"base", base},
                  {"t", now_ms()}, {"ops", ops}})
                .dump());
  }
  bool publish(const std::string& text) {
    if (!out_) return false;
    if (out_->try_publish(std::as_bytes(std::span<const char>(text.data(), text.size()))) ==
        engine::RingStatus::ok) {
      return true;
    }
    ++publish_failures;
    return false;
  }

  std::string id_;
  std::optional<engine::RawPublisher> out_;
  mutable std::mutex mutex_;
  std::uint64_t seq_ = 1, counter_ = 0;
  std::string pad_;
};

// HostLink with one healthy extension, whose requests FakeUi answers.
class FakeLink final : public gateway::HostLink {
 public:
  explicit FakeLink(FakeUi& ui) : ui_(ui) {}
  engine::Result<std::vector<gateway::InstanceStatus>> list() override {
    gateway::InstanceStatus s;
    s.id = ui_.id();
    s.pid = 4242;
    s.state = "HEALTHY";
    s.version = "1.0.0";
    s.cpu_ns = static_cast<std::int64_t>(++lists) * 1'000'000;
    return std::vector<gateway::InstanceStatus>{s};
  }
  engine::Result<std::string> call(const std::string& id, const std::string& method,
                                   const std::string& payload, std::chrono::milliseconds) override {
    if (id != ui_.id()) {
      return tl::unexpected(engine::Error{engine::Errc::not_found, "unknown extension " + id});
    }
    return ui_.call(method, payload);
  }
  engine::Result<void> restart(const std::string&) override {
    ++restarts;
    return {};
  }
  std::atomic<std::uint64_t> lists{0}, restarts{0};

 private:
  FakeUi& ui_;
};

}  // namespace symphony::test
