// The handoff in one process: the descriptor's JSON, the owner and receiver over a real socket,
// every bad-descriptor case, a foreign client sending garbage, and hostile fake owners handing
// unsealed or foreign fds.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <random>
#include <set>

#include "handoff_test_support.hpp"

namespace symphony::test {
namespace {

using cp::HandoffDescriptor;
using cp::PayloadId;
using cp::Verify;
namespace wire = cp::handoff_wire;
using ::testing::HasSubstr;

constexpr auto kShort = std::chrono::seconds(5);

// ---- descriptor JSON ------------------------------------------------------------------------------

HandoffDescriptor sample_descriptor() {
  HandoffDescriptor d;
  d.id = {4242, 1234567, 7};
  d.owner = "/run/user/1000/symphony/plant/handoff-video-4242.sock";
  d.offset = 4096;
  d.length = 67108864;
  d.xxh3 = 0x9e3779b97f4a7c15ULL;
  return d;
}

TEST(HandoffDescriptorTest, JsonShapeIsTheDocumentedOne) {
  EXPECT_EQ(sample_descriptor().to_json(),
            R"({"id":"4242-1234567-7","owner":"/run/user/1000/symphony/plant/handoff-video-4242.sock",)"
            R"("offset":4096,"length":67108864,"xxh3":"9e3779b97f4a7c15"})");
  HandoffDescriptor d = sample_descriptor();
  d.xxh3.reset();
  EXPECT_EQ(d.to_json().find("xxh3"), std::string::npos);
}

TEST(HandoffDescriptorTest, JsonRoundTrips) {
  for (const bool with_checksum : {true, false}) {
    HandoffDescriptor d = sample_descriptor();
    if (!with_checksum) d.xxh3.reset();
    d.owner = "/tmp/we\"ird\\dir\x01/handoff-x-1.sock";  // escaped on the way out
    d.offset = std::numeric_limits<std::int64_t>::max() - 10;
    d.length = 10;
    d.id = {std::numeric_limits<std::uint32_t>::max(), std::numeric_limits<std::uint64_t>::max(),
            std::numeric_limits<std::uint64_t>::max()};
    const auto parsed = HandoffDescriptor::from_json(d.to_json());
    ASSERT_TRUE(parsed) << parsed.error().message << " in " << d.to_json();
    EXPECT_EQ(*parsed, d);
  }
}

TEST(HandoffDescriptorTest, PayloadIdParsesOnlyItsOwnForm) {
  const auto id = PayloadId::parse("1-2-3");
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, (PayloadId{1, 2, 3}));
  EXPECT_EQ(id->to_string(), "1-2-3");
  for (const char* bad : {"", "1-2", "1-2-3-4", "a-b-c", "01-2-3", "1--3", "-1-2-3", "1-2-3 ",
                          "4294967296-1-1", "1-18446744073709551616-1", "+1-2-3"}) {
    EXPECT_FALSE(PayloadId::parse(bad)) << bad;
  }
}

struct BadJson {
  const char* json;
  const char* says;
};

TEST(HandoffDescriptorTest, FromJsonRefusesEveryMalformedInput) {
  const std::string owner = R"("owner":"/tmp/d/handoff-a-1.sock")";
  const std::string good_rest = owner + R"(,"offset":0,"length":10)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not JSON"},
      {"{", "not JSON"},
      {"[1,2]", "not a JSON object"},
      {"\"text\"", "not a JSON object"},
      {R"({"id":"1-2-3",)" + owner + R"(,"offset":0})", "\"length\" is missing"},
      {R"({)" + good_rest + "}", "\"id\" is missing"},
      {R"({"id":"1-2-3","offset":0,"length":10})", "\"owner\" is missing"},
      {R"({"id":"1-2-3",)" + owner + R"(,"length":10})", "\"offset\" is missing"},
      {R"({"id":"1-2-3",)" + good_rest + R"(,"extra":1})", "unknown key"},
      {R"({"id":"1-2-3","id":"1-2-4",)" + good_rest + "}", "appears twice"},
      {R"({"id":"1-2-3",)" + good_rest + R"(,"length":11})", "appears twice"},
      {R"({"id":"1-2-3",)" + good_rest + R"(,"xxh3":"0000000000000001","xxh3":"0000000000000001"})",
       "appears twice"},
      {R"({"id":7,)" + good_rest + "}", "\"id\" is not a string"},
      {R"({"id":"1-2",)" + good_rest + "}", "is not <pid>-<start time>-<serial>"},
      {R"({"id":"1-2-3","owner":5,"offset":0,"length":10})", "\"owner\" is not a string"},
      {R"({"id":"1-2-3",)" + owner + R"(,"offset":"0","length":10})", "\"offset\" is not an unsigned"},
      {R"({"id":"1-2-3",)" + owner + R"(,"offset":-1,"length":10})", "\"offset\" is not an unsigned"},
      {R"({"id":"1-2-3",)" + owner + R"(,"offset":0,"length":1.5})", "\"length\" is not an unsigned"},
      {R"({"id":"1-2-3",)" + owner + R"(,"offset":0,"length":18446744073709551616})", "not JSON"},
      {R"({"id":"1-2-3",)" + owner + R"(,"offset":0,"length":{"a":1}})", "\"length\" is not an unsigned"},
      {R"({"id":"1-2-3",)" + owner + R"(,"offset":0,"length":[[[[1]]]]})", "not JSON"},
      {R"({"id":"1-2-3",)" + good_rest + R"(,"xxh3":"9E3779B97F4A7C15"})", "16 lowercase hex"},
      {R"({"id":"1-2-3",)" + good_rest + R"(,"xxh3":"9e3779b97f4a7c1"})", "16 lowercase hex"},
      {R"({"id":"1-2-3",)" + good_rest + R"(,"xxh3":12})", "\"xxh3\" is not a string"},
      {R"({"id":"1-2-3",)" + owner + R"(,"offset":0,"length":0})", "length is 0"},
      {R"({"id":"0-2-3",)" + good_rest + "}", "names no payload"},
      {R"({"id":"1-2-0",)" + good_rest + "}", "names no payload"},
      {R"({"id":"1-2-3","owner":"handoff-a-1.sock","offset":0,"length":10})", "not an absolute"},
      {R"({"id":"1-2-3","owner":"/a\u0000b","offset":0,"length":10})", "NUL"},
      {R"({"id":"1-2-3","owner":"/)" + std::string(200, 'a') + R"(","offset":0,"length":10})",
       "at most 107"},
      {R"({"id":"1-2-3",)" + owner + R"(,"offset":9223372036854775807,"length":1})", "overflows"},
      {R"({"id":"1-2-3",)" + owner + R"(,"offset":18446744073709551615,"length":1})", "overflows"},
      {R"({"id":"1-2-3",)" + owner + R"(,"offset":1,"length":18446744073709551615})", "overflows"},
      {std::string(2000, ' ') + "{}", "more than 1024"},
  };
  for (const auto& [json, says] : cases) {
    const auto parsed = HandoffDescriptor::from_json(json);
    ASSERT_FALSE(parsed) << json;
    EXPECT_EQ(parsed.error().code, Errc::invalid_argument) << json;
    EXPECT_THAT(parsed.error().message, HasSubstr(says)) << json;
  }
}

