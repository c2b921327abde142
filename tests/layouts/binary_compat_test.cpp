// Binary compatibility: every byte that lives in shared memory, typed out by hand.
//
// The layout headers derive offsets with offsetof and freeze them with static_asserts; this test
// is the independent copy (as iceoryx's ChunkHeader test is): a process built from another commit
// reads the same bytes, so any change here must come with a kLayoutVersion bump. If this test
// fails, you changed the ABI: bump kLayoutVersion and update the expectations below together.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <gtest/gtest.h>

#include "symphony/layouts/checkpoint.hpp"
#include "symphony/layouts/common.hpp"
#include "symphony/layouts/doorbell.hpp"
#include "symphony/layouts/mpmc_ring.hpp"
#include "symphony/layouts/process_identity.hpp"
#include "symphony/layouts/segment_header.hpp"
#include "symphony/layouts/spsc_ring.hpp"

namespace {

using namespace symphony::layouts;

// The version these expectations describe.
constexpr std::uint32_t kExpectedLayoutVersion = 1;

template <typename T>
void expect_plain_shared_type() {
  EXPECT_TRUE(std::is_standard_layout_v<T>);
  EXPECT_TRUE(std::is_trivially_copyable_v<T>);
}

TEST(BinaryCompat, LayoutVersionIsTheOneThisTestDescribes) {
  // Changing a struct below without bumping the version is the accident this test exists for;
  // bumping the version without reviewing the expectations is the other one.
  EXPECT_EQ(kLayoutVersion, kExpectedLayoutVersion);
}

TEST(BinaryCompat, Constants) {
  EXPECT_EQ(kCacheLine, 64u);
  EXPECT_EQ(kSegmentMagic, 0x594E4F48504D5953ULL);
  // A hex dump of a segment starts with the name.
  char magic_bytes[8];
  std::memcpy(magic_bytes, &kSegmentMagic, sizeof magic_bytes);
  EXPECT_EQ(std::string(magic_bytes, 8), "SYMPHONY");
  EXPECT_EQ(static_cast<std::uint32_t>(SegmentKind::spsc_ring), 1u);
  EXPECT_EQ(static_cast<std::uint32_t>(SegmentKind::mpmc_ring), 2u);
  EXPECT_EQ(sizeof(SegmentKind), 4u);
  EXPECT_EQ(kSegmentInitializing, 0u);
  EXPECT_EQ(kSegmentReady, 0x52454459u);
  EXPECT_EQ(kSegmentHeaderSize, 128u);

  EXPECT_EQ(kFrameData, 0x41544144u);
  EXPECT_EQ(kFramePadding, 0x44444150u);
  char data_bytes[4];
  std::memcpy(data_bytes, &kFrameData, 4);
  EXPECT_EQ(std::string(data_bytes, 4), "DATA");
  char padding_bytes[4];
  std::memcpy(padding_bytes, &kFramePadding, 4);
  EXPECT_EQ(std::string(padding_bytes, 4), "PADD");
  EXPECT_EQ(kFrameAlignment, 8u);
  EXPECT_EQ(kSpscMinCapacity, 256u);
  EXPECT_EQ(kSpscMaxCapacity, 1ULL << 34);
  EXPECT_EQ(kSpscRingHeaderSize, 384u);

  EXPECT_EQ(kMpmcTombstone, 0x8000000000000000ULL);
  EXPECT_EQ(kMpmcNoIntent, 0xFFFFFFFFFFFFFFFFULL);
  EXPECT_EQ(kMpmcRecoveringPid, 0xFFFFFFFFu);
  EXPECT_EQ(kMpmcSlotHeaderSize, 16u);
  EXPECT_EQ(kMpmcRingHeaderSize, 384u);
  EXPECT_EQ(static_cast<std::uint32_t>(MpmcRole::none), 0u);
  EXPECT_EQ(static_cast<std::uint32_t>(MpmcRole::producer), 1u);
  EXPECT_EQ(static_cast<std::uint32_t>(MpmcRole::consumer), 2u);
  EXPECT_EQ(sizeof(MpmcRole), 4u);
}

TEST(BinaryCompat, AtomicsAreLockFree) {
  EXPECT_TRUE(std::atomic_ref<std::uint64_t>::is_always_lock_free);
  EXPECT_TRUE(std::atomic_ref<std::uint32_t>::is_always_lock_free);
}

TEST(BinaryCompat, SegmentHeader) {
  expect_plain_shared_type<SegmentHeader>();
  EXPECT_EQ(sizeof(SegmentHeader), 128u);
  EXPECT_EQ(alignof(SegmentHeader), 8u);
  EXPECT_EQ(offsetof(SegmentHeader, magic), 0u);
  EXPECT_EQ(offsetof(SegmentHeader, layout_version), 8u);
  EXPECT_EQ(offsetof(SegmentHeader, kind), 12u);
  EXPECT_EQ(offsetof(SegmentHeader, total_size), 16u);
  EXPECT_EQ(offsetof(SegmentHeader, creator_pid), 24u);
  EXPECT_EQ(offsetof(SegmentHeader, state), 28u);
  EXPECT_EQ(offsetof(SegmentHeader, creator_start_time), 32u);
  EXPECT_EQ(offsetof(SegmentHeader, generation), 40u);
  EXPECT_EQ(offsetof(SegmentHeader, body_offset), 48u);
  EXPECT_EQ(offsetof(SegmentHeader, body_size), 56u);
  EXPECT_EQ(offsetof(SegmentHeader, reserved), 64u);
  EXPECT_EQ(sizeof(SegmentHeader::reserved), 64u);
  EXPECT_EQ(sizeof(SegmentHeader::magic), 8u);
  EXPECT_EQ(sizeof(SegmentHeader::layout_version), 4u);
  EXPECT_EQ(sizeof(SegmentHeader::kind), 4u);
  EXPECT_EQ(sizeof(SegmentHeader::creator_pid), 4u);
  EXPECT_EQ(sizeof(SegmentHeader::state), 4u);
}

// The exact byte image of a header, little-endian: catches a reordered or resized field even if
// the offsets above were edited along with it.
TEST(BinaryCompat, SegmentHeaderByteImage) {
  SegmentHeader header{};
  header.magic = kSegmentMagic;
  header.layout_version = 0x01020304;
  header.kind = static_cast<std::uint32_t>(SegmentKind::mpmc_ring);
  header.total_size = 0x1112131415161718ULL;
  header.creator_pid = 0x21222324;
  header.state = kSegmentReady;
  header.creator_start_time = 0x3132333435363738ULL;
  header.generation = 0x4142434445464748ULL;
  header.body_offset = 0x80;
  header.body_size = 0x5152535455565758ULL;
  std::array<unsigned char, 128> bytes{};
  std::memcpy(bytes.data(), &header, sizeof header);
  const std::array<unsigned char, 64> expected = {
      'S',  'Y',  'M',  'P',  'H',  'O',  'N',  'Y',   // magic
      0x04, 0x03, 0x02, 0x01,                          // layout_version
      0x02, 0x00, 0x00, 0x00,                          // kind
      0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,  // total_size
      0x24, 0x23, 0x22, 0x21,                          // creator_pid
      'Y',  'D',  'E',  'R',                           // state (kSegmentReady)
      0x38, 0x37, 0x36, 0x35, 0x34, 0x33, 0x32, 0x31,  // creator_start_time
      0x48, 0x47, 0x46, 0x45, 0x44, 0x43, 0x42, 0x41,  // generation
      0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // body_offset
      0x58, 0x57, 0x56, 0x55, 0x54, 0x53, 0x52, 0x51,  // body_size
  };
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(bytes[i], expected[i]) << "byte " << i;
  }
  for (std::size_t i = expected.size(); i < bytes.size(); ++i) {
    EXPECT_EQ(bytes[i], 0) << "reserved byte " << i;
  }
}

