// The admin endpoint in-process: the token, the lock, the files, the client's failures.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "symphony/cli/admin.hpp"
#include "symphony/engine/runtime_dir.hpp"

namespace symphony::test {
namespace {

namespace fs = std::filesystem;
using cli::AdminClient;
using cli::AdminFailure;
using cli::AdminServer;
using controlplane::JsonObject;
using controlplane::JsonReader;

class CliAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    bus_ = "clia-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    dir_ = *engine::ensure_runtime_dir(bus_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Echoes the method and the args' "x"; "fail" fails with not_found.
  static cli::AdminHandler echo() {
    return [](const std::string& method, const JsonReader& args) -> engine::Result<std::string> {
      if (method == "fail") {
        return tl::unexpected(engine::Error{engine::Errc::not_found, "no such thing"});
      }
      return JsonObject().add("method", method).add("x", args.integer("x").value_or(-1)).str();
    };
  }

  std::string bus_;
  fs::path dir_;
};

TEST_F(CliAdminTest, AnswersWithTheTokenAndRefusesWithoutIt) {
  auto server = AdminServer::start({.bus = bus_, .runtime_dir = {}}, echo());
  ASSERT_TRUE(server) << server.error().message;
  struct stat st {};
  ASSERT_EQ(::stat((*server)->token_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ((*server)->endpoint(), "ipc://" + (dir_ / "admin").string());

  auto client = AdminClient::connect(bus_);
  ASSERT_TRUE(client) << client.error().message;
  auto reply = client->call("hello", R"({"x":7})");
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(*reply, R"({"method":"hello","x":7})");
  auto refused = client->call("fail");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().failure, AdminFailure::refused);
  EXPECT_EQ(refused.error().message, "no such thing");

  auto intruder = AdminClient::connect(bus_, {}, std::string(32, '0'));
  ASSERT_TRUE(intruder);
  auto denied = intruder->call("hello");
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().failure, AdminFailure::unauthorized);
  EXPECT_NE(denied.error().message.find("wrong admin token"), std::string::npos);
  EXPECT_EQ((*server)->refused(), 1u);
}

TEST_F(CliAdminTest, OneHostPerBusAndItsFilesGoWithIt) {
  {
    auto first = AdminServer::start({.bus = bus_, .runtime_dir = {}}, echo());
    ASSERT_TRUE(first) << first.error().message;
    auto second = AdminServer::start({.bus = bus_, .runtime_dir = {}}, echo());
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, engine::Errc::owner_alive);
    EXPECT_NE(second.error().message.find("already running"), std::string::npos);
    EXPECT_TRUE(fs::exists(dir_ / "admin"));
    EXPECT_TRUE(fs::exists(dir_ / "admin.token"));
  }
  EXPECT_FALSE(fs::exists(dir_ / "admin"));
  EXPECT_FALSE(fs::exists(dir_ / "admin.token"));
  // And the next one starts.
  auto again = AdminServer::start({.bus = bus_, .runtime_dir = {}}, echo());
  ASSERT_TRUE(again) << again.error().message;
}

TEST_F(CliAdminTest, NoHostAndAStaleTokenAreNoHost) {
  auto none = AdminClient::connect(bus_);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().failure, AdminFailure::no_host);
  EXPECT_NE(none.error().message.find("no host is running on bus '" + bus_ + "'"),
            std::string::npos)
      << none.error().message;
  // What a host killed with -9 leaves: a token file nobody holds.
  std::ofstream(dir_ / "admin.token") << "0123456789abcdef\n";
  auto stale = AdminClient::connect(bus_);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().failure, AdminFailure::no_host);
  EXPECT_NE(stale.error().message.find("left over"), std::string::npos) << stale.error().message;
  // A new host takes the stale file over.
  auto server = AdminServer::start({.bus = bus_, .runtime_dir = {}}, echo());
  ASSERT_TRUE(server) << server.error().message;
  auto client = AdminClient::connect(bus_);
  ASSERT_TRUE(client) << client.error().message;
  EXPECT_TRUE(client->call("hello"));
}

TEST_F(CliAdminTest, AHostThatDoesNotAnswerTimesOut) {
  auto server =
      AdminServer::start({.bus = bus_, .runtime_dir = {}},
                         [](const std::string&, const JsonReader&) -> engine::Result<std::string> {
                           std::this_thread::sleep_for(std::chrono::milliseconds(500));
                           return std::string("{}");
                         });
  ASSERT_TRUE(server);
  auto client = AdminClient::connect(bus_);
  ASSERT_TRUE(client);
  auto reply = client->call("slow", "{}", std::chrono::milliseconds(100));
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().failure, AdminFailure::no_answer);
  // The late reply to the first call is not taken for the second's.
  auto next = client->call("next", "{}", std::chrono::seconds(5));
  ASSERT_TRUE(next) << next.error().message;
}

}  // namespace
}  // namespace symphony::test