// ---- owner and receiver in one process --------------------------------------------------------------

using HandoffOwnerTest = HandoffTest;

TEST_F(HandoffOwnerTest, HandsOffVerifiesReleasesAndReclaims) {
  auto owner = make_owner();
  auto receiver = make_receiver();
  const std::uint64_t size = (1 << 20) + 123;
  const HandoffDescriptor d = publish(owner, size, 11);
  EXPECT_EQ(d.owner, owner.endpoint());
  EXPECT_EQ(d.offset, 0u);
  EXPECT_EQ(d.length, size);
  ASSERT_TRUE(d.xxh3);
  EXPECT_EQ(owner.counters().sealed, 1u);
  EXPECT_EQ(owner.counters().live, 1u);
  EXPECT_EQ(handoff_memfds_open(), 1);

  // Through JSON, as the control plane carries it.
  const auto wire_descriptor = HandoffDescriptor::from_json(d.to_json());
  ASSERT_TRUE(wire_descriptor) << wire_descriptor.error().message;
  auto mapped = receiver.open(*wire_descriptor);
  ASSERT_TRUE(mapped) << mapped.error().message;
  EXPECT_TRUE(mapped->verified());
  ASSERT_EQ(mapped->bytes().size(), size);
  EXPECT_FALSE(check_pattern(mapped->bytes(), 11));
  EXPECT_EQ(cp::handoff_checksum(mapped->bytes()), *d.xxh3);
  // Read-only: the mapping's protection is PROT_READ.
  EXPECT_EQ(owner.status(d.id)->fetched, 1u);
  EXPECT_EQ(owner.status(d.id)->holders(), 1u);
  EXPECT_EQ(owner.counters().fetched, 1u);

  mapped->release();
  EXPECT_FALSE(mapped->valid());
  ASSERT_TRUE(eventually([&] { return owner.counters().released == 1; }, kShort));
  EXPECT_EQ(owner.status(d.id)->holders(), 0u);
  EXPECT_EQ(owner.counters().reclaimed, 0u) << "not retired yet: the owner keeps it";
  ASSERT_TRUE(owner.retire(d.id));
  EXPECT_EQ(owner.counters().reclaimed, 1u);
  EXPECT_EQ(owner.counters().live, 0u);
  EXPECT_FALSE(owner.status(d.id));
  EXPECT_EQ(handoff_memfds_open(), 0) << "the owner closed the memfd";
  EXPECT_EQ(receiver.counters().opened, 1u);
  EXPECT_EQ(receiver.counters().released, 1u);
}

