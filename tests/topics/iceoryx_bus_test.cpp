// Topics on the iceoryx transport through symphony::Bus: the same application code as native
// topics with only TopicOptions::transport changed. iceoryx allows one runtime per process and
// its threads make fork() unsafe afterwards, so every iceoryx user here is a forked child; the
// parent only reads the topic directory (Bus::topics()), which is plain shared memory.

#include <poll.h>

#include <cstring>

#include "topic_test_support.hpp"

namespace symphony::test {
namespace {

using engine::Errc;
using engine::RingStatus;
using engine::TopicOptions;
using engine::TopicTransport;
using namespace std::chrono_literals;

TopicOptions iceoryx_topic() {
  TopicOptions options;
  options.transport = TopicTransport::iceoryx;
  options.max_payload = 64;
  return options;
}

using IceoryxBusTest = TopicTest;

TEST_F(IceoryxBusTest, SameApiCarriesSequencedSamplesAndWakesTheNotifyFd) {
  const std::uint64_t count = scaled(20'000);
  // [0]: subscriber ready, [1]: publisher done, [2]: subscriber done, [3]: parent looked
  SharedArray<std::uint64_t> flags(4);
  ChildProcess subscriber([&] {
    Bus bus = open_bus();
    auto sub = bus.subscribe("ice/stream", {}, iceoryx_topic());
    SYM_CHILD_CHECK_MSG(sub.has_value(), sub.error().message);
    SYM_CHILD_CHECK(sub->transport() == TopicTransport::iceoryx);
    auto fd = sub->notify_fd();
    SYM_CHILD_CHECK_MSG(fd.has_value(), fd.error().message);
    flags.at(0).store(1);
    // The first sample wakes the fd (published by another process).
    pollfd p{*fd, POLLIN, 0};
    SYM_CHILD_CHECK_MSG(::poll(&p, 1, 30'000) == 1, "the notify fd never woke");
    const auto deadline = deadline_in(120s);
    for (std::uint64_t i = 0; i < count; ++i) {
      engine::Frame f = sub->take(engine::WaitStrategy::sleeping(), deadline);
      SYM_CHILD_CHECK_MSG(f.ok(), engine::to_string(f.status));
      std::uint64_t value = 0;
      std::memcpy(&value, f.data, sizeof value);
      SYM_CHILD_CHECK_MSG(value == i, "got " + std::to_string(value) + ", expected " +
                                          std::to_string(i));
      sub->release();
    }
    SYM_CHILD_CHECK(sub->counters().delivered == count);
    flags.at(2).store(1);
    while (flags.at(3).load() == 0) std::this_thread::sleep_for(5ms);
  });
  ASSERT_TRUE(eventually([&] { return flags.at(0).load() == 1; }, 30s));
  ChildProcess publisher([&] {
    Bus bus = open_bus();
    auto pub = bus.advertise("ice/stream", {}, iceoryx_topic());
    SYM_CHILD_CHECK_MSG(pub.has_value(), pub.error().message);
    // iceoryx connects ports in RouDi's discovery loop: wait until our subscriber is there.
    const auto connected = deadline_in(10s);
    while (pub->counters().subscribers == 0 && Clock::now() < connected) {
      std::this_thread::sleep_for(10ms);
    }
    SYM_CHILD_CHECK(pub->counters().subscribers >= 1);
    const auto deadline = deadline_in(120s);
    for (std::uint64_t i = 0; i < count; ++i) {
      engine::Loan loan = pub->loan(8, engine::WaitStrategy::sleeping(), deadline);
      SYM_CHILD_CHECK_MSG(loan.ok(), engine::to_string(loan.status));
      std::memcpy(loan.data, &i, sizeof i);
      pub->publish();
    }
    flags.at(1).store(1);
    while (flags.at(3).load() == 0) std::this_thread::sleep_for(5ms);
  });
  ASSERT_TRUE(eventually([&] { return flags.at(2).load() == 1; }, 180s))
      << "subscriber: " << subscriber.status();
  // Discovery sees the iceoryx topic, both participants and their counters.
  Bus bus = open_bus();
  auto topics = bus.topics();
  ASSERT_TRUE(topics) << topics.error().message;
  ASSERT_EQ(topics->size(), 1u);
  EXPECT_EQ(topics->at(0).name, "ice/stream");
  EXPECT_EQ(topics->at(0).transport, TopicTransport::iceoryx);
  ASSERT_EQ(topics->at(0).publishers.size(), 1u);
  EXPECT_EQ(topics->at(0).publishers[0].published, count);
  ASSERT_EQ(topics->at(0).subscribers.size(), 1u);
  EXPECT_EQ(topics->at(0).subscribers[0].delivered, count);
  flags.at(3).store(1);
  EXPECT_TRUE(publisher.wait(30s).ok()) << publisher.status();
  EXPECT_TRUE(subscriber.wait(30s).ok()) << subscriber.status();
}

TEST_F(IceoryxBusTest, QosIceoryxCannotHonourIsRefusedNotDegraded) {
  // Refused before any iceoryx runtime starts: safe in the test process itself.
  Bus bus = open_bus();
  engine::PublisherOptions batched;
  batched.route = engine::Route::batched;
  auto pub = bus.advertise("ice/refused", {}, iceoryx_topic(), batched);
  ASSERT_FALSE(pub);
  EXPECT_EQ(pub.error().code, Errc::unsupported);
  engine::SubscriberOptions grouped;
  grouped.group = "workers";
  auto sub = bus.subscribe("ice/refused", {}, iceoryx_topic(), grouped);
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, Errc::unsupported);
  // Limits of iceoryx 2.0 itself, from a child (it would start a runtime).
  const ChildStatus status = run_in_child([&] {
    Bus child_bus = open_bus();
    TopicOptions deep_history = iceoryx_topic();
    deep_history.history = 17;
    auto refused = child_bus.advertise("ice/history", {}, deep_history);
    SYM_CHILD_CHECK(!refused.has_value() && refused.error().code == Errc::unsupported);
    SYM_CHILD_CHECK_MSG(refused.error().message.find("16") != std::string::npos,
                        refused.error().message);
    engine::SubscriberOptions too_deep;
    too_deep.depth = 300;
    auto deep = child_bus.subscribe("ice/depth", {}, iceoryx_topic(), too_deep);
    SYM_CHILD_CHECK(!deep.has_value() && deep.error().code == Errc::unsupported);
  });
  EXPECT_TRUE(status.ok()) << status;
}

TEST_F(IceoryxBusTest, TwoBusesInOneProcessShareItsIceoryxRuntime) {
  const ChildStatus status = run_in_child([&] {
    Bus first = open_bus();
    Bus second = open_bus();
    auto sub = second.subscribe("ice/shared", {}, iceoryx_topic());
    SYM_CHILD_CHECK_MSG(sub.has_value(), sub.error().message);
    auto pub = first.advertise("ice/shared", {}, iceoryx_topic());
    SYM_CHILD_CHECK_MSG(pub.has_value(), pub.error().message);
    const auto connected = deadline_in(10s);
    while (pub->counters().subscribers == 0 && Clock::now() < connected) {
      std::this_thread::sleep_for(10ms);
    }
    const std::uint64_t value = 77;
    SYM_CHILD_CHECK(pub->try_publish(std::as_bytes(std::span(&value, 1))) == RingStatus::ok);
    engine::Frame f = sub->take(engine::WaitStrategy::sleeping(), deadline_in(10s));
    SYM_CHILD_CHECK_MSG(f.ok(), engine::to_string(f.status));
    std::uint64_t got = 0;
    std::memcpy(&got, f.data, sizeof got);
    SYM_CHILD_CHECK(got == 77);
  }, std::chrono::seconds(60));
  EXPECT_TRUE(status.ok()) << status;
}

TEST_F(IceoryxBusTest, NativeAndIceoryxTopicsOfOneNameDoNotMix) {
  Bus bus = open_bus();
  auto native = bus.advertise("mixed", {});
  ASSERT_TRUE(native);
  auto iceoryx = bus.subscribe("mixed", {}, iceoryx_topic());
  ASSERT_FALSE(iceoryx);  // refused from the directory, before iceoryx is touched
  EXPECT_EQ(iceoryx.error().code, Errc::qos_mismatch);
  EXPECT_NE(iceoryx.error().message.find("native"), std::string::npos) << iceoryx.error().message;
}

}  // namespace
}  // namespace symphony::test
