// Hot update and A/B through the supervisor, with real extension processes: the hand-over takes
// every sequence number of a `block` topic exactly once (old or new), requests keep being
// answered, a successor that cannot come up is rolled back, the checkpoint is carried over; an
// A/B split follows its weight, counted by the processes that served each request.

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "supervisor_fixture.hpp"
#include "symphony/controlplane/envelope.hpp"
#include "symphony/engine/bus.hpp"

namespace symphony::test {
namespace {

using controlplane::JsonReader;
using supervisor::AbOutcome;

class SupervisorUpdateTest : public SupervisorFixture {
 protected:
  void SetUp() override {
    SupervisorFixture::SetUp();
    consume_dir_ = std::filesystem::temp_directory_path() / ("symphony-update-test-" + bus_);
    std::filesystem::create_directories(consume_dir_);
  }
  void TearDown() override {
    SupervisorFixture::TearDown();
    std::error_code ec;
    std::filesystem::remove_all(consume_dir_, ec);
  }

  supervisor::Manifest worker(const std::string& version, std::vector<std::string> extra = {}) {
    auto m = manifest("worker", {"--label", version, "--consume", "work", "--consume-log",
                                 consume_dir_.string()});
    m.version = version;
    m.args.insert(m.args.end(), extra.begin(), extra.end());
    return m;
  }

  // Who served: the reply of "whoami" through request() (round robin / A/B split).
  std::string whoami(const std::string& id) {
    auto reply = supervisor_->request(id, "whoami", "{}", 30s);
    EXPECT_TRUE(reply) << (reply ? "" : reply.error().message);
    auto body = JsonReader::parse(reply.value_or("{}"));
    return body ? body->string("label").value_or("?") : "?";
  }

  // Every sequence number each consumer process recorded, by pid.
  std::map<std::string, std::vector<std::uint64_t>> recorded() const {
    std::map<std::string, std::vector<std::uint64_t>> by_pid;
    for (const auto& entry : std::filesystem::directory_iterator(consume_dir_)) {
      std::ifstream in(entry.path());
      std::uint64_t sequence = 0;
      auto& list = by_pid[entry.path().stem().string()];
      while (in >> sequence) list.push_back(sequence);
    }
    return by_pid;
  }

  std::size_t recorded_count() const {
    std::size_t n = 0;
    for (const auto& [pid, list] : recorded()) n += list.size();
    return n;
  }

  bool wait_recorded(std::size_t n, std::chrono::milliseconds timeout) const {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (recorded_count() < n) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  std::filesystem::path consume_dir_;
};

// Publishes 0, 1, 2, ... on "work" (the test extension's topic options), each as soon as the
// `block` subscribers leave room.
class SequencePublisher {
 public:
  explicit SequencePublisher(const std::string& bus) {
    BusOptions options;
    options.name = bus;
    auto opened = Bus::open(options);
    if (!opened) throw std::runtime_error(opened.error().message);
    bus_.emplace(std::move(*opened));
    engine::TopicOptions topic;
    topic.capacity = 64;
    topic.max_payload = 8;
    auto pub = bus_->advertise("work", {}, topic);
    if (!pub) throw std::runtime_error(pub.error().message);
    publisher_.emplace(std::move(*pub));
  }

  // Publishes up to `end` (exclusive), pausing `gap` every 50 samples; false on a timeout.
  bool publish_until(std::uint64_t end, std::chrono::microseconds gap) {
    for (; next_ < end; ++next_) {
      engine::Loan loan = publisher_->loan(8, engine::WaitStrategy::sleeping(),
                                           std::chrono::steady_clock::now() + 20s);
      if (!loan.ok()) return false;
      std::memcpy(loan.data, &next_, 8);
      publisher_->publish();
      if (next_ % 50 == 49) std::this_thread::sleep_for(gap);
    }
    return true;
  }
  std::uint64_t subscribers() const { return publisher_->counters().subscribers; }

