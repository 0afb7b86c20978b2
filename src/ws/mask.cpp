#include "ws/mask.hpp"

#include <cstdint>
#include <cstring>

namespace vtunnel::ws {

std::size_t apply_mask(MutableByteSpan data, const MaskKey& key, std::size_t phase) noexcept {
  phase &= 3;
  // The key rotated to the current phase, repeated over 8 bytes in memory order, so whole
  // 64-bit words can be XORed whatever the alignment of the buffer.
  std::uint8_t pattern[8];
  for (std::size_t i = 0; i < 8; ++i) pattern[i] = key[(phase + i) & 3];
  std::uint64_t word_key;
  std::memcpy(&word_key, pattern, 8);

  std::uint8_t* p = data.data();
  std::size_t n = data.size();
  while (n >= 32) {  // four independent words per round: the compiler vectorises this
    std::uint64_t w[4];
    std::memcpy(w, p, 32);
    w[0] ^= word_key;
    w[1] ^= word_key;
    w[2] ^= word_key;
    w[3] ^= word_key;
    std::memcpy(p, w, 32);
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= word_key;
    std::memcpy(p, &w, 8);
    p += 8;
    n -= 8;
  }
  for (std::size_t i = 0; i < n; ++i) p[i] ^= pattern[i];  // 8 is a multiple of 4: phase kept
  return (phase + data.size()) & 3;
}

}  // namespace vtunnel::ws
