// chaos: a deliberately faulty extension, to show containment and recovery. Every fault is a
// request, so a test or a user triggers it when it wants:
//   ping                      -> {"pong": true, "pid": N}  (is it alive, which process)
//   crash {"how": "abort"|"segv"|"exit", "code": N}  dies (SIGABRT, SIGSEGV, or exit(code))
//   hang                      spins forever inside the request (a busy infinite loop)
//   deadlock                  two threads take two locks in opposite orders: the request's
//                             callback never returns (the SDK reports it in the heartbeats'
//                             busy_ms, so the host sees a hang although heartbeats flow)
//   leak {"mib": N}           allocates and touches N MiB that it never frees (keeps growing
//                             with every call; the manifest's memory limit ends it)
// The supervisor contains each: the host and the other extensions keep running; the restart
// policy brings chaos back.
//
// Panel (Extension::ui): its pid and leaked MiB, and buttons that do the same (no confirmation:
// that is the point): "crash" (abort), "hang" (spins on the UI thread: the SDK marks UI handlers
// in its CallbackWatch, so the host sees the hang) and "leak" (16 MiB a click).

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <symphony/sdk/extension.hpp>

using namespace symphony;

namespace {

// Kept reachable on purpose: the leak is growth, not a lost pointer (LeakSanitizer stays quiet).
std::vector<char*> g_leaked;
std::mutex g_leak_mutex;

[[noreturn]] void deadlock() {
  static std::mutex a, b;
  std::atomic<bool> other_holds_b{false};
  std::lock_guard hold_a(a);
  std::thread([&] {
    std::lock_guard hold_b(b);
    other_holds_b = true;
    std::lock_guard never(a);  // waits for us
  }).detach();
  while (!other_holds_b) std::this_thread::yield();
  std::lock_guard never(b);  // waits for it: neither returns
  std::abort();              // unreachable
}

[[noreturn]] void spin_forever() {
  volatile std::uint64_t counter = 0;
  for (;;) counter = counter + 1;
}

[[noreturn]] void crash(const std::string& how, int code) {
  if (how == "exit") std::_Exit(code);
  if (how == "segv") ::raise(SIGSEGV);
  std::abort();
}

// Leaks `mib` more MiB; the total leaked so far, or nullopt if malloc failed.
std::optional<std::size_t> leak(std::int64_t mib) {
  std::lock_guard lock(g_leak_mutex);
  for (std::int64_t i = 0; i < mib; ++i) {
    char* block = static_cast<char*>(std::malloc(1 << 20));
    if (block == nullptr) return std::nullopt;
    std::memset(block, 0x5a, 1 << 20);  // touched: charged to the memory cgroup
    g_leaked.push_back(block);
  }
  return g_leaked.size();
}

std::size_t leaked_mib() {
  std::lock_guard lock(g_leak_mutex);
  return g_leaked.size();
}

}  // namespace

int main(int argc, char** argv) {
  sdk::Extension ext;
  ext.on_request("ping", [&](const sdk::Request&) -> sdk::Reply {
    return sdk::Json().add("pong", true).add("pid", static_cast<std::int64_t>(::getpid())).str();
  });
  ext.on_request("crash", [&](const sdk::Request& request) -> sdk::Reply {
    const std::string how = request.string("how").value_or("abort");
    ext.log().warn("crashing as asked ({})", how);
    crash(how, static_cast<int>(request.integer("code").value_or(7)));
  });
  ext.on_request("hang", [&](const sdk::Request&) -> sdk::Reply {
    ext.log().warn("hanging as asked: an infinite loop in this request");
    spin_forever();
  });
  ext.on_request("deadlock", [&](const sdk::Request&) -> sdk::Reply {
    ext.log().warn("deadlocking this callback as asked");
    deadlock();
  });
  ext.on_request("leak", [&](const sdk::Request& request) -> sdk::Reply {
    const auto mib = request.integer("mib").value_or(16);
    if (mib < 1 || mib > 1 << 16) return sdk::fail("leak wants {\"mib\": 1..65536}");
    const auto total = leak(mib);
    if (!total) return sdk::fail("malloc failed", sdk::Errc::system_error);
    ext.log().warn("leaked {} MiB so far", *total);
    ext.ui_changed();
    return sdk::Json().add("leaked_mib", static_cast<std::uint64_t>(*total)).str();
  });
  ext.ui([&] {
    using namespace sdk::ui;
    return stack(
        "root",
        {heading("title", "Chaos"),
         hstack("facts", {stat("pid", "Process", static_cast<std::int64_t>(::getpid())),
                          stat("leaked", "Leaked", static_cast<std::uint64_t>(leaked_mib()),
                               "MiB")}),
         text("note", "Each button breaks this extension on purpose; the supervisor contains "
                      "it and restarts it.")
             .prop("tone", "muted"),
         hstack("actions",
                {button("crash", "Crash (abort)")
                     .prop("variant", "destructive")
                     .on("click",
                         [&](const UiEvent&) {
                           ext.log().warn("crashing as asked from the panel");
                           crash("abort", 0);
                         }),
                 button("hang", "Hang (infinite loop)")
                     .prop("variant", "destructive")
                     .on("click",
                         [&](const UiEvent&) {
                           ext.log().warn("hanging as asked from the panel: the UI thread spins");
                           spin_forever();
                         }),
                 button("leak", "Leak 16 MiB")
                     .prop("variant", "destructive")
                     .on("click", [&](const UiEvent&) {
                       const auto total = leak(16);
                       if (!total) throw std::runtime_error("malloc failed");
                       ext.log().warn("leaked {} MiB so far", *total);
                     })})});
  });
  ext.on_stop([] {
    std::lock_guard lock(g_leak_mutex);
    for (char* block : g_leaked) std::free(block);
    g_leaked.clear();
  });
  return ext.run(argc, argv);
}
