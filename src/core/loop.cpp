#include "core/loop.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace vtunnel {
namespace {
thread_local Loop* t_current = nullptr;
}

// The eventfd read kept pending in the ring so post() from another thread wakes the loop.
class Loop::Wakeup final : public Completion {
 public:
  explicit Wakeup(Loop& loop) : loop_(loop) {}
  void on_cqe(int, std::uint32_t) noexcept override {
    loop_.wake_armed_ = false;
    loop_.drain_posted();
  }

 private:
  Loop& loop_;
};

Loop::Loop(LoopOptions options) {
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
            IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
  p.cq_entries = options.cq_entries;
  int rc = io_uring_queue_init_params(options.sq_entries, &ring_, &p);
  if (rc == -EINVAL) {
    // Older kernels: no DEFER_TASKRUN / SINGLE_ISSUER. Correct, a little slower.
    p = {};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = options.cq_entries;
    rc = io_uring_queue_init_params(options.sq_entries, &ring_, &p);
  } else if (rc == 0) {
    defer_taskrun_ = true;
  }
  if (rc < 0) {
    throw std::system_error(-rc, std::system_category(),
                            "io_uring_queue_init (is io_uring disabled? see /proc/sys/kernel/io_uring_disabled)");
  }
  poster_ = std::make_shared<Poster>();
  poster_->fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (poster_->fd_ < 0) {
    int e = errno;
    io_uring_queue_exit(&ring_);  // poster_ keeps fd -1: posts are refused
    throw std::system_error(e, std::system_category(), "eventfd");
  }
  wakeup_ = new Wakeup(*this);
  previous_current_ = t_current;
  t_current = this;
  ready_.reserve(256);
  running_.reserve(256);
}

Loop::~Loop() {
  // Services first: they may unregister resources from the ring.
  while (!services_.empty()) services_.pop_back();
  // Cancel the pending eventfd read and reap until it is gone, so the kernel never writes into
  // freed memory.
  if (wake_armed_) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(static_cast<Completion*>(wakeup_)), 0);
    io_uring_sqe_set_data(sqe, nullptr);
    while (wake_armed_) {
      io_uring_submit_and_wait(&ring_, 1);
      reap();
    }
  }
  delete wakeup_;
  {
    std::lock_guard lock(poster_->mutex_);
    ::close(poster_->fd_);
    poster_->fd_ = -1;
    poster_->queue_.clear();
  }
  io_uring_queue_exit(&ring_);
  if (t_current == this) t_current = previous_current_;
}

Loop& Loop::current() noexcept { return *t_current; }
Loop* Loop::current_or_null() noexcept { return t_current; }