TEST_F(HandoffOwnerTest, MappingIsReadOnly) {
  auto owner = make_owner();
  auto receiver = make_receiver();
  const HandoffDescriptor d = publish(owner, 8192, 3);
  auto mapped = receiver.open(d);
  ASSERT_TRUE(mapped) << mapped.error().message;
  // The kernel refuses to make it writable: F_SEAL_WRITE cleared VM_MAYWRITE on our mapping.
  void* page = const_cast<std::byte*>(mapped->bytes().data());
  EXPECT_NE(::mprotect(page, 4096, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(errno, EACCES);
}

TEST_F(HandoffOwnerTest, RetiredWhileHeldIsReclaimedAtTheLastRelease) {
  auto owner = make_owner();
  auto receiver_a = make_receiver();
  auto receiver_b = make_receiver();  // a second connection
  const HandoffDescriptor d = publish(owner, 65536, 5);
  auto a = receiver_a.open(d);
  auto b = receiver_b.open(d);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(owner.retire(d.id));
  EXPECT_TRUE(owner.retire(d.id)) << "retiring twice is harmless";
  EXPECT_EQ(owner.counters().retired, 1u);
  EXPECT_EQ(owner.status(d.id)->holders(), 2u);
  EXPECT_TRUE(owner.status(d.id)->retired);

  // Retired: no new fetch, even while others hold it.
  auto late = receiver_a.open(d);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::not_found);
  EXPECT_THAT(late.error().message, HasSubstr("retired"));

  a->release();
  ASSERT_TRUE(eventually([&] { return owner.counters().released == 1; }, kShort));
  EXPECT_EQ(owner.counters().reclaimed, 0u);
  EXPECT_FALSE(check_pattern(b->bytes(), 5));
  b->release();
  ASSERT_TRUE(eventually([&] { return owner.counters().reclaimed == 1; }, kShort));
  EXPECT_EQ(owner.counters().live, 0u);
  EXPECT_EQ(handoff_memfds_open(), 0);

  // After reclaim the id still reads as retired, not unknown.
  auto gone = receiver_b.open(d);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::not_found);
  EXPECT_THAT(gone.error().message, HasSubstr("retired"));
}

TEST_F(HandoffOwnerTest, SealedRangeInsideThePayload) {
  auto owner = make_owner();
  auto receiver = make_receiver();
  const std::uint64_t offset = 3 * 4096 + 104;  // not page aligned
  const HandoffDescriptor d = publish(owner, 1 << 16, 9, {.offset = offset, .length = 5000, .checksum = true});
  EXPECT_EQ(d.offset, offset);
  EXPECT_EQ(d.length, 5000u);
  auto mapped = receiver.open(d);
  ASSERT_TRUE(mapped) << mapped.error().message;
  ASSERT_EQ(mapped->bytes().size(), 5000u);
  EXPECT_FALSE(check_pattern(mapped->bytes(), 9, offset));
  EXPECT_TRUE(mapped->verified());
}

TEST_F(HandoffOwnerTest, MappingOutlivesReceiverAndOwner) {
  std::optional<cp::MappedPayload> kept;
  {
    auto owner = make_owner();
    auto receiver = make_receiver();
    const HandoffDescriptor d = publish(owner, 1 << 18, 21);
    auto mapped = receiver.open(d);
    ASSERT_TRUE(mapped) << mapped.error().message;
    kept = std::move(*mapped);
  }
  ASSERT_TRUE(kept->valid());
  EXPECT_FALSE(check_pattern(kept->bytes(), 21));
  kept->release();  // nobody to tell: no SIGPIPE, no error
  EXPECT_FALSE(kept->valid());
}

TEST_F(HandoffOwnerTest, OwnerArgumentsAndWriterMisuse) {
  cp::HandoffOwnerOptions options;
  options.runtime_dir = dir_;
  for (const char* bad : {"", "has space", "dots.", "slash/", "x/../y"}) {
    auto owner = cp::HandoffOwner::create(kBus, bad, options);
    ASSERT_FALSE(owner) << bad;
    EXPECT_EQ(owner.error().code, Errc::invalid_argument);
  }
  auto owner = make_owner();
  auto twin = cp::HandoffOwner::create(kBus, "owner", options);
  ASSERT_FALSE(twin);
  EXPECT_THAT(twin.error().message, HasSubstr("already listens"));
  auto other = cp::HandoffOwner::create(kBus, "other", options);
  EXPECT_TRUE(other) << other.error().message;

  auto zero = owner.allocate(0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, Errc::invalid_argument);
  auto huge = owner.allocate(std::numeric_limits<std::uint64_t>::max());
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, Errc::invalid_argument);

  auto empty = owner.seal(cp::PayloadWriter{});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, Errc::invalid_argument);

  auto writer = owner.allocate(4096);
  ASSERT_TRUE(writer);
  auto outside = owner.seal(std::move(*writer), {.offset = 4096, .length = std::nullopt, .checksum = true});
  ASSERT_FALSE(outside);
  EXPECT_THAT(outside.error().message, HasSubstr("outside the payload"));
  writer = owner.allocate(4096);
  auto too_long = owner.seal(std::move(*writer), {.offset = 100, .length = 4000, .checksum = true});
  ASSERT_FALSE(too_long);
  EXPECT_THAT(too_long.error().message, HasSubstr("outside the payload"));

  // A writer dropped without sealing leaves nothing behind.
  { auto dropped = owner.allocate(4096); }
  EXPECT_EQ(handoff_memfds_open(), 0);
  EXPECT_EQ(owner.counters().sealed, 0u);
  EXPECT_EQ(owner.counters().allocated, 3u);

  auto not_ours = owner.retire(PayloadId{1, 2, 3});
  ASSERT_FALSE(not_ours);
  EXPECT_EQ(not_ours.error().code, Errc::not_found);
}

