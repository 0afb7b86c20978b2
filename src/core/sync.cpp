#include "core/sync.hpp"

#include "core/timer.hpp"

namespace vtunnel {

void WaitQueue::push(Waiter* w) noexcept {
  w->queued_ = true;
  w->next_ = nullptr;
  w->prev_ = tail_;
  if (tail_) tail_->next_ = w;
  else head_ = w;
  tail_ = w;
}

void WaitQueue::remove(Waiter* w) noexcept {
  if (!w->queued_) return;
  if (w->prev_) w->prev_->next_ = w->next_;
  else head_ = w->next_;
  if (w->next_) w->next_->prev_ = w->prev_;
  else tail_ = w->prev_;
  w->queued_ = false;
  w->next_ = w->prev_ = nullptr;
}

bool WaitQueue::wake_one() noexcept {
  Waiter* w = head_;
  if (!w) return false;
  remove(w);
  Loop::current().schedule(w->handle_);
  return true;
}

void WaitQueue::wake_all() noexcept {
  while (wake_one()) {
  }
}

void WaitQueue::Waiter::cancel() noexcept {
  if (!queued_) return;  // already woken; it will resume normally
  queue_->remove(this);
  cancelled_ = true;
  Loop::current().schedule(handle_);
}

Task<Result<void>> Event::wait() {
  while (!set_) {
    bool woken = co_await waiters_.wait();
    if (!woken) co_return errc::cancelled;
  }
  co_return Result<void>{};
}

Task<Result<Mutex::Guard>> Mutex::lock() {
  if (!locked_) {
    locked_ = true;
    co_return Guard(this);
  }
  for (;;) {
    bool woken = co_await waiters_.wait();
    if (!woken) co_return errc::cancelled;
    if (handoff_) {
      handoff_ = false;
      co_return Guard(this);
    }
  }
}

void Mutex::unlock() noexcept {
  if (waiters_.wake_one()) {
    handoff_ = true;  // stays locked: ownership passes to the woken waiter
  } else {
    locked_ = false;
  }
}

namespace {
Task<Result<void>> woken(WaitQueue& q) {
  bool w = co_await q.wait();
  if (!w) co_return errc::cancelled;
  co_return Result<void>{};
}
}  // namespace

Task<Result<void>> wait_until(WaitQueue& q, TimePoint deadline) {
  const TimePoint now = Clock::now();
  if (now >= deadline) co_return errc::timed_out;
  co_return co_await with_timeout(woken(q), deadline - now);
}

}  // namespace vtunnel
