// A real extension process for the supervisor tests. It records what it was given at the very
// start of main (open fds, signal mask and dispositions, process group, parent-death signal,
// cgroups), connects from the environment, says it is ready, and then misbehaves as asked:
//
//   --no-ready            never sends the ready event
//   --exit-after-ms N     exits with --exit-code (default 3) N ms after ready
//   --hog-mib N           after ready, allocates and touches N MiB, 8 MiB at a time
//   --burn-cpu            after ready, spins on one core forever
//   --ignore-term         ignores SIGTERM (the supervisor must escalate to SIGKILL)
//   --grandchild          forks a child that calls setsid (escaping the process group) and sleeps
//   --print-lines N       prints N numbered lines of 100 bytes at start (log bounds)
//   --checkpoint          opens its checkpoint at start and restores it (what it found goes into
//                         the ready event and the "restored" reply); a checkpoint is
//                         --checkpoint-size bytes (default 8), every 8-byte word = one counter
//   --sleep-ms N          sleeps N ms in every "sleep" request (a request in flight)
//   --label TEXT          answered by "whoami" with the pid (A/B: which version served)
//   --iceoryx-topic NAME  subscribes to NAME on the iceoryx transport before it says ready
//                         (recovery of extensions that use iceoryx topics, measured apart)
//   --consume TOPIC       takes 8-byte sequence numbers from the native `block` topic TOPIC on
//                         a thread and appends each to --consume-log DIR/<pid>.log; takes part
//                         in a hot update's hand-over (lifecycle.hpp: symphony.drain,
//                         symphony.resume, SYMPHONY_AWAIT_HANDOVER)
//
// Requests: "inspect" answers with what it recorded; "deadlock" never returns (a stuck
// callback); "restored": the checkpoint found at start; "commit" {"counter": N}: commits N;
// "commit-loop": commits 1, 2, 3, ... on a thread until killed (a kill lands mid-write);
// "sleep": answers after --sleep-ms; "topics": the SYMPHONY_TOPICS it was given; anything else
// is echoed. The stop command makes it exit 0.

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>

#include <mutex>
#include <optional>

#include "symphony/controlplane/extension.hpp"
#include "symphony/engine/bus.hpp"
#include "symphony/engine/checkpoint.hpp"
#include "symphony/supervisor/lifecycle.hpp"
#include "symphony/supervisor/manifest.hpp"

namespace {

using symphony::controlplane::JsonObject;
using symphony::controlplane::json_quote;

std::string open_fds_json() {
  std::string list = "[";
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return "[]";
  const int own = ::dirfd(dir);
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd == own) continue;
    char target[256] = {};
    const std::string link = "/proc/self/fd/" + std::string(entry->d_name);
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (list.size() > 1) list += ",";
    list += JsonObject().add("fd", fd).add("target", n > 0 ? target : "?").str();
  }
  ::closedir(dir);
  return list + "]";
}

std::string cgroups_json() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  JsonObject groups;
  while (std::getline(in, line)) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    const std::string controllers = line.substr(first + 1, second - first - 1);
    if (controllers == "memory" || controllers == "cpu" || controllers.empty()) {
      groups.add(controllers.empty() ? "unified" : controllers, line.substr(second + 1));
    }
  }
  return groups.str();
}

// Recorded first thing in main, before this process opens anything itself.
std::string record_start() {
  sigset_t blocked;
  ::sigprocmask(SIG_BLOCK, nullptr, &blocked);
  int blocked_count = 0;
  int ignored_count = 0;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sigismember(&blocked, sig) == 1) ++blocked_count;
    struct sigaction action {};
    if (::sigaction(sig, nullptr, &action) == 0 && action.sa_handler == SIG_IGN) ++ignored_count;
  }
  int deathsig = 0;
  ::prctl(PR_GET_PDEATHSIG, &deathsig);
  return JsonObject()
      .add("pid", static_cast<std::int64_t>(::getpid()))
      .add("pgid", static_cast<std::int64_t>(::getpgid(0)))
      .add("ppid", static_cast<std::int64_t>(::getppid()))
      .add("pdeathsig", deathsig)
      .add("blocked_signals", blocked_count)
      .add("ignored_signals", ignored_count)
      .add_raw("fds", open_fds_json())
      .add_raw("cgroups", cgroups_json())
      .str();
}