TEST_F(HandoffOwnerTest, SocketPathTooLongIsRefusedClearly) {
  const std::string deep = dir_ + "/" + std::string(90, 'd');
  ASSERT_EQ(::mkdir(deep.c_str(), 0700), 0);
  cp::HandoffOwnerOptions options;
  options.runtime_dir = deep;
  auto owner = cp::HandoffOwner::create(kBus, "owner", options);
  ASSERT_FALSE(owner);
  EXPECT_EQ(owner.error().code, Errc::invalid_argument);
  EXPECT_THAT(owner.error().message, HasSubstr("at most 107"));
}

TEST_F(HandoffOwnerTest, SocketsOfDeadOwnersAreRemovedAtCreate) {
  // A socket file nobody listens on, as a killed owner leaves it.
  const std::string stale = dir_ + "/handoff-dead-999999.sock";
  {
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, stale.c_str(), sizeof address.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    ::close(fd);
  }
  ASSERT_TRUE(std::filesystem::exists(stale));
  auto live = make_owner("live");
  auto owner = make_owner();
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_TRUE(std::filesystem::exists(live.endpoint())) << "a live owner's socket stays";
}

TEST_F(HandoffOwnerTest, ThreadIsNamedAndEveryFdIsCloexec) {
  const auto before = open_fds();
  std::set<int> known;
  for (const auto& [fd, target] : before) known.insert(fd);
  auto owner = make_owner();
  auto receiver = make_receiver();
  const HandoffDescriptor d = publish(owner, 4096, 1);
  auto mapped = receiver.open(d);
  ASSERT_TRUE(mapped) << mapped.error().message;
  int checked = 0;
  for (const auto& [fd, target] : open_fds()) {
    if (known.count(fd) != 0) continue;
    const int flags = ::fcntl(fd, F_GETFD);
    EXPECT_TRUE(flags >= 0 && (flags & FD_CLOEXEC) != 0) << "fd " << fd << " -> " << target;
    ++checked;
  }
  EXPECT_GE(checked, 5) << "listen socket, epoll, eventfd, memfd, connections";

  bool named = false;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name == "sym-handoff") named = true;
  }
  EXPECT_TRUE(named);
  mapped->release();
}

TEST_F(HandoffOwnerTest, NoFdLeaksOnSuccessOrFailure) {
  auto owner = make_owner();
  auto receiver = make_receiver();
  const HandoffDescriptor d = publish(owner, 8192, 2);
  { auto warm = receiver.open(d); }  // the cached connection is opened once
  const auto before = open_fds().size();
  for (int i = 0; i < 20; ++i) {
    auto ok = receiver.open(d);
    ASSERT_TRUE(ok);
    HandoffDescriptor bad = d;
    bad.length = d.length + 1;
    ASSERT_FALSE(receiver.open(bad));
    bad = d;
    bad.xxh3 = *d.xxh3 ^ 1;
    ASSERT_FALSE(receiver.open(bad));
  }
  EXPECT_EQ(open_fds().size(), before);
}

// ---- every bad descriptor -------------------------------------------------------------------------

class BadDescriptorTest : public HandoffTest {
 protected:
  void SetUp() override {
    HandoffTest::SetUp();
    owner_.emplace(make_owner());
    receiver_.emplace(make_receiver());
    good_ = publish(*owner_, kSize, 77);
  }
  void TearDown() override {
    receiver_.reset();
    owner_.reset();
    HandoffTest::TearDown();
  }
  void expect_refused(const HandoffDescriptor& d, Errc code, const std::string& says,
                      cp::OpenOptions options = {}) {
    auto mapped = receiver_->open(d, options);
    ASSERT_FALSE(mapped) << "opened " << d.to_json();
    EXPECT_EQ(mapped.error().code, code) << mapped.error().message;
    EXPECT_THAT(mapped.error().message, HasSubstr(says));
  }
  // Every fetch the refusals made was given back.
  void expect_all_given_back() {
    EXPECT_TRUE(eventually(
        [&] { return owner_->counters().fetched == owner_->counters().released; }, kShort))
        << owner_->counters().fetched << " fetched, " << owner_->counters().released
        << " released";
  }

  static constexpr std::uint64_t kSize = 3 * 4096 + 17;
  std::optional<cp::HandoffOwner> owner_;
  std::optional<cp::HandoffReceiver> receiver_;
  HandoffDescriptor good_;
};

