#pragma once
// Reconnect delays: exponential from `min` to `max`, with random jitter so that many clients cut
// off at the same moment (a server restart) do not come back in lockstep (thundering herd).
//
//   Duration current = min;
//   Duration delay = jittered_backoff(current, min, max, rng);   // then current doubles
//
// Below the cap a delay is current + up to 25 %; once the cap is reached it lies in
// [max - 25 %, max]. A delay is never below `min` nor above `max` (min == max: no jitter).
#include <random>

#include "core/loop.hpp"

namespace vtunnel {

Duration jittered_backoff(Duration& current, Duration min, Duration max, std::mt19937_64& rng);

}  // namespace vtunnel
