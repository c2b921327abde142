// The handoff across real processes: 1 GiB verified and reclaimed, a hostile sender that attacks
// its payload after handing it off, a hostile owner process, an owner killed while a receiver
// holds its payload, a receiver killed while holding payloads, and garbage from a foreign process.

#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include "handoff_test_support.hpp"

namespace symphony::test {
namespace {

using cp::HandoffDescriptor;
namespace wire = cp::handoff_wire;
using ::testing::HasSubstr;

constexpr auto kChildTimeout = std::chrono::seconds(120);

using HandoffProcessTest = HandoffTest;

// ---- 1 GiB ---------------------------------------------------------------------------------------

TEST_F(HandoffProcessTest, OneGibAcrossProcessesVerifiedAndReclaimed) {
  const std::uint64_t page = 4096;
  const std::uint64_t size = std::max<std::uint64_t>(page, scaled(1ULL << 30) / page * page);
  auto owner = make_owner("big");
  const HandoffDescriptor d = publish(owner, size, 0x1ca1);
  ASSERT_TRUE(d.xxh3);
  SharedArray<Mailbox> mail(1);
  SharedArray<std::uint64_t> result(4);
  post(mail[0], d.to_json());

  // The receiver, in another process, knows only the JSON.
  ChildProcess child([&]() -> int {
    const auto json = wait_post(mail[0], 1, std::chrono::seconds(10));
    SYM_CHILD_CHECK(json);
    auto descriptor = HandoffDescriptor::from_json(*json);
    SYM_CHILD_CHECK_MSG(descriptor, descriptor.error().message);
    auto receiver = cp::HandoffReceiver::create(kBus, {.runtime_dir = dir_});
    SYM_CHILD_CHECK(receiver);
    const auto started = Clock::now();
    auto mapped = receiver->open(*descriptor, {.verify = cp::Verify::required, .timeout = std::chrono::seconds(5)});
    SYM_CHILD_CHECK_MSG(mapped, mapped.error().message);
    result.at(0).store(static_cast<std::uint64_t>((Clock::now() - started).count()));
    SYM_CHILD_CHECK(mapped->verified());
    SYM_CHILD_CHECK(mapped->bytes().size() == size);
    // The checksum covered every byte; spot-check the pattern at both ends too.
    const auto bytes = mapped->bytes();
    SYM_CHILD_CHECK(!check_pattern(bytes.first(1 << 16), 0x1ca1));
    SYM_CHILD_CHECK(!check_pattern(bytes.last(1 << 16), 0x1ca1, size - (1 << 16)));
    result.at(1).store(1);
    mapped->release();
    return 0;
  });
  const ChildStatus status = child.wait(kChildTimeout);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(result.at(1).load(), 1u);
  std::printf("handoff of %llu MiB: open + verify in the receiver took %.1f ms\n",
              static_cast<unsigned long long>(size >> 20),
              static_cast<double>(result.at(0).load()) / 1e6);

  ASSERT_TRUE(eventually([&] { return owner.counters().released == 1; }, std::chrono::seconds(10)));
  EXPECT_EQ(owner.counters().fetched, 1u);
  EXPECT_EQ(handoff_memfds_open(), 1);
  ASSERT_TRUE(owner.retire(d.id));
  EXPECT_EQ(owner.counters().reclaimed, 1u);
  EXPECT_EQ(owner.counters().live, 0u);
  EXPECT_EQ(handoff_memfds_open(), 0) << "reclaimed: the owner closed the memfd";
}

// ---- a hostile sender attacks its payload after the handoff ---------------------------------------

// Results of each attack, written by the hostile child: errno of the failed call (0 = it worked).
enum Attack : std::size_t {
  kTruncateShrink,
  kTruncateGrow,
  kWrite,
  kPwrite,
  kPunchHole,
  kFallocateGrow,
  kMapWritable,
  kReopenWrite,
  kReopenTruncate,
  kMprotectWritable,
  kMadviseRemove,
  kRemoveSeals,
  kAttackCount
};

const char* attack_name(std::size_t a) {
  static const char* names[] = {"ftruncate(0)",   "ftruncate(2x)",          "write",
                                "pwrite",         "fallocate(PUNCH_HOLE)",  "fallocate(grow)",
                                "mmap(PROT_WRITE, MAP_SHARED)", "reopen O_RDWR + write",
                                "reopen + ftruncate", "mprotect(PROT_WRITE)", "madvise(MADV_REMOVE)",
                                "F_ADD_SEALS after F_SEAL_SEAL"};
  return names[a];
}

// The fd of our own handoff memfd, as a hostile sender would find it.
int find_own_memfd() {
  for (const auto& [fd, target] : open_fds()) {
    if (target.rfind("/memfd:symphony-handoff", 0) == 0) return fd;
  }
  return -1;
}

TEST_F(HandoffProcessTest, HostileSenderCannotTruncateOrRewriteAfterHandoff) {
  const std::uint64_t size = 1 << 20;
  SharedArray<Mailbox> mail(2);  // 0: child -> parent (descriptor), 1: parent -> child (go)
  SharedArray<std::int64_t> errors(kAttackCount + 1);
  const std::string dir = dir_;

  ChildProcess sender([&]() -> int {
    auto owner = cp::HandoffOwner::create(kBus, "hostile", {.runtime_dir = dir, .max_connections = 128, .max_holds_per_connection = 4096});
    SYM_CHILD_CHECK_MSG(owner, owner.error().message);
    auto writer = owner->allocate(size);
    SYM_CHILD_CHECK(writer);
    fill_pattern(writer->bytes(), 0xbad);
    auto d = owner->seal(std::move(*writer));
    SYM_CHILD_CHECK(d);
    post(mail[0], d->to_json());
    SYM_CHILD_CHECK(wait_post(mail[1], 1, std::chrono::seconds(30)));  // the parent has it mapped

    const int fd = find_own_memfd();
    SYM_CHILD_CHECK(fd >= 0);
    const auto record = [&](Attack a, bool failed) { errors.at(a).store(failed ? errno : 0); };
    std::vector<char> junk(4096, 'X');
    record(kTruncateShrink, ::ftruncate(fd, 0) != 0);
    record(kTruncateGrow, ::ftruncate(fd, static_cast<off_t>(size * 2)) != 0);
    record(kWrite, ::write(fd, junk.data(), junk.size()) < 0);
    record(kPwrite, ::pwrite(fd, junk.data(), junk.size(), 100) < 0);
    record(kPunchHole, ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                                   static_cast<off_t>(size)) != 0);
    record(kFallocateGrow, ::fallocate(fd, 0, 0, static_cast<off_t>(size * 2)) != 0);
    void* w = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    record(kMapWritable, w == MAP_FAILED);
    if (w != MAP_FAILED) std::memset(w, 'X', size);
    const int reopened =
        ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDWR | O_CLOEXEC);
    if (reopened >= 0) {
      record(kReopenWrite, ::write(reopened, junk.data(), junk.size()) < 0);
      record(kReopenTruncate, ::ftruncate(reopened, 0) != 0);
      ::close(reopened);
    } else {
      errors.at(kReopenWrite).store(errno);
      errors.at(kReopenTruncate).store(errno);
    }
    void* r = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    SYM_CHILD_CHECK(r != MAP_FAILED);
    record(kMprotectWritable, ::mprotect(r, size, PROT_READ | PROT_WRITE) != 0);
    record(kMadviseRemove, ::madvise(r, size, MADV_REMOVE) != 0);
    record(kRemoveSeals, ::fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0);
    // A private writable mapping is allowed, but its writes are the sender's alone.
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    SYM_CHILD_CHECK(p != MAP_FAILED);
    std::memset(p, 'X', size);
    errors.at(kAttackCount).store(1);  // done
    post(mail[0], "attacked");
    ::pause();  // stays alive until the parent has looked
    return 0;
  });