TEST_F(BadDescriptorTest, LengthBeyondTheSize) {
  HandoffDescriptor d = good_;
  d.length = kSize + 1;
  expect_refused(d, Errc::invalid_argument, "outside the payload");
  d.length = std::numeric_limits<std::int64_t>::max();
  expect_refused(d, Errc::invalid_argument, "outside the payload");
  expect_all_given_back();
  EXPECT_GE(owner_->counters().fetched, 2u);
}

TEST_F(BadDescriptorTest, OffsetBeyondTheSize) {
  HandoffDescriptor d = good_;
  d.offset = kSize;
  d.length = 1;
  expect_refused(d, Errc::invalid_argument, "outside the payload");
  d.offset = kSize - 10;
  d.length = 11;
  expect_refused(d, Errc::invalid_argument, "outside the payload");
  d.offset = 1ULL << 40;
  expect_refused(d, Errc::invalid_argument, "outside the payload");
  expect_all_given_back();
}

TEST_F(BadDescriptorTest, OffsetPlusLengthOverflows) {
  HandoffDescriptor d = good_;
  d.offset = std::numeric_limits<std::uint64_t>::max() - 5;
  d.length = 10;
  expect_refused(d, Errc::invalid_argument, "overflows");
  d.offset = 1ULL << 62;
  d.length = 1ULL << 62;
  expect_refused(d, Errc::invalid_argument, "overflows");
  d.offset = 0;
  d.length = 0;
  expect_refused(d, Errc::invalid_argument, "length is 0");
  EXPECT_EQ(owner_->counters().fetched, 0u) << "refused before asking the owner";
}

TEST_F(BadDescriptorTest, WrongChecksumUnlessVerificationIsSkipped) {
  HandoffDescriptor d = good_;
  d.xxh3 = *good_.xxh3 ^ 0x100;
  expect_refused(d, Errc::invalid_layout, "checksum mismatch");
  // A range that is inside but not the one the checksum covers.
  HandoffDescriptor shifted = good_;
  shifted.offset = 8;
  shifted.length = kSize - 8;
  expect_refused(shifted, Errc::invalid_layout, "checksum mismatch");
  expect_all_given_back();
  // Mapping without verifying is possible on request: nothing is read at open.
  auto unverified = receiver_->open(d, {.verify = Verify::skip, .timeout = std::chrono::seconds(2)});
  ASSERT_TRUE(unverified) << unverified.error().message;
  EXPECT_FALSE(unverified->verified());
  EXPECT_FALSE(check_pattern(unverified->bytes(), 77));
}

TEST_F(BadDescriptorTest, ChecksumRequiredButAbsent) {
  HandoffDescriptor d = good_;
  d.xxh3.reset();
  expect_refused(d, Errc::invalid_argument, "Verify::required", {.verify = Verify::required, .timeout = std::chrono::seconds(2)});
  auto opened = receiver_->open(d);  // if_present: maps it, unverified
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_FALSE(opened->verified());
}

TEST_F(BadDescriptorTest, UnknownIds) {
  HandoffDescriptor d = good_;
  d.id.serial = good_.id.serial + 1000;
  expect_refused(d, Errc::not_found, "does not know this id");
  d = good_;
  d.id.pid = good_.id.pid + 1;  // another process's id sent to this owner
  expect_refused(d, Errc::not_found, "does not know this id");
  d = good_;
  d.id.start_time = good_.id.start_time + 1;  // a reused pid
  expect_refused(d, Errc::not_found, "does not know this id");
  EXPECT_EQ(owner_->counters().not_found, 3u);
}

TEST_F(BadDescriptorTest, Retired) {
  ASSERT_TRUE(owner_->retire(good_.id));
  EXPECT_EQ(owner_->counters().reclaimed, 1u);
  expect_refused(good_, Errc::not_found, "retired");
}

TEST_F(BadDescriptorTest, OwnerGone) {
  // Another owner's socket that never existed.
  HandoffDescriptor d = good_;
  d.owner = dir_ + "/handoff-nobody-1.sock";
  expect_refused(d, Errc::unavailable, "no socket at that path");
  // The owner goes away (its socket is removed; the cached connection is closed).
  ASSERT_TRUE(receiver_->open(good_));
  owner_.reset();
  expect_refused(good_, Errc::unavailable, "owner gone");
  // A socket file left behind with nobody listening.
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, good_.owner.c_str(), sizeof address.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
  expect_refused(good_, Errc::unavailable, "nobody listens");
  ::close(fd);
}

TEST_F(BadDescriptorTest, OwnerOutsideTheRuntimeDirectory) {
  HandoffDescriptor d = good_;
  for (const std::string& path :
       {std::string("/run/systemd/private"), std::string("/tmp/handoff-x-1.sock"),
        dir_ + "/other.sock", dir_ + "/../" + std::filesystem::path(dir_).filename().string() +
                                  "/handoff-owner-1.sock",
        dir_ + "/sub/handoff-owner-1.sock"}) {
    d.owner = path;
    expect_refused(d, Errc::invalid_argument, "runtime directory");
  }
  EXPECT_EQ(owner_->counters().connections_total, 0u) << "nothing was contacted";
}

