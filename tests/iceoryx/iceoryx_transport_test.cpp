// The iceoryx transport through its factories (no Bus): streams across processes, exact drop
// counting, notify fds, QoS refusals, typed sizes, `full` without blocking, and a plain iceoryx
// subscriber/publisher on our topics. Every iceoryx user is a forked child (see the support
// header); each test starts with RouDi idle and ends with it stopped by its keeper.

#include <poll.h>
#include <sys/eventfd.h>

#include "iceoryx_test_support.hpp"

// The plain iceoryx side of the interoperability tests: iceoryx's own API only.
#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"

namespace symphony::test::ice {
namespace {

using engine::Frame;
using engine::Loan;
using engine::Overflow;
using engine::RingStatus;
using engine::WaitStrategy;

std::string status_text(RingStatus s) { return engine::to_string(s); }

// Children that exit while RouDi still runs: wait for both, report both.
void expect_ok(ChildProcess& a, ChildProcess& b, Clock::duration timeout = 120s) {
  const ChildStatus sa = a.wait(timeout);
  const ChildStatus sb = b.wait(timeout);
  EXPECT_TRUE(sa.ok()) << "first child: " << sa << "\n" << keeper_log();
  EXPECT_TRUE(sb.ok()) << "second child: " << sb;
}

void init_plain_runtime(const char* role) {
  const std::string name = std::string("symtest-plain-") + role + "-" + std::to_string(::getpid());
  iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kWarn,
                                                           iox::log::LogLevelOutput::kHideLogLevel);
  iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name));
}

// A plain child _exit()s without iceoryx's clean-up: remove the socket and lock file it leaves.
void remove_plain_app_files(const char* role, pid_t pid) {
  const std::string app = std::string("/tmp/symtest-plain-") + role + "-" + std::to_string(pid);
  std::remove(app.c_str());
  std::remove((app + ".lock").c_str());
}

iox::capro::ServiceDescription plain_service(const std::string& topic) {
  return {iox::capro::IdString_t("symphony"), iox::capro::IdString_t(kBus),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, topic.c_str(), topic.size())};
}

using IceoryxTransport = IceoryxTest;

// 1 M samples (scaled) with sequence numbers and a checked pattern, block policy, loans
// published in batches of 1-4: nothing lost, duplicated, reordered or torn.
TEST_F(IceoryxTransport, MillionSequencedMessagesAcrossProcessesLoseNothing) {
  const std::uint64_t n = scaled(1'000'000);
  const std::string topic = topic_name();
  SharedArray<std::uint64_t> flags(4);  // 0: subscriber ready, 1: received
  SharedCounters counters(2);

  ChildProcess sub([&] {
    auto session = child_session();
    auto s = detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(64),
                                             sub_options(256, Overflow::block), counters.at(1));
    ICE_CHILD_OK(s);
    set_flag(flags, 0, 1);
    std::uint64_t expected = 0;
    while (expected < n) {
      const Frame f = (*s)->take(WaitStrategy::sleeping(), deadline_in(30s));
      SYM_CHILD_CHECK_MSG(f.ok(), "take after " + std::to_string(expected) + ": " +
                                      status_text(f.status));
      SYM_CHILD_CHECK_MSG(f.size == 64 && check(f.bytes(), expected),
                          "sample " + std::to_string(expected) + " is wrong: seq " +
                              std::to_string(seq_of(f.bytes())) + ", " + std::to_string(f.size) +
                              " bytes");
      ++expected;
      if ((expected & 7) == 0) (*s)->release();
    }
    (*s)->release();
    set_flag(flags, 1, expected);
    SYM_CHILD_CHECK((*s)->try_take().status == RingStatus::empty);
    SYM_CHILD_CHECK((*s)->counters().delivered == n && (*s)->counters().dropped == 0);
  });
  ChildProcess pub([&] {
    SYM_CHILD_CHECK(wait_flag(flags, 0, 1));
    auto session = child_session();
    auto p = detail::make_iceoryx_publisher(session, kBus, topic, {}, iceoryx_options(64), counters.at(0));
    ICE_CHILD_OK(p);
    wait_subscribers(**p, 1);
    std::uint64_t seq = 0;
    while (seq < n) {
      const std::uint64_t batch = std::min<std::uint64_t>(1 + seq % 4, n - seq);
      for (std::uint64_t i = 0; i < batch; ++i, ++seq) {
        const Loan loan = (*p)->loan(64, WaitStrategy::yielding(), deadline_in(30s));
        SYM_CHILD_CHECK_MSG(loan.ok(), "loan " + std::to_string(seq) + ": " + status_text(loan.status));
        fill(loan.bytes(), seq);
      }
      (*p)->publish();
    }
    SYM_CHILD_CHECK((*p)->counters().published == n);
    SYM_CHILD_CHECK(wait_flag(flags, 1, n, 120s));
  });
  expect_ok(sub, pub, 280s);
  EXPECT_EQ(flags[1], n);
  EXPECT_EQ(counters.get(0, &layouts::TopicCounterBlock::published), n);
  EXPECT_EQ(counters.get(1, &layouts::TopicCounterBlock::delivered), n);
  EXPECT_EQ(counters.get(1, &layouts::TopicCounterBlock::dropped), 0u);
}

