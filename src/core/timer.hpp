#pragma once
// Timers and deadlines on the loop's timer heap (no SQE per timer).
//   co_await sleep_for(100ms)            -> Result<void> (errc::cancelled if stopped first)
//   co_await with_timeout(task, 5s)      -> the task's Result, or errc::timed_out: the task's
//                                           pending leaf is cancelled when the deadline passes
//                                           and with_timeout waits for it to finish.
#include <coroutine>

#include "core/error.hpp"
#include "core/loop.hpp"
#include "core/result.hpp"
#include "core/stop.hpp"
#include "core/task.hpp"

namespace vtunnel {

class SleepAwaiter final : public Cancellable {
 public:
  explicit SleepAwaiter(TimePoint deadline) noexcept : deadline_(deadline) {}
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  ~SleepAwaiter() {
    if (loop_) loop_->cancel_timer(node_.timer);
  }

  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    stop_ = detail::stop_state_of(h);
    if (stop_ && stop_->stop_requested()) {
      cancelled_ = true;
      return false;
    }
    loop_ = &Loop::current();
    waiter_ = h;
    node_.self = this;
    node_.timer.fire = &SleepAwaiter::on_fire;
    loop_->arm_timer(node_.timer, deadline_);
    if (stop_) stop_->set_current(this);
    return true;
  }
  Result<void> await_resume() noexcept {
    if (stop_) stop_->clear_current(this);
    if (cancelled_) return errc::cancelled;
    return {};
  }
  void cancel() noexcept override {
    if (fired_) return;  // already scheduled by the timer
    loop_->cancel_timer(node_.timer);
    cancelled_ = true;
    loop_->schedule(waiter_);
  }

 private:
  struct Node {
    TimerNode timer;  // first member: TimerNode* converts back to Node*
    SleepAwaiter* self = nullptr;
  };
  static void on_fire(TimerNode* t) noexcept {
    auto* self = reinterpret_cast<Node*>(t)->self;
    self->fired_ = true;
    self->loop_->schedule(self->waiter_);
  }

  TimePoint deadline_;
  Node node_;
  Loop* loop_ = nullptr;
  StopState* stop_ = nullptr;
  std::coroutine_handle<> waiter_;
  bool cancelled_ = false;
  bool fired_ = false;
};

inline SleepAwaiter sleep_until(TimePoint deadline) noexcept { return SleepAwaiter(deadline); }
inline SleepAwaiter sleep_for(Duration d) noexcept { return SleepAwaiter(Clock::now() + d); }

// co_await current_stop_state(): the StopState the awaiting task runs under (may be null).
struct CurrentStopState {
  StopState* stop = nullptr;
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    stop = detail::stop_state_of(h);
    return false;
  }
  StopState* await_resume() const noexcept { return stop; }
};
inline CurrentStopState current_stop_state() noexcept { return {}; }

namespace detail {
// Stops `target` when the timer fires.
struct DeadlineTimer {
  TimerNode timer;  // first member
  StopState* target = nullptr;
  bool fired = false;
  static void on_fire(TimerNode* t) noexcept {
    auto* self = reinterpret_cast<DeadlineTimer*>(t);
    self->fired = true;
    self->target->request_stop();
  }
};
}  // namespace detail

template <class T>
Task<Result<T>> with_timeout(Task<Result<T>> task, Duration timeout) {
  StopState child(co_await current_stop_state());
  detail::DeadlineTimer deadline;
  deadline.target = &child;
  deadline.timer.fire = &detail::DeadlineTimer::on_fire;
  Loop& loop = Loop::current();
  loop.arm_timer(deadline.timer, Clock::now() + timeout);
  task.set_stop_state(&child);
  Result<T> result = co_await std::move(task);
  loop.cancel_timer(deadline.timer);
  if (deadline.fired && !result.ok()) co_return errc::timed_out;
  co_return result;
}

}  // namespace vtunnel