io_uring_sqe* Loop::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (!sqe) {
    // SQ full: hand what we have to the kernel and retry.
    int rc = io_uring_submit(&ring_);
    ++submits_;
    if (rc < 0 && rc != -EBUSY && rc != -EAGAIN && rc != -EINTR) {
      throw std::system_error(-rc, std::system_category(), "io_uring_submit");
    }
    if (rc == -EBUSY || rc == -EAGAIN) {
      // CQ overflow backlog: reap to make room.
      io_uring_get_events(&ring_);
      reap();
    }
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void Loop::run() {
  run_until([] { return false; });
}

void Loop::run_until(const std::function<bool()>& done) {
  Loop* saved = t_current;
  t_current = this;
  stop_requested_ = false;
  while (!stop_requested_ && !done()) {
    ++turns_;
    run_ready();
    fire_timers();
    if (!wake_armed_) arm_wakeup();
    // Never block once the goal is reached (or stop() was called) in this turn.
    submit_and_wait(!stop_requested_ && !done());
    reap();
  }
  t_current = saved;
}

void Loop::run_ready() {
  // Coroutines woken by the ones just resumed (a relay waking the write pump, the read pump
  // waking a relay) run in this turn too, so their SQEs share this turn's io_uring_enter.
  // Bounded, so a ping-pong of wakeups cannot keep the loop from the kernel.
  for (int pass = 0; pass < kRunPasses && !ready_.empty(); ++pass) {
    running_.swap(ready_);
    for (std::size_t i = 0; i < running_.size(); ++i) running_[i].resume();
    running_.clear();
  }
}

void Loop::submit_and_wait(bool may_block) {
  int rc;
  if (!ready_.empty() || !may_block) {
    rc = io_uring_submit_and_get_events(&ring_);  // never block: work is waiting
  } else if (!timers_.empty()) {
    auto now = Clock::now();
    auto wait = timers_[0]->deadline > now ? timers_[0]->deadline - now : Duration::zero();
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
    if (ns <= 0) {
      rc = io_uring_submit_and_get_events(&ring_);
    } else {
      __kernel_timespec ts{};
      ts.tv_sec = ns / 1000000000;
      ts.tv_nsec = ns % 1000000000;
      io_uring_cqe* cqe = nullptr;
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
  } else {
    rc = io_uring_submit_and_wait(&ring_, 1);
  }
  ++submits_;
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
    throw std::system_error(-rc, std::system_category(), "io_uring_enter");
  }
}

void Loop::reap() {
  io_uring_cqe* cqe;
  unsigned head;
  unsigned count = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++count;
    auto* c = reinterpret_cast<Completion*>(io_uring_cqe_get_data(cqe));
    if (c) c->on_cqe(cqe->res, cqe->flags);
  }
  io_uring_cq_advance(&ring_, count);
}

void Loop::arm_wakeup() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, poster_->fd_, &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data(sqe, static_cast<Completion*>(wakeup_));
  wake_armed_ = true;
}

bool Loop::Poster::post(std::function<void()> fn) {
  std::lock_guard lock(mutex_);
  if (fd_ < 0) return false;
  queue_.push_back(std::move(fn));
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
  return true;
}

void Loop::drain_posted() {
  {
    std::lock_guard lock(poster_->mutex_);
    posted_running_.swap(poster_->queue_);
  }
  for (auto& fn : posted_running_) fn();
  posted_running_.clear();
}

// ---- timers: a binary min-heap of TimerNode*, each node knowing its index -------------------

void Loop::arm_timer(TimerNode& t, TimePoint deadline) {
  if (t.armed()) cancel_timer(t);
  t.deadline = deadline;
  t.heap_index = timers_.size();
  timers_.push_back(&t);
  heap_up(t.heap_index);
}

void Loop::cancel_timer(TimerNode& t) noexcept {
  if (!t.armed()) return;
  std::size_t i = t.heap_index;
  std::size_t last = timers_.size() - 1;
  if (i != last) {
    heap_swap(i, last);
  }
  timers_.pop_back();
  t.heap_index = TimerNode::kNotArmed;
  if (i < timers_.size()) {
    heap_down(i);
    heap_up(i);
  }
}

void Loop::fire_timers() {
  if (timers_.empty()) return;
  auto now = Clock::now();
  while (!timers_.empty() && timers_[0]->deadline <= now) {
    TimerNode* t = timers_[0];
    cancel_timer(*t);
    t->fire(t);
  }
}

void Loop::heap_swap(std::size_t a, std::size_t b) noexcept {
  std::swap(timers_[a], timers_[b]);
  timers_[a]->heap_index = a;
  timers_[b]->heap_index = b;
}

void Loop::heap_up(std::size_t i) noexcept {
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (timers_[parent]->deadline <= timers_[i]->deadline) break;
    heap_swap(i, parent);
    i = parent;
  }
}

void Loop::heap_down(std::size_t i) noexcept {
  for (;;) {
    std::size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < timers_.size() && timers_[l]->deadline < timers_[m]->deadline) m = l;
    if (r < timers_.size() && timers_[r]->deadline < timers_[m]->deadline) m = r;
    if (m == i) break;
    heap_swap(i, m);
    i = m;
  }
}

}  // namespace vtunnel