// discard_oldest: the subscriber counts exactly the samples it never saw, including those lost
// before its first take, and one overrun per episode.
TEST_F(IceoryxTransport, DiscardOldestCountsExactlyWhatItDrops) {
  const std::string topic = topic_name();
  SharedArray<std::uint64_t> flags(8);  // 0: sub ready, 1: phase published, 2: phase drained
  SharedCounters counters(2);
  constexpr std::uint32_t kDepth = 8;

  ChildProcess sub([&] {
    auto session = child_session();
    auto s = detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(64),
                                             sub_options(kDepth, Overflow::discard_oldest),
                                             counters.at(1));
    ICE_CHILD_OK(s);
    set_flag(flags, 0, 1);
    std::uint64_t next_expected_min = 0;
    // Each phase: wait until published, take everything, check it is the newest samples.
    const auto drain = [&](std::uint64_t phase, std::uint64_t last_published) {
      SYM_CHILD_CHECK(wait_flag(flags, 1, phase));
      std::vector<std::uint64_t> got;
      for (Frame f = (*s)->try_take(); f.ok(); f = (*s)->try_take()) {
        SYM_CHILD_CHECK(check(f.bytes(), seq_of(f.bytes())));
        got.push_back(seq_of(f.bytes()));
        (*s)->release();
      }
      SYM_CHILD_CHECK_MSG(!got.empty() && got.back() == last_published,
                          "phase " + std::to_string(phase) + ": last " +
                              (got.empty() ? "none" : std::to_string(got.back())));
      for (std::size_t i = 1; i < got.size(); ++i) SYM_CHILD_CHECK(got[i] == got[i - 1] + 1);
      SYM_CHILD_CHECK(got.front() >= next_expected_min);
      next_expected_min = got.back() + 1;
      set_flag(flags, 2, phase);
    };
    drain(1, 999);   // 1000 published before the first take: the newest 8 are left
    drain(2, 1004);  // 5 more: all fit
    drain(3, 1024);  // 20 more: 12 lost
  });
  ChildProcess pub([&] {
    SYM_CHILD_CHECK(wait_flag(flags, 0, 1));
    auto session = child_session();
    auto p = detail::make_iceoryx_publisher(session, kBus, topic, {}, iceoryx_options(64), counters.at(0));
    ICE_CHILD_OK(p);
    wait_subscribers(**p, 1);
    publish_range(**p, 0, 1000);
    set_flag(flags, 1, 1);
    SYM_CHILD_CHECK(wait_flag(flags, 2, 1));
    publish_range(**p, 1000, 5);
    set_flag(flags, 1, 2);
    SYM_CHILD_CHECK(wait_flag(flags, 2, 2));
    publish_range(**p, 1005, 20);
    set_flag(flags, 1, 3);
    SYM_CHILD_CHECK(wait_flag(flags, 2, 3));
  });
  expect_ok(sub, pub);
  const auto delivered = counters.get(1, &layouts::TopicCounterBlock::delivered);
  const auto dropped = counters.get(1, &layouts::TopicCounterBlock::dropped);
  EXPECT_EQ(delivered, kDepth + 5 + kDepth);
  EXPECT_EQ(dropped, (1000 - kDepth) + (20 - kDepth));
  EXPECT_EQ(delivered + dropped, 1025u);
  EXPECT_EQ(counters.get(1, &layouts::TopicCounterBlock::overruns), 2u);
  EXPECT_EQ(counters.get(0, &layouts::TopicCounterBlock::published), 1025u);
}

