// Publishers: a lock around one engine::RawPublisher that the Extension binds and unbinds.

#include "symphony/sdk/publisher.hpp"

#include <spdlog/spdlog.h>

#include <utility>

namespace symphony::sdk {

const char* to_string(PublishStatus status) noexcept {
  switch (status) {
    case PublishStatus::ok: return "ok";
    case PublishStatus::full: return "full";
    case PublishStatus::oversize: return "oversize";
    case PublishStatus::not_bound: return "not bound";
    case PublishStatus::stopped: return "stopped";
    case PublishStatus::error: return "error";
  }
  return "?";
}

namespace detail {

PublisherCore::PublisherCore(std::string topic, engine::TopicType type,
                             engine::TopicOptions topic_options,
                             engine::PublisherOptions publisher_options)
    : topic_(std::move(topic)),
      type_(std::move(type)),
      topic_options_(topic_options),
      publisher_options_(publisher_options) {}

PublisherCore::~PublisherCore() = default;

void PublisherCore::log_once(PublishStatus status, const std::string& detail) {
  const unsigned bit = 1u << static_cast<unsigned>(status);
  if ((logged_ & bit) != 0) return;
  logged_ |= bit;
  spdlog::error("publish on topic '{}' refused ({}): {} (logged once per topic)", topic_,
                to_string(status), detail);
}

std::byte* PublisherCore::begin(std::size_t length, std::chrono::nanoseconds wait,
                                PublishStatus& status) {
  std::unique_lock lock(mutex_);
  if (stopped_) {
    status = PublishStatus::stopped;
    log_once(status, "the extension has stopped; publish only while it runs");
    return nullptr;
  }
  if (!publisher_) {
    status = PublishStatus::not_bound;
    return nullptr;
  }
  if (length > topic_options_.max_payload) {
    status = PublishStatus::oversize;
    log_once(status, "a sample of " + std::to_string(length) + " bytes exceeds the topic's " +
                         "max_payload of " + std::to_string(topic_options_.max_payload) +
                         " bytes");
    return nullptr;
  }
  const engine::Loan loan =
      wait > std::chrono::nanoseconds::zero()
          ? publisher_->loan(length, engine::WaitStrategy::sleeping(),
                             std::chrono::steady_clock::now() + wait)
          : publisher_->try_loan(length);
  switch (loan.status) {
    case engine::RingStatus::ok:
      status = PublishStatus::ok;
      lock.release();  // held until finish()
      return static_cast<std::byte*>(static_cast<void*>(loan.data));
    case engine::RingStatus::full:
      status = PublishStatus::full;
      return nullptr;
    case engine::RingStatus::oversize:
      status = PublishStatus::oversize;
      log_once(status, "a sample of " + std::to_string(length) + " bytes exceeds the topic's " +
                           "max_payload (the topic was created with a smaller one)");
      return nullptr;
    default:
      status = PublishStatus::error;
      log_once(status, std::string("the topic refused the loan: ") +
                           engine::to_string(loan.status));
      return nullptr;
  }
}

void PublisherCore::finish() noexcept {
  publisher_->publish();
  mutex_.unlock();
}

PublishStatus PublisherCore::publish(std::span<const std::byte> bytes,
                                     std::chrono::nanoseconds wait) {
  PublishStatus status = PublishStatus::ok;
  std::byte* at = begin(bytes.size(), wait, status);
  if (at == nullptr) return status;
  if (!bytes.empty()) std::memcpy(at, bytes.data(), bytes.size());
  finish();
  return status;
}

std::optional<engine::PublisherCounters> PublisherCore::counters() const {
  std::lock_guard lock(mutex_);
  if (!publisher_) return std::nullopt;
  return publisher_->counters();
}

bool PublisherCore::bound() const {
  std::lock_guard lock(mutex_);
  return publisher_.has_value();
}

void PublisherCore::bind(engine::RawPublisher publisher) {
  std::lock_guard lock(mutex_);
  if (!stopped_) publisher_.emplace(std::move(publisher));
}

void PublisherCore::unbind() {
  std::lock_guard lock(mutex_);
  publisher_.reset();
}

void PublisherCore::stop() {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  publisher_.reset();
}

bool PublisherCore::stopped() const {
  std::lock_guard lock(mutex_);
  return stopped_;
}

}  // namespace detail
}  // namespace symphony::sdk
