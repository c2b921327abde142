#pragma once
// The Sender and Receiver of drivers.hpp for our own handles, whose calls return engine::Loan
// and engine::Frame: ring producers and consumers, topic publishers and subscribers. Busy mode
// polls try_loan / try_read (try_take); blocking mode uses loan / read (take) with
// WaitStrategy::sleeping(): spin, yield, then the handle's own wake-up.

#include <string>

#include "drivers.hpp"
#include "symphony/engine/ring_status.hpp"
#include "symphony/engine/wait_strategy.hpp"

namespace symphony::perf {

template <typename Producer>
class LoanSender {
 public:
  LoanSender(Producer& producer, const char* transport) noexcept
      : producer_(producer), transport_(transport) {}
  Poll try_loan(std::size_t size, std::span<std::byte>& out) noexcept {
    return accept(producer_.try_loan(size), out);
  }
  Poll wait_loan(std::size_t size, std::span<std::byte>& out,
                 SteadyClock::time_point until) noexcept {
    return accept(producer_.loan(size, engine::WaitStrategy::sleeping(), until), out);
  }
  void publish() noexcept { producer_.publish(); }
  std::string failure() const { return std::string(transport_) + ": " + engine::to_string(status_); }

 private:
  Poll accept(const engine::Loan& loan, std::span<std::byte>& out) noexcept {
    if (loan.ok()) [[likely]] {
      out = loan.bytes();
      return Poll::ready;
    }
    if (loan.would_block()) return Poll::would_block;
    status_ = loan.status;
    return Poll::failed;
  }
  Producer& producer_;
  const char* transport_;
  engine::RingStatus status_ = engine::RingStatus::ok;
};

template <typename Consumer>
class FrameReceiver {
 public:
  FrameReceiver(Consumer& consumer, const char* transport) noexcept
      : consumer_(consumer), transport_(transport) {}
  Poll try_receive(std::span<const std::byte>& in) noexcept {
    if constexpr (requires(Consumer& c) { c.try_read(); }) {
      return accept(consumer_.try_read(), in);
    } else {
      return accept(consumer_.try_take(), in);
    }
  }
  Poll wait_receive(std::span<const std::byte>& in, SteadyClock::time_point until) noexcept {
    if constexpr (requires(Consumer& c) { c.try_read(); }) {
      return accept(consumer_.read(engine::WaitStrategy::sleeping(), until), in);
    } else {
      return accept(consumer_.take(engine::WaitStrategy::sleeping(), until), in);
    }
  }
  void release() noexcept { consumer_.release(); }
  std::string failure() const { return std::string(transport_) + ": " + engine::to_string(status_); }

 private:
  Poll accept(const engine::Frame& frame, std::span<const std::byte>& in) noexcept {
    if (frame.ok()) [[likely]] {
      in = frame.bytes();
      return Poll::ready;
    }
    if (frame.would_block()) return Poll::would_block;
    status_ = frame.status;
    return Poll::failed;
  }
  Consumer& consumer_;
  const char* transport_;
  engine::RingStatus status_ = engine::RingStatus::ok;
};

}  // namespace symphony::perf
