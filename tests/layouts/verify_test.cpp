// The verifier against every corrupt header it must refuse. Each test builds a valid segment image
// in an exact-size, cache-line-aligned heap buffer (so AddressSanitizer catches a read past the
// "mapping"), breaks one field, and checks the error code and that the message names the field.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <set>
#include <string>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "symphony/engine/mpmc_ring.hpp"
#include "symphony/engine/spsc_ring.hpp"
#include "symphony/layouts/mpmc_ring.hpp"
#include "symphony/layouts/spsc_ring.hpp"
#include "symphony/layouts/verify.hpp"
#include "test_scale.hpp"

namespace {

using namespace symphony::layouts;
using ::testing::HasSubstr;

constexpr std::size_t kPage = 4096;

// A fake mapping: exactly `size` bytes, 64-byte aligned, zeroed.
class Image {
 public:
  explicit Image(std::size_t size)
      : size_(size),
        bytes_(
            static_cast<std::byte*>(::operator new (size == 0 ? 1 : size, std::align_val_t{64}))) {
    std::memset(bytes_, 0, size == 0 ? 1 : size);
  }
  Image(Image&& other) noexcept
      : size_(std::exchange(other.size_, 0)), bytes_(std::exchange(other.bytes_, nullptr)) {}
  Image& operator=(Image&&) = delete;
  Image(const Image&) = delete;
  ~Image() {
    if (bytes_ != nullptr) ::operator delete (bytes_, std::align_val_t{64});
  }

  const std::byte* data() const noexcept { return bytes_; }
  std::size_t size() const noexcept { return size_; }
  SegmentHeader& segment() noexcept { return *reinterpret_cast<SegmentHeader*>(bytes_); }
  SpscRingHeader& spsc() noexcept {
    return *reinterpret_cast<SpscRingHeader*>(bytes_ + kSegmentHeaderSize);
  }
  MpmcRingHeader& mpmc() noexcept {
    return *reinterpret_cast<MpmcRingHeader*>(bytes_ + kSegmentHeaderSize);
  }

