#pragma once
// Large payloads by reference, safe against a hostile sender.
//
// A sender (HandoffOwner) writes a payload once into a fresh memfd, seals it (it can never again
// shrink, grow or change: F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) and gets a
// small HandoffDescriptor to send on the control plane (as JSON inside a message body). A
// receiver (HandoffReceiver) that gets the descriptor connects to the owner's Unix socket (in the
// bus's runtime directory, mode 0700), asks for the payload by id, receives the memfd with
// SCM_RIGHTS (ZeroMQ cannot pass file descriptors), refuses it unless it is a memfd carrying all
// four seals, checks the descriptor's range against the file's size and maps it read-only.
// Because the file is sealed, no process, the owner included, can truncate it (which would make
// the reader fault with SIGBUS) or rewrite it (which would change bytes already verified).
//
// Lifetimes. The owner holds each sealed payload (its memfd) until it has retired it *and* every
// receiver that fetched it has released it (explicitly, or by closing its connection: a receiver
// that dies releases everything it held); then it closes the memfd ("reclaimed"). The kernel
// frees the memory once the owner and every receiver's mapping have let go, so a receiver's
// mapping stays valid even after the owner has reclaimed the payload or died. Everything an owner
// holds goes when it dies (the kernel closes its fds); descriptors it issued then fail cleanly
// with Errc::unavailable.
//
// Threads: each HandoffOwner runs one background thread, "sym-handoff", that serves the socket.
// A HandoffReceiver starts none. No signal handlers, every fd O_CLOEXEC, sends never raise
// SIGPIPE (MSG_NOSIGNAL), no waitpid. An owner must not be used across fork() in the child.
//
// JSON shape of a descriptor (all keys required except "xxh3"; unknown keys are refused):
//   {"id":"4242-1234567-7","owner":"/run/user/1000/symphony/plant/handoff-video-4242.sock",
//    "offset":0,"length":67108864,"xxh3":"9e3779b97f4a7c15"}
//   id      "<owner pid>-<owner start time>-<serial>" (decimal; the start time in clock ticks since
//           boot, field 22 of /proc/<pid>/stat, so a reused pid cannot alias an old payload)
//   owner   absolute path of the owner's SOCK_SEQPACKET socket (at most 107 bytes)
//   offset  first byte of the payload described, from the start of the memfd (unsigned 64-bit)
//   length  bytes described, > 0; offset + length must not overflow and must fit the memfd
//   xxh3    optional XXH3-64 (seed 0) of those bytes: 16 lowercase hex digits (a string, so that
//           JSON readers with 53-bit numbers keep every bit)

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "symphony/engine/error.hpp"

namespace symphony::controlplane {

// ---- descriptor -------------------------------------------------------------------------------

// Unique on the machine: the owner process (pid + start time) and a serial unique in it.
struct PayloadId {
  std::uint32_t pid = 0;
  std::uint64_t start_time = 0;
  std::uint64_t serial = 0;

  std::string to_string() const;  // "<pid>-<start_time>-<serial>"
  static std::optional<PayloadId> parse(std::string_view text);
  friend bool operator==(const PayloadId&, const PayloadId&) = default;
};

struct HandoffDescriptor {
  PayloadId id;
  std::string owner;  // the owner's socket path
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::optional<std::uint64_t> xxh3;  // of [offset, offset + length)

  // Checks the shape only (an absolute owner path of at most 107 bytes without NUL, a non-zero
  // length, offset + length without overflow and below 2^63, a non-zero id): Errc::invalid_argument.
  engine::Result<void> validate() const;
  std::string to_json() const;
  // Strict: at most kMaxJson bytes, one flat object with exactly the keys above, then validate().
  // Errc::invalid_argument naming the key or the parse error.
  static engine::Result<HandoffDescriptor> from_json(std::string_view json);

  static constexpr std::size_t kMaxJson = 1024;
  friend bool operator==(const HandoffDescriptor&, const HandoffDescriptor&) = default;
};

// ---- the owner (sender) side --------------------------------------------------------------------

// A fresh memfd mapped writable, of the size asked for (its size is already sealed: it cannot
// change). Write the payload through bytes(), then give it to HandoffOwner::seal(). Dropped
// without sealing, it is unmapped and closed. Move-only; not shared with any other process.
class PayloadWriter {
 public:
  PayloadWriter() = default;
  PayloadWriter(PayloadWriter&& other) noexcept;
  PayloadWriter& operator=(PayloadWriter&& other) noexcept;
  PayloadWriter(const PayloadWriter&) = delete;
  PayloadWriter& operator=(const PayloadWriter&) = delete;
  ~PayloadWriter();

  std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  std::uint64_t size() const noexcept { return size_; }
  bool valid() const noexcept { return fd_ >= 0; }

