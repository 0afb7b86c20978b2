#pragma once
// WriteGate: serialises the writers of one transport. A stream's own write side (at most one
// pending write, by the Stream contract) waits for its turn; its read side never waits: it
// only sends control bytes (pongs, close echoes, TLS alerts) when the gate is free, and
// otherwise leaves them for the current holder to flush before it releases.
//
// Hand-off resumes the waiting writer inline from release(). The waiter then starts its own
// transport write, which suspends on real I/O, so the nesting is one level deep. A waiting
// writer is not cancellable until the holder's write (which is) completes.
#include <coroutine>
#include <utility>

namespace vtunnel::ws::detail {

class WriteGate {
 public:
  bool busy() const noexcept { return busy_; }

  // Non-waiting acquire, for the read side.
  bool try_acquire() noexcept {
    if (busy_) return false;
    busy_ = true;
    return true;
  }

  struct Acquire {
    WriteGate* gate;
    bool await_ready() const noexcept { return gate->try_acquire(); }
    void await_suspend(std::coroutine_handle<> h) noexcept { gate->waiter_ = h; }
    void await_resume() const noexcept {}
  };
  // For the write side: at most one coroutine may wait at a time.
  Acquire acquire() noexcept { return Acquire{this}; }

  void release() noexcept {
    if (waiter_) {
      std::exchange(waiter_, {}).resume();  // ownership passes to the waiter: busy_ stays set
    } else {
      busy_ = false;
    }
  }

 private:
  bool busy_ = false;
  std::coroutine_handle<> waiter_{};
};

}  // namespace vtunnel::ws::detail
