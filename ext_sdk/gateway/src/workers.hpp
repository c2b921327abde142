#pragma once
// A small fixed pool for the gateway's blocking calls to the host (admin ext.call, ext.restart):
// never on the io thread. Bounded: submit() refuses when the queue is full.

#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace symphony::gateway {

class Workers {
 public:
  Workers(unsigned threads, std::size_t max_queued) : max_queued_(max_queued) {
    for (unsigned i = 0; i < (threads == 0 ? 1 : threads); ++i) {
      threads_.emplace_back([this] { run(); });
    }
  }
  ~Workers() { stop(); }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // False when full or stopped (the task is not run).
  bool submit(std::function<void()> task) {
    {
      std::lock_guard lock(mutex_);
      if (stopped_ || queue_.size() >= max_queued_) return false;
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
    return true;
  }

  // Lets running tasks finish, drops the queued ones, joins.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopped_ && threads_.empty()) return;
      stopped_ = true;
      queue_.clear();
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void run() {
    ::pthread_setname_np(::pthread_self(), "sym-gw-work");
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return stopped_ || !queue_.empty(); });
        if (stopped_) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopped_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace symphony::gateway