  const auto json = wait_post(mail[0], 1, std::chrono::seconds(30));
  ASSERT_TRUE(json);
  const auto d = HandoffDescriptor::from_json(*json);
  ASSERT_TRUE(d) << d.error().message;
  auto receiver = make_receiver();
  auto mapped = receiver.open(*d);
  ASSERT_TRUE(mapped) << mapped.error().message;
  ASSERT_TRUE(mapped->verified());
  post(mail[1], "go");
  ASSERT_TRUE(wait_post(mail[0], 2, std::chrono::seconds(30)));
  ASSERT_EQ(errors.at(kAttackCount).load(), 1);
  for (std::size_t a = 0; a < kAttackCount; ++a) {
    EXPECT_NE(errors.at(a).load(), 0) << attack_name(a) << " succeeded on a sealed payload";
    std::printf("  %-32s refused: %s\n", attack_name(a), std::strerror(static_cast<int>(errors.at(a).load())));
  }
  // The receiver reads the original, all of it (no SIGBUS: the size never changed).
  EXPECT_FALSE(check_pattern(mapped->bytes(), 0xbad));
  EXPECT_EQ(cp::handoff_checksum(mapped->bytes()), *d->xxh3);
  // A fresh open after the attacks still verifies.
  auto again = receiver.open(*d, {.verify = cp::Verify::required, .timeout = std::chrono::seconds(5)});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(check_pattern(again->bytes(), 0xbad));
  sender.kill9();
}

