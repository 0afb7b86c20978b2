#pragma once
// relay(): copies bytes between two streams in both directions at once until both directions
// have ended. Half-close is real: EOF read from one side becomes shutdown_write() on the other,
// and the other direction goes on until its own EOF. An error on either side, the idle
// timeout (no byte moved either way for `idle_timeout`) or cancellation of the awaiting task
// ends both directions. When relay() returns, both streams have been closed.
//
// Buffers exist only while data moves: a direction waits for readability holding no buffer
// (TCP: a recv into the loop's provided-buffer ring, where the kernel picks a buffer when data
// arrives; other streams: Stream::wait_readable(), then a buffer from the loop's pool), and
// gives the buffer back as soon as the bytes are written. An idle relay holds no buffer.
//
// The streams are taken by reference: the caller keeps them alive until the relay completes.
// relay() returns an awaitable, not a Task: await it at once (`co_await relay(a, b, o)`). Its
// state lives in the awaiting coroutine's frame, so a relay has no frame of its own (an idle
// connection costs that much less); it cannot be moved, stored or spawned.
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <system_error>

#include "core/loop.hpp"
#include "core/metrics.hpp"
#include "core/stream.hpp"
#include "core/task.hpp"

namespace vtunnel {

inline constexpr std::size_t kRelayBufferSize = 255 * 1024;

struct RelayOptions {
  std::size_t buffer_size = kRelayBufferSize;  // per direction, held only while data moves
  Duration idle_timeout = Duration::zero();     // zero: no idle timeout
  // Live byte counters (metrics), bumped once per chunk written; must outlive the relay.
  metrics::Counter* count_a_to_b = nullptr;
  metrics::Counter* count_b_to_a = nullptr;
};

enum class RelayEnd {
  completed,  // both directions reached EOF
  error,      // a read, write or shutdown failed (see RelayStats::error)
  idle,       // nothing moved for idle_timeout
  cancelled,  // the awaiting task was cancelled
};

struct RelayStats {
  std::uint64_t a_to_b = 0;  // bytes written to b
  std::uint64_t b_to_a = 0;  // bytes written to a
  RelayEnd end = RelayEnd::completed;
  std::error_code error;  // the first failure, when end == RelayEnd::error
};

namespace detail {

struct RelayDirection {
  Stream& from;
  Stream& to;
  std::uint64_t& counter;
  metrics::Counter* live;
};

// Shared by the two directions; lives in the Relay awaitable, which outlives both (it joins
// them). The directions run as two tasks that the Relay starts and joins itself (no Scope: an
// idle relay holds no child bookkeeping on the heap), each under its own StopState linked to
// the awaiting task's. The idle timeout is a plain timer on the loop's heap, not a task.
struct RelayState {
  RelayState(const RelayOptions& o, Stream& a, Stream& b) noexcept
      : options(o), dirs{{a, b, stats.a_to_b, o.count_a_to_b}, {b, a, stats.b_to_a, o.count_b_to_a}} {}
  RelayState(const RelayState&) = delete;
  RelayState& operator=(const RelayState&) = delete;
  const RelayOptions& options;  // the Relay's copy
  TimePoint last_activity;
  RelayStats stats;
  RelayDirection dirs[2];
  StopState stops[2];
  std::coroutine_handle<> joiner;
  int running = 0;
  bool idle_fired = false;
  std::exception_ptr thrown;
  struct IdleTimer {
    TimerNode node;  // first member: TimerNode* converts back to IdleTimer*
    RelayState* self = nullptr;
  } idle;

  void cancel_directions() noexcept;
  void fail(std::error_code ec) noexcept;
  void direction_done() noexcept;
  static void on_idle_timer(TimerNode* t) noexcept;
};

}  // namespace detail

class [[nodiscard]] Relay {
 public:
  Relay(Stream& a, Stream& b, const RelayOptions& options);
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;
  ~Relay();

  bool await_ready() const noexcept { return false; }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) noexcept {
    start(h, detail::stop_state_of(h));
  }
  RelayStats await_resume();

 private:
  void start(std::coroutine_handle<> awaiting, StopState* stop) noexcept;

  RelayOptions options_;
  StopState* stop_ = nullptr;  // the awaiting task's
  detail::RelayState state_;
  Task<void> directions_[2];
};

inline Relay relay(Stream& a, Stream& b, RelayOptions options = {}) { return Relay(a, b, options); }

// The current loop's relay buffers (tests, benchmarks).
struct RelayBufferStats {
  std::size_t in_use = 0;           // held by relays now: pool buffers plus ring buffers
  std::size_t cached = 0;           // free pool buffers kept for reuse
  std::uint64_t acquired = 0;       // pool buffers handed out so far
  std::uint64_t ring_receives = 0;  // TCP receives that landed in a provided-buffer ring buffer
  std::uint64_t direct_sends = 0;     // chunks a producer sent straight to a waiting relay's socket
  std::uint64_t direct_receives = 0;  // TCP reads made straight into a channel's outgoing packet
  bool ring = false;                // this loop has the provided-buffer ring
};
RelayBufferStats relay_buffer_stats();

}  // namespace vtunnel