 private:
  std::optional<Bus> bus_;
  std::optional<engine::RawPublisher> publisher_;
  std::uint64_t next_ = 0;
};

TEST_F(SupervisorUpdateTest, HotUpdateTakesEverySequenceNumberExactlyOnceAndKeepsServing) {
  const std::uint64_t total = scaled(20'000);
  start();
  add(worker("1.0.0"));
  healthy("worker");
  const pid_t old_pid = figures("worker", 0).pid;
  SequencePublisher publisher(bus_);
  // The first quarter goes to the old version alone.
  ASSERT_TRUE(publisher.publish_until(total / 4, 100us));
  ASSERT_TRUE(wait_recorded(total / 8, 20s));

  // Publishing and requests go on during the update.
  std::atomic<bool> updating{true};
  std::atomic<int> answered{0};
  std::atomic<int> failed{0};
  std::thread caller([&] {
    while (updating.load()) {
      auto reply = supervisor_->request("worker", "whoami", "{}", 30s);
      (reply ? answered : failed).fetch_add(1);
    }
  });
  std::atomic<bool> published_all{false};
  std::thread feeder([&] { published_all = publisher.publish_until(total * 3 / 4, 200us); });
  auto updated = supervisor_->update(worker("2.0.0"), 30s);
  updating = false;
  caller.join();
  feeder.join();
  ASSERT_TRUE(updated) << updated.error().message;
  ASSERT_TRUE(published_all.load());
  // The last quarter is published after the update: only the new version can take it.
  ASSERT_TRUE(publisher.publish_until(total, 100us));
  ASSERT_TRUE(wait_recorded(total, 30s)) << "recorded " << recorded_count() << " of " << total;

  // Each sequence number exactly once, and both versions took some.
  const auto by_pid = recorded();
  std::vector<std::uint64_t> all;
  for (const auto& [pid, list] : by_pid) all.insert(all.end(), list.begin(), list.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), total);
  for (std::uint64_t i = 0; i < total; ++i) ASSERT_EQ(all[i], i) << "at " << i;
  ASSERT_EQ(by_pid.size(), 2u) << "old and new each recorded samples";
  const pid_t new_pid = figures("worker", 1).pid;
  ASSERT_GT(by_pid.at(std::to_string(old_pid)).size(), 0u);
  ASSERT_GE(by_pid.at(std::to_string(new_pid)).size(), total / 4);
  // Each process took one contiguous run: the old one a prefix, the new one the rest.
  EXPECT_EQ(by_pid.at(std::to_string(old_pid)).back() + 1,
            by_pid.at(std::to_string(new_pid)).front());

  // No gap in service: every request during the update was answered.
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(answered.load(), 0);
  EXPECT_EQ(whoami("worker"), "2.0.0");

  // The old instance went UPDATING -> STOPPING -> TERMINATED and was forgotten.
  const long updating_at = events_.wait_state("worker", LifecycleState::updating, 1s);
  ASSERT_GE(updating_at, 0);
  EXPECT_NE(events_.at(updating_at).reason.find("update 1.0.0 -> 2.0.0"), std::string::npos);
  const long terminated = events_.wait_state("worker", LifecycleState::terminated, 10s);
  ASSERT_GE(terminated, 0);
  EXPECT_EQ(events_.at(terminated).instance, 0);
  EXPECT_NE(events_.at(terminated).reason.find("replaced by 2.0.0 (worker/1)"), std::string::npos)
      << events_.at(terminated).reason;
  for (int i = 0; i < 200 && supervisor_->figures("worker", 0); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(supervisor_->figures("worker", 0).has_value());
  EXPECT_FALSE(process_exists(old_pid));
  EXPECT_EQ(figures("worker", 1).version, "2.0.0");
  auto versions = supervisor_->version_counters("worker");
  ASSERT_EQ(versions.size(), 1u);
  EXPECT_EQ(versions[0].version, "2.0.0");
  EXPECT_EQ(publisher.subscribers(), 1u) << "only the new instance is subscribed";
}

TEST_F(SupervisorUpdateTest, ASuccessorThatCannotComeUpIsRolledBack) {
  start();
  add(worker("1.0.0"));
  healthy("worker");
  const pid_t old_pid = figures("worker", 0).pid;

  // Never ready: not HEALTHY within the update's timeout.
  auto never = supervisor_->update(worker("2.0.0", {"--no-ready"}), 1500ms);
  ASSERT_FALSE(never);
  EXPECT_NE(never.error().message.find("not HEALTHY within 1500 ms"), std::string::npos)
      << never.error().message;
  EXPECT_NE(never.error().message.find("worker/0 serves on"), std::string::npos);
  EXPECT_EQ(figures("worker", 0).state, LifecycleState::healthy);
  EXPECT_EQ(figures("worker", 0).pid, old_pid);
  EXPECT_EQ(whoami("worker"), "1.0.0");

  // Cannot be started at all: FAILED at once, rolled back with the reason.
  auto missing = worker("3.0.0");
  missing.executable = "/nonexistent/symphony-extension";
  auto failed = supervisor_->update(missing, 10s);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("FAILED"), std::string::npos) << failed.error().message;
  EXPECT_EQ(whoami("worker"), "1.0.0");
  EXPECT_EQ(figures("worker", 0).pid, old_pid);
  EXPECT_EQ(supervisor_->version_counters("worker").at(0).version, "1.0.0");
  // The failed successors are gone.
  for (int i = 0; i < 400 && supervisor_->figures().size() > 1; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(supervisor_->figures().size(), 1u);

  // And a good update still works afterwards.
  auto good = supervisor_->update(worker("4.0.0"), 30s);
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_EQ(whoami("worker"), "4.0.0");
}

TEST_F(SupervisorUpdateTest, TheLastCheckpointIsCarriedToTheSuccessor) {
  start();
  auto v1 = manifest("keeper", {"--checkpoint", "--label", "1.0.0"});
  v1.checkpoint_bytes = 64;
  add(v1);
  healthy("keeper");
  auto committed = supervisor_->request("keeper", "commit", R"({"counter": 42})", 30s);
  ASSERT_TRUE(committed) << committed.error().message;
  auto v2 = v1;
  v2.version = "2.0.0";
  v2.args = {"--checkpoint", "--label", "2.0.0"};
  auto updated = supervisor_->update(v2, 30s);
  ASSERT_TRUE(updated) << updated.error().message;
  auto restored = supervisor_->request("keeper", "restored", "{}", 30s);
  ASSERT_TRUE(restored) << restored.error().message;
  auto body = JsonReader::parse(*restored);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->integer("counter"), 42) << *restored;
  EXPECT_EQ(body->integer("generation"), 1);
  auto latest = supervisor_->checkpoint("keeper", 1);
  ASSERT_TRUE(latest && *latest);
  EXPECT_EQ((*latest)->generation, 1u);
  // A successor whose store is too small for the checkpoint is rolled back.
  auto big = manifest("big", {"--checkpoint", "--checkpoint-size", "4096"});
  big.checkpoint_bytes = 4096;
  add(big);
  healthy("big");
  ASSERT_TRUE(supervisor_->request("big", "commit", R"({"counter": 7})", 30s));
  auto small = big;
  small.version = "2.0.0";
  small.checkpoint_bytes = 64;
  auto refused = supervisor_->update(small, 30s);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("exceeds the capacity"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(figures("big", 0).state, LifecycleState::healthy);
}

TEST_F(SupervisorUpdateTest, AnABSplitFollowsItsWeightPerVersion) {
  const int requests = static_cast<int>(scaled(10'000));
  start();
  auto v1 = manifest("svc", {"--label", "1.0.0"});
  add(v1);
  healthy("svc");
  auto v2 = manifest("svc", {"--label", "2.0.0"});
  v2.version = "2.0.0";
  ASSERT_TRUE(supervisor_->start_ab(v2, 0.3));
  // The candidate's instance is number 1.
  ASSERT_GE(events_.wait_for([](const LifecycleEvent& e) {
    return e.extension == "svc" && e.instance == 1 && e.to == LifecycleState::healthy;
  }, 30s), 0);

  std::map<std::string, int> served;
  for (int i = 0; i < requests; ++i) ++served[whoami("svc")];
  const double share = static_cast<double>(served["2.0.0"]) / requests;
  EXPECT_NEAR(share, 0.3, 0.03) << served["1.0.0"] << " / " << served["2.0.0"];
  EXPECT_EQ(served["1.0.0"] + served["2.0.0"], requests);
  auto versions = supervisor_->version_counters("svc");
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].version, "1.0.0");
  EXPECT_FALSE(versions[0].candidate);
  EXPECT_DOUBLE_EQ(versions[0].weight, 0.7);
  EXPECT_EQ(versions[0].instances, 1);
  EXPECT_EQ(versions[1].version, "2.0.0");
  EXPECT_TRUE(versions[1].candidate);
  // The supervisor's counts agree with what the processes say they served.
  EXPECT_EQ(versions[0].requests, static_cast<std::uint64_t>(served["1.0.0"]));
  EXPECT_EQ(versions[1].requests, static_cast<std::uint64_t>(served["2.0.0"]));
  EXPECT_EQ(versions[0].errors + versions[1].errors, 0u);

  // Half and half, then the candidate is kept and the baseline goes.
  ASSERT_TRUE(supervisor_->set_ab_weight("svc", 0.5));
  std::map<std::string, int> even;
  for (int i = 0; i < 1000; ++i) ++even[whoami("svc")];
  EXPECT_NEAR(even["2.0.0"], 500, 30);
  ASSERT_TRUE(supervisor_->end_ab("svc", AbOutcome::keep_candidate));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(whoami("svc"), "2.0.0");
  ASSERT_GE(events_.wait_for([](const LifecycleEvent& e) {
    return e.extension == "svc" && e.instance == 0 && e.to == LifecycleState::terminated;
  }, 10s), 0);
  versions = supervisor_->version_counters("svc");
  ASSERT_EQ(versions.size(), 1u);
  EXPECT_EQ(versions[0].version, "2.0.0");
}

TEST_F(SupervisorUpdateTest, MisuseIsRefusedWithAReason) {
  start();
  add(manifest("svc", {"--label", "1.0.0"}));
  healthy("svc");
  auto unknown = manifest("nobody");
  auto not_found = supervisor_->update(unknown, 1s);
  ASSERT_FALSE(not_found);
  EXPECT_EQ(not_found.error().code, engine::Errc::not_found);
  auto same = manifest("svc");
  auto same_version = supervisor_->start_ab(same, 0.5);
  ASSERT_FALSE(same_version);
  EXPECT_NE(same_version.error().message.find("same version"), std::string::npos);
  auto v2 = manifest("svc");
  v2.version = "2.0.0";
  EXPECT_FALSE(supervisor_->start_ab(v2, 1.5));
  EXPECT_FALSE(supervisor_->set_ab_weight("svc", 0.5)) << "no A/B runs";
  EXPECT_FALSE(supervisor_->end_ab("svc", AbOutcome::keep_baseline));
  ASSERT_TRUE(supervisor_->start_ab(v2, 0.5));
  auto v3 = manifest("svc");
  v3.version = "3.0.0";
  auto during_ab = supervisor_->update(v3, 1s);
  ASSERT_FALSE(during_ab);
  EXPECT_NE(during_ab.error().message.find("A/B"), std::string::npos);
  ASSERT_TRUE(supervisor_->end_ab("svc", AbOutcome::keep_baseline));
  EXPECT_EQ(supervisor_->version_counters("svc").size(), 1u);
  EXPECT_EQ(supervisor_->version_counters("svc").at(0).version, "1.0.0");
}

}  // namespace
}  // namespace symphony::test