TEST(BinaryCompat, ProcessIdentityRecord) {
  expect_plain_shared_type<ProcessIdentityRecord>();
  EXPECT_EQ(sizeof(ProcessIdentityRecord), 16u);
  EXPECT_EQ(alignof(ProcessIdentityRecord), 8u);
  EXPECT_EQ(offsetof(ProcessIdentityRecord, pid), 0u);
  EXPECT_EQ(offsetof(ProcessIdentityRecord, reserved), 4u);
  EXPECT_EQ(offsetof(ProcessIdentityRecord, start_time), 8u);
  EXPECT_EQ(sizeof(ProcessIdentityRecord::pid), 4u);
  EXPECT_EQ(sizeof(ProcessIdentityRecord::start_time), 8u);
}

TEST(BinaryCompat, Doorbell) {
  expect_plain_shared_type<Doorbell>();
  EXPECT_EQ(sizeof(Doorbell), 64u);
  EXPECT_EQ(alignof(Doorbell), 64u);
  EXPECT_EQ(offsetof(Doorbell, waiters), 0u);
  EXPECT_EQ(offsetof(Doorbell, sequence), 4u);
  EXPECT_EQ(offsetof(Doorbell, padding), 8u);
  EXPECT_EQ(sizeof(Doorbell::sequence), 4u);  // a futex word is 32 bits
}

