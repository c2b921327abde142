// The SDK in-process: SYMPHONY_TOPICS parsing and checks, misuse errors (undeclared topics,
// type mismatches, oversize samples, publishing after stop), the worker pool growing past a slow
// job, and Request's getters.

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "symphony/engine/bus.hpp"
#include "symphony/sdk/extension.hpp"
#include "../../ext_sdk/src/threads.hpp"

namespace symphony::sdk {
namespace {

using namespace std::chrono_literals;

constexpr const char* kTopics =
    R"({"publish":[{"name":"out/a","type":"t.A","transport":"native"},)"
    R"({"name":"out/raw","type":"bytes","transport":"native"}],)"
    R"("subscribe":[{"name":"in/b","type":"t.B","transport":"native",)"
    R"("qos":{"depth":8,"overflow":"discard_oldest","history":2}}]})";

struct A {
  std::uint64_t x;
};

// Sets SYMPHONY_TOPICS for one test.
class TopicsEnv {
 public:
  explicit TopicsEnv(const char* json) { ::setenv("SYMPHONY_TOPICS", json, 1); }
  ~TopicsEnv() { ::unsetenv("SYMPHONY_TOPICS"); }
};

TEST(DeclaredTopics, ParsesBothListsAndQos) {
  auto topics = DeclaredTopics::parse(kTopics);
  ASSERT_TRUE(topics) << topics.error().message;
  ASSERT_EQ(topics->publishes().size(), 2u);
  ASSERT_EQ(topics->subscribes().size(), 1u);
  EXPECT_EQ(topics->publishes()[0].name, "out/a");
  EXPECT_EQ(topics->publishes()[0].type, "t.A");
  const DeclaredTopic& b = topics->subscribes()[0];
  EXPECT_EQ(b.depth, 8u);
  EXPECT_EQ(b.overflow, engine::Overflow::discard_oldest);
  EXPECT_EQ(b.history, 2u);
}

TEST(DeclaredTopics, ChecksNameRoleAndType) {
  auto topics = DeclaredTopics::parse(kTopics);
  ASSERT_TRUE(topics);
  EXPECT_TRUE(topics->check_publish("out/a", "t.A"));
  EXPECT_TRUE(topics->check_publish("out/raw", "anything"));  // "bytes": the manifest's default
  auto undeclared = topics->check_publish("out/typo", "t.A");
  ASSERT_FALSE(undeclared);
  EXPECT_EQ(undeclared.error().message,
            "topic 'out/typo' is not declared for publishing in this extension's manifest "
            "(declared: 'out/a', 'out/raw'); add it to the manifest's topics.publish");
  auto wrong_role = topics->check_subscribe("out/a", "t.A");
  ASSERT_FALSE(wrong_role);
  EXPECT_NE(wrong_role.error().message.find("not declared for subscribing"), std::string::npos);
  auto wrong_type = topics->check_publish("out/a", "t.Other");
  ASSERT_FALSE(wrong_type);
  EXPECT_EQ(wrong_type.error().code, Errc::type_mismatch);
  EXPECT_EQ(wrong_type.error().message,
            "topic 'out/a': the manifest declares type 't.A', the code publishes type 't.Other'");
}

TEST(DeclaredTopics, RefusesMalformedInput) {
  for (const char* bad : {"", "[]", R"({"publish":{}})", R"({"publish":[{"type":"x"}]})",
                          R"({"subscribe":[{"name":"a","transport":"carrier-pigeon"}]})",
                          R"({"subscribe":[{"name":"a","qos":{"overflow":"sometimes"}}]})"}) {
    auto topics = DeclaredTopics::parse(bad);
    ASSERT_FALSE(topics) << bad;
    EXPECT_EQ(topics.error().message.rfind("SYMPHONY_TOPICS: ", 0), 0u) << topics.error().message;
  }
}

TEST(Extension, RefusesUndeclaredTopicsAtOnce) {
  TopicsEnv env(kTopics);
  Extension ext;
  auto ok = ext.advertise<A>("out/a", "t.A");
  EXPECT_TRUE(ok) << ok.error().message;
  auto undeclared = ext.advertise<A>("out/b", "t.A");
  ASSERT_FALSE(undeclared);
  EXPECT_NE(undeclared.error().message.find("'out/b' is not declared for publishing"),
            std::string::npos);
  auto sub = ext.subscribe<A>("out/a", "t.A", [](const A&) {});
  ASSERT_FALSE(sub);
  EXPECT_NE(sub.error().message.find("not declared for subscribing"), std::string::npos);
  auto twice = ext.advertise<A>("out/a", "t.A");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("already advertised"), std::string::npos);
  auto bad_name = ext.advertise_raw("no spaces allowed");
  ASSERT_FALSE(bad_name);
  EXPECT_EQ(bad_name.error().code, Errc::invalid_argument);
  // Not bound before run(): publishing says so instead of writing anywhere.
  EXPECT_EQ(ok->publish(A{1}), PublishStatus::not_bound);
}

TEST(Extension, WithoutDeclarationsNothingIsChecked) {
  ::unsetenv("SYMPHONY_TOPICS");
  Extension ext;
  EXPECT_TRUE(ext.advertise_raw("whatever/topic"));
  EXPECT_TRUE(ext.subscribe_raw("other/topic", [](std::span<const std::byte>) {}));
}

TEST(Extension, RunWithoutAHostFailsWithAReason) {
  ::unsetenv("SYMPHONY_BUS");
  ::unsetenv("SYMPHONY_EXTENSION_ID");
  Extension ext;
  char name[] = "ext";
  char* argv[] = {name, nullptr};
  EXPECT_EQ(ext.run(1, argv), 2);
}

// The publisher core as the Extension binds it: oversize and after-stop are refused with a
// status (and logged once), a bound one publishes into the real topic.
TEST(Publisher, OversizeAndAfterStopAreRefused) {
  const std::string bus_name = "sdku-" + std::to_string(::getpid());
  auto bus = Bus::open({.name = bus_name, .runtime_dir = {}});
  ASSERT_TRUE(bus) << bus.error().message;
  engine::TopicOptions options;
  options.max_payload = 32;
  auto core = std::make_shared<detail::PublisherCore>("sdk/raw", engine::TopicType{}, options,
                                                      engine::PublisherOptions{});
  RawPublisher pub(core);
  EXPECT_EQ(pub.publish(std::string_view("early")), PublishStatus::not_bound);
  auto raw = bus->advertise("sdk/raw", {}, options);
  ASSERT_TRUE(raw) << raw.error().message;
  auto sub = bus->subscribe("sdk/raw", {}, options);
  ASSERT_TRUE(sub) << sub.error().message;
  core->bind(std::move(*raw));
  EXPECT_EQ(pub.publish(std::string_view("hello")), PublishStatus::ok);
  EXPECT_EQ(pub.publish(std::string(33, 'x')), PublishStatus::oversize);
  const auto filled = pub.publish_with(4, [](std::span<std::byte> b) {
    std::memcpy(b.data(), "zero", 4);
  });
  EXPECT_EQ(filled, PublishStatus::ok);
  engine::Frame f = sub->try_take();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.data), f.size), "hello");
  sub->release();
  f = sub->try_take();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.data), f.size), "zero");
  sub->release();
  EXPECT_EQ(pub.counters()->published, 2u);
  core->stop();
  EXPECT_EQ(pub.publish(std::string_view("late")), PublishStatus::stopped);
  EXPECT_FALSE(pub.counters());
  core->bind(*bus->advertise("sdk/raw", {}, options));  // no rebinding once stopped
  EXPECT_EQ(pub.publish(std::string_view("late")), PublishStatus::stopped);
}