// A late subscriber that asks for history gets the last `history` samples; samples it then
// loses before its first take are counted from its join point, not from its first sample.
TEST_F(IceoryxTransport, LateSubscriberWithHistoryCountsDropsBeforeItsFirstTake) {
  const std::string topic = topic_name();
  SharedArray<std::uint64_t> flags(8);  // 0: first 10 published, 1: sub joined, 2: 20 more, 3: done
  SharedCounters counters(2);
  constexpr std::uint32_t kHistory = 4;
  constexpr std::uint32_t kDepth = 8;

  ChildProcess pub([&] {
    auto session = child_session();
    auto p = detail::make_iceoryx_publisher(session, kBus, topic, {}, iceoryx_options(64, kHistory),
                                            counters.at(0));
    ICE_CHILD_OK(p);
    publish_range(**p, 0, 10);  // nobody listens: only history keeps the last 4
    set_flag(flags, 0, 1);
    SYM_CHILD_CHECK(wait_flag(flags, 1, 1));
    wait_subscribers(**p, 1);
    publish_range(**p, 10, 20);
    set_flag(flags, 2, 1);
    SYM_CHILD_CHECK(wait_flag(flags, 3, 1));
  });
  ChildProcess sub([&] {
    SYM_CHILD_CHECK(wait_flag(flags, 0, 1));
    auto session = child_session();
    auto s = detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(64, kHistory),
                                             sub_options(kDepth, Overflow::discard_oldest),
                                             counters.at(1));
    ICE_CHILD_OK(s);
    set_flag(flags, 1, 1);
    SYM_CHILD_CHECK(wait_flag(flags, 2, 1));
    // History 6..9 then 10..29 went into a queue of 8: 22..29 are left, 16 were lost.
    std::uint64_t expected = 22;
    for (Frame f = (*s)->try_take(); f.ok(); f = (*s)->try_take(), ++expected) {
      SYM_CHILD_CHECK_MSG(check(f.bytes(), expected), "got " + std::to_string(seq_of(f.bytes())) +
                                                          ", expected " + std::to_string(expected));
      (*s)->release();
    }
    SYM_CHILD_CHECK_MSG(expected == 30, "took up to " + std::to_string(expected));
    set_flag(flags, 3, 1);
  });
  expect_ok(pub, sub);
  EXPECT_EQ(counters.get(1, &layouts::TopicCounterBlock::delivered), kDepth);
  EXPECT_EQ(counters.get(1, &layouts::TopicCounterBlock::dropped), 16u);
  EXPECT_EQ(counters.get(1, &layouts::TopicCounterBlock::overruns), 1u);
}

// A subscriber written against iceoryx's API alone reads our topic's samples: service
// {"symphony", <bus>, <topic>}, the raw payload bytes.
TEST_F(IceoryxTransport, PlainIceoryxSubscriberReadsOurTopic) {
  const std::string topic = topic_name();
  SharedArray<std::uint64_t> flags(4);  // 0: our publisher up (RouDi up), 1: plain sub ready, 2: received
  constexpr std::uint64_t kCount = 100;

  ChildProcess pub([&] {
    auto session = child_session();
    auto p = detail::make_iceoryx_publisher(session, kBus, topic, {}, iceoryx_options(48), nullptr);
    ICE_CHILD_OK(p);
    set_flag(flags, 0, 1);
    SYM_CHILD_CHECK(wait_flag(flags, 1, 1));
    wait_subscribers(**p, 1);
    publish_range(**p, 0, kCount, 48);
    // Stay (and keep RouDi up) until the plain subscriber has everything.
    SYM_CHILD_CHECK(wait_flag(flags, 2, kCount));
  });
  ChildProcess plain([&] {
    SYM_CHILD_CHECK(wait_flag(flags, 0, 1));
    init_plain_runtime("sub");
    iox::popo::SubscriberOptions options;
    options.queueCapacity = 256;
    iox::popo::UntypedSubscriber subscriber(plain_service(topic), options);
    SYM_CHILD_CHECK(eventually(
        [&] { return subscriber.getSubscriptionState() == iox::SubscribeState::SUBSCRIBED; }, 10s,
        1ms));
    set_flag(flags, 1, 1);
    std::uint64_t expected = 0;
    const auto deadline = deadline_in(20s);
    while (expected < kCount && Clock::now() < deadline) {
      auto taken = subscriber.take();
      if (taken.has_error()) {
        std::this_thread::sleep_for(200us);
        continue;
      }
      const void* payload = taken.value();
      const auto* header = iox::mepoo::ChunkHeader::fromUserPayload(payload);
      const std::span<const std::byte> bytes(static_cast<const std::byte*>(payload),
                                             header->userPayloadSize());
      SYM_CHILD_CHECK_MSG(bytes.size() == 48 && check(bytes, expected),
                          "sample " + std::to_string(expected) + ": " +
                              std::to_string(bytes.size()) + " bytes, seq " +
                              std::to_string(seq_of(bytes)));
      subscriber.release(payload);
      set_flag(flags, 2, ++expected);
    }
    SYM_CHILD_CHECK_MSG(expected == kCount, "received " + std::to_string(expected));
  });
  const pid_t plain_pid = plain.pid();
  expect_ok(plain, pub);
  remove_plain_app_files("sub", plain_pid);
  EXPECT_EQ(flags[2], kCount);
}

