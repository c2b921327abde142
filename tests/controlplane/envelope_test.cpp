// The envelope: encode/decode round trip and every kind of bad input.

#include <gtest/gtest.h>

#include "symphony/controlplane/envelope.hpp"

namespace symphony::controlplane {
namespace {

using engine::Errc;

TEST(EnvelopeTest, RoundTrips) {
  Envelope e;
  e.type = MessageType::request;
  e.id = 42;
  e.from = "host";
  e.to = "explorer/0";
  e.body = JsonObject()
               .add("method", "search")
               .add_raw("payload", R"({"q":"a \"quoted\"\nline"})")
               .add("deadline_ms", 100)
               .str();
  auto decoded = decode(encode(e));
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->type, MessageType::request);
  EXPECT_EQ(decoded->id, 42u);
  EXPECT_EQ(decoded->to, "explorer/0");
  auto body = JsonReader::parse(decoded->body);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->string("method"), "search");
  EXPECT_EQ(body->integer("deadline_ms"), 100);
  auto payload = JsonReader::parse(*body->raw("payload"));
  ASSERT_TRUE(payload);
  EXPECT_EQ(payload->string("q"), "a \"quoted\"\nline");
}

TEST(EnvelopeTest, RefusesBadInputWithAReason) {
  const struct {
    const char* json;
    const char* reason;
  } cases[] = {
      {"not json", "not valid JSON"},
      {"[1,2]", "must be a JSON object"},
      {R"({"type":"heartbeat","id":1,"from":"a","to":"b","body":{}})", "'v'"},
      {R"({"v":2,"type":"teleport","id":1,"from":"a","to":"b","body":{}})", "unknown message type"},
      {R"({"v":2,"type":"heartbeat","id":-1,"from":"a","to":"b","body":{}})", "'id'"},
      {R"({"v":2,"type":"heartbeat","id":1,"from":3,"to":"b","body":{}})", "'from' and 'to'"},
      {R"({"v":2,"type":"heartbeat","id":1,"from":"a","to":"b","body":[]})", "'body'"},
      {R"({"v":2,"type":"request","id":1,"from":"a","to":"b","body":{}})", "lacks 'method'"},
      {R"({"v":2,"type":"request","id":1,"from":"a","to":"b","body":{"method":7}})",
       "must be a string"},
      {R"({"v":2,"type":"hello","id":1,"from":"a","to":"b","body":{"token":"t"}})",
       "lacks 'extension'"},
      {R"({"v":1,"type":"request","id":1,"from":"a","to":"b","body":{"method":"m","deadline_ms":5}})",
       "needs protocol version 2"},
  };
  for (const auto& c : cases) {
    auto decoded = decode(std::string_view(c.json));
    ASSERT_FALSE(decoded) << c.json;
    EXPECT_NE(decoded.error().message.find(c.reason), std::string::npos)
        << c.json << " -> " << decoded.error().message;
  }
}

TEST(EnvelopeTest, VersionsOutsideTheWindowAreAVersionError) {
  auto too_new = decode(R"({"v":3,"type":"heartbeat","id":1,"from":"a","to":"b","body":{}})");
  ASSERT_FALSE(too_new);
  EXPECT_EQ(too_new.error().code, Errc::qos_mismatch);
  auto too_old = decode(R"({"v":0,"type":"heartbeat","id":1,"from":"a","to":"b","body":{}})");
  ASSERT_FALSE(too_old);
  EXPECT_EQ(too_old.error().code, Errc::qos_mismatch);
  EXPECT_TRUE(decode(R"({"v":1,"type":"heartbeat","id":1,"from":"a","to":"b","body":{}})"));
}

// Bodies and payloads are handed on as the sender wrote them (not re-serialised), so a foreign
// sender's key order, whitespace and escapes must not confuse where a member ends.
TEST(EnvelopeTest, BodyAndRawMembersAreTheSendersTextWhateverTheLayout) {
  const std::string frame = R"J({ "body" : { "method":"m", "payload" : [1, {"body": "}\\\""}, "x\"],"] ,)J"
                            R"J( "n" : -1.5e3 } , "to":"b,\"body\":{}", "v":2, "id":7,)J"
                            R"J( "from":"a", "type":"request" })J";
  auto decoded = decode(frame);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->to, "b,\"body\":{}");
  auto body = JsonReader::parse(decoded->body);
  ASSERT_TRUE(body) << decoded->body;
  EXPECT_EQ(body->string("method"), "m");
  EXPECT_EQ(body->raw("payload"), R"J([1, {"body": "}\\\""}, "x\"],"])J");
  EXPECT_EQ(body->raw("n"), "-1.5e3");
  EXPECT_EQ(body->raw("missing"), std::nullopt);
  // A key spelled with an escape is still found (through simdjson).
  auto escaped = JsonReader::parse(R"({"p\u0061yload": {"a": 1}})");
  ASSERT_TRUE(escaped);
  EXPECT_EQ(escaped->raw("payload"), R"({"a":1})");
  auto duplicated = JsonReader::parse(R"({"p\u0061yload": 1, "payload": 2})");
  ASSERT_TRUE(duplicated);
  EXPECT_EQ(duplicated->raw("payload"), "1");  // the first, as simdjson reads it
  auto scalar_last = JsonReader::parse(R"({"a":true,"payload":null  })");
  ASSERT_TRUE(scalar_last);
  EXPECT_EQ(scalar_last->raw("payload"), "null");
  EXPECT_EQ(scalar_last->raw("a"), "true");
}

TEST(EnvelopeTest, CapsDepthAndSize) {
  std::string deep = R"({"v":2,"type":"reply","id":1,"from":"a","to":"b","body":{"payload":)";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  deep += "}}";
  auto nested = decode(deep, ParseLimits{1 << 20, 32});
  ASSERT_FALSE(nested);
  EXPECT_NE(nested.error().message.find("nested deeper"), std::string::npos)
      << nested.error().message;
  const std::string big(2000, ' ');
  auto oversized = decode(big, ParseLimits{1000, 32});
  ASSERT_FALSE(oversized);
  EXPECT_NE(oversized.error().message.find("exceeds the limit"), std::string::npos);
}

}  // namespace
}  // namespace symphony::controlplane