 private:
  std::size_t size_;
  std::byte* bytes_;
};

void fill_segment_header(Image& image, SegmentKind kind, std::uint64_t body_size) {
  SegmentHeader& h = image.segment();
  h.magic = kSegmentMagic;
  h.layout_version = kLayoutVersion;
  h.kind = static_cast<std::uint32_t>(kind);
  h.total_size = image.size();
  h.creator_pid = 4242;
  h.state = kSegmentReady;
  h.creator_start_time = 123456;
  h.generation = 7;
  h.body_offset = kSegmentHeaderSize;
  h.body_size = body_size;
}

constexpr std::uint64_t kSpscCapacity = 1024;

Image make_spsc(std::uint64_t capacity = kSpscCapacity) {
  const std::uint64_t body = spsc_body_size(capacity);
  Image image(align_up(kSegmentHeaderSize + body, kPage));
  fill_segment_header(image, SegmentKind::spsc_ring, body);
  SpscRingHeader& ring = image.spsc();
  ring.capacity = capacity;
  ring.max_payload = spsc_max_payload_for(capacity);
  ring.data_offset = kSegmentHeaderSize + kSpscRingHeaderSize;
  return image;
}

constexpr std::uint64_t kMpmcCapacity = 16;
constexpr std::uint64_t kMpmcMaxPayload = 48;  // stride 64
constexpr std::uint64_t kMpmcParticipants = 4;

Image make_mpmc() {
  const std::uint64_t body = mpmc_body_size(kMpmcCapacity, kMpmcMaxPayload, kMpmcParticipants);
  Image image(align_up(kSegmentHeaderSize + body, kPage));
  fill_segment_header(image, SegmentKind::mpmc_ring, body);
  MpmcRingHeader& ring = image.mpmc();
  ring.capacity = kMpmcCapacity;
  ring.slot_stride = mpmc_slot_stride(kMpmcMaxPayload);
  ring.max_payload = kMpmcMaxPayload;
  ring.participants_offset = kSegmentHeaderSize + kMpmcRingHeaderSize;
  ring.max_participants = kMpmcParticipants;
  ring.slots_offset = ring.participants_offset + kMpmcParticipants * sizeof(MpmcParticipant);
  return image;
}

template <typename T>
void expect_error(const tl::expected<T, LayoutError>& result, LayoutErrc code,
                  std::initializer_list<const char*> words) {
  ASSERT_FALSE(result.has_value()) << "a corrupt segment was accepted";
  EXPECT_EQ(result.error().code, code)
      << "got '" << to_string(result.error().code) << "': " << result.error().message;
  for (const char* word : words) {
    EXPECT_THAT(result.error().message, HasSubstr(word)) << "the message should name the field";
  }
}

// ---- valid images
// ---------------------------------------------------------------------------------

TEST(Verify, ValidSpscIsAcceptedAndReturnsTheGeometry) {
  Image image = make_spsc();
  auto header = verify_segment_header(image.data(), image.size(), SegmentKind::spsc_ring);
  ASSERT_TRUE(header.has_value()) << header.error().message;
  EXPECT_EQ(header->magic, kSegmentMagic);
  EXPECT_EQ(header->generation, 7u);
  EXPECT_EQ(header->creator_pid, 4242u);
  EXPECT_EQ(header->body_size, spsc_body_size(kSpscCapacity));
  auto geometry = verify_spsc_ring(image.data(), image.size());
  ASSERT_TRUE(geometry.has_value()) << geometry.error().message;
  EXPECT_EQ(geometry->capacity, kSpscCapacity);
  EXPECT_EQ(geometry->max_payload, spsc_max_payload_for(kSpscCapacity));
  EXPECT_EQ(geometry->data_offset, kSegmentHeaderSize + kSpscRingHeaderSize);
}

TEST(Verify, ValidSpscIndexPairsAreAccepted) {
  Image image = make_spsc();
  const std::pair<std::uint64_t, std::uint64_t> pairs[] = {
      {0, 0},
      {kSpscCapacity, 0},
      {8, 8},
      {1ULL << 40, 1ULL << 40},
      {(1ULL << 40) + kSpscCapacity, 1ULL << 40},
      {4096 + 16, 4096}};
  for (const auto& [write, read] : pairs) {
    image.spsc().write_index = write;
    image.spsc().read_index = read;
    auto geometry = verify_spsc_ring(image.data(), image.size());
    EXPECT_TRUE(geometry.has_value())
        << "write " << write << " read " << read << ": " << geometry.error().message;
  }
}

TEST(Verify, SmallestSpscRingIsAccepted) {
  Image image = make_spsc(kSpscMinCapacity);
  EXPECT_TRUE(verify_spsc_ring(image.data(), image.size()).has_value());
}

TEST(Verify, ValidMpmcIsAcceptedAndReturnsTheGeometry) {
  Image image = make_mpmc();
  auto geometry = verify_mpmc_ring(image.data(), image.size());
  ASSERT_TRUE(geometry.has_value()) << geometry.error().message;
  EXPECT_EQ(geometry->capacity, kMpmcCapacity);
  EXPECT_EQ(geometry->slot_stride, 64u);
  EXPECT_EQ(geometry->max_payload, kMpmcMaxPayload);
  EXPECT_EQ(geometry->participants_offset, kSegmentHeaderSize + kMpmcRingHeaderSize);
  EXPECT_EQ(geometry->slots_offset,
            kSegmentHeaderSize + kMpmcRingHeaderSize + kMpmcParticipants * 64);
  EXPECT_EQ(geometry->max_participants, kMpmcParticipants);
  image.mpmc().tail = 1000 + kMpmcCapacity;  // exactly full
  image.mpmc().head = 1000;
  EXPECT_TRUE(verify_mpmc_ring(image.data(), image.size()).has_value());
}

TEST(Verify, ErrorCodesHaveDistinctNames) {
  std::set<std::string> names;
  for (LayoutErrc code :
       {LayoutErrc::too_small, LayoutErrc::bad_magic, LayoutErrc::version_mismatch,
        LayoutErrc::wrong_kind, LayoutErrc::not_ready, LayoutErrc::size_mismatch,
        LayoutErrc::bad_geometry, LayoutErrc::index_out_of_range}) {
    ASSERT_NE(to_string(code), nullptr);
    names.insert(to_string(code));
  }
  EXPECT_EQ(names.size(), 8u);
}

// Segments the engine builds pass the same checks, with the geometry this test builds by hand.
class VerifyEngineSegments : public symphony::test::ShmTest {};

TEST_F(VerifyEngineSegments, EngineSpscSegmentMatchesTheHandBuiltOne) {
  symphony::engine::SpscRingOptions options;
  options.capacity = kSpscCapacity;
  auto ring = symphony::engine::SpscRing::create(name(), options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  auto geometry = verify_spsc_ring(ring->segment().base(), ring->segment().size());
  ASSERT_TRUE(geometry.has_value()) << geometry.error().message;
  Image image = make_spsc();
  auto expected = verify_spsc_ring(image.data(), image.size());
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(geometry->capacity, expected->capacity);
  EXPECT_EQ(geometry->max_payload, expected->max_payload);
  EXPECT_EQ(geometry->data_offset, expected->data_offset);
  EXPECT_EQ(ring->segment().size(), image.size());
}

TEST_F(VerifyEngineSegments, EngineMpmcSegmentMatchesTheHandBuiltOne) {
  symphony::engine::MpmcRingOptions options;
  options.capacity = kMpmcCapacity;
  options.max_payload = kMpmcMaxPayload;
  options.max_participants = kMpmcParticipants;
  auto ring = symphony::engine::MpmcRing::create(name(), options);
  ASSERT_TRUE(ring.has_value()) << ring.error().message;
  auto geometry = verify_mpmc_ring(ring->segment().base(), ring->segment().size());
  ASSERT_TRUE(geometry.has_value()) << geometry.error().message;
  Image image = make_mpmc();
  auto expected = verify_mpmc_ring(image.data(), image.size());
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(geometry->capacity, expected->capacity);
  EXPECT_EQ(geometry->slot_stride, expected->slot_stride);
  EXPECT_EQ(geometry->max_payload, expected->max_payload);
  EXPECT_EQ(geometry->slots_offset, expected->slots_offset);
  EXPECT_EQ(geometry->participants_offset, expected->participants_offset);
  EXPECT_EQ(geometry->max_participants, expected->max_participants);
  EXPECT_EQ(ring->segment().size(), image.size());
}

// ---- segment header
// --------------------------------------------------------------------------------

TEST(Verify, MappingTooSmallForTheSegmentHeader) {
  for (std::size_t size : {std::size_t{0}, std::size_t{8}, kSegmentHeaderSize - 1}) {
    Image image(size);
    expect_error(verify_segment_header(image.data(), size, SegmentKind::spsc_ring),
                 LayoutErrc::too_small, {"mapping", std::to_string(size).c_str()});
    expect_error(verify_spsc_ring(image.data(), size), LayoutErrc::too_small, {});
    expect_error(verify_mpmc_ring(image.data(), size), LayoutErrc::too_small, {});
  }
}

TEST(Verify, BadMagic) {
  Image image = make_spsc();
  image.segment().magic = 0x0123456789ABCDEFULL;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::bad_magic,
               {"magic", "0123456789abcdef"});
  image.segment().magic = 0;  // a zeroed file
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::bad_magic, {"magic"});
}