// ---- a hostile owner process -------------------------------------------------------------------

TEST_F(HandoffProcessTest, HostileOwnerProcessHandingUnsealedOrPlainFdsIsRefused) {
  SharedArray<Mailbox> mail(1);
  const std::string dir = dir_;
  const std::string file = dir_ + "/plain";
  ChildProcess hostile([&]() -> int {
    // Serial 1: an unsealed memfd that it truncates right after sending; 2: a plain file.
    const int plain = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    SYM_CHILD_CHECK(plain >= 0 && ::ftruncate(plain, 1 << 20) == 0);
    std::atomic<int> unsealed{-1};  // made by the fake owner's thread, attacked by this one
    FakeOwner fake(dir, "liar", [&](const wire::Request& r) {
      if (r.serial == 1) {
        const int fd = make_memfd(1 << 20, 1, 0);
        unsealed.store(fd);
        return FakeOwner::Answer{{}, ok_reply(1, 1 << 20), {::dup(fd)}, false};
      }
      return FakeOwner::Answer{{}, ok_reply(r.serial, 1 << 20), {::dup(plain)}, false};
    });
    post(mail[0], fake.path());
    for (;;) {
      if (const int fd = unsealed.load(); fd >= 0) (void)!::ftruncate(fd, 0);  // what a receiver that mapped it would die of
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  const auto path = wait_post(mail[0], 1, std::chrono::seconds(30));
  ASSERT_TRUE(path);
  auto receiver = make_receiver();
  HandoffDescriptor d;
  d.id = {static_cast<std::uint32_t>(hostile.pid()), 1, 1};
  d.owner = *path;
  d.length = 1 << 20;
  auto unsealed = receiver.open(d);
  ASSERT_FALSE(unsealed);
  EXPECT_EQ(unsealed.error().code, Errc::invalid_layout);
  EXPECT_THAT(unsealed.error().message, HasSubstr("not sealed"));
  d.id.serial = 2;
  auto plain = receiver.open(d);
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().code, Errc::invalid_layout);
  EXPECT_THAT(plain.error().message, HasSubstr("not a memfd"));
  hostile.kill9();
}

// ---- the owner dies -----------------------------------------------------------------------------

TEST_F(HandoffProcessTest, OwnerKilledWhileReceiverHoldsMapping) {
  const std::uint64_t size = std::max<std::uint64_t>(1 << 16, scaled(64ULL << 20) / 4096 * 4096);
  SharedArray<Mailbox> mail(1);
  const std::string dir = dir_;
  ChildProcess owner_process([&]() -> int {
    auto owner = cp::HandoffOwner::create(kBus, "doomed", {.runtime_dir = dir, .max_connections = 128, .max_holds_per_connection = 4096});
    SYM_CHILD_CHECK(owner);
    std::string both;
    for (const std::uint64_t seed : {1, 2}) {
      auto writer = owner->allocate(size);
      SYM_CHILD_CHECK(writer);
      fill_pattern(writer->bytes(), seed);
      auto d = owner->seal(std::move(*writer));
      SYM_CHILD_CHECK(d);
      both += d->to_json() + "\n";
    }
    post(mail[0], both);
    for (;;) ::pause();
  });
  const auto text = wait_post(mail[0], 1, std::chrono::seconds(60));
  ASSERT_TRUE(text);
  const auto newline = text->find('\n');
  const auto first = HandoffDescriptor::from_json(text->substr(0, newline));
  const auto second = HandoffDescriptor::from_json(text->substr(newline + 1, text->size() - newline - 2));
  ASSERT_TRUE(first && second);

  auto receiver = make_receiver();
  auto mapped = receiver.open(*first);
  ASSERT_TRUE(mapped) << mapped.error().message;
  const ChildStatus status = owner_process.kill9();
  EXPECT_EQ(status.term_signal, SIGKILL);

  // The mapping does not depend on the owner: all of it still reads, and still verifies.
  EXPECT_FALSE(check_pattern(mapped->bytes(), 1));
  EXPECT_EQ(cp::handoff_checksum(mapped->bytes()), *first->xxh3);
  // New opens fail cleanly: the socket file is left, but nobody listens.
  for (const HandoffDescriptor* d : {&*second, &*first}) {
    auto gone = receiver.open(*d);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, Errc::unavailable);
    EXPECT_THAT(gone.error().message, HasSubstr("owner gone"));
  }
  mapped->release();  // nobody to tell: no SIGPIPE
  EXPECT_EQ(receiver.counters().released, 1u);
  // The next owner in that directory removes the dead one's socket.
  EXPECT_TRUE(std::filesystem::exists(first->owner));
  auto successor = make_owner("next");
  EXPECT_FALSE(std::filesystem::exists(first->owner));
}

// ---- a receiver dies holding payloads ------------------------------------------------------------

TEST_F(HandoffProcessTest, ReceiverKilledGivesBackWhatItHeld) {
  auto owner = make_owner();
  std::vector<HandoffDescriptor> ds;
  std::string all;
  for (std::uint64_t i = 0; i < 3; ++i) {
    ds.push_back(publish(owner, 1 << 16, i));
    all += ds.back().to_json() + "\n";
  }
  SharedArray<Mailbox> mail(2);
  post(mail[0], all);
  const std::string dir = dir_;
  ChildProcess child([&]() -> int {
    const auto text = wait_post(mail[0], 1, std::chrono::seconds(10));
    SYM_CHILD_CHECK(text);
    auto receiver = cp::HandoffReceiver::create(kBus, {.runtime_dir = dir});
    SYM_CHILD_CHECK(receiver);
    std::vector<cp::MappedPayload> held;
    std::size_t start = 0;
    while (start < text->size()) {
      const auto end = text->find('\n', start);
      auto d = HandoffDescriptor::from_json(text->substr(start, end - start));
      SYM_CHILD_CHECK(d);
      auto mapped = receiver->open(*d);
      SYM_CHILD_CHECK(mapped);
      held.push_back(std::move(*mapped));
      start = end + 1;
    }
    post(mail[1], "holding");
    for (;;) ::pause();
  });
  ASSERT_TRUE(wait_post(mail[1], 1, std::chrono::seconds(30)));
  EXPECT_EQ(owner.counters().fetched, 3u);
  for (const auto& d : ds) ASSERT_TRUE(owner.retire(d.id));
  EXPECT_EQ(owner.counters().reclaimed, 0u) << "held by the receiver";
  child.kill9();
  ASSERT_TRUE(eventually([&] { return owner.counters().reclaimed == 3; }, std::chrono::seconds(10)));
  EXPECT_EQ(owner.counters().released_by_disconnect, 3u);
  EXPECT_EQ(owner.counters().live, 0u);
  EXPECT_EQ(handoff_memfds_open(), 0);
}

// ---- garbage from a foreign process --------------------------------------------------------------

TEST_F(HandoffProcessTest, ForeignProcessSendingGarbageDoesNotHurtTheOwner) {
  auto owner = make_owner();
  const HandoffDescriptor d = publish(owner, 1 << 16, 3);
  const std::string endpoint = owner.endpoint();
  SharedArray<std::uint64_t> sent(1);
  ChildProcess foreign([&]() -> int {
    std::mt19937_64 random(7);
    for (int i = 0; i < 200; ++i) {
      const int fd = connect_seqpacket(endpoint);
      SYM_CHILD_CHECK(fd >= 0);
      for (int m = 0; m < 3; ++m) {
        std::vector<unsigned char> bytes(random() % 70000);
        for (auto& b : bytes) b = static_cast<unsigned char>(random());
        if (bytes.size() == sizeof(wire::Request) && !bytes.empty()) bytes[0] ^= 0xFF;
        if (send_raw(fd, bytes.data(), bytes.size()) != 0) break;
      }
      ::close(fd);
      sent.at(0).fetch_add(1);
    }
    // A stream socket cannot even connect to a SOCK_SEQPACKET listener.
    const int stream = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, endpoint.c_str(), sizeof address.sun_path - 1);
    SYM_CHILD_CHECK(::connect(stream, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0);
    return 0;
  });
  // Meanwhile a real receiver keeps being served.
  auto receiver = make_receiver();
  int served = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!foreign.try_reap()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "the foreign process is stuck after " << sent.at(0).load() << " connections";
    auto mapped = receiver.open(d);
    ASSERT_TRUE(mapped) << mapped.error().message;
    ASSERT_FALSE(check_pattern(mapped->bytes(), 3));
    ++served;
  }
  ASSERT_TRUE(foreign.status().ok()) << foreign.status();
  EXPECT_GT(served, 0);
  // Every garbage connection was refused (a zero-length message reads as a hang-up instead).
  EXPECT_TRUE(eventually([&] { return owner.counters().connections == 1; }, std::chrono::seconds(5)));
  EXPECT_GE(owner.counters().refused, 190u);
  EXPECT_LE(owner.counters().refused, 200u);
  auto mapped = receiver.open(d);
  EXPECT_TRUE(mapped);
}

