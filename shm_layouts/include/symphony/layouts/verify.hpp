#pragma once
// The verifier for segments mapped from memory that another process can write. It copies what
// it checks into local memory first, so the values cannot change between check and use, and
// returns the local copy: callers keep using the copy, never the shared bytes, for geometry.

#include <cstddef>
#include <cstdint>
#include <string>

#include <tl/expected.hpp>

#include "symphony/layouts/checkpoint.hpp"
#include "symphony/layouts/common.hpp"
#include "symphony/layouts/segment_header.hpp"
#include "symphony/layouts/topic.hpp"

namespace symphony::layouts {

enum class LayoutErrc {
  too_small,           // the mapping cannot even hold the headers it claims
  bad_magic,           // not a Symphony segment
  version_mismatch,    // built from an incompatible layout version
  wrong_kind,          // e.g. an MPMC segment opened as SPSC
  not_ready,           // the creator has not finished initialising it
  size_mismatch,       // header sizes disagree with each other or with the mapping
  bad_geometry,        // capacity, strides or offsets impossible
  index_out_of_range,  // ring indices that cannot both be true
};

const char* to_string(LayoutErrc code) noexcept;

struct LayoutError {
  LayoutErrc code;
  std::string message;  // names the field and the values found
};

struct SpscGeometry {
  std::uint64_t capacity;
  std::uint64_t max_payload;
  std::uint64_t data_offset;
};

struct MpmcGeometry {
  std::uint64_t capacity;
  std::uint64_t slot_stride;
  std::uint64_t max_payload;
  std::uint64_t slots_offset;
  std::uint64_t participants_offset;
  std::uint64_t max_participants;
};

struct CheckpointGeometry {
  std::uint64_t slot_capacity;  // bytes of data per slot
  std::uint64_t body_offset;    // where the CheckpointHeader starts
};

// Checks magic, version, kind, readiness and sizes against `mapped_size`.
tl::expected<SegmentHeader, LayoutError> verify_segment_header(const std::byte* base,
                                                               std::size_t mapped_size,
                                                               SegmentKind expected_kind);

// Segment header, ring geometry, and the current read/write indices.
tl::expected<SpscGeometry, LayoutError> verify_spsc_ring(const std::byte* base,
                                                         std::size_t mapped_size);

// Segment header, ring geometry, participant table and the current head/tail.
tl::expected<MpmcGeometry, LayoutError> verify_mpmc_ring(const std::byte* base,
                                                         std::size_t mapped_size);

// Segment header, topic geometry (capacity, strides, offsets against the mapping, transport,
// names NUL-terminated) and the publisher's head against the overwrite floor.
tl::expected<TopicGeometry, LayoutError> verify_topic(const std::byte* base,
                                                      std::size_t mapped_size);

// Segment header and the slot geometry against the mapping. The slots themselves are checked
// by whoever reads them, on a private copy (see checkpoint.hpp).
tl::expected<CheckpointGeometry, LayoutError> verify_checkpoint(const std::byte* base,
                                                                std::size_t mapped_size);

}  // namespace symphony::layouts
