// SYMPHONY_TOPICS: parsed with simdjson's DOM (a few hundred bytes, once at start).

#include "symphony/sdk/declared_topics.hpp"

#include <simdjson.h>

#include <cstdlib>

#include "symphony/supervisor/manifest.hpp"  // kEnvTopics (the constant only)

namespace symphony::sdk {
namespace {

engine::Error invalid(std::string message) {
  return engine::Error{engine::Errc::invalid_argument,
                       std::string(supervisor::kEnvTopics) + ": " + std::move(message)};
}

engine::Result<std::vector<DeclaredTopic>> parse_list(simdjson::dom::object root,
                                                      const char* role) {
  std::vector<DeclaredTopic> topics;
  simdjson::dom::element list;
  if (root[role].get(list) == simdjson::NO_SUCH_FIELD) return topics;
  simdjson::dom::array array;
  if (list.get(array) != simdjson::SUCCESS) {
    return tl::unexpected(invalid(std::string("'") + role + "' must be an array"));
  }
  std::size_t index = 0;
  for (simdjson::dom::element item : array) {
    const std::string where = std::string(role) + "[" + std::to_string(index++) + "]";
    simdjson::dom::object entry;
    if (item.get(entry) != simdjson::SUCCESS) {
      return tl::unexpected(invalid(where + " must be an object"));
    }
    DeclaredTopic topic;
    std::string_view text;
    if (entry["name"].get(text) != simdjson::SUCCESS || text.empty()) {
      return tl::unexpected(invalid(where + ".name must be a non-empty string"));
    }
    topic.name = text;
    if (entry["type"].get(text) == simdjson::SUCCESS) topic.type = text;
    if (entry["transport"].get(text) == simdjson::SUCCESS) {
      if (text == "native") {
        topic.transport = engine::TopicTransport::native;
      } else if (text == "iceoryx") {
        topic.transport = engine::TopicTransport::iceoryx;
      } else {
        return tl::unexpected(invalid(where + ".transport must be native or iceoryx (got '" +
                                      std::string(text) + "')"));
      }
    }
    simdjson::dom::object qos;
    if (entry["qos"].get(qos) == simdjson::SUCCESS) {
      std::uint64_t number = 0;
      if (qos["depth"].get(number) == simdjson::SUCCESS) {
        topic.depth = static_cast<std::uint32_t>(number);
      }
      if (qos["history"].get(number) == simdjson::SUCCESS) {
        topic.history = static_cast<std::uint32_t>(number);
      }
      if (qos["overflow"].get(text) == simdjson::SUCCESS) {
        if (text == "block") {
          topic.overflow = engine::Overflow::block;
        } else if (text == "discard-oldest" || text == "discard_oldest") {
          topic.overflow = engine::Overflow::discard_oldest;
        } else {
          return tl::unexpected(invalid(where + ".qos.overflow must be block or discard-oldest"));
        }
      }
    }
    topics.push_back(std::move(topic));
  }
  return topics;
}

std::string names(const std::vector<DeclaredTopic>& topics) {
  if (topics.empty()) return "none";
  std::string text;
  for (const auto& t : topics) text += (text.empty() ? "'" : ", '") + t.name + "'";
  return text;
}

engine::Result<DeclaredTopic> check(const std::vector<DeclaredTopic>& topics,
                                    std::string_view topic, std::string_view type_name,
                                    const char* gerund, const char* code_verb, const char* list) {
  for (const DeclaredTopic& declared : topics) {
    if (declared.name != topic) continue;
    if (declared.type != "bytes" && declared.type != type_name) {
      return tl::unexpected(engine::Error{
          engine::Errc::type_mismatch,
          "topic '" + std::string(topic) + "': the manifest declares type '" + declared.type +
              "', the code " + code_verb + " type '" + std::string(type_name) + "'"});
    }
    return declared;
  }
  return tl::unexpected(engine::Error{
      engine::Errc::invalid_argument,
      "topic '" + std::string(topic) + "' is not declared for " + gerund + " in this extension's manifest (declared: " + names(topics) + "); add it to the "
          "manifest's topics." + list});
}

}  // namespace

engine::Result<DeclaredTopics> DeclaredTopics::parse(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element document;
  const simdjson::padded_string padded(json);
  if (auto error = parser.parse(padded).get(document); error != simdjson::SUCCESS) {
    return tl::unexpected(invalid(std::string("not JSON: ") + simdjson::error_message(error)));
  }
  simdjson::dom::object root;
  if (document.get(root) != simdjson::SUCCESS) {
    return tl::unexpected(invalid("must be a JSON object"));
  }
  DeclaredTopics topics;
  auto publish = parse_list(root, "publish");
  if (!publish) return tl::unexpected(std::move(publish.error()));
  auto subscribe = parse_list(root, "subscribe");
  if (!subscribe) return tl::unexpected(std::move(subscribe.error()));
  topics.publish_ = std::move(*publish);
  topics.subscribe_ = std::move(*subscribe);
  return topics;
}

engine::Result<std::optional<DeclaredTopics>> DeclaredTopics::from_environment() {
  const char* text = std::getenv(supervisor::kEnvTopics);
  if (text == nullptr) return std::optional<DeclaredTopics>();
  auto parsed = parse(text);
  if (!parsed) return tl::unexpected(std::move(parsed.error()));
  return std::optional<DeclaredTopics>(std::move(*parsed));
}

engine::Result<DeclaredTopic> DeclaredTopics::check_publish(std::string_view topic,
                                                            std::string_view type_name) const {
  return check(publish_, topic, type_name, "publishing", "publishes", "publish");
}

engine::Result<DeclaredTopic> DeclaredTopics::check_subscribe(std::string_view topic,
                                                              std::string_view type_name) const {
  return check(subscribe_, topic, type_name, "subscribing", "subscribes to", "subscribe");
}

}  // namespace symphony::sdk
