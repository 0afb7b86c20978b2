#pragma once
// IoOp: the awaitable for one io_uring operation. It submits one SQE (plus a linked timeout
// when asked) and resumes the awaiting coroutine from the loop once every CQE it produced has
// been reaped, so the op state (this object, living in the coroutine frame) outlives the
// kernel's use of it. Cancelling submits IORING_OP_ASYNC_CANCEL and still waits for the
// original CQE, which may be -ECANCELED or a real result that won the race.
#include <cerrno>
#include <coroutine>
#include <cstdint>

#include "core/loop.hpp"
#include "core/stop.hpp"
#include "core/task.hpp"

namespace vtunnel {

class IoOpBase : public Completion, public Cancellable {
 public:
  IoOpBase() = default;
  IoOpBase(const IoOpBase&) = delete;
  IoOpBase& operator=(const IoOpBase&) = delete;

  bool await_ready() const noexcept { return false; }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    return suspend(h, detail::stop_state_of(h));
  }

  // The CQE result: >= 0 on success, -errno on failure. A linked timeout that fired turns
  // -ECANCELED into -ETIMEDOUT.
  int await_resume() noexcept {
    if (stop_) stop_->clear_current(this);
    if (timed_out_ && res_ == -ECANCELED) return -ETIMEDOUT;
    return res_;
  }
  std::uint32_t cqe_flags() const noexcept { return flags_; }

  void on_cqe(int res, std::uint32_t flags) noexcept override;
  void cancel() noexcept override;

 protected:
  virtual void prepare(io_uring_sqe* sqe) noexcept = 0;
  void set_timeout(Duration d) noexcept;
  ~IoOpBase() = default;

 private:
  // Receives the linked timeout's CQE.
  struct TimeoutCompletion final : Completion {
    IoOpBase* op = nullptr;
    void on_cqe(int res, std::uint32_t flags) noexcept override;
  };

  bool suspend(std::coroutine_handle<> h, StopState* stop);
  void one_cqe_done() noexcept;

  std::coroutine_handle<> waiter_;
  StopState* stop_ = nullptr;
  int res_ = 0;
  std::uint32_t flags_ = 0;
  int pending_cqes_ = 0;
  bool has_timeout_ = false;
  bool timed_out_ = false;
  __kernel_timespec timeout_{};
  TimeoutCompletion timeout_completion_;
};

// io_op(prep) / io_op(prep, timeout): await the result of the SQE that `prep` fills.
template <class Prep>
class IoOp final : public IoOpBase {
 public:
  explicit IoOp(Prep prep) : prep_(std::move(prep)) {}
  IoOp(Prep prep, Duration timeout) : prep_(std::move(prep)) {
    if (timeout > Duration::zero()) set_timeout(timeout);
  }

 private:
  void prepare(io_uring_sqe* sqe) noexcept override { prep_(sqe); }
  Prep prep_;
};

template <class Prep>
IoOp<Prep> io_op(Prep prep) {
  return IoOp<Prep>(std::move(prep));
}
template <class Prep>
IoOp<Prep> io_op(Prep prep, Duration timeout) {
  return IoOp<Prep>(std::move(prep), timeout);
}

}  // namespace vtunnel
