#pragma once
// Loop: one io_uring, one thread. Coroutines submit SQEs through awaitables (see op.hpp) and
// are resumed from the ready queue after their CQE has been reaped. One loop turn:
//   1. resume every ready coroutine, and those they wake, for a bounded number of passes,
//   2. fire due timers (they only schedule),
//   3. one io_uring_enter: submit everything prepared in (1)-(2) and, if nothing is ready,
//      wait for a CQE or the next timer deadline,
//   4. reap the CQ in a batch: each CQE's Completion records its result and schedules its
//      waiter; the CQ is advanced before anything is resumed.
// Timers live in a heap inside the loop (no SQE per timer; cancel is a heap removal).
#include <liburing.h>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/task.hpp"

namespace vtunnel {

using Clock = std::chrono::steady_clock;
using Duration = Clock::duration;
using TimePoint = Clock::time_point;

// Receives the CQE of an SQE whose user_data points at it. Must not resume coroutines
// inline: schedule them on the loop.
class Completion {
 public:
  virtual void on_cqe(int res, std::uint32_t flags) noexcept = 0;

 protected:
  ~Completion() = default;
};

// A timer entry in the loop's heap. Owned by its user (usually a coroutine frame); must be
// removed (Loop::cancel_timer) before it is destroyed if still armed.
struct TimerNode {
  TimePoint deadline{};
  std::size_t heap_index = kNotArmed;
  void (*fire)(TimerNode*) noexcept = nullptr;
  static constexpr std::size_t kNotArmed = ~std::size_t(0);
  bool armed() const noexcept { return heap_index != kNotArmed; }
};

struct LoopOptions {
  unsigned sq_entries = 512;
  unsigned cq_entries = 8192;  // large: many connections complete in the same turn
};

class Loop {
 public:
  explicit Loop(LoopOptions options = {});
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // The loop running on this thread (set while run() is active or a Loop exists on it).
  static Loop& current() noexcept;
  static Loop* current_or_null() noexcept;

  // An SQE to fill; never null (submits pending SQEs when the SQ is full).
  io_uring_sqe* get_sqe();
  io_uring* ring() noexcept { return &ring_; }

  // Resume `h` on a later turn of this loop.
  void schedule(std::coroutine_handle<> h) { ready_.push_back(h); }

  void arm_timer(TimerNode& t, TimePoint deadline);
  void cancel_timer(TimerNode& t) noexcept;

  // Runs turns until stop() is called or `done` becomes true (checked after every turn).
  void run();
  void run_until(const std::function<bool()>& done);
  void stop() noexcept { stop_requested_ = true; }

  // Thread-safe handle for posting work to this loop from other threads. It stays valid after
  // the loop is gone; posting then does nothing and returns false.
  class Poster {
   public:
    bool post(std::function<void()> fn);

   private:
    friend class Loop;
    std::mutex mutex_;
    std::vector<std::function<void()>> queue_;
    int fd_ = -1;  // eventfd; -1 once the loop is gone
  };
  std::shared_ptr<Poster> poster() const noexcept { return poster_; }
  // Thread-safe: runs `fn` on this loop's thread on a later turn (wakes the loop through an
  // eventfd read pending in the ring). Used by the resolver's worker threads.
  bool post(std::function<void()> fn) { return poster_->post(std::move(fn)); }

  // Statistics for tests and benchmarks.
  std::uint64_t submits() const noexcept { return submits_; }
  std::uint64_t turns() const noexcept { return turns_; }
  unsigned features() const noexcept { return ring_.features; }
  bool defer_taskrun() const noexcept { return defer_taskrun_; }

  // Per-loop objects a component creates on first use (e.g. the relay's buffer pool), found by
  // a key the component owns; destroyed with the loop, before its ring.
  class Service {
   public:
    virtual ~Service() = default;
  };
  Service* find_service(const void* key) const noexcept {
    for (auto& s : services_)
      if (s.first == key) return s.second.get();
    return nullptr;
  }
  Service& add_service(const void* key, std::unique_ptr<Service> service) {
    services_.emplace_back(key, std::move(service));
    return *services_.back().second;
  }

 private:
  class Wakeup;
  static constexpr int kRunPasses = 8;  // ready-queue passes per turn (see run_ready)
  void run_ready();
  void fire_timers();
  void submit_and_wait(bool may_block);
  void reap();
  void drain_posted();
  void arm_wakeup();
  // heap helpers
  void heap_swap(std::size_t a, std::size_t b) noexcept;
  void heap_up(std::size_t i) noexcept;
  void heap_down(std::size_t i) noexcept;

  io_uring ring_{};
  bool defer_taskrun_ = false;
  bool stop_requested_ = false;
  std::vector<std::coroutine_handle<>> ready_;
  std::vector<std::coroutine_handle<>> running_;
  std::vector<TimerNode*> timers_;
  std::uint64_t submits_ = 0;
  std::uint64_t turns_ = 0;

  // cross-thread posting
  std::shared_ptr<Poster> poster_;
  std::uint64_t wake_value_ = 0;
  bool wake_armed_ = false;
  Wakeup* wakeup_ = nullptr;
  std::vector<std::function<void()>> posted_running_;
  Loop* previous_current_ = nullptr;
  std::vector<std::pair<const void*, std::unique_ptr<Service>>> services_;
};

// Runs `task` on `loop` until it completes and returns its result (or rethrows). The entry
// point for main() and tests.
namespace detail {
template <class T>
Task<T> sync_wait_wrapper(Task<T>& task, bool& finished) {
  struct SetOnExit {
    bool& flag;
    ~SetOnExit() { flag = true; }
  } set_on_exit{finished};
  co_return co_await std::move(task);
}
}  // namespace detail

template <class T>
T sync_wait(Loop& loop, Task<T> task) {
  bool finished = false;
  Task<T> wrapper = detail::sync_wait_wrapper(task, finished);
  loop.schedule(wrapper.handle());
  loop.run_until([&] { return finished; });
  if (!finished) throw std::logic_error("sync_wait: loop stopped before the task finished");
  return wrapper.handle().promise().take();
}

}  // namespace vtunnel
