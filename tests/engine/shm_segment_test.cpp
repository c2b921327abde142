// Named segments: create/open/unlink, permissions, and honest ownership (a live owner's segment
// is never clobbered; a dead owner's is replaced with generation + 1).

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "symphony/engine/process_identity.hpp"
#include "symphony/engine/shm_segment.hpp"
#include "symphony/layouts/segment_header.hpp"
#include "test_scale.hpp"

namespace {

using namespace symphony::engine;
using symphony::layouts::SegmentHeader;
using symphony::layouts::SegmentKind;
using symphony::test::ChildProcess;
using symphony::test::eventually;
using symphony::test::SharedArray;
using symphony::test::shm_exists;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr std::size_t kBody = 1000;

class ShmSegmentTest : public symphony::test::ShmTest {};

const SegmentHeader& header_of(const ShmSegment& segment) {
  return *reinterpret_cast<const SegmentHeader*>(segment.base());
}

unsigned mode_of(const std::string& name) {
  struct stat st {};
  if (::stat(("/dev/shm/" + name).c_str(), &st) != 0) return 0;
  return static_cast<unsigned>(st.st_mode) & 0777u;
}

TEST_F(ShmSegmentTest, CreateWritesACompleteHeaderAndWaitsForMarkReady) {
  const std::string n = name();
  auto segment = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_TRUE(segment.has_value()) << segment.error().message;
  EXPECT_TRUE(segment->is_owner());
  EXPECT_EQ(segment->name(), n);
  EXPECT_EQ(segment->generation(), 1u);
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  EXPECT_GE(segment->size(), symphony::layouts::kSegmentHeaderSize + kBody);
  EXPECT_EQ(segment->size() % page, 0u);
  EXPECT_EQ(segment->body(), segment->base() + symphony::layouts::kSegmentHeaderSize);
  const SegmentHeader& h = header_of(*segment);
  EXPECT_EQ(h.magic, symphony::layouts::kSegmentMagic);
  EXPECT_EQ(h.layout_version, symphony::layouts::kLayoutVersion);
  EXPECT_EQ(h.kind, static_cast<std::uint32_t>(SegmentKind::spsc_ring));
  EXPECT_EQ(h.total_size, segment->size());
  EXPECT_EQ(h.creator_pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_EQ(h.creator_start_time, self_identity().start_time);
  EXPECT_EQ(h.generation, 1u);
  EXPECT_EQ(h.body_offset, symphony::layouts::kSegmentHeaderSize);
  EXPECT_EQ(h.body_size, kBody);
  EXPECT_EQ(h.state, symphony::layouts::kSegmentInitializing);
  segment->mark_ready();
  EXPECT_EQ(h.state, symphony::layouts::kSegmentReady);
  EXPECT_TRUE(ShmSegment::exists(n));
}

TEST_F(ShmSegmentTest, OpenSharesTheBytesAndIsNotTheOwner) {
  const std::string n = name();
  auto created = ShmSegment::create(n, SegmentKind::mpmc_ring, kBody);
  ASSERT_TRUE(created.has_value()) << created.error().message;
  created->mark_ready();
  auto opened = ShmSegment::open(n, SegmentKind::mpmc_ring);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_FALSE(opened->is_owner());
  EXPECT_EQ(opened->size(), created->size());
  EXPECT_EQ(opened->generation(), 1u);
  EXPECT_NE(opened->base(), created->base());
  std::memcpy(created->body(), "hello", 5);
  EXPECT_EQ(std::memcmp(opened->body(), "hello", 5), 0);
  // An opener leaving does not remove the name.
  opened = tl::unexpected(Error{Errc::not_found, ""});
  EXPECT_TRUE(ShmSegment::exists(n));
}

TEST_F(ShmSegmentTest, DefaultModeIs0600) {
  const std::string n = name();
  auto segment = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_TRUE(segment.has_value()) << segment.error().message;
  EXPECT_EQ(mode_of(n), 0600u);
}

TEST_F(ShmSegmentTest, ModeOptionIsAppliedDespiteUmask) {
  const mode_t old = ::umask(077);
  const std::string n = name();
  CreateOptions options;
  options.mode = 0640;
  auto segment = ShmSegment::create(n, SegmentKind::spsc_ring, kBody, options);
  ::umask(old);
  ASSERT_TRUE(segment.has_value()) << segment.error().message;
  EXPECT_EQ(mode_of(n), 0640u);
}

TEST_F(ShmSegmentTest, OpenOrUnlinkANameThatDoesNotExist) {
  const std::string n = name();
  auto opened = ShmSegment::open(n, SegmentKind::spsc_ring);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Errc::not_found);
  EXPECT_THAT(opened.error().message, HasSubstr(n));
  auto unlinked = ShmSegment::unlink(n);
  ASSERT_FALSE(unlinked.has_value());
  EXPECT_EQ(unlinked.error().code, Errc::not_found);
  EXPECT_FALSE(ShmSegment::exists(n));
}

TEST_F(ShmSegmentTest, InvalidNamesAndSizesAreRefused) {
  const std::string too_long(201, 'x');
  for (const std::string& bad : {std::string(), std::string("a/b"), std::string("/lead"),
                                 std::string("."), std::string(".."), too_long}) {
    SCOPED_TRACE("name '" + bad + "'");
    auto created = ShmSegment::create(bad, SegmentKind::spsc_ring, kBody);
    ASSERT_FALSE(created.has_value());
    EXPECT_EQ(created.error().code, Errc::invalid_argument);
    auto opened = ShmSegment::open(bad, SegmentKind::spsc_ring);
    ASSERT_FALSE(opened.has_value());
    EXPECT_EQ(opened.error().code, Errc::invalid_argument);
    EXPECT_FALSE(ShmSegment::exists(bad));
  }
  auto empty_body = ShmSegment::create(name(), SegmentKind::spsc_ring, 0);
  ASSERT_FALSE(empty_body.has_value());
  EXPECT_EQ(empty_body.error().code, Errc::invalid_argument);
}

TEST_F(ShmSegmentTest, OpenAsTheWrongKindIsRefused) {
  const std::string n = name();
  auto created = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_TRUE(created.has_value()) << created.error().message;
  created->mark_ready();
  auto opened = ShmSegment::open(n, SegmentKind::mpmc_ring);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Errc::invalid_layout);
  EXPECT_THAT(opened.error().message, HasSubstr("kind"));
}