TEST(Verify, LayoutVersionMismatch) {
  Image image = make_mpmc();
  image.segment().layout_version = kLayoutVersion + 1;
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::version_mismatch,
               {"layout_version", std::to_string(kLayoutVersion + 1).c_str()});
}

TEST(Verify, NotReady) {
  Image image = make_spsc();
  image.segment().state = kSegmentInitializing;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::not_ready,
               {"state", "4242"});
  image.segment().state = 1;  // anything but the ready marker
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::not_ready, {"state"});
}

TEST(Verify, WrongKind) {
  Image spsc = make_spsc();
  expect_error(verify_mpmc_ring(spsc.data(), spsc.size()), LayoutErrc::wrong_kind, {"kind"});
  Image mpmc = make_mpmc();
  expect_error(verify_spsc_ring(mpmc.data(), mpmc.size()), LayoutErrc::wrong_kind, {"kind"});
  spsc.segment().kind = 99;
  expect_error(verify_segment_header(spsc.data(), spsc.size(), SegmentKind::spsc_ring),
               LayoutErrc::wrong_kind, {"kind", "99"});
}

TEST(Verify, TotalSizeDiffersFromTheMapping) {
  Image image = make_spsc();
  image.segment().total_size = image.size() * 2;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::size_mismatch,
               {"total_size", std::to_string(image.size() * 2).c_str()});
  // A mapping shorter than the segment claims (the file was truncated, or mapped in part).
  Image shorter = make_spsc();
  expect_error(verify_spsc_ring(shorter.data(), shorter.size() - kPage / 2),
               LayoutErrc::size_mismatch, {"total_size"});
}

