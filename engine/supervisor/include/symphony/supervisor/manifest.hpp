#pragma once
// An extension's manifest: who it is, how to start it, the limits it runs under, what happens
// when it dies, and the topics it declares. JSON, parsed with simdjson; every field is checked
// and anything unknown is refused (a typo must not silently fall back to a default). A refusal
// names the field by its path ("restart.factor", "topics.publish[2].qos.depth") and says why.
//
//   {
//     "id": "thermo", "version": "1.4.0",
//     "executable": "bin/thermo", "args": ["--fast"],        // relative to the manifest's folder
//     "instances": 1,
//     "start": "eager",                                      // or "on-demand" + "idle_stop_s": 30
//     "limits": {"memory_mib": 256, "cpu_cores": 0.5},       // both optional
//     "checkpoint_bytes": 65536,                             // 0 (default): no checkpoint
//     "hang_timeout_ms": 5000, "start_timeout_ms": 10000,
//     "restart": {"policy": "backoff", "initial_ms": 100, "factor": 2, "cap_ms": 30000,
//                 "reset_after_s": 60},                      // or "immediate", "manual"
//     "intensity": {"max_restarts": 5, "period_s": 60},      // more restarts in the period: FAILED
//     "topics": {
//       "publish":   [{"name": "sensors/temp", "type": "plant.Reading", "transport": "native"}],
//       "subscribe": [{"name": "commands",
//                      "qos": {"depth": 64, "overflow": "block", "history": 0}}]
//     }
//   }

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "symphony/engine/error.hpp"
#include "symphony/engine/topic.hpp"

namespace symphony::supervisor {

enum class StartMode : std::uint8_t {
  eager,      // started when the manifest is added
  on_demand,  // started by the first Supervisor::request to it; stopped after idle_stop idle
};

enum class RestartKind : std::uint8_t {
  immediate,  // at once after every crash
  backoff,    // after a delay that grows with consecutive crashes
  manual,     // never by itself: Supervisor::restart() brings it back
};

const char* to_string(StartMode mode) noexcept;
const char* to_string(RestartKind kind) noexcept;

struct BackoffPolicy {
  std::chrono::milliseconds initial{100};  // delay before the first restart of a crash series
  double factor = 2.0;                     // each further consecutive crash multiplies it
  std::chrono::milliseconds cap{30'000};   // never longer than this
  // A crash after running at least this long starts a new series (delay back to `initial`).
  std::chrono::milliseconds reset_after{60'000};
};

struct RestartPolicy {
  RestartKind kind = RestartKind::immediate;
  BackoffPolicy backoff;  // used by RestartKind::backoff
};

// At most `max_restarts` restarts within any `period`; the crash that would need one more makes
// the extension FAILED (and it stays so until restarted by hand).
struct RestartIntensity {
  std::uint32_t max_restarts = 5;
  std::chrono::milliseconds period{60'000};
};

struct ResourceLimits {
  std::uint64_t memory_bytes = 0;  // 0: no memory limit
  double cpu_cores = 0.0;          // 0: no CPU limit; 0.5 = half of one CPU
};

struct TopicDeclaration {
  std::string name;
  std::string type = "bytes";
  engine::TopicTransport transport = engine::TopicTransport::native;
  std::uint32_t depth = 64;
  engine::Overflow overflow = engine::Overflow::block;
  std::uint32_t history = 0;
};

// The largest checkpoint a manifest may ask for (each instance's segment is this big at most).
inline constexpr std::int64_t kMaxCheckpointBytes = std::int64_t{1} << 30;

// The environment variable that carries the declared topics to the extension process, as JSON:
//   {"publish":[{"name":"sensors/temp","type":"plant.Reading","transport":"native",
//                "qos":{"depth":64,"overflow":"block","history":0}}],
//    "subscribe":[...]}
// The extension SDK refuses a topic that is not declared there (a guard against bugs, not a
// security boundary: everything runs as one user).
inline constexpr const char* kEnvTopics = "SYMPHONY_TOPICS";

struct Manifest {
  std::string id;       // 1-40 of [A-Za-z0-9_-]: it names routes, cgroups and log files
  std::string version;  // 1-64 printable characters, no spaces
  std::filesystem::path executable;  // absolute after parsing
  std::vector<std::string> args;
  int instances = 1;  // 1-64
  StartMode start = StartMode::eager;
  std::chrono::milliseconds idle_stop{60'000};  // on-demand only
  ResourceLimits limits;
  // Capacity of the instance's checkpoint segment (host-owned shared memory that outlives its
  // restarts; engine/checkpoint.hpp). 0: the extension keeps no checkpoint.
  std::uint64_t checkpoint_bytes = 0;
  std::chrono::milliseconds hang_timeout{5'000};    // no heartbeat this long: hung
  std::chrono::milliseconds start_timeout{10'000};  // not HEALTHY this long after exec: hung
  RestartPolicy restart;
  RestartIntensity intensity;
  std::vector<TopicDeclaration> publishes;
  std::vector<TopicDeclaration> subscribes;
  std::filesystem::path source;  // the manifest file, if it came from one
};

// The manifest's declared topics in the kEnvTopics format.
std::string declared_topics_json(const Manifest& manifest);

// Why a manifest was refused: the field's path in the document and the reason.
struct ManifestError {
  std::string source;  // file name, or "<string>"
  std::string field;   // "restart.factor", "topics.publish[0].name"; empty: the document itself
  std::string reason;

  // "manifest 'x.json': field 'restart.factor': must be at least 1 (got 0.5)"
  std::string message() const;
  engine::Error to_error() const;
};

template <typename T>
using ManifestResult = tl::expected<T, ManifestError>;

// `base_dir` resolves a relative executable (the manifest's folder when loaded from a file, the
// working directory when empty). The executable must exist and be executable.
ManifestResult<Manifest> parse_manifest(std::string_view json,
                                        const std::filesystem::path& base_dir = {},
                                        std::string_view source = "<string>");
ManifestResult<Manifest> load_manifest(const std::filesystem::path& file);

}  // namespace symphony::supervisor
