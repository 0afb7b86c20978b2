#pragma once
// relay(): copies bytes between two streams in both directions at once until both directions
// have ended. Half-close is real: EOF read from one side becomes shutdown_write() on the other,
// and the other direction goes on until its own EOF. An error on either side, the idle
// timeout (no byte moved either way for `idle_timeout`) or cancellation of the awaiting task
// ends both directions. When relay() returns, both streams have been closed.
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

struct RelayOptions {
  std::size_t buffer_size = 64 * 1024;  // per direction, allocated once
  Duration idle_timeout = Duration::zero();  // zero: no idle timeout
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

}  // namespace vtunnel
