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
// The streams are taken by reference: the caller keeps them alive until the task completes
// (awaiting it directly is the normal use).
#include <cstddef>
#include <cstdint>
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

Task<RelayStats> relay(Stream& a, Stream& b, RelayOptions options = {});

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