TEST(BinaryCompat, SpscFrameHeader) {
  expect_plain_shared_type<SpscFrameHeader>();
  EXPECT_EQ(sizeof(SpscFrameHeader), 8u);
  EXPECT_EQ(offsetof(SpscFrameHeader, length), 0u);
  EXPECT_EQ(offsetof(SpscFrameHeader, commit), 4u);
  EXPECT_EQ(sizeof(SpscFrameHeader::length), 4u);
  EXPECT_EQ(sizeof(SpscFrameHeader::commit), 4u);
}

TEST(BinaryCompat, SpscCommitWord) {
  // kind ^ (position >> 3): the formula both sides of every ring version 1 agree on.
  EXPECT_EQ(spsc_commit_word(kFrameData, 0), kFrameData);
  EXPECT_EQ(spsc_commit_word(kFrameData, 8), kFrameData ^ 1u);
  EXPECT_EQ(spsc_commit_word(kFramePadding, 4096), kFramePadding ^ 512u);
  EXPECT_EQ(spsc_commit_word(kFrameData, 0x7FFFFFFF8ULL), kFrameData ^ 0xFFFFFFFFu);
  EXPECT_EQ(spsc_commit_word(kFrameData, (1ULL << 35) + 64), kFrameData ^ 8u);  // wraps at 2^35
  // Within the largest ring's window, no two positions (nor the two kinds) share a word.
  EXPECT_NE(spsc_commit_word(kFrameData, 0), spsc_commit_word(kFrameData, kSpscMaxCapacity));
  EXPECT_NE(spsc_commit_word(kFrameData, 64), spsc_commit_word(kFramePadding, 64));
}

TEST(BinaryCompat, SpscRingHeader) {
  expect_plain_shared_type<SpscRingHeader>();
  EXPECT_EQ(sizeof(SpscRingHeader), 384u);
  EXPECT_EQ(alignof(SpscRingHeader), 64u);
  EXPECT_EQ(offsetof(SpscRingHeader, capacity), 0u);
  EXPECT_EQ(offsetof(SpscRingHeader, max_payload), 8u);
  EXPECT_EQ(offsetof(SpscRingHeader, data_offset), 16u);
  EXPECT_EQ(offsetof(SpscRingHeader, reserved0), 24u);
  EXPECT_EQ(offsetof(SpscRingHeader, write_index), 64u);
  EXPECT_EQ(offsetof(SpscRingHeader, producer), 72u);
  EXPECT_EQ(offsetof(SpscRingHeader, reserved1), 88u);
  EXPECT_EQ(offsetof(SpscRingHeader, read_index), 128u);
  EXPECT_EQ(offsetof(SpscRingHeader, consumer), 136u);
  EXPECT_EQ(offsetof(SpscRingHeader, reserved2), 152u);
  EXPECT_EQ(offsetof(SpscRingHeader, data_available), 192u);
  EXPECT_EQ(offsetof(SpscRingHeader, space_available), 256u);
  EXPECT_EQ(offsetof(SpscRingHeader, producer_takeovers), 320u);
  EXPECT_EQ(offsetof(SpscRingHeader, consumer_takeovers), 328u);
  EXPECT_EQ(offsetof(SpscRingHeader, reserved5), 336u);
}

