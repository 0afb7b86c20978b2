#pragma once
// Signals as an awaitable: the signals are blocked for the process (call block() in main before
// any thread starts, so every thread inherits the mask) and read from a signalfd through the
// ring.
//   SignalSet signals({SIGINT, SIGTERM});
//   int signo = *co_await signals.wait();
#include <initializer_list>

#include "core/result.hpp"
#include "core/task.hpp"

namespace vtunnel {

class SignalSet {
 public:
  explicit SignalSet(std::initializer_list<int> signals);
  ~SignalSet();
  SignalSet(const SignalSet&) = delete;
  SignalSet& operator=(const SignalSet&) = delete;

  // Blocks `signals` in the calling thread (threads created afterwards inherit it).
  static void block(std::initializer_list<int> signals);

  // The next signal delivered (its number), or errc::cancelled.
  Task<Result<int>> wait();

 private:
  int fd_ = -1;
};

}  // namespace vtunnel
