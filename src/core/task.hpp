#pragma once
// Task<T>: a lazy coroutine. Nothing runs until it is awaited (or handed to a Scope / sync_wait);
// the frame belongs to the Task object and is destroyed with it. Completion symmetric-transfers
// to the awaiting coroutine, so long chains of co_await do not grow the stack. Exceptions
// propagate to the awaiter. The awaiter's StopState is inherited, so cancelling a task
// cancels whatever leaf operation it is suspended in, however deep.
//
// GCC 12 miscompiles co_await inside an if/while/switch condition or a ternary (and so inside
// Catch2's REQUIRE): write `auto r = co_await x; if (r) ...`. scripts/lint.py (a ctest test)
// rejects the pattern.
#include <coroutine>
#include <exception>
#include <utility>
#include <variant>

#include "core/frame_pool.hpp"
#include "core/stop.hpp"

namespace vtunnel {

template <class T = void>
class Task;

namespace detail {

struct PromiseBase {
  std::coroutine_handle<> continuation = std::noop_coroutine();
  StopState* stop = nullptr;

  // Frames come from a per-thread cache (core/frame_pool.hpp).
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { free_frame(p, size); }

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      return h.promise().continuation;
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
};

// The StopState of the coroutine `h` if it is one of ours, else nullptr.
template <class P>
StopState* stop_state_of(std::coroutine_handle<P> h) noexcept {
  if constexpr (std::is_base_of_v<PromiseBase, P>) {
    return h.promise().stop;
  } else {
    (void)h;
    return nullptr;
  }
}

template <class T>
struct TaskPromise : PromiseBase {
  std::variant<std::monostate, T, std::exception_ptr> result;

  Task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& value) {
    result.template emplace<1>(std::forward<U>(value));
  }
  void unhandled_exception() noexcept { result.template emplace<2>(std::current_exception()); }

  T take() {
    if (result.index() == 2) std::rethrow_exception(std::get<2>(result));
    return std::move(std::get<1>(result));
  }
};

template <>
struct TaskPromise<void> : PromiseBase {
  std::exception_ptr error;

  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void unhandled_exception() noexcept { error = std::current_exception(); }
  void take() {
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using handle_type = std::coroutine_handle<promise_type>;
  using value_type = T;

  Task() noexcept = default;
  explicit Task(handle_type h) noexcept : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  bool valid() const noexcept { return bool(h_); }
  bool done() const noexcept { return h_ && h_.done(); }

  // Runs the task under `stop` instead of the awaiter's StopState (used by with_timeout and
  // Scope, which give their children a StopState of their own).
  void set_stop_state(StopState* stop) noexcept { h_.promise().stop = stop; }

  struct Awaiter {
    handle_type h;
    bool await_ready() const noexcept { return !h || h.done(); }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> caller) noexcept {
      h.promise().continuation = caller;
      if (!h.promise().stop) h.promise().stop = detail::stop_state_of(caller);
      return h;
    }
    T await_resume() { return h.promise().take(); }
  };
  Awaiter operator co_await() && noexcept { return Awaiter{h_}; }

  // For the runtime: the raw handle (Scope and sync_wait start tasks through it).
  handle_type handle() const noexcept { return h_; }
  handle_type release() noexcept { return std::exchange(h_, {}); }

 private:
  void reset() noexcept {
    if (h_) h_.destroy();
    h_ = {};
  }
  handle_type h_;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace vtunnel
