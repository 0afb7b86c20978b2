#include "ws/mask.hpp"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VTUNNEL_MASK_AVX2 1
#endif

namespace vtunnel::ws {

#ifdef VTUNNEL_MASK_AVX2
namespace {
// 128 bytes per round with 256-bit XORs: about 2x the SSE2 loop, which GCC 12 also slows with
// stack round trips. Chosen at run time, so the binary still runs on CPUs without AVX2.
__attribute__((target("avx2"))) std::size_t mask_avx2(std::uint8_t* p, std::size_t n, std::uint64_t word_key) noexcept {
  const __m256i k = _mm256_set1_epi64x(static_cast<long long>(word_key));
  std::size_t done = 0;
  for (; n - done >= 128; done += 128) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + done));
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + done + 32));
    __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + done + 64));
    __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + done + 96));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + done), _mm256_xor_si256(a, k));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + done + 32), _mm256_xor_si256(b, k));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + done + 64), _mm256_xor_si256(c, k));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + done + 96), _mm256_xor_si256(d, k));
  }
  for (; n - done >= 32; done += 32) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + done));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + done), _mm256_xor_si256(a, k));
  }
  return done;  // a multiple of 8: the key phase is unchanged
}

const bool g_has_avx2 = __builtin_cpu_supports("avx2");
}  // namespace
#endif

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
#ifdef VTUNNEL_MASK_AVX2
  if (g_has_avx2 && n >= 64) {
    std::size_t done = mask_avx2(p, n, word_key);
    p += done;
    n -= done;
  }
#endif
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
