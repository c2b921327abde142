// The supervisor's runtime services with real extension processes: checkpoints that survive a
// kill -9 of the extension (also in the middle of a write) and of the host, requests through the
// supervisor (a death fails the ones in flight with its reason), on-demand start and idle stop,
// and the declared topics in the extension's environment.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <sstream>
#include <thread>

#include "supervisor_fixture.hpp"
#include "symphony/controlplane/envelope.hpp"

namespace symphony::test {
namespace {

using controlplane::JsonReader;
using supervisor::StartMode;

class SupervisorRuntimeTest : public SupervisorFixture {
 protected:
  std::string call(const std::string& extension, const std::string& method,
                   const std::string& payload = "{}") {
    auto reply = supervisor_->request(extension, method, payload, 30s);
    EXPECT_TRUE(reply) << method << ": " << (reply ? "" : reply.error().message);
    return reply.value_or("{}");
  }

  // What the instance restored at start: {"generation", "counter", "intact", "fell_back"}.
  JsonReader restored(const std::string& extension) {
    auto reader = JsonReader::parse(call(extension, "restored"));
    EXPECT_TRUE(reader);
    return reader.value_or(*JsonReader::parse("{}"));
  }

  std::uint64_t committed_generation(const std::string& extension) {
    auto latest = supervisor_->checkpoint(extension);
    EXPECT_TRUE(latest) << latest.error().message;
    return latest && *latest ? (*latest)->generation : 0;
  }

  // The same while the extension commits 4 MiB checkpoints back to back: a copy that a writer
  // overtook twice is refused as torn (never returned wrong), so it is read until one is whole.
  std::uint64_t committed_generation_while_writing(const std::string& extension) {
    for (int attempt = 0; attempt < 10'000; ++attempt) {
      auto latest = supervisor_->checkpoint(extension);
      if (latest) return *latest ? (*latest)->generation : 0;
      EXPECT_EQ(latest.error().code, engine::Errc::invalid_layout) << latest.error().message;
    }
    ADD_FAILURE() << "no whole checkpoint read in 10000 attempts";
    return 0;
  }

  // Kills the instance with -9 and waits until its next generation is HEALTHY.
  void kill_and_wait_healthy(const std::string& extension) {
    const pid_t pid = figures(extension).pid;
    ASSERT_GT(pid, 0);
    const std::size_t mark = events_.size();
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    const long crashed = events_.wait_state(extension, LifecycleState::crashed, 10s, mark);
    ASSERT_GE(crashed, 0);
    ASSERT_GE(healthy(extension, static_cast<std::size_t>(crashed)), 0);
  }