// ---- a foreign client sends garbage to the owner ------------------------------------------------

TEST_F(HandoffOwnerTest, OwnerSurvivesGarbageAndCountsIt) {
  auto owner = make_owner();
  const HandoffDescriptor d = publish(owner, 4096, 4);
  const wire::Request good = make_request(d.id, wire::Op::fetch);
  const auto garbage_then_check_closed = [&](auto&& send) {
    const int fd = connect_seqpacket(owner.endpoint());
    ASSERT_GE(fd, 0);
    send(fd);
    // The owner answers bad_request (or nothing) and hangs up.
    char buffer[256];
    long n = receive_raw(fd, buffer, sizeof buffer, std::chrono::seconds(5));
    if (n == static_cast<long>(sizeof(wire::Reply))) {
      wire::Reply reply;
      std::memcpy(&reply, buffer, sizeof reply);
      EXPECT_EQ(reply.status, static_cast<std::uint16_t>(wire::Status::bad_request));
      n = receive_raw(fd, buffer, sizeof buffer, std::chrono::seconds(5));
    }
    EXPECT_EQ(n, 0) << "the owner closes a connection that sent garbage";
    ::close(fd);
  };
  std::uint64_t expected_refused = 0;
  // Too short, too long, far too long.
  for (const std::size_t size : {std::size_t{1}, std::size_t{31}, std::size_t{33},
                                 std::size_t{4096}, std::size_t{60000}}) {
    garbage_then_check_closed([&](int fd) {
      std::vector<unsigned char> bytes(size, 0xAB);
      EXPECT_EQ(send_raw(fd, bytes.data(), bytes.size()), 0);
    });
    ++expected_refused;
  }
  // The right size, wrong contents.
  std::vector<wire::Request> wrong(5, good);
  wrong[0].magic = 0xdeadbeef;
  wrong[1].version = 99;
  wrong[2].op = 0;
  wrong[3].op = 77;
  wrong[4].reserved = 1;
  for (const wire::Request& request : wrong) {
    garbage_then_check_closed([&](int fd) { EXPECT_EQ(send_raw(fd, &request, sizeof request), 0); });
    ++expected_refused;
  }
  // A good request with an fd attached: the fd is closed, the request refused.
  garbage_then_check_closed([&](int fd) {
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    EXPECT_EQ(send_raw(fd, &good, sizeof good, pipe_fds[0]), 0);
    ::close(pipe_fds[0]);
    // The owner closed its copy of the read end: once ours is closed too, the write end reports
    // an error (no reader left).
    char buffer[64];
    receive_raw(fd, buffer, sizeof buffer, std::chrono::seconds(5));
    EXPECT_TRUE(eventually(
        [&] {
          pollfd p{pipe_fds[1], POLLOUT, 0};
          return ::poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
        },
        kShort))
        << "the owner kept an fd a peer sent it";
    ::close(pipe_fds[1]);
  });
  ++expected_refused;
  // Random bytes of random sizes.
  std::mt19937_64 random(42);
  for (int i = 0; i < 50; ++i) {
    const int fd = connect_seqpacket(owner.endpoint());
    ASSERT_GE(fd, 0);
    std::vector<unsigned char> bytes(1 + random() % 200);
    for (auto& b : bytes) b = static_cast<unsigned char>(random());
    if (bytes.size() == sizeof(wire::Request)) bytes[0] ^= 0xFF;  // never a valid magic
    send_raw(fd, bytes.data(), bytes.size());
    ::close(fd);
    ++expected_refused;
  }
  // A release of something this connection never fetched: ignored and counted, connection kept.
  {
    const int fd = connect_seqpacket(owner.endpoint());
    const wire::Request release = make_request(d.id, wire::Op::release);
    EXPECT_EQ(send_raw(fd, &release, sizeof release), 0);
    ++expected_refused;
    EXPECT_EQ(send_raw(fd, &good, sizeof good), 0);
    wire::Reply reply;
    EXPECT_EQ(receive_raw(fd, &reply, sizeof reply, std::chrono::seconds(5)),
              static_cast<long>(sizeof reply));
    EXPECT_EQ(reply.status, static_cast<std::uint16_t>(wire::Status::ok));
    ::close(fd);  // the fetch is given back by the disconnect
  }
  ASSERT_TRUE(eventually([&] { return owner.counters().refused == expected_refused; }, kShort))
      << owner.counters().refused << " refused, expected " << expected_refused;
  ASSERT_TRUE(eventually([&] { return owner.counters().connections == 0; }, kShort));
  EXPECT_EQ(owner.counters().released_by_disconnect, 1u);

  // And it still serves a real receiver.
  auto receiver = make_receiver();
  auto mapped = receiver.open(d);
  ASSERT_TRUE(mapped) << mapped.error().message;
  EXPECT_FALSE(check_pattern(mapped->bytes(), 4));
}