const char* arg_text(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

long arg_value(int argc, char** argv, const char* name, long fallback) {
  const char* text = arg_text(argc, argv, name, nullptr);
  return text != nullptr ? std::strtol(text, nullptr, 10) : fallback;
}

bool has_flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

// A checkpoint of `size` bytes (a multiple of 8) whose every word is `counter`.
std::vector<std::byte> checkpoint_bytes(std::uint64_t counter, std::size_t size) {
  std::vector<std::byte> bytes(size);
  for (std::size_t at = 0; at + 8 <= size; at += 8) std::memcpy(&bytes[at], &counter, 8);
  return bytes;
}

// What --checkpoint found at start: {"generation", "counter", "intact", "fell_back"}
// (generation 0 and counter -1: there was none).
std::string describe_restored(
    const symphony::engine::Result<std::optional<symphony::engine::CheckpointData>>& restored) {
  if (!restored) return JsonObject().add("error", restored.error().message).str();
  if (!*restored) {
    return JsonObject().add("generation", 0).add("counter", -1).add("intact", true).str();
  }
  const auto& data = **restored;
  std::uint64_t counter = 0;
  bool intact = !data.bytes.empty() && data.bytes.size() % 8 == 0;
  if (intact) std::memcpy(&counter, data.bytes.data(), 8);
  for (std::size_t at = 0; intact && at < data.bytes.size(); at += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, &data.bytes[at], 8);
    intact = word == counter;
  }
  return JsonObject()
      .add("generation", data.generation)
      .add("counter", counter)
      .add("intact", intact)
      .add("fell_back", data.fell_back)
      .str();
}