TEST(BinaryCompat, SpscGeometryHelpers) {
  EXPECT_EQ(spsc_frame_size(0), 8u);
  EXPECT_EQ(spsc_frame_size(1), 16u);
  EXPECT_EQ(spsc_frame_size(8), 16u);
  EXPECT_EQ(spsc_frame_size(9), 24u);
  EXPECT_EQ(spsc_frame_size(56), 64u);
  EXPECT_EQ(spsc_max_payload_for(256), 120u);
  EXPECT_EQ(spsc_max_payload_for(1 << 20), (1u << 19) - 8u);
  EXPECT_EQ(spsc_frame_size(spsc_max_payload_for(4096)), 2048u);
  EXPECT_EQ(spsc_body_size(1024), 384u + 1024u);
  EXPECT_TRUE(spsc_indices_consistent(0, 0, 256));
  EXPECT_TRUE(spsc_indices_consistent(256, 0, 256));
  EXPECT_FALSE(spsc_indices_consistent(264, 0, 256));
  EXPECT_FALSE(spsc_indices_consistent(0, 8, 256));
  EXPECT_FALSE(spsc_indices_consistent(12, 8, 256));
  EXPECT_FALSE(spsc_indices_consistent(16, 4, 256));
  EXPECT_TRUE(spsc_indices_plausible(0, 256, 256));  // consumer ahead by a ring at most
  EXPECT_FALSE(spsc_indices_plausible(0, 264, 256));
  EXPECT_FALSE(spsc_indices_plausible(264, 0, 256));
  EXPECT_FALSE(spsc_indices_plausible(12, 8, 256));
}

TEST(BinaryCompat, MpmcSlotHeader) {
  expect_plain_shared_type<MpmcSlotHeader>();
  EXPECT_EQ(sizeof(MpmcSlotHeader), 16u);
  EXPECT_EQ(offsetof(MpmcSlotHeader, sequence), 0u);
  EXPECT_EQ(offsetof(MpmcSlotHeader, length), 8u);
  EXPECT_EQ(offsetof(MpmcSlotHeader, reserved), 12u);
  EXPECT_EQ(sizeof(MpmcSlotHeader::sequence), 8u);
  EXPECT_EQ(sizeof(MpmcSlotHeader::length), 4u);
}

TEST(BinaryCompat, MpmcParticipant) {
  expect_plain_shared_type<MpmcParticipant>();
  EXPECT_EQ(sizeof(MpmcParticipant), 64u);
  EXPECT_EQ(alignof(MpmcParticipant), 64u);
  EXPECT_EQ(offsetof(MpmcParticipant, owner), 0u);
  EXPECT_EQ(offsetof(MpmcParticipant, intent), 16u);
  EXPECT_EQ(offsetof(MpmcParticipant, role), 24u);
  EXPECT_EQ(offsetof(MpmcParticipant, reserved0), 28u);
  EXPECT_EQ(offsetof(MpmcParticipant, reserved), 32u);
}