// notify_fd: an eventfd (O_CLOEXEC | O_NONBLOCK) that becomes readable when another process
// publishes, and stops being readable once try_take() finds nothing; take() sleeps on it and
// never waits past its deadline.
TEST_F(IceoryxTransport, NotifyFdWakesOnPublishFromAnotherProcess) {
  const std::string topic = topic_name();
  SharedArray<std::uint64_t> flags(4);  // 0: sub waiting, 1: first taken, 2: done
  ChildProcess sub([&] {
    auto session = child_session();
    auto s = detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(64),
                                             sub_options(16, Overflow::discard_oldest), nullptr);
    ICE_CHILD_OK(s);
    auto fd = (*s)->notify_fd();
    ICE_CHILD_OK(fd);
    SYM_CHILD_CHECK((::fcntl(*fd, F_GETFD) & FD_CLOEXEC) != 0);
    SYM_CHILD_CHECK((::fcntl(*fd, F_GETFL) & O_NONBLOCK) != 0);
    pollfd pfd{*fd, POLLIN, 0};
    SYM_CHILD_CHECK(::poll(&pfd, 1, 0) == 0);  // nothing yet
    // The listener thread exists and is named.
    bool named = false;
    if (DIR* tasks = ::opendir("/proc/self/task")) {
      while (const dirent* e = ::readdir(tasks)) {
        std::ifstream in("/proc/self/task/" + std::string(e->d_name) + "/comm");
        std::string comm;
        if (std::getline(in, comm) && comm == "sym-iox-listen") named = true;
      }
      ::closedir(tasks);
    }
    SYM_CHILD_CHECK_MSG(named, "no thread named sym-iox-listen");
    set_flag(flags, 0, 1);

    for (std::uint64_t seq = 0; seq < 2; ++seq) {
      pfd.revents = 0;
      SYM_CHILD_CHECK_MSG(::poll(&pfd, 1, 10'000) == 1, "no wake-up for sample " + std::to_string(seq));
      const Frame f = (*s)->try_take();
      SYM_CHILD_CHECK_MSG(f.ok() && check(f.bytes(), seq), "sample " + std::to_string(seq));
      (*s)->release();
      SYM_CHILD_CHECK((*s)->try_take().status == RingStatus::empty);
      SYM_CHILD_CHECK_MSG(::poll(&pfd, 1, 0) == 0, "still readable after an empty try_take");
      set_flag(flags, 1, seq + 1);
    }
    // take() with nothing coming: returns empty at its deadline, not before, not much after.
    const auto start = Clock::now();
    const Frame none = (*s)->take(WaitStrategy::sleeping(), start + 200ms);
    const auto waited = Clock::now() - start;
    SYM_CHILD_CHECK(none.status == RingStatus::empty);
    SYM_CHILD_CHECK_MSG(waited >= 200ms && waited < 2s,
                        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) + " ms");
    set_flag(flags, 2, 1);
  });
  ChildProcess pub([&] {
    SYM_CHILD_CHECK(wait_flag(flags, 0, 1));
    auto session = child_session();
    auto p = detail::make_iceoryx_publisher(session, kBus, topic, {}, iceoryx_options(64), nullptr);
    ICE_CHILD_OK(p);
    wait_subscribers(**p, 1);
    for (std::uint64_t seq = 0; seq < 2; ++seq) {
      std::this_thread::sleep_for(50ms);  // the subscriber is asleep in poll()
      publish_range(**p, seq, 1);
      SYM_CHILD_CHECK(wait_flag(flags, 1, seq + 1));
    }
    SYM_CHILD_CHECK(wait_flag(flags, 2, 1));
  });
  expect_ok(sub, pub);
}

