#pragma once
// The thread that makes batched publishes visible when their delay runs out (Route::batched).
// One per Bus, started with its first batched publisher, named "sym-batch-flush". A publisher
// calls wake_by() once per batch (when its first sample starts waiting), never per sample.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace symphony::engine::detail {

class BatchFlusher {
 public:
  using Clock = std::chrono::steady_clock;

  class Client {
   public:
    virtual ~Client() = default;
    // Commits what is due at `now`; returns when it next needs a flush (Clock::time_point::max()
    // if nothing waits). Called on the flusher thread.
    virtual Clock::time_point flush_if_due(Clock::time_point now) noexcept = 0;
  };

  BatchFlusher() = default;
  ~BatchFlusher();  // stops and joins the thread
  BatchFlusher(const BatchFlusher&) = delete;
  BatchFlusher& operator=(const BatchFlusher&) = delete;

  void add(Client* client);
  // After it returns, the thread is not inside client->flush_if_due() and never will be.
  void remove(Client* client);
  void wake_by(Clock::time_point deadline);

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Client*> clients_;
  Clock::time_point next_ = Clock::time_point::max();
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace symphony::engine::detail