  static supervisor::Manifest keeper(const std::string& id, std::uint64_t checkpoint_bytes,
                                     std::vector<std::string> args = {"--checkpoint"}) {
    auto m = manifest(id, std::move(args));
    m.checkpoint_bytes = checkpoint_bytes;
    return m;
  }
};

TEST_F(SupervisorRuntimeTest, CheckpointSurvivesKillNine) {
  start();
  add(keeper("keeper", 64, {"--checkpoint", "--checkpoint-size", "64"}));
  healthy("keeper");
  EXPECT_EQ(restored("keeper").integer("counter"), -1) << "a fresh store holds nothing";
  EXPECT_EQ(call("keeper", "commit", R"({"counter": 41})"), R"({"generation":1})");
  EXPECT_EQ(call("keeper", "commit", R"({"counter": 42})"), R"({"generation":2})");
  EXPECT_EQ(committed_generation("keeper"), 2u);

  kill_and_wait_healthy("keeper");
  const JsonReader found = restored("keeper");
  EXPECT_EQ(found.integer("counter"), 42);
  EXPECT_EQ(found.integer("generation"), 2);
  EXPECT_EQ(found.boolean("intact"), true);
  EXPECT_EQ(found.boolean("fell_back"), false);

  // Once more: the store outlives every restart, and the restarted instance commits on it.
  EXPECT_EQ(call("keeper", "commit", R"({"counter": 43})"), R"({"generation":3})");
  kill_and_wait_healthy("keeper");
  EXPECT_EQ(restored("keeper").integer("counter"), 43);

  // An extension without checkpoint_bytes has none.
  add(manifest("plain"));
  EXPECT_FALSE(supervisor_->checkpoint("plain"));
}

TEST_F(SupervisorRuntimeTest, KillNineDuringACheckpointWriteRestoresThePreviousOne) {
  // 4 MiB checkpoints committed back to back: copying and hashing one takes milliseconds, so a
  // kill -9 lands in the middle of a write almost always (and the check holds either way).
  constexpr std::uint64_t kSize = 4 << 20;
  start();
  add(keeper("writer", kSize, {"--checkpoint", "--checkpoint-size", std::to_string(kSize)}));
  healthy("writer");
  const int rounds = kSanitized ? 2 : 5;
  for (int round = 0; round < rounds; ++round) {
    call("writer", "commit-loop");
    const std::uint64_t start_generation = committed_generation_while_writing("writer");
    // Let it commit a few times, then kill it wherever it is.
    while (committed_generation_while_writing("writer") < start_generation + 5) {
      std::this_thread::sleep_for(1ms);
    }
    const std::uint64_t before_kill = committed_generation_while_writing("writer");
    kill_and_wait_healthy("writer");
    const std::uint64_t after = committed_generation("writer");
    const JsonReader found = restored("writer");
    EXPECT_EQ(found.boolean("intact"), true) << "round " << round;
    EXPECT_EQ(found.boolean("fell_back"), false) << "round " << round;
    // The restored one is the last committed (a write cut short is never committed).
    EXPECT_EQ(found.integer("generation"), static_cast<std::int64_t>(after)) << "round " << round;
    EXPECT_GE(after, before_kill);
  }
}

TEST_F(SupervisorRuntimeTest, ARequestInFlightFailsWithTheReasonOfTheDeath) {
  start();
  add(manifest("sleeper", {"--sleep-ms", "60000"}));
  healthy("sleeper");
  const pid_t pid = figures("sleeper").pid;
  auto pending = std::async(std::launch::async,
                            [&] { return supervisor_->request("sleeper", "sleep", "{}", 60s); });
  // Whether it reached the extension yet or not, it is in flight at the host when the kill lands.
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_EQ(pending.wait_for(30s), std::future_status::ready) << "it waited for its timeout";
  auto reply = pending.get();
  ASSERT_FALSE(reply);
  EXPECT_NE(reply.error().message.find("killed by signal 9 (SIGKILL)"), std::string::npos)
      << reply.error().message;
  EXPECT_NE(reply.error().message.find("sleeper/0"), std::string::npos) << reply.error().message;
}

TEST_F(SupervisorRuntimeTest, OnDemandStartsOnARequestAndStopsWhenIdle) {
  start();
  auto m = manifest("lazy");
  m.start = StartMode::on_demand;
  m.idle_stop = kSanitized ? 3s : 1s;
  add(m);
  EXPECT_EQ(figures("lazy").state, LifecycleState::created);
  EXPECT_EQ(figures("lazy").pid, 0) << "on-demand: not started by add()";

  // The first request starts it, waits for HEALTHY and is answered.
  EXPECT_EQ(call("lazy", "echo", R"({"n":1})"), R"({"n":1})");
  const long started = events_.wait_state("lazy", LifecycleState::starting, 0ms);
  ASSERT_GE(started, 0);
  EXPECT_NE(events_.at(started).reason.find("on-demand start"), std::string::npos)
      << events_.at(started).reason;
  const pid_t first = figures("lazy").pid;
  EXPECT_GT(first, 0);

  // No more requests: stopped after idle_stop, with "idle" in the reason.
  const long idle = events_.wait_state("lazy", LifecycleState::terminated, 30s);
  ASSERT_GE(idle, 0);
  EXPECT_NE(events_.at(idle).reason.find("idle"), std::string::npos) << events_.at(idle).reason;
  const long stopping = events_.wait_state("lazy", LifecycleState::stopping, 0ms);
  ASSERT_GE(stopping, 0);
  EXPECT_NE(events_.at(stopping).reason.find("idle: no request for"), std::string::npos)
      << events_.at(stopping).reason;
  EXPECT_FALSE(process_exists(first));
  EXPECT_EQ(figures("lazy").restarts, 0u) << "an idle stop is no crash";

  // A request after the idle stop starts it again.
  const std::size_t mark = events_.size();
  EXPECT_EQ(call("lazy", "echo", R"({"n":2})"), R"({"n":2})");
  EXPECT_GE(events_.wait_state("lazy", LifecycleState::healthy, 0ms, mark), 0);
  EXPECT_NE(figures("lazy").pid, first);

  // Requests to an unknown extension, or to an eager one that is stopped, fail at once.
  auto unknown = supervisor_->request("nobody", "echo", "{}", 1s);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, engine::Errc::not_found);
  add(manifest("eager"));
  healthy("eager");
  ASSERT_TRUE(supervisor_->stop("eager"));
  ASSERT_GE(events_.wait_state("eager", LifecycleState::terminated, 10s), 0);
  auto stopped = supervisor_->request("eager", "echo", "{}", 60s);
  ASSERT_FALSE(stopped);
  EXPECT_NE(stopped.error().message.find("is not running"), std::string::npos)
      << stopped.error().message;
}

TEST_F(SupervisorRuntimeTest, TheChildSeesItsDeclaredTopics) {
  start();
  auto m = manifest("topical");
  supervisor::TopicDeclaration out;
  out.name = "sensors/temp";
  out.type = "plant.Reading";
  out.transport = engine::TopicTransport::iceoryx;
  m.publishes.push_back(out);
  supervisor::TopicDeclaration in;
  in.name = "commands";
  m.subscribes.push_back(in);
  add(m);
  healthy("topical");
  auto reply = JsonReader::parse(call("topical", "topics"));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->string("topics"),
            R"({"publish":[{"name":"sensors/temp","type":"plant.Reading","transport":"iceoryx",)"
            R"("qos":{"depth":64,"overflow":"block","history":0}}],)"
            R"("subscribe":[{"name":"commands","type":"bytes","transport":"native",)"
            R"("qos":{"depth":64,"overflow":"block","history":0}}]})");
}