// --consume: one subscription, taken on its own thread, every sample recorded with write(2)
// before it is released (a kill right after loses no record). `mutex` is held across one
// take-record-release: the drain takes it to stop at a sample boundary.
class Consumer {
 public:
  Consumer(std::string bus, std::string topic, const std::string& log_dir)
      : topic_(std::move(topic)),
        log_(::open((log_dir + "/" + std::to_string(::getpid()) + ".log").c_str(),
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) {
    symphony::BusOptions options;
    options.name = std::move(bus);
    auto opened = symphony::Bus::open(options);
    if (!opened) throw std::runtime_error(opened.error().message);
    bus_.emplace(std::move(*opened));
    thread_ = std::thread([this] { run(); });
  }
  ~Consumer() {
    quit_.store(true);
    thread_.join();
    ::close(log_);
  }

  // Subscribes (at `start_at`, if given) or, when subscribed and drained, takes samples again.
  symphony::engine::Result<void> resume(std::optional<std::uint64_t> start_at) {
    std::lock_guard lock(mutex_);
    paused_ = false;
    if (subscriber_) return {};
    symphony::engine::SubscriberOptions options;
    options.depth = 16;
    options.start_at = start_at;
    auto sub = bus_->subscribe(topic_, {}, topic_options(), options);
    if (!sub) return tl::unexpected(sub.error());
    subscriber_.emplace(std::move(*sub));
    return {};
  }

  // Stops at a sample boundary (subscribed still); the position of the next sample to take.
  std::optional<std::uint64_t> drain() {
    std::lock_guard lock(mutex_);
    paused_ = true;
    return subscriber_ ? subscriber_->position() : std::nullopt;
  }

  const std::string& topic() const noexcept { return topic_; }

  static symphony::engine::TopicOptions topic_options() {
    symphony::engine::TopicOptions options;
    options.capacity = 64;
    options.max_payload = 8;
    return options;
  }

 private:
  void run() {
    while (!quit_.load()) {
      bool took = false;
      {
        std::lock_guard lock(mutex_);
        if (subscriber_ && !paused_) {
          symphony::engine::Frame frame = subscriber_->try_take();
          if (frame.ok() && frame.size == 8) {
            std::uint64_t sequence = 0;
            std::memcpy(&sequence, frame.data, 8);
            const std::string line = std::to_string(sequence) + "\n";
            if (::write(log_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
              std::abort();
            }
            took = true;
          }
          if (frame.ok()) subscriber_->release();
        }
      }
      if (!took) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  std::string topic_;
  int log_;
  std::optional<symphony::Bus> bus_;
  std::mutex mutex_;
  std::optional<symphony::engine::RawSubscriber> subscriber_;
  bool paused_ = false;
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string at_start = record_start();
  using namespace symphony::controlplane;
  if (has_flag(argc, argv, "--ignore-term")) ::signal(SIGTERM, SIG_IGN);
  const long lines = arg_value(argc, argv, "--print-lines", 0);
  for (long i = 0; i < lines; ++i) {
    std::printf("line %08ld %s\n", i, std::string(84, 'x').c_str());
  }
  std::fflush(stdout);
  pid_t grandchild = 0;
  if (has_flag(argc, argv, "--grandchild")) {
    grandchild = ::fork();
    if (grandchild == 0) {
      ::setsid();  // out of the process group: only the cgroup still holds it
      for (;;) ::pause();
    }
  }

  auto options = ExtensionOptions::from_environment();
  if (!options) {
    std::fprintf(stderr, "test-extension: %s\n", options.error().message.c_str());
    return 2;
  }
  std::atomic<bool> stop{false};
  std::optional<symphony::engine::Checkpoint> checkpoint;
  std::string restored = "null";
  const auto checkpoint_size =
      static_cast<std::size_t>(arg_value(argc, argv, "--checkpoint-size", 8));
  const char* await = std::getenv(symphony::supervisor::kEnvAwaitHandover);
  const bool successor = await != nullptr && std::strcmp(await, "1") == 0;
  if (has_flag(argc, argv, "--checkpoint")) {
    auto opened =
        symphony::engine::Checkpoint::open(options->bus, options->extension, options->instance);
    if (!opened) {
      std::fprintf(stderr, "test-extension: checkpoint: %s\n", opened.error().message.c_str());
      return 6;
    }
    checkpoint = std::move(*opened);
    // A successor restores at the hand-over: its predecessor's last checkpoint is not there yet.
    if (!successor) restored = describe_restored(checkpoint->restore());
  }
  std::thread commit_loop;
  const long sleep_ms = arg_value(argc, argv, "--sleep-ms", 0);
  const std::string label = arg_text(argc, argv, "--label", "");
  std::optional<Consumer> consumer;
  std::optional<symphony::Bus> iceoryx_bus;
  std::optional<symphony::engine::RawSubscriber> iceoryx_subscriber;
  if (const char* topic = arg_text(argc, argv, "--iceoryx-topic", nullptr)) {
    symphony::BusOptions bus_options;
    bus_options.name = options->bus;
    auto bus = symphony::Bus::open(bus_options);
    symphony::engine::TopicOptions topic_options;
    topic_options.transport = symphony::engine::TopicTransport::iceoryx;
    topic_options.max_payload = 64;
    symphony::engine::SubscriberOptions subscriber_options;
    subscriber_options.depth = 16;
    auto sub = bus ? bus->subscribe(topic, {}, topic_options, subscriber_options)
                   : symphony::engine::Result<symphony::engine::RawSubscriber>(
                         tl::unexpected(bus.error()));
    if (!sub) {
      std::fprintf(stderr, "test-extension: iceoryx subscribe: %s\n", sub.error().message.c_str());
      return 8;
    }
    iceoryx_bus.emplace(std::move(*bus));
    iceoryx_subscriber.emplace(std::move(*sub));
  }
  if (const char* topic = arg_text(argc, argv, "--consume", nullptr)) {
    consumer.emplace(options->bus, topic, arg_text(argc, argv, "--consume-log", "/tmp"));
    if (!successor) {
      if (auto subscribed = consumer->resume(std::nullopt); !subscribed) {
        std::fprintf(stderr, "test-extension: subscribe: %s\n",
                     subscribed.error().message.c_str());
        return 7;
      }
    }
  }
  const char* topics = std::getenv(symphony::supervisor::kEnvTopics);
  ExtensionHandlers handlers;
  const std::string inspect = JsonObject()
                                  .add_raw("start", at_start)
                                  .add("generation", options->generation)
                                  .add("instance", options->instance)
                                  .add("bus", options->bus)
                                  .add("grandchild", static_cast<std::int64_t>(grandchild))
                                  .str();
  handlers.on_request = [&](const std::string& method, const std::string& payload)
      -> symphony::engine::Result<std::string> {
    if (method == "deadlock") {
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    if (method == "restored") return restored;
    if (method == "whoami") {
      return JsonObject()
          .add("label", label)
          .add("pid", static_cast<std::int64_t>(::getpid()))
          .str();
    }
    if (method == symphony::supervisor::kDrainMethod && consumer) {
      const auto position = consumer->drain();
      JsonObject positions;
      if (position) positions.add(consumer->topic(), *position);
      return JsonObject().add_raw("positions", positions.str()).str();
    }
    if (method == symphony::supervisor::kResumeMethod && successor && checkpoint) {
      restored = describe_restored(checkpoint->restore());
    }
    if (method == symphony::supervisor::kResumeMethod && consumer) {
      std::optional<std::uint64_t> start_at;
      if (auto body = JsonReader::parse(payload)) {
        if (auto positions = body->raw("positions")) {
          if (auto parsed = JsonReader::parse(*positions)) {
            if (auto at = parsed->integer(consumer->topic())) {
              start_at = static_cast<std::uint64_t>(*at);
            }
          }
        }
      }
      if (auto resumed = consumer->resume(start_at); !resumed) {
        return tl::unexpected(resumed.error());
      }
      return std::string("{}");
    }
    if (method == symphony::supervisor::kResumeMethod) return std::string("{}");
    if (method == "topics") return JsonObject().add("topics", topics ? topics : "(unset)").str();
    if (method == "sleep") {
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
      return payload;
    }
    if ((method == "commit" || method == "commit-loop") && !checkpoint) {
      return tl::unexpected(symphony::engine::Error{symphony::engine::Errc::invalid_argument,
                                                    "started without --checkpoint"});
    }
    if (method == "commit") {
      auto body = JsonReader::parse(payload);
      const auto counter = body ? body->integer("counter") : std::nullopt;
      if (!counter) {
        return tl::unexpected(symphony::engine::Error{symphony::engine::Errc::invalid_argument,
                                                      "commit wants {\"counter\": N}"});
      }
      auto generation = checkpoint->commit(
          checkpoint_bytes(static_cast<std::uint64_t>(*counter), checkpoint_size));
      if (!generation) return tl::unexpected(generation.error());
      return JsonObject().add("generation", *generation).str();
    }
    if (method == "commit-loop" && !commit_loop.joinable()) {
      commit_loop = std::thread([&] {
        for (std::uint64_t counter = 1; !stop.load(); ++counter) {
          if (!checkpoint->commit(checkpoint_bytes(counter, checkpoint_size))) std::abort();
        }
      });
      return std::string("{}");
    }
    return method == "inspect" ? inspect : payload;
  };
  handlers.on_command = [&](const std::string& command,
                            const std::string&) -> symphony::engine::Result<void> {
    if (command == "stop") stop.store(true);
    return {};
  };
  auto channel = ExtensionChannel::connect(*options, handlers);
  if (!channel) {
    std::fprintf(stderr, "test-extension: %s\n", channel.error().message.c_str());
    return 3;
  }
  if (!(*channel)->wait_ready(std::chrono::seconds(30))) {
    std::fprintf(stderr, "test-extension: no welcome from the host\n");
    return 4;
  }
  if (!has_flag(argc, argv, "--no-ready")) {
    (*channel)->send_event(
        symphony::supervisor::kReadyEvent,
        JsonObject().add("generation", options->generation).add_raw("checkpoint", restored).str());
  }
  std::printf("test-extension %s/%d generation %llu ready\n", options->extension.c_str(),
              options->instance, static_cast<unsigned long long>(options->generation));
  std::fflush(stdout);

  const long exit_after = arg_value(argc, argv, "--exit-after-ms", -1);
  const long hog_mib = arg_value(argc, argv, "--hog-mib", 0);
  std::vector<char*> hog;
  if (has_flag(argc, argv, "--burn-cpu")) {
    std::thread([] {
      volatile std::uint64_t x = 0;
      for (;;) x = x + 1;
    }).detach();
  }
  const auto ready_at = std::chrono::steady_clock::now();
  long hogged = 0;
  while (!stop.load()) {
    if (exit_after >= 0 &&
        std::chrono::steady_clock::now() - ready_at >= std::chrono::milliseconds(exit_after)) {
      std::fprintf(stderr, "test-extension: exiting as asked\n");
      return static_cast<int>(arg_value(argc, argv, "--exit-code", 3));
    }
    if (hogged < hog_mib) {
      char* block = static_cast<char*>(std::malloc(8 << 20));
      if (block == nullptr) {
        std::fprintf(stderr, "test-extension: malloc failed after %ld MiB\n", hogged);
        return 5;
      }
      std::memset(block, 1, 8 << 20);  // touched: charged to our memory cgroup
      hog.push_back(block);
      hogged += 8;
      std::printf("hogged %ld MiB\n", hogged);
      std::fflush(stdout);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Let the ack of the stop command go out before the channel closes.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (char* block : hog) std::free(block);
  if (commit_loop.joinable()) commit_loop.join();
  return 0;
}