// A block subscriber that does not take: try_loan says `full` at once (counting pending loans),
// loan() gives up at its deadline, and room comes back when the subscriber takes. Loans
// published together arrive in loan order.
TEST_F(IceoryxTransport, FullIsReportedWithoutBlockingAndLoansPublishInOrder) {
  const std::string topic = topic_name();
  SharedArray<std::uint64_t> flags(8);  // 0: sub ready, 1: take one now, 2: took one, 3: drain, 4: drained
  SharedCounters counters(2);
  constexpr std::uint32_t kDepth = 4;

  ChildProcess sub([&] {
    auto session = child_session();
    auto s = detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(64),
                                             sub_options(kDepth, Overflow::block), counters.at(1));
    ICE_CHILD_OK(s);
    set_flag(flags, 0, 1);
    SYM_CHILD_CHECK(wait_flag(flags, 1, 1));
    Frame f = (*s)->try_take();
    SYM_CHILD_CHECK(f.ok() && check(f.bytes(), 0));
    (*s)->release();
    set_flag(flags, 2, 1);
    SYM_CHILD_CHECK(wait_flag(flags, 3, 1));
    for (std::uint64_t seq = 1; seq <= 7; ++seq) {
      f = (*s)->take(WaitStrategy::sleeping(), deadline_in(10s));
      SYM_CHILD_CHECK_MSG(f.ok() && check(f.bytes(), seq), "sample " + std::to_string(seq));
    }
    (*s)->release();
    set_flag(flags, 4, 1);
  });
  ChildProcess pub([&] {
    SYM_CHILD_CHECK(wait_flag(flags, 0, 1));
    auto session = child_session();
    auto p = detail::make_iceoryx_publisher(session, kBus, topic, {}, iceoryx_options(64), counters.at(0));
    ICE_CHILD_OK(p);
    wait_subscribers(**p, 1);
    // Four loans pending fill the queue's room; the fifth is refused before anything is sent.
    for (std::uint64_t seq = 0; seq < kDepth; ++seq) {
      const Loan loan = (*p)->try_loan(64);
      SYM_CHILD_CHECK(loan.ok());
      fill(loan.bytes(), seq);
    }
    SYM_CHILD_CHECK((*p)->try_loan(64).status == RingStatus::full);
    (*p)->publish();
    SYM_CHILD_CHECK((*p)->counters().published == kDepth);
    // Queue full now: refused at once, counted once per episode.
    const auto t0 = Clock::now();
    SYM_CHILD_CHECK((*p)->try_loan(64).status == RingStatus::full);
    SYM_CHILD_CHECK((*p)->try_loan(64).status == RingStatus::full);
    SYM_CHILD_CHECK(Clock::now() - t0 < 100ms);
    const Loan late = (*p)->loan(64, WaitStrategy::sleeping(), Clock::now() + 150ms);
    const auto waited = Clock::now() - t0;
    SYM_CHILD_CHECK(late.status == RingStatus::full);
    SYM_CHILD_CHECK_MSG(waited >= 150ms && waited < 2s, "loan waited " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) + " ms");
    SYM_CHILD_CHECK((*p)->counters().full >= 1);
    // The subscriber takes one: room for exactly one.
    set_flag(flags, 1, 1);
    SYM_CHILD_CHECK(wait_flag(flags, 2, 1));
    Loan loan = (*p)->loan(64, WaitStrategy::sleeping(), deadline_in(5s));
    SYM_CHILD_CHECK(loan.ok());
    fill(loan.bytes(), kDepth);
    (*p)->publish();
    SYM_CHILD_CHECK((*p)->try_loan(64).status == RingStatus::full);
    // Drain, then three loans published together arrive in order.
    set_flag(flags, 3, 1);
    SYM_CHILD_CHECK(eventually([&] { return (loan = (*p)->try_loan(64)).ok(); }, 10s, 1ms));
    fill(loan.bytes(), 5);
    for (std::uint64_t seq = 6; seq <= 7; ++seq) {
      loan = (*p)->try_loan(64);
      SYM_CHILD_CHECK(loan.ok());
      fill(loan.bytes(), seq);
    }
    (*p)->publish();
    SYM_CHILD_CHECK(wait_flag(flags, 4, 1));
  });
  expect_ok(sub, pub);
  EXPECT_GE(counters.get(0, &layouts::TopicCounterBlock::full), 1u);
  EXPECT_EQ(counters.get(1, &layouts::TopicCounterBlock::delivered), 8u);
}