// ---- several receiver processes -----------------------------------------------------------------

TEST_F(HandoffProcessTest, ManyReceiverProcessesShareOnePayload) {
  auto owner = make_owner();
  const HandoffDescriptor d = publish(owner, 1 << 20, 12);
  const std::string json = d.to_json();
  const std::string dir = dir_;
  const int rounds = static_cast<int>(scaled(200));
  std::vector<ChildProcess> children;
  for (int c = 0; c < 4; ++c) {
    children.emplace_back([&]() -> int {
      auto receiver = cp::HandoffReceiver::create(kBus, {.runtime_dir = dir});
      SYM_CHILD_CHECK(receiver);
      const auto descriptor = HandoffDescriptor::from_json(json);
      SYM_CHILD_CHECK(descriptor);
      for (int i = 0; i < rounds; ++i) {
        auto mapped = receiver->open(*descriptor, {.verify = i % 10 == 0 ? cp::Verify::required : cp::Verify::skip,
                                                   .timeout = std::chrono::seconds(5)});
        SYM_CHILD_CHECK_MSG(mapped, mapped.error().message);
        SYM_CHILD_CHECK(!check_pattern(mapped->bytes().first(4096), 12));
      }
      return 0;
    });
  }
  for (auto& child : children) {
    const ChildStatus status = child.wait(kChildTimeout);
    EXPECT_TRUE(status.ok()) << status;
  }
  const auto total = static_cast<std::uint64_t>(4 * rounds);
  ASSERT_TRUE(eventually([&] { return owner.counters().released == total; }, std::chrono::seconds(10)));
  EXPECT_EQ(owner.counters().fetched, total);
  EXPECT_EQ(owner.counters().released_by_disconnect, 0u) << "every release was explicit";
  ASSERT_TRUE(owner.retire(d.id));
  EXPECT_EQ(owner.counters().reclaimed, 1u);
}

}  // namespace
}  // namespace symphony::test
