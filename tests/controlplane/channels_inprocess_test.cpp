// Host and extension channels in one process (threads: the TSan twins of the control plane):
// tokens and generations, snapshots and resyncs, garbage from a foreign client, old protocol.

#include <future>
#include <optional>

#include "channels_fixture.hpp"

namespace symphony::controlplane {
namespace {

using namespace test_support;
using engine::Errc;
using test::ChildProcess;
using test::eventually;
using test::SharedArray;
using namespace std::chrono_literals;

TEST_F(ChannelsTest, OnlyTheRegisteredGenerationAndTokenAreHeard) {
  auto host = start_host();
  const Registration first = host->register_extension("worker", 0);
  const Registration other_instance = host->register_extension("worker", 1);
  ExtensionHandlers echo;
  echo.on_request = [](const std::string&, const std::string& p) -> engine::Result<std::string> {
    return p;
  };
  auto a = ExtensionChannel::connect(extension_options(first), echo);
  ASSERT_TRUE(a);
  auto b = ExtensionChannel::connect(extension_options(other_instance), echo);
  ASSERT_TRUE(b);
  ASSERT_TRUE((*a)->wait_ready(5s));
  ASSERT_TRUE((*b)->wait_ready(5s));

  // A wrong token is refused and counted.
  Registration forged = first;
  forged.instance = 2;
  auto c = ExtensionChannel::connect(extension_options(forged), echo);
  ASSERT_TRUE(c);
  EXPECT_FALSE((*c)->wait_ready(500ms));
  EXPECT_NE((*c)->last_refusal().find("not registered"), std::string::npos)
      << (*c)->last_refusal();
  Registration bad_token = other_instance;
  bad_token.generation = 5;  // its own identity, a token the host never issued
  bad_token.token = make_token();
  auto d = ExtensionChannel::connect(extension_options(bad_token), echo);
  ASSERT_TRUE(d);
  EXPECT_FALSE((*d)->wait_ready(500ms));
  EXPECT_GE(host->counters().refused_bad_token, 1u);
  EXPECT_GE(host->counters().refused_unregistered, 1u);
  d->reset();
  // An impostor with a live extension's exact identity cannot take its connection over.
  Registration impostor = other_instance;
  impostor.token = make_token();
  auto f = ExtensionChannel::connect(extension_options(impostor), echo);
  ASSERT_TRUE(f);
  EXPECT_FALSE((*f)->wait_ready(500ms));
  f->reset();
  // The second instance did not take the first one's routing slot.
  EXPECT_TRUE(host->request("worker/0", "echo", "0", 5s).get());
  EXPECT_TRUE(host->request("worker/1", "echo", "1", 5s).get());

  // A restarted instance: a new generation takes the route back; the old one is refused.
  const Registration restarted = host->register_extension("worker", 0);
  EXPECT_EQ(restarted.generation, first.generation + 1);
  auto e = ExtensionChannel::connect(extension_options(restarted), echo);
  ASSERT_TRUE(e);
  ASSERT_TRUE((*e)->wait_ready(5s));
  auto reply = host->request("worker/0", "echo", "\"new\"", 5s).get();
  ASSERT_TRUE(reply) << reply.error().message;
  a->reset();  // the old generation's process goes away
  auto after = host->request("worker/0", "echo", "3", 5s).get();
  EXPECT_TRUE(after) << after.error().message;
}

TEST_F(ChannelsTest, LateJoinerGetsASnapshotThenDeltas) {
  auto host = start_host();
  host->set_state("explorer", "{\"state\":\"RUNNING\"}");
  host->set_state("operator", "{\"state\":\"HEALTHY\"}");
  host->broadcast("note", "\"not state\"");
  const Registration r = host->register_extension("late");
  std::atomic<int> events{0};
  ExtensionHandlers handlers;
  handlers.on_event = [&](std::uint64_t, const std::string&, const std::string&) { ++events; };
  auto channel = ExtensionChannel::connect(extension_options(r), handlers);
  ASSERT_TRUE(channel);
  ASSERT_TRUE((*channel)->wait_ready(5s));
  auto state = (*channel)->state();
  EXPECT_EQ(state["explorer"], "{\"state\":\"RUNNING\"}");
  EXPECT_EQ(state["operator"], "{\"state\":\"HEALTHY\"}");
  EXPECT_EQ((*channel)->state_sequence(), 3u);
  host->set_state("explorer", "{\"state\":\"STOPPED\"}");
  ASSERT_TRUE(eventually([&] { return (*channel)->state_sequence() == 4; }, 5s));
  EXPECT_EQ((*channel)->state()["explorer"], "{\"state\":\"STOPPED\"}");
}

// The extension against a host written directly with cppzmq, which skips a sequence number.
TEST_F(ChannelsTest, SequenceGapTriggersAResync) {
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  zmq::socket_t pub(context, zmq::socket_type::pub);
  router.set(zmq::sockopt::linger, 0);
  pub.set(zmq::sockopt::linger, 0);
  router.bind(options_.control_endpoint);
  pub.bind(options_.events_endpoint);
  const Registration r = registration("gappy");
  auto channel = ExtensionChannel::connect(extension_options(r), {});
  ASSERT_TRUE(channel);
  auto receive = [&](MessageType wanted) -> std::optional<std::pair<std::string, Envelope>> {
    router.set(zmq::sockopt::rcvtimeo, 5000);
    for (int i = 0; i < 50; ++i) {
      zmq::multipart_t m;
      if (!m.recv(router)) return std::nullopt;
      auto e = decode(m[1].to_string_view());
      if (e && e->type == wanted) return std::make_pair(m[0].to_string(), *e);
    }
    return std::nullopt;
  };
  auto send = [&](const std::string& identity, MessageType type, std::uint64_t id,
                  std::string body) {
    Envelope e;
    e.type = type;
    e.id = id;
    e.from = "host";
    e.to = "gappy/0";
    e.body = std::move(body);
    zmq::multipart_t m;
    m.addstr(identity);
    m.addstr(encode(e));
    m.send(router);
  };
  auto publish = [&](std::uint64_t seq, const std::string& key) {
    Envelope e;
    e.type = MessageType::event;
    e.id = seq;
    e.from = "host";
    e.to = "*";
    e.body = JsonObject().add("key", key).add_raw("value", "1").add("seq", seq).add("kind", "state").str();
    zmq::multipart_t m;
    m.addstr("ev");
    m.addstr(encode(e));
    m.send(pub);
  };
  auto hello = receive(MessageType::hello);
  ASSERT_TRUE(hello);
  const std::string identity = hello->first;
  send(identity, MessageType::welcome, hello->second.id,
       JsonObject().add("heartbeat_ms", 50).add("events", options_.events_endpoint).str());
  auto first_snapshot = receive(MessageType::snapshot_request);
  ASSERT_TRUE(first_snapshot);
  send(identity, MessageType::snapshot, first_snapshot->second.id,
       JsonObject().add("seq", 5).add_raw("state", "{\"a\":1}").str());
  ASSERT_TRUE((*channel)->wait_ready(5s));
  std::this_thread::sleep_for(200ms);  // the SUB connection is up (slow joiner)
  publish(6, "b");
  ASSERT_TRUE(eventually([&] { return (*channel)->state_sequence() == 6; }, 5s));
  publish(8, "d");  // 7 is missing
  auto resync = receive(MessageType::snapshot_request);
  ASSERT_TRUE(resync) << "a gap makes the extension ask for a snapshot";
  EXPECT_EQ((*channel)->counters().resyncs, 1u);
  send(identity, MessageType::snapshot, resync->second.id,
       JsonObject().add("seq", 8).add_raw("state", "{\"a\":1,\"b\":1,\"c\":1,\"d\":1}").str());
  ASSERT_TRUE(eventually([&] { return (*channel)->state().size() == 4; }, 5s));
  EXPECT_EQ((*channel)->state_sequence(), 8u);
}

// A client written directly against libzmq sends garbage: the host counts it and keeps serving.
TEST_F(ChannelsTest, GarbageFromAForeignClientIsRefusedAndCounted) {
  options_.limits.max_bytes = 4096;
  auto host = start_host();
  const Registration r = host->register_extension("honest");
  ExtensionHandlers echo;
  echo.on_request = [](const std::string&, const std::string& p) -> engine::Result<std::string> {
    return p;
  };
  auto channel = ExtensionChannel::connect(extension_options(r), echo);
  ASSERT_TRUE(channel);
  ASSERT_TRUE((*channel)->wait_ready(5s));

  zmq::context_t context;
  zmq::socket_t rogue(context, zmq::socket_type::dealer);
  rogue.set(zmq::sockopt::linger, 0);
  rogue.set(zmq::sockopt::routing_id, "rogue");
  rogue.connect(options_.control_endpoint);
  std::string deep = R"({"v":2,"type":"reply","id":1,"from":"a","to":"b","body":{"payload":)";
  for (int i = 0; i < 200; ++i) deep += "[";
  for (int i = 0; i < 200; ++i) deep += "]";
  deep += "}}";
  const std::vector<std::string> garbage = {
      "\x00\x01\x02 binary",
      "{\"v\":2",
      deep,
      R"({"v":9,"type":"heartbeat","id":1,"from":"a","to":"b","body":{}})",
      R"({"v":2,"type":"teleport","id":1,"from":"a","to":"b","body":{}})",
      R"({"v":2,"type":"reply","id":1,"from":"a","to":"b","body":{}})",  // no hello
      R"({"v":2,"type":"hello","id":1,"from":"a","to":"b","body":{"token":"x","extension":"honest","instance":0,"generation":1,"sdk":"0","layout":1}})",
  };
  for (const std::string& g : garbage) rogue.send(zmq::buffer(g), zmq::send_flags::none);
  zmq::multipart_t two_frames;
  two_frames.addstr("a");
  two_frames.addstr("b");
  two_frames.send(rogue);
  rogue.send(zmq::buffer(std::string(10000, 'x')), zmq::send_flags::none);  // over max size
  ASSERT_TRUE(eventually(
      [&] {
        const auto c = host->counters();
        return c.malformed >= 5 && c.wrong_version >= 1 && c.refused_unregistered >= 1 &&
               c.refused_bad_token >= 1;
      },
      5s))
      << "malformed " << host->counters().malformed << ", wrong_version "
      << host->counters().wrong_version;
  auto reply = host->request("honest", "echo", "\"still here\"", 5s).get();
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(*reply, "\"still here\"");
}

TEST_F(ChannelsTest, OldProtocolVersionIsAccepted) {
  auto host = start_host();
  const Registration r = host->register_extension("legacy");
  ExtensionOptions o = extension_options(r);
  o.protocol = kOldestProtocolVersion;
  ExtensionHandlers echo;
  echo.on_request = [](const std::string&, const std::string& p) -> engine::Result<std::string> {
    return p;
  };
  auto channel = ExtensionChannel::connect(o, echo);
  ASSERT_TRUE(channel);
  ASSERT_TRUE((*channel)->wait_ready(5s));
  const auto peers = host->peers();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].protocol, kOldestProtocolVersion);
}

