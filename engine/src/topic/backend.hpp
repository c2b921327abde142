#pragma once
// The seam between the public topic handles (topic.hpp) and a transport. One implementation per
// transport: native (native_topic.cpp, our broadcast ring) and iceoryx (iceoryx/). The handles
// call through a virtual once per operation; nothing else in the engine names a transport class.

#include <chrono>
#include <cstddef>
#include <string>

#include "symphony/engine/topic.hpp"

namespace symphony::engine::detail {

class PublisherBackend {
 public:
  virtual ~PublisherBackend() = default;
  virtual Loan try_loan(std::size_t length) noexcept = 0;
  virtual Loan loan(std::size_t length, const WaitStrategy& strategy,
                    std::chrono::steady_clock::time_point deadline) noexcept = 0;
  // Every loan since the last publish becomes visible (in loan order).
  virtual void publish() noexcept = 0;
  // Transports without a priority lane or batching keep these defaults.
  virtual Loan try_loan_priority(std::size_t /*length*/) noexcept {
    return Loan::failed(RingStatus::refused);
  }
  virtual void flush() noexcept {}
  virtual PublisherCounters counters() const noexcept = 0;
  virtual const std::string& topic() const noexcept = 0;
  virtual TopicTransport transport() const noexcept = 0;
};

class SubscriberBackend {
 public:
  virtual ~SubscriberBackend() = default;
  virtual Frame try_take() noexcept = 0;
  virtual Frame take(const WaitStrategy& strategy,
                     std::chrono::steady_clock::time_point deadline) noexcept = 0;
  // Every sample taken so far goes back to the transport.
  virtual void release() noexcept = 0;
  virtual Result<int> notify_fd() = 0;
  virtual SubscriberCounters counters() const noexcept = 0;
  virtual std::optional<std::uint64_t> position() const noexcept { return std::nullopt; }
  virtual const std::string& topic() const noexcept = 0;
  virtual TopicTransport transport() const noexcept = 0;
};

}  // namespace symphony::engine::detail
