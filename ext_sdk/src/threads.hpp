#pragma once
// The SDK's own threads: a request worker pool that grows while every worker is busy, and a
// thread whose end can be waited for with a deadline (a callback stuck forever must not make the
// extension's stop hang: after the deadline it is abandoned and the process exits with _Exit).

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace symphony::sdk::detail {

inline void name_this_thread(const char* name) {
  ::pthread_setname_np(::pthread_self(), name);  // at most 15 characters
}

// A thread that reports its end, so that it can be joined with a deadline.
class JoinableThread {
 public:
  JoinableThread() = default;
  JoinableThread(const char* name, std::function<void()> body) {
    auto done = std::make_shared<std::promise<void>>();
    done_ = done->get_future();
    thread_ = std::thread([name, body = std::move(body), done] {
      name_this_thread(name);
      body();
      done->set_value();
    });
  }
  bool running() const { return thread_.joinable(); }
  // Joins if it ends before `deadline`; else detaches it and returns false (it is stuck).
  bool join_until(std::chrono::steady_clock::time_point deadline) {
    if (!thread_.joinable()) return true;
    if (done_.wait_until(deadline) == std::future_status::ready) {
      thread_.join();
      return true;
    }
    thread_.detach();
    return false;
  }

 private:
  std::thread thread_;
  std::future<void> done_;
};

// Runs jobs on `min` threads, adding one (up to `max`) whenever a job arrives while all are busy.
class WorkerPool {
 public:
  WorkerPool(unsigned min_workers, unsigned max_workers)
      : min_(min_workers), max_(std::max(max_workers, 1u)) {}
  ~WorkerPool() { close(std::chrono::steady_clock::now() + std::chrono::seconds(1)); }

  void set_max(unsigned max_workers) {
    std::lock_guard lock(mutex_);
    max_ = std::max(max_workers, 1u);
  }

  void start() {
    std::lock_guard lock(mutex_);
    while (workers_.size() < std::min(min_, max_)) spawn();
  }

  // False once closed (the job is not run).
  bool submit(std::function<void()> job) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    jobs_.push_back(std::move(job));
    if (idle_ < jobs_.size() && workers_.size() < max_) spawn();
    ready_.notify_one();
    return true;
  }

  // Refuses new jobs, lets queued and running ones finish until `deadline`; false if some
  // worker is still busy then (it is abandoned).
  bool close(std::chrono::steady_clock::time_point deadline) {
    std::vector<JoinableThread> workers;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      workers.swap(workers_);
    }
    ready_.notify_all();
    bool all = true;
    for (auto& worker : workers) all = worker.join_until(deadline) && all;
    return all;
  }

 private:
  void spawn() {  // mutex_ held
    workers_.emplace_back("sym-sdk-req", [this] { work(); });
  }

  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ++idle_;
      ready_.wait(lock, [&] { return closed_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty()) return;  // closed and nothing left
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::vector<JoinableThread> workers_;
  std::size_t idle_ = 0;
  unsigned min_;
  unsigned max_;
  bool closed_ = false;
};

}  // namespace symphony::sdk::detail