// A block subscriber killed with SIGKILL holding a full queue gates the publisher (`full`, never a
// blocked publish) only until RouDi notices the death (~1.5 s); then publishing goes on.
TEST_F(IceoryxTransport, KilledBlockSubscriberStopsGatingThePublisher) {
  const std::string topic = topic_name();
  SharedArray<std::uint64_t> flags(4);  // 0: sub ready, 1: queue full, 2: publisher resumed
  ChildProcess sub([&] {
    auto session = child_session();
    auto s = detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(64),
                                             sub_options(4, Overflow::block), nullptr);
    ICE_CHILD_OK(s);
    set_flag(flags, 0, 1);
    std::this_thread::sleep_for(120s);  // killed long before
  });
  ChildProcess pub([&] {
    SYM_CHILD_CHECK(wait_flag(flags, 0, 1));
    auto session = child_session();
    auto p = detail::make_iceoryx_publisher(session, kBus, topic, {}, iceoryx_options(64), nullptr);
    ICE_CHILD_OK(p);
    wait_subscribers(**p, 1);
    publish_range(**p, 0, 4);
    SYM_CHILD_CHECK((*p)->try_loan(64).status == RingStatus::full);
    set_flag(flags, 1, 1);
    // Each attempt returns at once; within a few seconds the dead queue is gone.
    const auto start = Clock::now();
    Loan loan{};
    SYM_CHILD_CHECK_MSG(eventually([&] { return (loan = (*p)->try_loan(64)).ok(); }, 10s, 1ms),
                        "still full 10 s after the subscriber was killed");
    fill(loan.bytes(), 4);
    (*p)->publish();
    set_flag(flags, 2, static_cast<std::uint64_t>(
                           std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count() + 1));
  });
  ASSERT_TRUE(wait_flag(flags, 1, 1));
  sub.kill9();
  const ChildStatus sp = pub.wait(60s);
  EXPECT_TRUE(sp.ok()) << sp;
  EXPECT_GT(flags[2], 0u);
  EXPECT_LT(flags[2], 5000u) << "ms until the publisher could publish again";
}

// What iceoryx 2.0 cannot honour is refused with Errc::unsupported and the limit named; never
// silently degraded.
TEST_F(IceoryxTransport, QosIceoryxCannotHonourIsRefused) {
  const std::string topic = topic_name();
  const auto status = run_in_child([&] {
    auto session = child_session();
    const auto refused = [&](auto result, engine::Errc code, const std::string& mentions) {
      SYM_CHILD_CHECK_MSG(!result, "accepted; expected refusal mentioning " + mentions);
      SYM_CHILD_CHECK_MSG(result.error().code == code,
                          std::string("code ") + engine::to_string(result.error().code) + ": " +
                              result.error().message);
      SYM_CHILD_CHECK_MSG(result.error().message.find(mentions) != std::string::npos,
                          result.error().message);
    };
    const auto block = sub_options(64, Overflow::block);
    refused(detail::make_iceoryx_publisher(session, kBus, topic, {}, iceoryx_options(64, 17), nullptr),
            engine::Errc::unsupported, "16");
    refused(detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(64, 17), block, nullptr),
            engine::Errc::unsupported, "16");
    refused(detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(64),
                                            sub_options(257, Overflow::block), nullptr),
            engine::Errc::unsupported, "256");
    refused(detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(64, 8),
                                            sub_options(4, Overflow::block), nullptr),
            engine::Errc::unsupported, "depth 4");
    refused(detail::make_iceoryx_publisher(session, kBus, topic, {}, iceoryx_options(2u << 20), nullptr),
            engine::Errc::unsupported, "max_payload 2097152");
    refused(detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(2u << 20), block, nullptr),
            engine::Errc::unsupported, "max_payload 2097152");
    refused(detail::make_iceoryx_publisher(session, kBus, std::string(101, 'x'), {}, iceoryx_options(64), nullptr),
            engine::Errc::unsupported, "100");
    refused(detail::make_iceoryx_subscriber(session, kBus, topic, {}, iceoryx_options(64),
                                            sub_options(0, Overflow::block), nullptr),
            engine::Errc::invalid_argument, "depth 0");
    // The largest payload our pools hold is accepted and can be loaned.
    auto big = detail::make_iceoryx_publisher(session, kBus, topic, {}, iceoryx_options(1u << 20), nullptr);
    ICE_CHILD_OK(big);
    const Loan loan = (*big)->try_loan(1u << 20);
    SYM_CHILD_CHECK_MSG(loan.ok(), status_text(loan.status));
    SYM_CHILD_CHECK((*big)->try_loan((1u << 20) + 1).status == RingStatus::oversize);
  });
  EXPECT_TRUE(status.ok()) << status;
}

