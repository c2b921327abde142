// An extension built with the SDK for the SDK's tests.
//
//   --record FILE   subscribes to "handover/seq" (test.Seq, block) and appends each sample's
//                   sequence number to FILE, one line per sample (the hand-over tests read it)
//   --work-us N     sleeps N µs in each "handover/seq" callback (a backlog during the drain)
//   --two-topics    subscribes to "slow/in" (its callback blocks until the "unblock" request)
//                   and "fast/in" (counts): one stuck callback must not stall the others
// Requests: "sleep" {"ms"}; "fast" -> {}; "counts" -> {"seq","fast","slow","restored","last"};
// "unblock"; "try-advertise" / "try-subscribe" {"topic"} -> {} or the SDK's error;
// "commit" -> the checkpoint generation. Broadcast events are counted ("events", and
// "healthy_events": lifecycle events that say HEALTHY). Checkpoint: the count of "handover/seq" samples.

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include <symphony/sdk/extension.hpp>

#include "sdk_test_types.hpp"

using namespace symphony;

int main(int argc, char** argv) {
  sdk::Extension ext;
  std::string record;
  long work_us = 0;
  bool two_topics = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--record" && i + 1 < argc) record = argv[++i];
    if (arg == "--work-us" && i + 1 < argc) work_us = std::stol(argv[++i]);
    if (arg == "--two-topics") two_topics = true;
  }
  std::atomic<std::uint64_t> seq_count{0}, fast{0}, slow{0}, restored{0};
  std::atomic<std::int64_t> last{-1};
  std::atomic<std::uint64_t> events{0}, lifecycle_events{0};
  std::mutex block_mutex;
  std::condition_variable unblocked;
  bool blocked = true;
  int record_fd = -1;

  if (!record.empty()) {
    record_fd = ::open(record.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (record_fd < 0) return 9;
    auto subscribed = ext.subscribe<test::Seq>(
        test::kSeqTopic, test::kSeqType, [&](const test::Seq& s) {
          const std::string line = std::to_string(s.seq) + "\n";
          if (::write(record_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
            std::abort();
          }
          last = static_cast<std::int64_t>(s.seq);
          seq_count.fetch_add(1);
          if (work_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(work_us));
        });
    if (!subscribed) {
      ext.log().error("{}", subscribed.error().message);
      return 8;
    }
  }
  if (two_topics) {
    auto a = ext.subscribe_raw("slow/in", [&](std::span<const std::byte>) {
      slow.fetch_add(1);
      std::unique_lock lock(block_mutex);
      unblocked.wait(lock, [&] { return !blocked; });
    });
    auto b = ext.subscribe_raw("fast/in", [&](std::span<const std::byte>) { fast.fetch_add(1); });
    if (!a || !b) return 8;
  }
  ext.on_checkpoint(
      [&] {
        const std::uint64_t n = seq_count.load();
        std::vector<std::byte> bytes(8);
        std::memcpy(bytes.data(), &n, 8);
        return bytes;
      },
      [&](std::span<const std::byte> bytes) {
        std::uint64_t n = 0;
        if (bytes.size() == 8) std::memcpy(&n, bytes.data(), 8);
        restored = n;
      });
  ext.on_event([&](const sdk::Event& e) {
    events.fetch_add(1);
    if (e.body.find("\"state\":\"HEALTHY\"") != std::string::npos) lifecycle_events.fetch_add(1);
  });
  ext.on_request("sleep", [&](const sdk::Request& r) -> sdk::Reply {
    std::this_thread::sleep_for(std::chrono::milliseconds(r.integer("ms").value_or(100)));
    return std::string("{}");
  });
  ext.on_request("fast", [&](const sdk::Request&) -> sdk::Reply { return std::string("{}"); });
  ext.on_request("counts", [&](const sdk::Request&) -> sdk::Reply {
    return sdk::Json()
        .add("seq", seq_count.load())
        .add("fast", fast.load())
        .add("slow", slow.load())
        .add("restored", restored.load())
        .add("last", last.load())
        .add("awaiting", ext.awaiting_handover())
        .add("events", events.load())
        .add("healthy_events", lifecycle_events.load())
        .str();
  });
  ext.on_request("unblock", [&](const sdk::Request&) -> sdk::Reply {
    {
      std::lock_guard lock(block_mutex);
      blocked = false;
    }
    unblocked.notify_all();
    return std::string("{}");
  });
  ext.on_request("try-advertise", [&](const sdk::Request& r) -> sdk::Reply {
    auto p = ext.advertise_raw(r.string("topic").value_or(""));
    if (!p) return tl::unexpected(p.error());
    return std::string("{}");
  });
  ext.on_request("try-subscribe", [&](const sdk::Request& r) -> sdk::Reply {
    auto s = ext.subscribe_raw(r.string("topic").value_or(""), [](std::span<const std::byte>) {});
    if (!s) return tl::unexpected(s.error());
    return std::string("{}");
  });
  ext.on_request("commit", [&](const sdk::Request&) -> sdk::Reply {
    auto g = ext.commit_checkpoint();
    if (!g) return tl::unexpected(g.error());
    return sdk::Json().add("generation", *g).str();
  });
  ext.on_stop([&] {
    {
      std::lock_guard lock(block_mutex);
      blocked = false;
    }
    unblocked.notify_all();
  });
  const int code = ext.run(argc, argv);
  if (record_fd >= 0) ::close(record_fd);
  return code;
}
