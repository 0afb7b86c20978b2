#include "core/op.hpp"

#include <chrono>

namespace vtunnel {

void IoOpBase::set_timeout(Duration d) noexcept {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  timeout_.tv_sec = ns / 1000000000;
  timeout_.tv_nsec = ns % 1000000000;
  has_timeout_ = true;
}

bool IoOpBase::suspend(std::coroutine_handle<> h, StopState* stop) {
  stop_ = stop;
  if (stop_ && stop_->stop_requested()) {
    res_ = -ECANCELED;
    return false;  // resume at once; nothing was submitted
  }
  Loop& loop = Loop::current();
  if (has_timeout_ && io_uring_sq_space_left(loop.ring()) < 2) {
    // A link must not be split across two submissions.
    io_uring_submit(loop.ring());
  }
  io_uring_sqe* sqe = loop.get_sqe();
  prepare(sqe);
  io_uring_sqe_set_data(sqe, static_cast<Completion*>(this));
  pending_cqes_ = 1;
  if (has_timeout_) {
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe* tsqe = loop.get_sqe();
    io_uring_prep_link_timeout(tsqe, &timeout_, 0);
    timeout_completion_.op = this;
    io_uring_sqe_set_data(tsqe, static_cast<Completion*>(&timeout_completion_));
    pending_cqes_ = 2;
  }
  waiter_ = h;
  if (stop_) stop_->set_current(this);
  return true;
}

void IoOpBase::on_cqe(int res, std::uint32_t flags) noexcept {
  res_ = res;
  flags_ = flags;
  one_cqe_done();
}

void IoOpBase::TimeoutCompletion::on_cqe(int res, std::uint32_t) noexcept {
  if (res == -ETIME) op->timed_out_ = true;
  op->one_cqe_done();
}

void IoOpBase::one_cqe_done() noexcept {
  if (--pending_cqes_ == 0) Loop::current().schedule(waiter_);
}

void IoOpBase::cancel() noexcept {
  Loop& loop = Loop::current();
  io_uring_sqe* sqe = loop.get_sqe();
  io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(static_cast<Completion*>(this)), 0);
  io_uring_sqe_set_data(sqe, nullptr);
}

}  // namespace vtunnel
