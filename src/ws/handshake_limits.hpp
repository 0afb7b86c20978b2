#pragma once
#include <cstddef>

namespace vtunnel::ws {

// Largest HTTP request or response head (request line / status line + headers) we buffer.
inline constexpr std::size_t kDefaultMaxHeadSize = 8 * 1024;

struct HandshakeLimits {
  std::size_t max_head_size = kDefaultMaxHeadSize;
};

}  // namespace vtunnel::ws