 private:
  friend class HandoffOwner;
  void reset() noexcept;
  int fd_ = -1;
  std::byte* data_ = nullptr;
  std::uint64_t size_ = 0;
};

struct SealOptions {
  std::uint64_t offset = 0;              // the descriptor's range inside the payload
  std::optional<std::uint64_t> length;   // default: the rest of the payload after `offset`
  bool checksum = true;                  // compute XXH3-64 of the range into the descriptor
};

struct HandoffOwnerOptions {
  std::filesystem::path runtime_dir;        // empty: engine::ensure_runtime_dir(bus)
  std::uint32_t max_connections = 128;      // receivers connected at once; more are refused
  std::uint32_t max_holds_per_connection = 4096;  // fetched and not released, per connection
};

// Counters since create(). "refused" counts every request or connection the owner would not
// serve: malformed or oversized messages, unknown operations, fds sent to it, foreign uids,
// connections beyond the limit, releases of ids the connection did not hold, holds over the
// limit; "not_found" counts fetches of unknown, retired or reclaimed ids.
struct HandoffCounters {
  std::uint64_t allocated = 0;   // PayloadWriters handed out
  std::uint64_t sealed = 0;      // payloads sealed (descriptors issued)
  std::uint64_t live = 0;        // sealed and not yet reclaimed: the memfds the owner holds
  std::uint64_t fetched = 0;     // fds sent to receivers
  std::uint64_t released = 0;    // fetches given back (explicitly or by disconnect)
  std::uint64_t released_by_disconnect = 0;  // of those, by a receiver closing or dying
  std::uint64_t retired = 0;
  std::uint64_t reclaimed = 0;   // memfds closed: retired and every fetch released
  std::uint64_t not_found = 0;
  std::uint64_t refused = 0;
  std::uint64_t connections = 0;        // connected now
  std::uint64_t connections_total = 0;  // accepted since create()
};

struct PayloadStatus {
  bool retired = false;
  std::uint64_t size = 0;      // of the memfd
  std::uint64_t fetched = 0;   // times its fd was sent
  std::uint64_t released = 0;  // fetches given back
  std::uint64_t holders() const noexcept { return fetched - released; }
};

class HandoffOwner {
 public:
  // Listens on <runtime dir>/handoff-<name>-<pid>.sock (name: 1-40 of [A-Za-z0-9_-]); removes
  // sockets of dead owners it finds there; starts the "sym-handoff" thread.
  static engine::Result<HandoffOwner> create(std::string_view bus, std::string_view name,
                                             const HandoffOwnerOptions& options = {});

  HandoffOwner(HandoffOwner&&) noexcept;
  HandoffOwner& operator=(HandoffOwner&&) noexcept;
  HandoffOwner(const HandoffOwner&) = delete;
  HandoffOwner& operator=(const HandoffOwner&) = delete;
  // Stops the thread, closes every connection and memfd, removes the socket. Receivers' mappings
  // stay valid; new opens fail with Errc::unavailable.
  ~HandoffOwner();

  // A fresh writable payload of `size` bytes (> 0).
  engine::Result<PayloadWriter> allocate(std::uint64_t size);
  // Unmaps the writer (its bytes() must not be used again), seals the memfd and makes it
  // fetchable. The descriptor's range is options.offset/length (checked against the size).
  engine::Result<HandoffDescriptor> seal(PayloadWriter&& writer, const SealOptions& options = {});
  // The owner is done with the payload: it is reclaimed as soon as no receiver holds it, and no
  // new fetch is served. Errc::not_found for an id it does not hold.
  engine::Result<void> retire(const PayloadId& id);

  // nullopt once reclaimed (or never sealed here).
  std::optional<PayloadStatus> status(const PayloadId& id) const;
  HandoffCounters counters() const;
  // The socket path that descriptors name.
  const std::string& endpoint() const noexcept;

