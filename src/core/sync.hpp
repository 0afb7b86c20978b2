#pragma once
// Coroutine-aware synchronisation for tasks on one loop (not thread-safe; one loop = one
// thread). Every wait is a cancellable leaf: cancelling the waiting task resumes it with
// errc::cancelled. Wake-ups go through the loop's ready queue, never inline.
#include <coroutine>
#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

#include "core/error.hpp"
#include "core/loop.hpp"
#include "core/result.hpp"
#include "core/stop.hpp"
#include "core/task.hpp"

namespace vtunnel {

// A FIFO of suspended waiters. Each waiter is a cancellable leaf.
class WaitQueue {
 public:
  class Waiter final : public Cancellable {
   public:
    explicit Waiter(WaitQueue& q) noexcept : queue_(&q) {}
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      stop_ = detail::stop_state_of(h);
      if (stop_ && stop_->stop_requested()) {
        cancelled_ = true;
        return false;
      }
      handle_ = h;
      queue_->push(this);
      if (stop_) stop_->set_current(this);
      return true;
    }
    // false if the wait was cancelled.
    bool await_resume() noexcept {
      if (stop_) stop_->clear_current(this);
      return !cancelled_;
    }
    void cancel() noexcept override;

   private:
    friend class WaitQueue;
    WaitQueue* queue_;
    StopState* stop_ = nullptr;
    std::coroutine_handle<> handle_;
    Waiter* next_ = nullptr;
    Waiter* prev_ = nullptr;
    bool queued_ = false;
    bool cancelled_ = false;
  };

  // co_await queue.wait() -> true if woken, false if cancelled.
  Waiter wait() noexcept { return Waiter(*this); }

  bool empty() const noexcept { return head_ == nullptr; }
  // Wakes the oldest waiter; false if none.
  bool wake_one() noexcept;
  void wake_all() noexcept;

 private:
  void push(Waiter* w) noexcept;
  void remove(Waiter* w) noexcept;
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

// Waits until `q` is woken or `deadline` passes: ok, errc::timed_out, or errc::cancelled.
Task<Result<void>> wait_until(WaitQueue& q, TimePoint deadline);

// Manual-reset event.
class Event {
 public:
  bool is_set() const noexcept { return set_; }
  void set() noexcept {
    set_ = true;
    waiters_.wake_all();
  }
  void reset() noexcept { set_ = false; }
  // Result<void>: ok once set, errc::cancelled if the waiting task was cancelled.
  Task<Result<void>> wait();

 private:
  bool set_ = false;
  WaitQueue waiters_;
};

// FIFO async mutex.
class Mutex {
 public:
  class Guard {
   public:
    Guard() noexcept = default;
    explicit Guard(Mutex* m) noexcept : m_(m) {}
    Guard(Guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    Guard& operator=(Guard&& o) noexcept {
      if (this != &o) {
        release();
        m_ = std::exchange(o.m_, nullptr);
      }
      return *this;
    }
    ~Guard() { release(); }
    void release() noexcept {
      if (m_) std::exchange(m_, nullptr)->unlock();
    }

   private:
    Mutex* m_ = nullptr;
  };

  bool try_lock() noexcept {
    if (locked_) return false;
    locked_ = true;
    return true;
  }
  Task<Result<Guard>> lock();
  void unlock() noexcept;
  bool locked() const noexcept { return locked_; }

 private:
  bool locked_ = false;
  bool handoff_ = false;  // unlock() passed ownership to the next waiter
  WaitQueue waiters_;
};

// Bounded multi-producer multi-consumer channel. send() waits while full; recv() waits while
// empty. After close(), send() fails with errc::closed and recv() drains what is left, then
// fails with errc::closed.
template <class T>
class Channel {
 public:
  explicit Channel(std::size_t capacity) : capacity_(capacity ? capacity : 1) {}

  Task<Result<void>> send(T value) {
    while (!closed_ && items_.size() >= capacity_) {
      bool woken = co_await not_full_.wait();
      if (!woken) co_return errc::cancelled;
    }
    if (closed_) co_return errc::closed;
    items_.push_back(std::move(value));
    not_empty_.wake_one();
    co_return Result<void>{};
  }

  // Never waits: false when full or closed.
  bool try_send(T& value) {
    if (closed_ || items_.size() >= capacity_) return false;
    items_.push_back(std::move(value));
    not_empty_.wake_one();
    return true;
  }

  Task<Result<T>> recv() {
    while (items_.empty() && !closed_) {
      bool woken = co_await not_empty_.wait();
      if (!woken) co_return errc::cancelled;
    }
    if (items_.empty()) co_return errc::closed;
    T v = std::move(items_.front());
    items_.pop_front();
    not_full_.wake_one();
    co_return v;
  }

  std::optional<T> try_recv() {
    if (items_.empty()) return std::nullopt;
    T v = std::move(items_.front());
    items_.pop_front();
    not_full_.wake_one();
    return v;
  }

  void close() noexcept {
    closed_ = true;
    not_empty_.wake_all();
    not_full_.wake_all();
  }
  bool closed() const noexcept { return closed_; }
  std::size_t size() const noexcept { return items_.size(); }

 private:
  std::size_t capacity_;
  bool closed_ = false;
  std::deque<T> items_;
  WaitQueue not_empty_;
  WaitQueue not_full_;
};

}  // namespace vtunnel
