// ui-probe: an extension with a small panel for the UI's tests (multiprocess and browser end to
// end). Its nodes:
//   button "increment" (click: counter + 1)   text "count"   (the counter)
//   text "ticker" (the tick number, every --tick-ms, default 100; 0: no ticker)
//   input "echo" (change: text "echoed" shows the value)
//   with --rate-hz N (> 0): ui_changed() N times a second and a line-chart "chart" of the last
//   300 values (a sine), to measure coalescing.
//   button "fail" (click: the handler throws "probe failure").

#include <symphony/sdk/extension.hpp>

#include <atomic>
#include <cmath>
#include <deque>
#include <mutex>
#include <string>

namespace {

long arg_value(const std::vector<std::string>& args, const std::string& name, long fallback) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == name) return std::stol(args[i + 1]);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace symphony::sdk::ui;
  symphony::sdk::Extension ext;

  // The view's and handlers' own state: touched on the UI thread only, no lock.
  std::uint64_t counter = 0;
  std::string echoed;
  // Written by timers (other threads): atomic, or under a lock.
  std::atomic<std::uint64_t> tick{0};
  std::mutex chart_mutex;
  std::deque<double> chart;
  std::uint64_t samples = 0;

  std::vector<std::string> args(argv + 1, argv + argc);
  const long tick_ms = arg_value(args, "--tick-ms", 100);
  const long rate_hz = arg_value(args, "--rate-hz", 0);

  ext.ui([&] {
    std::vector<Element> items = {
        heading("title", "UI probe"),
        hstack("counter-row",
               {button("increment", "Increment").on("click", [&](const UiEvent&) { ++counter; }),
                text("count", std::to_string(counter))}),
        text("ticker", std::to_string(tick.load())),
        input("echo")
            .prop("placeholder", "type here")
            .on("change", [&](const UiEvent& e) { echoed = e.value(); }),
        text("echoed", echoed),
        button("fail", "Fail")
            .prop("variant", "destructive")
            .on("click", [](const UiEvent&) { throw std::runtime_error("probe failure"); }),
    };
    if (rate_hz > 0) {
      std::lock_guard lock(chart_mutex);
      items.push_back(
          line_chart("chart", {{"sine", std::vector<double>(chart.begin(), chart.end())}})
              .prop("min", -1)
              .prop("max", 1));
    }
    return stack("root", std::move(items));
  });
  if (tick_ms > 0) {
    ext.every(std::chrono::milliseconds(tick_ms), [&] {
      ++tick;
      ext.ui_changed();
    });
  }
  if (rate_hz > 0) {
    ext.every(std::chrono::nanoseconds(1'000'000'000 / rate_hz), [&] {
      {
        std::lock_guard lock(chart_mutex);
        chart.push_back(std::sin(static_cast<double>(samples++) / 50.0));
        if (chart.size() > 300) chart.pop_front();
      }
      ext.ui_changed();
    });
  }
  return ext.run(argc, argv);
}