// Entries of /dev/shm that belong to `bus`.
std::vector<std::string> shm_entries(const std::string& bus) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find("symphony." + bus + ".") == 0) found.push_back(name);
  }
  return found;
}

TEST_F(SupervisorRuntimeTest, AHostKilledWithNineIsCleanedUpAndItsCheckpointsRestored) {
  // The first host runs in a forked child (this process has no other threads here), which
  // adds the extension, has it commit, reports, and is then killed with -9.
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t host = ::fork();
  ASSERT_GE(host, 0);
  if (host == 0) {
    ::close(report[0]);
    auto s = supervisor::Supervisor::start(options());
    if (!s) ::_exit(10);
    if (!(*s)->add(keeper("survivor", 64))) ::_exit(11);
    auto committed = (*s)->request("survivor", "commit", R"({"counter": 77})", 60s);
    if (!committed) ::_exit(12);
    const auto f = (*s)->figures("survivor");
    const std::string line = std::to_string(f ? f->pid : 0) + " " +
                             (*s)->limits().memory_group.string() + " " +
                             (*s)->limits().cpu_group.string() + "\n";
    if (::write(report[1], line.data(), line.size()) < 0) ::_exit(13);
    for (;;) ::pause();
  }
  ::close(report[1]);
  char buffer[4096] = {};
  std::size_t got = 0;
  while (got < sizeof buffer - 1) {
    const ssize_t n = ::read(report[0], buffer + got, sizeof buffer - 1 - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
    if (std::memchr(buffer, '\n', got) != nullptr) break;
  }
  ::close(report[0]);
  ::kill(host, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(host, &status, 0), host);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the first host failed: exit " << WEXITSTATUS(status);
  std::istringstream fields{std::string(buffer, got)};
  pid_t extension_pid = 0;
  std::string memory_group;
  std::string cpu_group;
  fields >> extension_pid >> memory_group >> cpu_group;
  ASSERT_GT(extension_pid, 0) << "report: " << buffer;

  // Its extension dies with it (parent-death signal); its checkpoint segment stays.
  for (int i = 0; i < 2000 && process_exists(extension_pid); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(process_exists(extension_pid));
  EXPECT_FALSE(shm_entries(bus_).empty());
  const bool had_groups = !memory_group.empty();
  if (had_groups) {
    EXPECT_TRUE(std::filesystem::exists(memory_group)) << "a host killed with -9 cannot clean up";
  }

  // The next host on the same bus removes the dead one's cgroups, takes the checkpoint over...
  start();
  if (had_groups) {
    EXPECT_FALSE(std::filesystem::exists(memory_group)) << memory_group;
  }
  if (!cpu_group.empty()) {
    EXPECT_FALSE(std::filesystem::exists(cpu_group)) << cpu_group;
  }
  add(keeper("survivor", 64));
  const long created = events_.wait_state("survivor", LifecycleState::created, 0ms);
  ASSERT_GE(created, 0);
  EXPECT_NE(events_.at(created).reason.find("recovered from a previous host"), std::string::npos)
      << events_.at(created).reason;
  healthy("survivor");
  // ...and the new instance restores it.
  EXPECT_EQ(restored("survivor").integer("counter"), 77);

  // A clean stop of the second host leaves nothing of either behind.
  const auto limits = supervisor_->limits();
  supervisor_.reset();
  EXPECT_EQ(shm_entries(bus_), std::vector<std::string>{});
  EXPECT_FALSE(std::filesystem::exists(runtime_dir_ / "control"));
  EXPECT_FALSE(std::filesystem::exists(runtime_dir_ / "events"));
  if (!limits.memory_group.empty()) {
    EXPECT_FALSE(std::filesystem::exists(limits.memory_group));
  }
}

}  // namespace
}  // namespace symphony::test
