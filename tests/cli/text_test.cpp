// The command's text helpers and the hz window.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "symphony/cli/text.hpp"
#include "symphony/cli/topics.hpp"
#include "symphony/controlplane/envelope.hpp"

namespace symphony::test {
namespace {

using namespace std::chrono_literals;

std::span<const std::byte> bytes_of(const char* text) {
  return {reinterpret_cast<const std::byte*>(text), std::strlen(text)};
}

TEST(CliTextTest, TableColumnsAlign) {
  EXPECT_EQ(cli::render_table({{"ID", "STATE"}, {"explorer", "HEALTHY"}, {"x", "-"}}),
            "ID        STATE\nexplorer  HEALTHY\nx         -\n");
}

TEST(CliTextTest, HumanUnits) {
  EXPECT_EQ(cli::human_bytes(512), "512 B");
  EXPECT_EQ(cli::human_bytes(3 << 20), "3.0 MiB");
  EXPECT_EQ(cli::human_duration(850ms), "850 ms");
  EXPECT_EQ(cli::human_duration(12300ms), "12.3 s");
  EXPECT_EQ(cli::human_duration(302s), "5m02s");
  EXPECT_EQ(cli::human_rate(0), "0");
  EXPECT_EQ(cli::human_rate(1500), "1.5k");
  EXPECT_EQ(cli::json_number(NAN), "null");
  EXPECT_EQ(cli::json_number(2.5), "2.5");
}

TEST(CliTextTest, HexDumpAndText) {
  const std::string dump = cli::hex_dump(bytes_of("Hello, world!\x01 and more"), 256);
  EXPECT_EQ(dump.substr(0, 6), "0000  ");
  EXPECT_NE(dump.find("48 65 6c 6c 6f"), std::string::npos) << dump;
  EXPECT_NE(dump.find("|Hello, world!. a|"), std::string::npos) << dump;
  EXPECT_NE(dump.find("0010  "), std::string::npos) << dump;
  EXPECT_NE(cli::hex_dump(bytes_of("0123456789"), 4).find("... 6 more bytes"), std::string::npos);
  EXPECT_EQ(cli::printable_text(bytes_of("ok\x01"), 64), "ok\\x01");
  EXPECT_EQ(cli::hex_string(bytes_of("AZ")), "415a");
}

TEST(CliTextTest, JsonArrayItemsSplitsAnArray) {
  auto items = cli::json_array_items(R"([{"id":"a","n":1}, 2, "x", [3]])");
  ASSERT_TRUE(items) << items.error().message;
  ASSERT_EQ(items->size(), 4u);
  auto first = controlplane::JsonReader::parse((*items)[0]);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->string("id"), "a");
  EXPECT_EQ((*items)[3], "[3]");
  EXPECT_FALSE(cli::json_array_items("{}"));
  EXPECT_FALSE(cli::json_array_items("[1,"));
}

TEST(CliRateWindowTest, SteadyIntervalsGiveTheirRateAndSpread) {
  cli::RateWindow window(100);
  EXPECT_FALSE(window.stats());
  auto t = std::chrono::steady_clock::time_point{} + 1h;
  for (int i = 0; i < 201; ++i) {
    window.add(t);
    t += (i % 2 == 0) ? 9ms : 11ms;  // 10 ms on average: 100 Hz
  }
  const auto stats = window.stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->window, 100u);
  EXPECT_NEAR(stats->rate, 100.0, 0.01);
  EXPECT_NEAR(stats->min_s, 0.009, 1e-9);
  EXPECT_NEAR(stats->max_s, 0.011, 1e-9);
  EXPECT_NEAR(stats->std_s, 0.001, 1e-9);
  EXPECT_EQ(window.count(), 201u);
}

}  // namespace
}  // namespace symphony::test
