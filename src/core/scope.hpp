#pragma once
// Scope: structured concurrency. spawn() starts a task that the scope owns; cancel() stops
// every child (their pending leaves are cancelled); join() waits until every child has ended.
// A Scope must be joined before it is destroyed (the destructor checks). A child's exception
// is kept and rethrown by join() (the first one); the other children carry on.
//
//   Scope scope;
//   scope.spawn(serve(std::move(conn)));
//   ...
//   scope.cancel();
//   co_await scope.join();
#include <coroutine>
#include <cstddef>
#include <exception>

#include "core/loop.hpp"
#include "core/stop.hpp"
#include "core/task.hpp"

namespace vtunnel {

class Scope {
 public:
  Scope() = default;
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope();

  // Starts `task` on the current loop's next turn; the scope owns it until it ends.
  void spawn(Task<void> task);
  void cancel() noexcept { stop_.request_stop(); }
  bool cancelled() const noexcept { return stop_.stop_requested(); }
  std::size_t size() const noexcept { return count_; }

  // Waits for every child. If the awaiting task is cancelled, the children are cancelled and
  // join() still waits for them: nothing outlives the scope.
  class JoinAwaiter;
  JoinAwaiter join() noexcept;

 private:
  struct Child;
  friend struct Child;
  void child_done() noexcept;

  StopState stop_;
  std::size_t count_ = 0;
  std::coroutine_handle<> joiner_;
  std::exception_ptr first_error_;
  friend class JoinAwaiter;
};

class Scope::JoinAwaiter final : public Cancellable {
 public:
  explicit JoinAwaiter(Scope& s) noexcept : scope_(s) {}
  bool await_ready() const noexcept { return scope_.count_ == 0; }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) noexcept {
    stop_ = detail::stop_state_of(h);
    scope_.joiner_ = h;
    if (stop_) {
      if (stop_->stop_requested()) scope_.cancel();
      else stop_->set_current(this);
    }
  }
  void await_resume();
  void cancel() noexcept override { scope_.cancel(); }

 private:
  Scope& scope_;
  StopState* stop_ = nullptr;
};

inline Scope::JoinAwaiter Scope::join() noexcept { return JoinAwaiter(*this); }

}  // namespace vtunnel
