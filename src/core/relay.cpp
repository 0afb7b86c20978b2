#include "core/relay.hpp"

#include <memory>

#include "core/error.hpp"
#include "core/scope.hpp"
#include "core/timer.hpp"

namespace vtunnel {

namespace {

// Shared by the two directions and the idle watchdog; lives in relay()'s frame, which
// outlives all three (it joins them).
struct RelayState {
  RelayOptions options;
  Scope directions;
  TimePoint last_activity;
  RelayStats stats;
  bool idle_fired = false;

  void fail(std::error_code ec) noexcept {
    if (!stats.error) stats.error = ec;
    directions.cancel();
  }
};

Task<void> copy_one_way(RelayState& state, Stream& from, Stream& to, std::uint64_t& counter,
                        metrics::Counter* live) {
  std::size_t size = state.options.buffer_size == 0 ? 1 : state.options.buffer_size;
  auto buffer = std::make_unique_for_overwrite<std::uint8_t[]>(size);
  for (;;) {
    auto n = co_await from.read_some(MutableByteSpan(buffer.get(), size));
    if (!n) {
      if (n.error() == errc::eof) {
        auto shut = co_await to.shutdown_write();
        if (!shut) state.fail(shut.error());
      } else if (n.error() != errc::cancelled) {
        state.fail(n.error());
      }
      co_return;
    }
    state.last_activity = Clock::now();
    auto w = co_await to.write_all(ByteSpan(buffer.get(), *n));
    if (!w) {
      if (w.error() != errc::cancelled) state.fail(w.error());
      co_return;
    }
    counter += *n;
    if (live) live->inc(*n);
    state.last_activity = Clock::now();
  }
}

// Sleeps until the last activity plus the idle timeout; re-arms while bytes keep moving.
Task<void> idle_watchdog(RelayState& state) {
  for (;;) {
    auto slept = co_await sleep_until(state.last_activity + state.options.idle_timeout);
    if (!slept) co_return;  // the directions ended first
    if (Clock::now() - state.last_activity >= state.options.idle_timeout) {
      state.idle_fired = true;
      state.directions.cancel();
      co_return;
    }
  }
}

}  // namespace

Task<RelayStats> relay(Stream& a, Stream& b, RelayOptions options) {
  RelayState state;
  state.options = options;
  state.last_activity = Clock::now();
  state.directions.spawn(copy_one_way(state, a, b, state.stats.a_to_b, options.count_a_to_b));
  state.directions.spawn(copy_one_way(state, b, a, state.stats.b_to_a, options.count_b_to_a));
  Scope watchdog;
  if (options.idle_timeout > Duration::zero()) watchdog.spawn(idle_watchdog(state));

  // If the awaiting task is cancelled, join() cancels the directions and still waits.
  co_await state.directions.join();
  StopState* stop = co_await current_stop_state();
  watchdog.cancel();
  co_await watchdog.join();

  if (state.stats.error) {
    state.stats.end = RelayEnd::error;
  } else if (state.idle_fired) {
    state.stats.end = RelayEnd::idle;
  } else if (stop && stop->stop_requested()) {
    state.stats.end = RelayEnd::cancelled;
  }
  a.close();
  b.close();
  co_return state.stats;
}

}  // namespace vtunnel