TEST_F(ShmSegmentTest, OpenBeforeMarkReadyIsRefused) {
  const std::string n = name();
  auto created = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_TRUE(created.has_value()) << created.error().message;
  const auto start = symphony::test::Clock::now();
  auto opened = ShmSegment::open(n, SegmentKind::spsc_ring);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Errc::invalid_layout);
  EXPECT_THAT(opened.error().message, HasSubstr("not ready"));
  EXPECT_LT(symphony::test::Clock::now() - start, 10s) << "open must give up in bounded time";
}

TEST_F(ShmSegmentTest, OpenOfAFileThatIsNotASegmentIsRefused) {
  // Too small for a header.
  const std::string tiny = name("tiny");
  int fd = ::shm_open(("/" + tiny).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 64), 0);
  ::close(fd);
  auto opened = ShmSegment::open(tiny, SegmentKind::spsc_ring);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Errc::invalid_layout);
  // Big enough, but garbage.
  const std::string garbage = name("garbage");
  fd = ::shm_open(("/" + garbage).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 4096), 0);
  const char junk[] = "not a symphony segment, just some bytes";
  ASSERT_EQ(::pwrite(fd, junk, sizeof junk, 0), static_cast<ssize_t>(sizeof junk));
  ::close(fd);
  opened = ShmSegment::open(garbage, SegmentKind::spsc_ring);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Errc::invalid_layout);
  EXPECT_THAT(opened.error().message, HasSubstr("magic"));
}

TEST_F(ShmSegmentTest, OwnerUnlinksOnDestroy) {
  const std::string n = name();
  {
    auto segment = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
    ASSERT_TRUE(segment.has_value()) << segment.error().message;
    EXPECT_TRUE(shm_exists(n));
  }
  EXPECT_FALSE(shm_exists(n));
}

TEST_F(ShmSegmentTest, KeepNameOnDestroy) {
  const std::string n = name();
  CreateOptions options;
  options.keep_name_on_destroy = true;
  {
    auto segment = ShmSegment::create(n, SegmentKind::spsc_ring, kBody, options);
    ASSERT_TRUE(segment.has_value()) << segment.error().message;
    segment->mark_ready();
  }
  EXPECT_TRUE(shm_exists(n));
  EXPECT_TRUE(ShmSegment::unlink(n).has_value());
  EXPECT_FALSE(shm_exists(n));
}

TEST_F(ShmSegmentTest, MovedSegmentUnlinksOnceFromItsNewHome) {
  const std::string n = name();
  auto segment = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_TRUE(segment.has_value()) << segment.error().message;
  std::byte* base = segment->base();
  {
    ShmSegment moved(std::move(*segment));
    EXPECT_EQ(moved.base(), base);
    EXPECT_TRUE(moved.is_owner());
    EXPECT_EQ(segment->base(), nullptr);
    EXPECT_FALSE(segment->is_owner());
  }
  EXPECT_FALSE(shm_exists(n));
  segment = tl::unexpected(Error{Errc::not_found, ""});  // destroying the moved-from: no-op
  EXPECT_FALSE(shm_exists(n));
}