TEST_F(HandoffOwnerTest, PeerThatDoesNotReadIsDropped) {
  auto owner = make_owner();
  const HandoffDescriptor d = publish(owner, 4096, 4);
  const int fd = connect_seqpacket(owner.endpoint());
  ASSERT_GE(fd, 0);
  // Thousands of fetches, never reading an answer (each carries an fd).
  const wire::Request request = make_request(d.id, wire::Op::fetch);
  timeval timeout{0, 200'000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  for (int i = 0; i < 5000; ++i) {
    if (send_raw(fd, &request, sizeof request) != 0) break;
  }
  ASSERT_TRUE(eventually([&] { return owner.counters().connections == 0; }, kShort))
      << "the owner drops a peer whose answers pile up";
  EXPECT_GE(owner.counters().refused, 1u);
  ::close(fd);
  ASSERT_TRUE(eventually(
      [&] { return owner.counters().fetched == owner.counters().released; }, kShort));
  auto receiver = make_receiver();
  EXPECT_TRUE(receiver.open(d));
}

TEST_F(HandoffOwnerTest, ConnectionAndHoldLimits) {
  auto owner = make_owner("limited", {.runtime_dir = {}, .max_connections = 2, .max_holds_per_connection = 3});
  const HandoffDescriptor d = publish(owner, 4096, 4);
  auto receiver = make_receiver();
  std::vector<cp::MappedPayload> held;
  for (int i = 0; i < 3; ++i) {
    auto mapped = receiver.open(d);
    ASSERT_TRUE(mapped) << mapped.error().message;
    held.push_back(std::move(*mapped));
  }
  auto fourth = receiver.open(d);
  ASSERT_FALSE(fourth);
  EXPECT_EQ(fourth.error().code, Errc::unavailable);
  EXPECT_THAT(fourth.error().message, HasSubstr("too many"));
  held.pop_back();  // releases one
  EXPECT_TRUE(eventually([&] { return receiver.open(d).has_value(); }, kShort));

  const int a = connect_seqpacket(owner.endpoint());  // the second connection
  const int b = connect_seqpacket(owner.endpoint());  // one too many: closed by the owner
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  char buffer[8];
  EXPECT_EQ(receive_raw(b, buffer, sizeof buffer, std::chrono::seconds(5)), 0);
  EXPECT_GE(owner.counters().refused, 2u);
  ::close(a);
  ::close(b);
}

// ---- hostile owners -------------------------------------------------------------------------------

class HostileOwnerTest : public HandoffTest {
 protected:
  // Opens a descriptor from a fake owner that answers with `make_answer`; expects a refusal.
  void expect_refused(FakeOwner::Answerer make_answer, Errc code, const std::string& says,
                      std::uint64_t length = 4096, bool expect_release = true,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
    FakeOwner fake(dir_, "evil", std::move(make_answer));
    auto receiver = make_receiver();
    const auto before = open_fds().size();
    auto mapped = receiver.open(fake.descriptor(5, length), {.verify = Verify::if_present, .timeout = timeout});
    ASSERT_FALSE(mapped);
    EXPECT_EQ(mapped.error().code, code) << mapped.error().message;
    EXPECT_THAT(mapped.error().message, HasSubstr(says));
    if (expect_release) {
      EXPECT_TRUE(eventually([&] { return fake.releases() == 1; }, kShort))
          << "a refused fetch is given back to the owner";
    }
    // Every fd the fake sent was closed: what is left is the connection (both of its ends live
    // in this process: the receiver's, cached, and the fake owner's).
    EXPECT_LE(open_fds().size(), before + 2);
  }
};

TEST_F(HostileOwnerTest, UnsealedMemfdIsRefused) {
  expect_refused(
      [](const wire::Request& r) {
        return FakeOwner::Answer{{}, ok_reply(r.serial, 4096), {make_memfd(4096, 1, 0)}, false};
      },
      Errc::invalid_layout, "not sealed");
}

TEST_F(HostileOwnerTest, MemfdWithoutSealingSupportIsRefused) {
  expect_refused(
      [](const wire::Request& r) {
        return FakeOwner::Answer{
            {}, ok_reply(r.serial, 4096), {make_memfd(4096, 1, 0, /*allow_sealing=*/false)}, false};
      },
      Errc::invalid_layout, "not sealed");
}

TEST_F(HostileOwnerTest, PartlySealedMemfdIsRefused) {
  // Size sealed but not contents: it could still be rewritten under the reader.
  expect_refused(
      [](const wire::Request& r) {
        return FakeOwner::Answer{
            {}, ok_reply(r.serial, 4096), {make_memfd(4096, 1, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)},
            false};
      },
      Errc::invalid_layout, "not sealed");
  // Contents sealed but not the size: it could be truncated (SIGBUS).
  expect_refused(
      [](const wire::Request& r) {
        return FakeOwner::Answer{
            {}, ok_reply(r.serial, 4096), {make_memfd(4096, 1, F_SEAL_WRITE | F_SEAL_GROW)}, false};
      },
      Errc::invalid_layout, "not sealed");
}

