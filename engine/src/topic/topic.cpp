#include "symphony/engine/topic.hpp"

#include <utility>

#include "topic/backend.hpp"

namespace symphony::engine {

const char* to_string(TopicTransport transport) noexcept {
  switch (transport) {
    case TopicTransport::native: return "native";
    case TopicTransport::iceoryx: return "iceoryx";
  }
  return "unknown";
}

const char* to_string(Route route) noexcept {
  switch (route) {
    case Route::direct: return "direct";
    case Route::batched: return "batched";
  }
  return "unknown";
}

const char* to_string(Balance balance) noexcept {
  switch (balance) {
    case Balance::round_robin: return "round-robin";
    case Balance::least_loaded: return "least-loaded";
  }
  return "unknown";
}

const char* to_string(Overflow overflow) noexcept {
  switch (overflow) {
    case Overflow::block: return "block";
    case Overflow::discard_oldest: return "discard-oldest";
  }
  return "unknown";
}

RawPublisher::RawPublisher(std::unique_ptr<detail::PublisherBackend> backend) noexcept
    : backend_(std::move(backend)) {}
RawPublisher::RawPublisher(RawPublisher&&) noexcept = default;
RawPublisher& RawPublisher::operator=(RawPublisher&&) noexcept = default;
RawPublisher::~RawPublisher() = default;

Loan RawPublisher::try_loan(std::size_t length, Priority priority) noexcept {
  return priority == Priority::normal ? backend_->try_loan(length)
                                      : backend_->try_loan_priority(length);
}
Loan RawPublisher::loan(std::size_t length, const WaitStrategy& strategy,
                        std::chrono::steady_clock::time_point deadline) noexcept {
  return backend_->loan(length, strategy, deadline);
}
void RawPublisher::publish() noexcept { backend_->publish(); }
void RawPublisher::flush() noexcept { backend_->flush(); }
RingStatus RawPublisher::try_publish(std::span<const std::byte> payload) noexcept {
  const Loan loan = backend_->try_loan(payload.size());
  if (!loan.ok()) return loan.status;
  if (!payload.empty()) std::memcpy(loan.data, payload.data(), payload.size());
  backend_->publish();
  return RingStatus::ok;
}
PublisherCounters RawPublisher::counters() const noexcept { return backend_->counters(); }
const std::string& RawPublisher::topic() const noexcept { return backend_->topic(); }
TopicTransport RawPublisher::transport() const noexcept { return backend_->transport(); }

RawSubscriber::RawSubscriber(std::unique_ptr<detail::SubscriberBackend> backend) noexcept
    : backend_(std::move(backend)) {}
RawSubscriber::RawSubscriber(RawSubscriber&&) noexcept = default;
RawSubscriber& RawSubscriber::operator=(RawSubscriber&&) noexcept = default;
RawSubscriber::~RawSubscriber() = default;

Frame RawSubscriber::try_take() noexcept { return backend_->try_take(); }
Frame RawSubscriber::take(const WaitStrategy& strategy,
                          std::chrono::steady_clock::time_point deadline) noexcept {
  return backend_->take(strategy, deadline);
}
void RawSubscriber::release() noexcept { backend_->release(); }
Result<int> RawSubscriber::notify_fd() { return backend_->notify_fd(); }
std::optional<std::uint64_t> RawSubscriber::position() const noexcept {
  return backend_->position();
}
SubscriberCounters RawSubscriber::counters() const noexcept { return backend_->counters(); }
const std::string& RawSubscriber::topic() const noexcept { return backend_->topic(); }
TopicTransport RawSubscriber::transport() const noexcept { return backend_->transport(); }

}  // namespace symphony::engine