TEST_F(ShmSegmentTest, MappingsOutliveUnlink) {
  const std::string n = name();
  auto segment = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_TRUE(segment.has_value()) << segment.error().message;
  ASSERT_TRUE(ShmSegment::unlink(n).has_value());
  EXPECT_FALSE(ShmSegment::exists(n));
  std::memset(segment->body(), 0xAB, kBody);  // still mapped: no crash
  EXPECT_EQ(segment->body()[kBody - 1], std::byte{0xAB});
}

TEST_F(ShmSegmentTest, CreateOverALiveOwnerInThisProcessIsRefused) {
  const std::string n = name();
  auto first = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  first->mark_ready();
  std::memcpy(first->body(), "mine", 4);
  auto second = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, Errc::owner_alive);
  // Untouched: same bytes, same generation, still there.
  EXPECT_EQ(std::memcmp(first->body(), "mine", 4), 0);
  EXPECT_EQ(header_of(*first).generation, 1u);
  EXPECT_EQ(header_of(*first).state, symphony::layouts::kSegmentReady);
  EXPECT_TRUE(shm_exists(n));
}

TEST_F(ShmSegmentTest, CreateOverALiveOwnerInAnotherProcessIsRefused) {
  const std::string n = name();
  SharedArray<std::uint32_t> step(1);
  ChildProcess owner([&] {
    auto segment = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
    SYM_CHILD_CHECK(segment.has_value());
    segment->mark_ready();
    step.at(0).store(1);
    for (int i = 0; i < 20000 && step.at(0).load() != 2; ++i) ::usleep(500);
    return 0;  // the segment's destructor unlinks the name
  });
  ASSERT_TRUE(eventually([&] { return step.at(0).load() == 1; }, 20s));
  auto clobber = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_FALSE(clobber.has_value());
  EXPECT_EQ(clobber.error().code, Errc::owner_alive);
  EXPECT_THAT(clobber.error().message, HasSubstr(std::to_string(owner.pid())));
  // The owner's segment is intact.
  auto opened = ShmSegment::open(n, SegmentKind::spsc_ring);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(opened->generation(), 1u);
  EXPECT_EQ(header_of(*opened).creator_pid, static_cast<std::uint32_t>(owner.pid()));
  step.at(0).store(2);
  const auto status = owner.wait(20s);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_FALSE(shm_exists(n)) << "the owner unlinks the name when its segment is destroyed";
}

TEST_F(ShmSegmentTest, DeadCreatorsSegmentIsReplacedWithTheNextGeneration) {
  const std::string n = name();
  SharedArray<std::uint32_t> step(1);
  // Generation 1: its creator is killed while holding it.
  ChildProcess killed([&] {
    auto segment = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
    SYM_CHILD_CHECK(segment.has_value());
    SYM_CHILD_CHECK(segment->generation() == 1);
    segment->mark_ready();
    step.at(0).store(1);
    for (;;) ::pause();
  });
  ASSERT_TRUE(eventually([&] { return step.at(0).load() == 1; }, 20s));
  killed.kill9();
  ASSERT_TRUE(shm_exists(n)) << "a killed creator cannot unlink";

  // Generation 2: its creator exits cleanly but keeps the name.
  const auto second = symphony::test::run_in_child(
      [&] {
        CreateOptions options;
        options.keep_name_on_destroy = true;
        auto segment = ShmSegment::create(n, SegmentKind::spsc_ring, kBody, options);
        SYM_CHILD_CHECK_MSG(segment.has_value(), segment.error().message);
        SYM_CHILD_CHECK(segment->generation() == 2);
        SYM_CHILD_CHECK(segment->is_owner());
        segment->mark_ready();
        return 0;
      },
      20s);
  ASSERT_TRUE(second.ok()) << second;
  ASSERT_TRUE(shm_exists(n));

  // Generation 3: ours.
  auto third = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_TRUE(third.has_value()) << third.error().message;
  EXPECT_TRUE(third->is_owner());
  EXPECT_EQ(third->generation(), 3u);
  EXPECT_EQ(header_of(*third).generation, 3u);
  EXPECT_EQ(header_of(*third).creator_pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_EQ(header_of(*third).state, symphony::layouts::kSegmentInitializing);
}

TEST_F(ShmSegmentTest, HalfWrittenFileIsLeftAloneForTheGracePeriodThenReplaced) {
  // A file with no valid header may be a segment another process is creating right now.
  const std::string n = name();
  const int fd = ::shm_open(("/" + n).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 4096), 0);
  ::close(fd);
  auto early = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_FALSE(early.has_value());
  EXPECT_EQ(early.error().code, Errc::owner_alive);
  std::this_thread::sleep_for(2200ms);  // the grace period is 2 s
  auto late = ShmSegment::create(n, SegmentKind::spsc_ring, kBody);
  ASSERT_TRUE(late.has_value()) << late.error().message;
  EXPECT_TRUE(late->is_owner());
  EXPECT_EQ(late->generation(), 1u);
}

}  // namespace
