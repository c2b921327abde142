#pragma once
// Small text helpers of the `symphony` command: aligned tables, human units, JSON numbers, and
// the one thing controlplane::JsonReader does not do — splitting a JSON array into its elements
// (each element is then read with JsonReader, or printed as is).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "symphony/engine/error.hpp"

namespace symphony::cli {

// Columns padded to their widest cell, two spaces apart; the first row is the header.
std::string render_table(const std::vector<std::vector<std::string>>& rows);

std::string human_bytes(std::uint64_t bytes);            // "512 B", "1.5 KiB", "12.0 MiB"
std::string human_duration(std::chrono::nanoseconds d);  // "850 ms", "12.3 s", "5m02s", "3h04m"
std::string human_rate(double per_second);               // "0", "12.5", "1.2k", "3.40M"

// A finite double as JSON (%.6g); NaN and infinities as null.
std::string json_number(double value);

// The elements of a JSON array (its text), each as its own JSON text.
engine::Result<std::vector<std::string>> json_array_items(std::string_view array_json);

// "0000  48 65 6c 6c 6f ...  |Hello...|", 16 bytes a line, at most `max_bytes` shown.
std::string hex_dump(std::span<const std::byte> bytes, std::size_t max_bytes);

// The bytes as text: printable ASCII and UTF-8 as is, other bytes as \xNN.
std::string printable_text(std::span<const std::byte> bytes, std::size_t max_bytes);

// The bytes as lowercase hex, no spaces.
std::string hex_string(std::span<const std::byte> bytes);

}  // namespace symphony::cli
