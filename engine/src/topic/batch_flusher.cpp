#include "topic/batch_flusher.hpp"

#include <pthread.h>

#include <algorithm>

namespace symphony::engine::detail {

BatchFlusher::~BatchFlusher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BatchFlusher::add(Client* client) {
  std::lock_guard lock(mutex_);
  clients_.push_back(client);
  if (!thread_.joinable()) {
    thread_ = std::thread([this] { run(); });
    ::pthread_setname_np(thread_.native_handle(), "sym-batch-flush");
  }
}

void BatchFlusher::remove(Client* client) {
  // The thread calls clients only while holding the mutex: once we hold it, it is not inside one.
  std::lock_guard lock(mutex_);
  clients_.erase(std::remove(clients_.begin(), clients_.end(), client), clients_.end());
}

void BatchFlusher::wake_by(Clock::time_point deadline) {
  bool earlier = false;
  {
    std::lock_guard lock(mutex_);
    if (deadline < next_) {
      next_ = deadline;
      earlier = true;
    }
  }
  if (earlier) changed_.notify_one();
}

void BatchFlusher::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (next_ == Clock::time_point::max()) {
      changed_.wait(lock);
      continue;
    }
    if (changed_.wait_until(lock, next_) == std::cv_status::no_timeout && Clock::now() < next_) {
      continue;  // woken for an earlier deadline, or to stop
    }
    const Clock::time_point now = Clock::now();
    Clock::time_point next = Clock::time_point::max();
    for (Client* client : clients_) next = std::min(next, client->flush_if_due(now));
    next_ = next;
  }
}

}  // namespace symphony::engine::detail
