#include "tunnel/backoff.hpp"

#include <algorithm>

namespace vtunnel {

Duration jittered_backoff(Duration& current, Duration min, Duration max, std::mt19937_64& rng) {
  using std::chrono::milliseconds;
  if (max < min) max = min;
  Duration base = std::clamp(current, min, max);
  current = std::min(base * 2, max);
  auto spread = std::chrono::duration_cast<milliseconds>(base / 4).count();
  milliseconds jitter(spread > 0 ? std::uniform_int_distribution<long>(0, spread)(rng) : 0);
  Duration delay = base + jitter;
  if (delay > max) {
    // At the cap: jitter downwards, else every client would wait exactly `max`.
    auto room = std::chrono::duration_cast<milliseconds>(std::min<Duration>(max / 4, max - min)).count();
    delay = max - milliseconds(room > 0 ? std::uniform_int_distribution<long>(0, room)(rng) : 0);
  }
  return std::clamp(delay, min, max);
}

}  // namespace vtunnel