TEST(BinaryCompat, MpmcRingHeader) {
  expect_plain_shared_type<MpmcRingHeader>();
  EXPECT_EQ(sizeof(MpmcRingHeader), 384u);
  EXPECT_EQ(alignof(MpmcRingHeader), 64u);
  EXPECT_EQ(offsetof(MpmcRingHeader, capacity), 0u);
  EXPECT_EQ(offsetof(MpmcRingHeader, slot_stride), 8u);
  EXPECT_EQ(offsetof(MpmcRingHeader, max_payload), 16u);
  EXPECT_EQ(offsetof(MpmcRingHeader, slots_offset), 24u);
  EXPECT_EQ(offsetof(MpmcRingHeader, participants_offset), 32u);
  EXPECT_EQ(offsetof(MpmcRingHeader, max_participants), 40u);
  EXPECT_EQ(offsetof(MpmcRingHeader, reserved0), 48u);
  EXPECT_EQ(offsetof(MpmcRingHeader, tail), 64u);
  EXPECT_EQ(offsetof(MpmcRingHeader, head), 128u);
  EXPECT_EQ(offsetof(MpmcRingHeader, items_available), 192u);
  EXPECT_EQ(offsetof(MpmcRingHeader, space_available), 256u);
  EXPECT_EQ(offsetof(MpmcRingHeader, abandoned_by_producers), 320u);
  EXPECT_EQ(offsetof(MpmcRingHeader, reclaimed_from_consumers), 328u);
  EXPECT_EQ(offsetof(MpmcRingHeader, reserved5), 336u);
}

TEST(BinaryCompat, MpmcGeometryHelpers) {
  EXPECT_EQ(mpmc_slot_stride(1), 64u);
  EXPECT_EQ(mpmc_slot_stride(48), 64u);
  EXPECT_EQ(mpmc_slot_stride(49), 128u);
  EXPECT_EQ(mpmc_slot_stride(240), 256u);
  EXPECT_EQ(mpmc_slot_stride(241), 320u);
  EXPECT_EQ(mpmc_body_size(1024, 240, 64), 384u + 64u * 64u + 1024u * 256u);
  EXPECT_EQ(mpmc_body_size(2, 1, 1), 384u + 64u + 2u * 64u);
}

TEST(BinaryCompat, CommonHelpers) {
  EXPECT_FALSE(is_power_of_two(0));
  EXPECT_TRUE(is_power_of_two(1));
  EXPECT_TRUE(is_power_of_two(1ULL << 63));
  EXPECT_FALSE(is_power_of_two(3 << 4));
  EXPECT_EQ(align_up(0, 64), 0u);
  EXPECT_EQ(align_up(1, 64), 64u);
  EXPECT_EQ(align_up(64, 64), 64u);
  EXPECT_EQ(align_up(65, 8), 72u);
}

TEST(BinaryCompat, CheckpointHeaderAndSlots) {
  expect_plain_shared_type<CheckpointHeader>();
  expect_plain_shared_type<CheckpointSlotHeader>();
  EXPECT_EQ(static_cast<std::uint32_t>(SegmentKind::checkpoint), 4u);
  EXPECT_EQ(sizeof(CheckpointHeader), 64u);
  EXPECT_EQ(offsetof(CheckpointHeader, slot_capacity), 0u);
  EXPECT_EQ(offsetof(CheckpointHeader, committed), 8u);
  EXPECT_EQ(offsetof(CheckpointHeader, commits), 16u);
  EXPECT_EQ(sizeof(CheckpointSlotHeader), 64u);
  EXPECT_EQ(offsetof(CheckpointSlotHeader, generation), 0u);
  EXPECT_EQ(offsetof(CheckpointSlotHeader, length), 8u);
  EXPECT_EQ(offsetof(CheckpointSlotHeader, checksum), 16u);
  EXPECT_EQ(offsetof(CheckpointSlotHeader, written_at_ns), 24u);
  // [header 64][slot 0: 64 + 128][slot 1: 64 + 128] for 100 bytes (rounded to 128)
  EXPECT_EQ(checkpoint_body_size(100), 64u + 2 * (64u + 128u));
  EXPECT_EQ(checkpoint_slot_offset(128, 0), 64u);
  EXPECT_EQ(checkpoint_slot_offset(128, 1), 64u + 64u + 128u);
}

}  // namespace