// A callback stuck on a worker thread while the I/O thread still heartbeats: the heartbeats say
// how long it has run, and past the registration's hang_after the host reports a hang, fails
// what is pending, and refuses new requests at once; when it finishes, the extension is back.
TEST_F(ChannelsTest, ADeadlockedCallbackIsAHangEvenWhileHeartbeatsFlow) {
  std::mutex m;  // before the host: its I/O thread calls back into these until it is gone
  std::vector<PeerEvent> events;
  // Only the hang may make it unresponsive here: silence would need far longer (a loaded
  // machine delays heartbeats, which is the other test's business).
  options_.unresponsive_after = 30s;
  auto host = start_host();
  host->on_peer_event([&](const PeerEvent& e) {
    std::lock_guard lock(m);
    events.push_back(e);
  });
  const Registration r = host->register_extension("stuck", 0, 300ms);
  ExtensionHandlers echo;
  echo.on_request = [](const std::string&, const std::string& p) -> engine::Result<std::string> {
    return p;
  };
  ExtensionOptions o = extension_options(r);
  o.host_timeout = 30s;
  auto channel = ExtensionChannel::connect(o, echo);
  ASSERT_TRUE(channel);
  ASSERT_TRUE((*channel)->wait_ready(5s));
  ASSERT_TRUE(host->request("stuck", "echo", "1", 5s).get());

  std::promise<void> release;
  std::thread worker([&, running = (*channel)->callbacks().start()]() mutable {
    release.get_future().wait();
  });
  struct ReleaseOnExit {  // a failed ASSERT must not leave the worker joinable
    std::promise<void>& release;
    std::thread& worker;
    ~ReleaseOnExit() {
      try {
        release.set_value();
      } catch (const std::future_error&) {
      }
      if (worker.joinable()) worker.join();
    }
  } release_on_exit{release, worker};
  auto hung = [&]() -> std::optional<std::string> {
    std::lock_guard lock(m);
    for (const auto& e : events) {
      if (e.state == PeerState::unresponsive) return e.reason;
    }
    return std::nullopt;
  };
  ASSERT_TRUE(eventually([&] { return hung().has_value(); }, 5s));
  EXPECT_NE(hung()->find("hung"), std::string::npos) << *hung();
  EXPECT_TRUE((*channel)->host_connected()) << "heartbeats kept flowing all along";
  auto refused = host->request("stuck", "echo", "2", 5s).get();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::unavailable);
  std::this_thread::sleep_for(200ms);  // more heartbeats while still stuck: no flapping
  {
    std::lock_guard lock(m);
    EXPECT_EQ(events.back().state, PeerState::unresponsive);
  }

  release.set_value();
  worker.join();
  ASSERT_TRUE(wait_connected(*host, "stuck/0"));
  EXPECT_TRUE(host->request("stuck", "echo", "3", 5s).get());
}

