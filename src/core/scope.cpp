#include "core/scope.hpp"

#include <cstdio>
#include <cstdlib>

namespace vtunnel {

// A child is a small self-destroying coroutine that awaits the spawned task under its own
// StopState (linked to the scope's) and reports to the scope when it ends. That StopState
// lives in the coroutine's promise: one small allocation per spawned task.
struct Scope::Child {
  struct promise_type {
    Scope* scope = nullptr;
    StopState stop;
    explicit promise_type(Task<void>& task) noexcept { task.set_stop_state(&stop); }
    Child get_return_object() noexcept { return Child{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        Scope* s = h.promise().scope;
        h.destroy();  // frees the runner frame (and the spawned Task it owned)
        s->child_done();
      }
      void await_resume() const noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    // The spawned task's exception: kept for join() (the first one).
    void unhandled_exception() noexcept {
      if (!scope->first_error_) scope->first_error_ = std::current_exception();
    }
  };
  std::coroutine_handle<promise_type> handle;

  static Child run(Task<void> task);
};

Scope::Child Scope::Child::run(Task<void> task) { co_await std::move(task); }

Scope::~Scope() {
  if (count_ != 0) {
    std::fprintf(stderr, "vtunnel: Scope destroyed with %zu running children (missing join)\n", count_);
    std::abort();
  }
}

void Scope::spawn(Task<void> task) {
  auto h = Child::run(std::move(task)).handle;
  h.promise().scope = this;
  h.promise().stop.link(&stop_);
  ++count_;
  Loop::current().schedule(h);
}

void Scope::child_done() noexcept {
  if (--count_ == 0 && joiner_) {
    auto j = joiner_;
    joiner_ = {};
    Loop::current().schedule(j);
  }
}

void Scope::JoinAwaiter::await_resume() {
  if (stop_) stop_->clear_current(this);
  if (scope_.first_error_) {
    auto e = scope_.first_error_;
    scope_.first_error_ = nullptr;
    std::rethrow_exception(e);
  }
}

}  // namespace vtunnel