TEST(Verify, BodyOutOfRange) {
  struct Case {
    std::uint64_t offset;
    std::uint64_t size;
  };
  Image probe = make_spsc();
  const std::uint64_t total = probe.size();
  const Case cases[] = {
      {0, 512},                       // overlaps the segment header
      {64, 512},                      // still inside the segment header
      {kSegmentHeaderSize + 8, 512},  // not on a cache line
      {total, 64},                    // starts at the end
      {total + 64, 0},                // starts past the end
      {kSegmentHeaderSize, total},    // runs past the end
      {1ULL << 63, 64},               // absurd offset: no overflow allowed
      {kSegmentHeaderSize, ~0ULL},    // absurd size: no overflow allowed
  };
  for (const Case& c : cases) {
    Image image = make_spsc();
    image.segment().body_offset = c.offset;
    image.segment().body_size = c.size;
    SCOPED_TRACE("body_offset " + std::to_string(c.offset) + " body_size " +
                 std::to_string(c.size));
    expect_error(verify_segment_header(image.data(), image.size(), SegmentKind::spsc_ring),
                 LayoutErrc::size_mismatch, {"body"});
  }
}

// ---- SPSC ring ----------------------------------------------------------------------------------

TEST(VerifySpsc, BodyTooSmallForTheRingHeader) {
  // A mapping that holds exactly the segment header and 64 bytes of body.
  Image image(kSegmentHeaderSize + 64);
  fill_segment_header(image, SegmentKind::spsc_ring, 64);
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::too_small, {"body", "64"});
}

TEST(VerifySpsc, CapacityNotAPowerOfTwo) {
  Image image = make_spsc();
  image.spsc().capacity = 1000;
  image.spsc().max_payload = 100;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"capacity", "1000"});
  image.spsc().capacity = 0;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"capacity"});
}

TEST(VerifySpsc, CapacityTooSmall) {
  Image image = make_spsc();
  image.spsc().capacity = kSpscMinCapacity / 2;
  image.spsc().max_payload = 8;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"capacity", std::to_string(kSpscMinCapacity / 2).c_str()});
}

TEST(VerifySpsc, CapacityTooLarge) {
  Image image = make_spsc();
  image.spsc().capacity = kSpscMaxCapacity * 2;
  image.spsc().max_payload = 8;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"capacity"});
}

TEST(VerifySpsc, MaxPayloadTooBig) {
  Image image = make_spsc();
  image.spsc().max_payload = spsc_max_payload_for(kSpscCapacity) + 1;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"max_payload", std::to_string(spsc_max_payload_for(kSpscCapacity) + 1).c_str()});
  image.spsc().max_payload = ~0ULL;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"max_payload"});
}

TEST(VerifySpsc, DataOffsetWrong) {
  const std::uint64_t offsets[] = {0, kSegmentHeaderSize,
                                   kSegmentHeaderSize + kSpscRingHeaderSize + 64,
                                   kSegmentHeaderSize + kSpscRingHeaderSize - 64, ~0ULL - 8};
  for (std::uint64_t offset : offsets) {
    Image image = make_spsc();
    image.spsc().data_offset = offset;
    SCOPED_TRACE("data_offset " + std::to_string(offset));
    expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::bad_geometry, {"data"});
  }
}

TEST(VerifySpsc, DataAreaOverrunsTheMapping) {
  // The header claims a ring larger than the segment holds.
  Image image = make_spsc();
  image.spsc().capacity = kPage * 4;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"capacity", std::to_string(kPage * 4).c_str()});
}

TEST(VerifySpsc, ReadIndexMoreThanACapacityAheadOfWriteIndex) {
  Image image = make_spsc();
  image.spsc().write_index = 8;
  image.spsc().read_index = 8 + kSpscCapacity + 8;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::index_out_of_range,
               {"write_index", "read_index", std::to_string(8 + kSpscCapacity + 8).c_str()});
  image.spsc().write_index = 0;
  image.spsc().read_index = ~0ULL - 7;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::index_out_of_range,
               {"read_index"});
}

TEST(VerifySpsc, ReadIndexAheadOfWriteIndexByAtMostARingIsPlausible) {
  // A producer that dies (or is) inside publish() has committed frames the consumer may already
  // have released, before storing write_index (spsc_indices_plausible).
  Image image = make_spsc();
  image.spsc().write_index = 4096;
  image.spsc().read_index = 4096 + 16;
  EXPECT_TRUE(verify_spsc_ring(image.data(), image.size()).has_value());
  image.spsc().read_index = 4096 + kSpscCapacity;
  EXPECT_TRUE(verify_spsc_ring(image.data(), image.size()).has_value());
}