// A handler that answers from another thread keeps the I/O thread free: a fast request overtakes
// a slow one. A Responder dropped unanswered answers with an error; one that outlives its channel
// answers into nothing.
TEST_F(ChannelsTest, DeferredRepliesComeFromAnyThreadAndNeverGoMissing) {
  auto host = start_host();
  const Registration r = host->register_extension("deferred");
  std::mutex m;
  std::promise<void> fast_answered;
  std::shared_future<void> fast_seen = fast_answered.get_future().share();
  std::vector<std::thread> workers;
  struct JoinOnExit {  // a failed ASSERT must not leave a worker joinable
    std::vector<std::thread>& workers;
    std::promise<void>& fast_answered;
    ~JoinOnExit() {
      try {
        fast_answered.set_value();
      } catch (const std::future_error&) {
      }
      for (auto& worker : workers) {
        if (worker.joinable()) worker.join();
      }
    }
  } join_on_exit{workers, fast_answered};
  std::optional<Responder> kept;
  ExtensionHandlers handlers;
  handlers.on_request_deferred = [&](const std::string& method, const std::string& payload,
                                     Responder respond) {
    std::lock_guard lock(m);
    if (method == "slow") {
      // It answers only once the fast request (sent after it) has been answered.
      workers.emplace_back([payload, fast_seen, respond = std::move(respond)]() mutable {
        fast_seen.wait();
        respond(payload);
        respond(std::string("\"twice\""));  // ignored: one answer per request
      });
    } else if (method == "forget") {
      // the Responder dies here, unanswered
    } else if (method == "keep") {
      kept.emplace(std::move(respond));
    } else {
      respond(payload);
    }
  };
  auto channel = ExtensionChannel::connect(extension_options(r), handlers);
  ASSERT_TRUE(channel);
  ASSERT_TRUE((*channel)->wait_ready(5s));

  auto slow = host->request("deferred", "slow", "\"slow\"", 5s);
  auto fast = host->request("deferred", "echo", "\"fast\"", 5s);
  ASSERT_EQ(fast.wait_for(5s), std::future_status::ready) << "the slow one blocked the I/O thread";
  EXPECT_EQ(fast.get(), "\"fast\"");
  fast_answered.set_value();
  EXPECT_EQ(slow.get(), "\"slow\"");

  auto forgotten = host->request("deferred", "forget", "1", 5s).get();
  ASSERT_FALSE(forgotten);
  EXPECT_NE(forgotten.error().message.find("without an answer"), std::string::npos)
      << forgotten.error().message;

  auto never = host->request("deferred", "keep", "1", 500ms);
  ASSERT_TRUE(eventually([&] { std::lock_guard lock(m); return kept.has_value(); }, 5s));
  channel->reset();  // the channel goes; the kept Responder answers into nothing
  (*kept)(std::string("\"late\""));
  EXPECT_FALSE(never.get()) << "the host's caller gets its timeout, nothing else";
}

