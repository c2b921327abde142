// A real extension process for the launcher test: reads its registration from the environment,
// echoes requests ("whoami" answers with its id and instance), exits 0 on the stop command.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "symphony/controlplane/extension.hpp"

int main() {
  using namespace symphony::controlplane;
  auto options = ExtensionOptions::from_environment();
  if (!options) {
    std::fprintf(stderr, "echo-extension: %s\n", options.error().message.c_str());
    return 2;
  }
  std::atomic<bool> stop{false};
  ExtensionHandlers handlers;
  const std::string whoami =
      JsonObject().add("extension", options->extension).add("instance", options->instance).str();
  handlers.on_request = [&](const std::string& method, const std::string& payload)
      -> symphony::engine::Result<std::string> {
    return method == "whoami" ? whoami : payload;
  };
  handlers.on_command = [&](const std::string& command,
                            const std::string&) -> symphony::engine::Result<void> {
    if (command == "stop") stop.store(true);
    return {};
  };
  auto channel = ExtensionChannel::connect(*options, handlers);
  if (!channel) {
    std::fprintf(stderr, "echo-extension: %s\n", channel.error().message.c_str());
    return 3;
  }
  while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // Let the ack of the stop command go out before the channel closes.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return 0;
}