TEST(VerifySpsc, WriteIndexMoreThanACapacityAhead) {
  Image image = make_spsc();
  image.spsc().write_index = 4096 + kSpscCapacity + 8;
  image.spsc().read_index = 4096;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::index_out_of_range,
               {"write_index", "read_index"});
  image.spsc().write_index = ~0ULL - 7;
  image.spsc().read_index = 0;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::index_out_of_range,
               {"write_index"});
}

TEST(VerifySpsc, MisalignedIndices) {
  Image image = make_spsc();
  image.spsc().write_index = 12;
  image.spsc().read_index = 8;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::index_out_of_range,
               {"write_index", "12"});
  image.spsc().write_index = 16;
  image.spsc().read_index = 4;
  expect_error(verify_spsc_ring(image.data(), image.size()), LayoutErrc::index_out_of_range,
               {"read_index", "4"});
}

// ---- MPMC ring
// -------------------------------------------------------------------------------------

TEST(VerifyMpmc, BodyTooSmallForTheRingHeader) {
  Image image(kSegmentHeaderSize + 128);
  fill_segment_header(image, SegmentKind::mpmc_ring, 128);
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::too_small,
               {"body", "128"});
}

TEST(VerifyMpmc, CapacityNotAPowerOfTwo) {
  const std::uint64_t capacities[] = {0, 3, 1000, (1ULL << 32) + 1, 1ULL << 33};
  for (std::uint64_t capacity : capacities) {
    Image image = make_mpmc();
    image.mpmc().capacity = capacity;
    SCOPED_TRACE("capacity " + std::to_string(capacity));
    expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
                 {"capacity", std::to_string(capacity).c_str()});
  }
}

TEST(VerifyMpmc, SlotStrideMismatch) {
  Image image = make_mpmc();
  image.mpmc().slot_stride = 128;  // max_payload 48 needs 64
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"slot_stride", "128", "max_payload"});
  image.mpmc().slot_stride = 32;  // smaller than a slot header plus payload
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"slot_stride"});
}

TEST(VerifyMpmc, MaxPayloadImpossible) {
  Image image = make_mpmc();
  image.mpmc().max_payload = 0;
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"max_payload"});
  image.mpmc().max_payload = ~0ULL - 100;
  image.mpmc().slot_stride = mpmc_slot_stride(~0ULL - 100);  // wraps: must not fool the check
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"max_payload"});
}

TEST(VerifyMpmc, NoParticipants) {
  Image image = make_mpmc();
  image.mpmc().max_participants = 0;
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"max_participants", "0"});
}

TEST(VerifyMpmc, TooManyParticipants) {
  Image image = make_mpmc();
  image.mpmc().max_participants = 4097;
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"max_participants", "4097"});
}

TEST(VerifyMpmc, ParticipantsOffsetWrong) {
  Image image = make_mpmc();
  image.mpmc().participants_offset += 64;
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"participants"});
}

TEST(VerifyMpmc, SlotsOffsetWrong) {
  for (std::int64_t delta : {-64, 64, 4096}) {
    Image image = make_mpmc();
    image.mpmc().slots_offset += static_cast<std::uint64_t>(delta);
    SCOPED_TRACE("slots_offset moved by " + std::to_string(delta));
    expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::bad_geometry, {"slots"});
  }
}

TEST(VerifyMpmc, SlotsOverrunTheMapping) {
  Image image = make_mpmc();
  image.mpmc().capacity = kMpmcCapacity * 64;  // 1024 slots of 64 B in a 4 KiB segment
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::bad_geometry,
               {"slots", std::to_string(image.size()).c_str()});
}

TEST(VerifyMpmc, HeadAheadOfTail) {
  Image image = make_mpmc();
  image.mpmc().tail = 3;
  image.mpmc().head = 5;
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::index_out_of_range,
               {"head", "tail", "5", "3"});
}

TEST(VerifyMpmc, TailMoreThanACapacityAhead) {
  Image image = make_mpmc();
  image.mpmc().tail = 100 + kMpmcCapacity + 1;
  image.mpmc().head = 100;
  expect_error(verify_mpmc_ring(image.data(), image.size()), LayoutErrc::index_out_of_range,
               {"head", "tail", std::to_string(100 + kMpmcCapacity + 1).c_str()});
}

}  // namespace
