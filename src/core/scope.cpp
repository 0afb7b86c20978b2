#include "core/scope.hpp"

#include <cstdio>
#include <cstdlib>

namespace vtunnel {

// A child is a small self-destroying coroutine that awaits the spawned task under its own
// StopState (linked to the scope's) and reports to the scope when it ends.
struct Scope::Child {
  struct promise_type;
  struct Runner {
    using promise_type = Child::promise_type;
    std::coroutine_handle<promise_type> handle;
  };
  struct promise_type {
    Child* child = nullptr;
    Runner get_return_object() noexcept {
      return Runner{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        Child* c = h.promise().child;
        h.destroy();  // frees the runner frame (and the spawned Task it owned)
        c->scope->child_done(c);
      }
      void await_resume() const noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // run() catches everything
  };

  Scope* scope = nullptr;
  StopState stop;
  Child* next = nullptr;
  Child* prev = nullptr;

  static Runner run(Child* self, Task<void> task) {
    try {
      task.set_stop_state(&self->stop);
      co_await std::move(task);
    } catch (...) {
      if (!self->scope->first_error_) self->scope->first_error_ = std::current_exception();
    }
  }
};

Scope::~Scope() {
  if (count_ != 0) {
    std::fprintf(stderr, "vtunnel: Scope destroyed with %zu running children (missing join)\n", count_);
    std::abort();
  }
}

void Scope::spawn(Task<void> task) {
  auto* c = new Child;
  c->scope = this;
  c->stop.link(&stop_);
  c->next = children_;
  if (children_) children_->prev = c;
  children_ = c;
  ++count_;
  auto h = Child::run(c, std::move(task)).handle;
  h.promise().child = c;
  Loop::current().schedule(h);
}

void Scope::child_done(Child* c) noexcept {
  if (c->prev) c->prev->next = c->next;
  else children_ = c->next;
  if (c->next) c->next->prev = c->prev;
  delete c;
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