TEST_F(HostileOwnerTest, PlainFileIsRefused) {
  const std::string file = dir_ + "/plain-file";
  {
    std::ofstream out(file);
    out << std::string(8192, 'x');
  }
  expect_refused(
      [&](const wire::Request& r) {
        return FakeOwner::Answer{{}, ok_reply(r.serial, 8192), {::open(file.c_str(), O_RDWR | O_CLOEXEC)}, false};
      },
      Errc::invalid_layout, "not a memfd");
}

TEST_F(HostileOwnerTest, TmpfsFileIsRefused) {
  // A file on /dev/shm is shmem too, but cannot carry seals.
  const std::string name = "/sym.test." + std::to_string(::getpid()) + ".handoff-tmpfs";
  const int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 4096), 0);
  ::shm_unlink(name.c_str());
  expect_refused(
      [&](const wire::Request& r) {
        return FakeOwner::Answer{{}, ok_reply(r.serial, 4096), {::dup(fd)}, false};
      },
      Errc::invalid_layout, "not sealed");
  ::close(fd);
}

TEST_F(HostileOwnerTest, PipeAndSocketAreRefused) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  expect_refused(
      [&](const wire::Request& r) {
        return FakeOwner::Answer{{}, ok_reply(r.serial, 4096), {::dup(fds[0])}, false};
      },
      Errc::invalid_layout, "not a memfd");
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_F(HostileOwnerTest, TwoFdsOrNoneAreRefused) {
  expect_refused(
      [](const wire::Request& r) {
        const unsigned all = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
        return FakeOwner::Answer{
            {}, ok_reply(r.serial, 4096), {make_memfd(4096, 1, all), make_memfd(4096, 2, all)}, false};
      },
      Errc::invalid_layout, "2 file descriptors instead of one");
  expect_refused(
      [](const wire::Request& r) { return FakeOwner::Answer{{}, ok_reply(r.serial, 4096), {}, false}; },
      Errc::invalid_layout, "0 file descriptors instead of one");
}

TEST_F(HostileOwnerTest, SealedButTooSmallIsOutsideThePayload) {
  // The owner's answer claims a big size; the file's real size decides.
  expect_refused(
      [](const wire::Request& r) {
        const unsigned all = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
        return FakeOwner::Answer{{}, ok_reply(r.serial, 1 << 30), {make_memfd(4096, 1, all)}, false};
      },
      Errc::invalid_argument, "outside the payload", 8192);
}

TEST_F(HostileOwnerTest, MalformedAnswersAreRefused) {
  expect_refused(
      [](const wire::Request& r) {
        auto reply = ok_reply(r.serial + 1, 4096);  // answers another fetch
        return FakeOwner::Answer{{}, reply, {}, false};
      },
      Errc::invalid_layout, "malformed answer", 4096, false);
  expect_refused(
      [](const wire::Request&) {
        return FakeOwner::Answer{std::vector<std::byte>(7, std::byte{1}), {}, {}, false};
      },
      Errc::invalid_layout, "malformed answer", 4096, false);
  expect_refused(
      [](const wire::Request&) {
        return FakeOwner::Answer{std::vector<std::byte>(5000, std::byte{1}), {}, {}, false};
      },
      Errc::invalid_layout, "malformed answer", 4096, false);
  expect_refused(
      [](const wire::Request& r) {
        auto reply = ok_reply(r.serial, 4096);
        reply.status = 999;
        return FakeOwner::Answer{{}, reply, {}, false};
      },
      Errc::invalid_layout, "unknown status", 4096, false);
}

TEST_F(HostileOwnerTest, SilentOwnerTimesOut) {
  const auto started = Clock::now();
  expect_refused([](const wire::Request&) { return FakeOwner::Answer{{}, {}, {}, true}; },
                 Errc::unavailable, "did not answer within 200 ms", 4096, false,
                 std::chrono::milliseconds(200));
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(3));
}

TEST_F(HostileOwnerTest, SealedMemfdFromAFakeOwnerStillNeedsTheRightChecksum) {
  const unsigned all = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
  FakeOwner fake(dir_, "mimic", [&](const wire::Request& r) {
    return FakeOwner::Answer{{}, ok_reply(r.serial, 4096), {make_memfd(4096, 8, all)}, false};
  });
  auto receiver = make_receiver();
  std::vector<std::byte> expected(4096);
  fill_pattern(expected, 8);
  // Correctly sealed: accepted, and it is what the checksum says.
  auto mapped = receiver.open(fake.descriptor(1, 4096, cp::handoff_checksum(expected)));
  ASSERT_TRUE(mapped) << mapped.error().message;
  EXPECT_TRUE(mapped->verified());
  fill_pattern(expected, 9);
  auto wrong = receiver.open(fake.descriptor(2, 4096, cp::handoff_checksum(expected)));
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error().message, HasSubstr("checksum mismatch"));
}

}  // namespace
}  // namespace symphony::test