// Typed topics: every sample exactly sizeof(T). Wrong loan sizes are refused; a wrong-size
// sample from a plain iceoryx publisher is reported `corrupt` and handed back.
TEST_F(IceoryxTransport, TypedTopicRefusesOtherSizes) {
  const std::string topic = topic_name();
  SharedArray<std::uint64_t> flags(4);  // 0: sub ready, 1: plain published, 2: done
  const engine::TopicType type{"Pose", 24};
  ChildProcess sub([&] {
    auto session = child_session();
    auto s = detail::make_iceoryx_subscriber(session, kBus, topic, type, iceoryx_options(24),
                                             sub_options(16, Overflow::discard_oldest), nullptr);
    ICE_CHILD_OK(s);
    // Our own publisher refuses wrong sizes, and holds at most 7 loans at once.
    auto p = detail::make_iceoryx_publisher(session, kBus, topic + ".own", type, iceoryx_options(24), nullptr);
    ICE_CHILD_OK(p);
    SYM_CHILD_CHECK((*p)->try_loan(23).status == RingStatus::oversize);
    SYM_CHILD_CHECK((*p)->try_loan(25).status == RingStatus::oversize);
    for (int i = 0; i < 7; ++i) SYM_CHILD_CHECK((*p)->try_loan(24).ok());
    SYM_CHILD_CHECK((*p)->try_loan(24).status == RingStatus::busy);
    (*p)->publish();
    SYM_CHILD_CHECK((*p)->try_loan(24).ok());
    set_flag(flags, 0, 1);
    SYM_CHILD_CHECK(wait_flag(flags, 1, 1));
    const Frame wrong = (*s)->try_take();
    SYM_CHILD_CHECK_MSG(wrong.status == RingStatus::corrupt, status_text(wrong.status));
    const Frame right = (*s)->try_take();
    SYM_CHILD_CHECK_MSG(right.ok() && right.size == 24 && check(right.bytes(), 7), status_text(right.status));
    (*s)->release();
    SYM_CHILD_CHECK((*s)->counters().delivered == 1);
    set_flag(flags, 2, 1);
  });
  ChildProcess plain([&] {
    SYM_CHILD_CHECK(wait_flag(flags, 0, 1));
    init_plain_runtime("pub");
    iox::popo::UntypedPublisher publisher(plain_service(topic));
    SYM_CHILD_CHECK(eventually([&] { return publisher.hasSubscribers(); }, 10s, 1ms));
    for (const std::uint32_t size : {10u, 24u}) {
      auto chunk = publisher.loan(size);
      SYM_CHILD_CHECK(!chunk.has_error());
      fill({static_cast<std::byte*>(chunk.value()), size}, 7);
      publisher.publish(chunk.value());
    }
    set_flag(flags, 1, 1);
    SYM_CHILD_CHECK(wait_flag(flags, 2, 1));
  });
  const pid_t plain_pid = plain.pid();
  expect_ok(sub, plain);
  remove_plain_app_files("pub", plain_pid);
}

}  // namespace
}  // namespace symphony::test::ice