// The supervisor's view of a death: in-flight requests fail with its reason, new ones fail fast,
// and the host's ipc socket files go with the host.
TEST_F(ChannelsTest, MarkGoneFailsPendingRequestsWithTheReasonAndTheHostCleansItsSocketFiles) {
  std::mutex m;
  std::vector<PeerEvent> events;
  auto host = start_host();
  host->on_peer_event([&](const PeerEvent& e) {
    std::lock_guard lock(m);
    events.push_back(e);
  });
  const Registration r = host->register_extension("mortal");
  std::optional<Responder> held;
  ExtensionHandlers handlers;
  handlers.on_request_deferred = [&](const std::string&, const std::string&, Responder respond) {
    std::lock_guard lock(m);
    held.emplace(std::move(respond));  // never answered: the process "dies" first
  };
  auto channel = ExtensionChannel::connect(extension_options(r), handlers);
  ASSERT_TRUE(channel);
  ASSERT_TRUE((*channel)->wait_ready(5s));
  auto pending = host->request("mortal", "work", "1", 30s);
  ASSERT_TRUE(eventually([&] { std::lock_guard lock(m); return held.has_value(); }, 5s));
  host->mark_gone("mortal", "extension 'mortal/0' died: killed by signal 9 (SIGKILL)");
  auto failed = pending.get();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, Errc::unavailable);
  EXPECT_NE(failed.error().message.find("killed by signal 9"), std::string::npos);
  auto refused = host->request("mortal", "work", "2", 30s).get();
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("gone"), std::string::npos) << refused.error().message;
  {
    std::lock_guard lock(m);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().state, PeerState::gone);
  }
  channel->reset();
  held.reset();

  const std::string control = options_.control_endpoint.substr(6);
  const std::string published = options_.events_endpoint.substr(6);
  EXPECT_TRUE(std::filesystem::exists(control));
  EXPECT_TRUE(std::filesystem::exists(published));
  host.reset();
  EXPECT_FALSE(std::filesystem::exists(control));
  EXPECT_FALSE(std::filesystem::exists(published));
}

}  // namespace
}  // namespace symphony::controlplane