 private:
  struct Impl;
  explicit HandoffOwner(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// ---- the receiver side --------------------------------------------------------------------------

enum class Verify : std::uint8_t {
  if_present,  // check the descriptor's xxh3 when it carries one
  required,    // refuse a descriptor without xxh3 (Errc::invalid_argument)
  skip,        // never read the payload at open (the mapping is established, nothing is read)
};

struct OpenOptions {
  Verify verify = Verify::if_present;
  std::chrono::milliseconds timeout{2000};  // connecting and waiting for the owner's answer
};

namespace detail {
struct OwnerConnection;
}

// A payload mapped read-only. bytes() stays valid until release() or destruction, whatever the
// owner does meanwhile (even if it dies). Move-only.
class MappedPayload {
 public:
  MappedPayload() = default;
  MappedPayload(MappedPayload&& other) noexcept;
  MappedPayload& operator=(MappedPayload&& other) noexcept;
  MappedPayload(const MappedPayload&) = delete;
  MappedPayload& operator=(const MappedPayload&) = delete;
  ~MappedPayload();  // release()

  std::span<const std::byte> bytes() const noexcept { return {data_, length_}; }
  const HandoffDescriptor& descriptor() const noexcept { return descriptor_; }
  bool verified() const noexcept { return verified_; }  // the xxh3 was checked at open
  bool valid() const noexcept { return map_base_ != nullptr; }
  // Unmaps, and tells the owner: one message, no answer awaited. If the owner's socket is full
  // it waits up to 0.5 s for room, then hangs up the connection (which releases everything it
  // held); if the owner is gone there is nobody to tell. Never raises SIGPIPE.
  void release() noexcept;

 private:
  friend class HandoffReceiver;
  std::shared_ptr<detail::OwnerConnection> connection_;
  HandoffDescriptor descriptor_;
  void* map_base_ = nullptr;
  std::size_t map_length_ = 0;
  const std::byte* data_ = nullptr;
  std::size_t length_ = 0;
  bool verified_ = false;
};

struct HandoffReceiverOptions {
  std::filesystem::path runtime_dir;  // empty: engine::ensure_runtime_dir(bus)
};

struct ReceiverCounters {
  std::uint64_t opened = 0;    // payloads mapped
  std::uint64_t released = 0;
  std::uint64_t failed = 0;    // open() calls that returned an error
};

// Opens descriptors whose owner socket lies in this bus's runtime directory (a descriptor naming
// any other socket is refused: a hostile peer cannot make us connect elsewhere). Keeps one
// connection per owner, so that every open after the first costs one request and one answer.
// Thread-safe; movable; payloads it mapped may outlive it.
class HandoffReceiver {
 public:
  static engine::Result<HandoffReceiver> create(std::string_view bus,
                                                const HandoffReceiverOptions& options = {});

  HandoffReceiver(HandoffReceiver&&) noexcept;
  HandoffReceiver& operator=(HandoffReceiver&&) noexcept;
  HandoffReceiver(const HandoffReceiver&) = delete;
  HandoffReceiver& operator=(const HandoffReceiver&) = delete;
  ~HandoffReceiver();

  // Errors (nothing is mapped, and a fetched fd is given back to the owner):
  //   invalid_argument  malformed descriptor, owner outside the runtime directory, a range outside
  //                     the payload ("outside the payload"), Verify::required without xxh3
  //   not_found         an id the owner does not know, or retired ("retired")
  //   unavailable       the owner is gone (no socket, nobody listening, connection closed) or did
  //                     not answer within the timeout
  //   invalid_layout    a foreign fd (not a memfd, or a seal missing: "not sealed"), a malformed
  //                     answer, a checksum mismatch ("checksum mismatch")
  //   system_error      a syscall failed (e.g. mmap: out of memory)
  engine::Result<MappedPayload> open(const HandoffDescriptor& descriptor,
                                     const OpenOptions& options = {});

  ReceiverCounters counters() const;
  const std::filesystem::path& runtime_dir() const noexcept;

 private:
  struct Impl;
  explicit HandoffReceiver(std::shared_ptr<Impl> impl) noexcept;
  std::shared_ptr<Impl> impl_;
};

// XXH3-64 (seed 0): what descriptors carry.
std::uint64_t handoff_checksum(std::span<const std::byte> bytes) noexcept;

// ---- wire protocol (for other implementations, e.g. Python, and for tests) ----------------------
//
// SOCK_SEQPACKET, one message per request, native byte order (both ends are on one machine).
// Request (receiver -> owner), exactly 32 bytes: magic, version, op, pid, 0, start_time, serial.
//   op fetch:   the owner answers with a Reply; status ok carries exactly one fd (SCM_RIGHTS).
//   op release: gives one fetch of that id back; no answer.
// Any other message (size, magic, version, op, an attached fd) is refused and counted, answered
// with status bad_request when possible, and the connection is closed.
namespace handoff_wire {

inline constexpr std::uint32_t kMagic = 0x48594d53;  // "SMYH" in memory: 'S','M','Y','H'
inline constexpr std::uint16_t kVersion = 1;
inline constexpr std::size_t kMessageSize = 32;

enum class Op : std::uint16_t { fetch = 1, release = 2 };
enum class Status : std::uint16_t {
  ok = 0,
  unknown = 1,      // the owner never issued that id (or it names another process)
  retired = 2,      // issued, then retired (maybe already reclaimed)
  bad_request = 3,  // malformed: the connection is closed after this answer
  limit = 4,        // this connection holds too many fetches
};

struct Request {
  std::uint32_t magic = kMagic;
  std::uint16_t version = kVersion;
  std::uint16_t op = 0;
  std::uint32_t pid = 0;
  std::uint32_t reserved = 0;
  std::uint64_t start_time = 0;
  std::uint64_t serial = 0;
};

// Answer to a fetch, exactly 32 bytes: the serial asked for, and the memfd's size.
struct Reply {
  std::uint32_t magic = kMagic;
  std::uint16_t version = kVersion;
  std::uint16_t status = 0;
  std::uint64_t serial = 0;
  std::uint64_t size = 0;
  std::uint64_t reserved = 0;
};

static_assert(sizeof(Request) == kMessageSize && sizeof(Reply) == kMessageSize);

}  // namespace handoff_wire

}  // namespace symphony::controlplane