TEST(Publisher, StatusNames) {
  EXPECT_STREQ(to_string(PublishStatus::oversize), "oversize");
  EXPECT_STREQ(to_string(PublishStatus::stopped), "stopped");
  EXPECT_STREQ(to_string(PublishStatus::not_bound), "not bound");
}

TEST(WorkerPool, ASlowJobDoesNotStallTheNext) {
  detail::WorkerPool pool(1, 4);
  pool.start();
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> slow_done{false};
  ASSERT_TRUE(pool.submit([&] {
    released.wait();
    slow_done = true;
  }));
  std::promise<void> fast;
  auto fast_done = fast.get_future();
  ASSERT_TRUE(pool.submit([&] { fast.set_value(); }));
  // The only worker is stuck: the pool grew one for the second job.
  EXPECT_EQ(fast_done.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(slow_done.load());
  release.set_value();
  EXPECT_TRUE(pool.close(std::chrono::steady_clock::now() + 5s));
  EXPECT_TRUE(slow_done.load());
  EXPECT_FALSE(pool.submit([] {}));  // closed
}

TEST(Request, GettersReadThePayload) {
  Request r("search", R"({"query":"main","limit":5,"exact":true,"opts":{"a":[1,2]}})");
  EXPECT_EQ(r.method(), "search");
  EXPECT_EQ(r.string("query"), "main");
  EXPECT_EQ(r.integer("limit"), 5);
  EXPECT_EQ(r.boolean("exact"), true);
  EXPECT_EQ(r.raw("opts"), R"({"a":[1,2]})");
  EXPECT_FALSE(r.string("limit"));
  Request bad("x", "not json");
  EXPECT_FALSE(bad.string("query"));
}

}  // namespace
}  // namespace symphony::sdk
