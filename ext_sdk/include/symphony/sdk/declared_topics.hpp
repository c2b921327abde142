#pragma once
// The topics an extension's manifest declares, as the supervisor passes them in SYMPHONY_TOPICS
// (format: supervisor/manifest.hpp, kEnvTopics):
//   {"publish":[{"name":"sensors/temp","type":"plant.Reading","transport":"native"}],
//    "subscribe":[{"name":"commands","type":"bytes","transport":"native",
//                  "qos":{"depth":64,"overflow":"block","history":0}}]}
// ("qos" is optional; when present it is applied to the subscription.) The SDK refuses to
// publish or subscribe on a topic that is not declared there — a guard against bugs (a typo in a
// topic name, a manifest that forgot a topic), not a security boundary. Without the variable
// (an extension run by hand or by an older host) nothing is checked.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "symphony/engine/error.hpp"
#include "symphony/engine/topic.hpp"

namespace symphony::sdk {

struct DeclaredTopic {
  std::string name;
  std::string type = "bytes";
  engine::TopicTransport transport = engine::TopicTransport::native;
  // Subscriptions: QoS from the manifest, when the host passed it.
  std::optional<std::uint32_t> depth;
  std::optional<engine::Overflow> overflow;
  std::optional<std::uint32_t> history;
};

class DeclaredTopics {
 public:
  // Errc::invalid_argument naming what is malformed.
  static engine::Result<DeclaredTopics> parse(std::string_view json);
  // From SYMPHONY_TOPICS; nullopt when it is not set (nothing to check against).
  static engine::Result<std::optional<DeclaredTopics>> from_environment();

  const std::vector<DeclaredTopic>& publishes() const noexcept { return publish_; }
  const std::vector<DeclaredTopic>& subscribes() const noexcept { return subscribe_; }

  // The declaration of `topic` for this role, or Errc::invalid_argument with a message that
  // says what is declared and how to fix it. `type_name` is the code's type; a manifest type
  // other than "bytes" (the manifest's default) must equal it.
  engine::Result<DeclaredTopic> check_publish(std::string_view topic,
                                              std::string_view type_name) const;
  engine::Result<DeclaredTopic> check_subscribe(std::string_view topic,
                                                std::string_view type_name) const;

 private:
  std::vector<DeclaredTopic> publish_;
  std::vector<DeclaredTopic> subscribe_;
};

}  // namespace symphony::sdk
