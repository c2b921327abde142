#pragma once
// The fixture of the control-plane channel tests: a bus of its own, real ZeroMQ ipc:// sockets,
// short heartbeats. Extensions in child processes are forked before the host starts its threads
// (the parent makes their tokens up front).

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "symphony/controlplane/extension.hpp"
#include "symphony/controlplane/host.hpp"
#include "symphony/engine/runtime_dir.hpp"
#include "test_scale.hpp"

namespace symphony::controlplane::test_support {

using engine::Errc;
using test::ChildProcess;
using test::eventually;
using test::SharedArray;
using namespace std::chrono_literals;

std::string unique_bus() {
  static std::atomic<int> counter{0};
  return "cp" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

class ChannelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus_ = unique_bus();
    auto dir = engine::ensure_runtime_dir(bus_);
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = *dir;
    options_.bus = bus_;
    options_.control_endpoint = "ipc://" + (dir_ / "control").string();
    options_.events_endpoint = "ipc://" + (dir_ / "events").string();
    options_.heartbeat_interval = 50ms;
    options_.unresponsive_after = 400ms;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  Registration registration(const std::string& extension, int instance = 0,
                            std::uint64_t generation = 1) {
    return Registration{extension, instance, generation, make_token()};
  }

  ExtensionOptions extension_options(const Registration& r) {
    ExtensionOptions o;
    o.bus = bus_;
    o.extension = r.extension;
    o.instance = r.instance;
    o.generation = r.generation;
    o.token = r.token;
    o.control_endpoint = options_.control_endpoint;
    o.host_timeout = 400ms;
    o.retry_interval = 50ms;
    return o;
  }

  std::unique_ptr<ControlHost> start_host() {
    auto host = ControlHost::start(options_);
    if (!host) throw std::runtime_error(host.error().message);
    return std::move(*host);
  }

  // An extension process that echoes requests, sleeps on "slow", and exits when stop is set.
  ChildProcess spawn_echo(const Registration& r, SharedArray<std::uint64_t>& stop) {
    const ExtensionOptions o = extension_options(r);
    return ChildProcess([o, &stop] {
      ExtensionHandlers handlers;
      handlers.on_request = [](const std::string& method,
                               const std::string& payload) -> engine::Result<std::string> {
        if (method == "slow") std::this_thread::sleep_for(600ms);
        if (method == "fail") return tl::unexpected(engine::Error{Errc::invalid_argument, "no"});
        return payload;
      };
      auto channel = ExtensionChannel::connect(o, handlers);
      SYM_CHILD_CHECK_MSG(channel.has_value(), channel.error().message);
      while (stop.at(0).load() == 0) std::this_thread::sleep_for(5ms);
    });
  }

  bool wait_connected(ControlHost& host, const std::string& route,
                      std::chrono::milliseconds timeout = 10s) {
    return eventually(
        [&] {
          for (const PeerInfo& p : host.peers()) {
            if (p.registration.route() == route && p.state == PeerState::connected) return true;
          }
          return false;
        },
        timeout);
  }

  std::string bus_;
  std::filesystem::path dir_;
  HostOptions options_;
};

}  // namespace symphony::controlplane::test_support
