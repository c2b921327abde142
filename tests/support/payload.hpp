#pragma once
// Self-checking test messages: [tag u64][checksum u64][body]. The tag is (stream << 48) | seq,
// the body is a pattern derived from the tag, and the checksum covers the body, so a consumer can
// tell a lost, duplicated, reordered or torn message from a good one without any side channel.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace symphony::test {

inline constexpr std::size_t kMessageHeaderSize = 16;
inline constexpr std::uint64_t kSeqMask = (1ULL << 48) - 1;

constexpr std::uint64_t mix64(std::uint64_t x) noexcept {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return x;
}

constexpr std::uint64_t message_tag(std::uint64_t stream, std::uint64_t seq) noexcept {
  return (stream << 48) | (seq & kSeqMask);
}

// A length in [min_len, max_len] that varies with (stream, seq) and is the same on both sides.
constexpr std::size_t message_length(std::uint64_t stream, std::uint64_t seq, std::size_t min_len,
                                     std::size_t max_len) noexcept {
  if (max_len <= min_len) return min_len;
  return min_len + static_cast<std::size_t>(mix64(message_tag(stream, seq) ^ 0x5eed) %
                                            (max_len - min_len + 1));
}

inline std::uint64_t body_checksum(std::span<const std::byte> body, std::uint64_t seed) noexcept {
  std::uint64_t h = seed ^ 0xcbf29ce484222325ULL;
  std::size_t i = 0;
  for (; i + 8 <= body.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, body.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  for (; i < body.size(); ++i) {
    h = (h ^ static_cast<std::uint64_t>(body[i])) * 0x100000001b3ULL;
  }
  return h ^ body.size();
}

// Fills `out` (at least kMessageHeaderSize bytes) with message `seq` of `stream`.
inline void fill_message(std::span<std::byte> out, std::uint64_t stream,
                         std::uint64_t seq) noexcept {
  const std::uint64_t tag = message_tag(stream, seq);
  std::span<std::byte> body = out.subspan(kMessageHeaderSize);
  std::uint64_t w = mix64(tag);
  std::size_t i = 0;
  for (; i + 8 <= body.size(); i += 8) {
    std::memcpy(body.data() + i, &w, 8);
    w += 0x9E3779B97F4A7C15ULL;
  }
  if (i < body.size()) std::memcpy(body.data() + i, &w, body.size() - i);
  const std::uint64_t sum = body_checksum(body, tag);
  std::memcpy(out.data(), &tag, 8);
  std::memcpy(out.data() + 8, &sum, 8);
}

struct MessageCheck {
  bool ok = false;
  std::uint64_t stream = 0;
  std::uint64_t seq = 0;
  const char* why = "";
};

// Checks the framing and checksum; the caller compares stream/seq/length with what it expected.
inline MessageCheck check_message(std::span<const std::byte> in) noexcept {
  MessageCheck result;
  if (in.size() < kMessageHeaderSize) {
    result.why = "shorter than the message header";
    return result;
  }
  std::uint64_t tag;
  std::uint64_t sum;
  std::memcpy(&tag, in.data(), 8);
  std::memcpy(&sum, in.data() + 8, 8);
  result.stream = tag >> 48;
  result.seq = tag & kSeqMask;
  if (body_checksum(in.subspan(kMessageHeaderSize), tag) != sum) {
    result.why = "checksum mismatch (torn or corrupted payload)";
    return result;
  }
  result.ok = true;
  return result;
}

}  // namespace symphony::test
