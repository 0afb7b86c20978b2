#pragma once
// Mask keys for client frames. RFC 6455 10.3 wants them unpredictable, so they come from a
// ChaCha20 DRBG seeded from the system RNG, drawn in batches (no syscall per frame).
#include <array>
#include <cstddef>
#include <memory>

#include "core/bytes.hpp"
#include "ws/frame.hpp"

namespace Botan {
class RandomNumberGenerator;
}

namespace vtunnel::ws {

class MaskGenerator {
 public:
  MaskGenerator();                               // seeded from the system RNG
  explicit MaskGenerator(ByteSpan fixed_seed);   // deterministic: tests only
  MaskGenerator(MaskGenerator&&) noexcept;
  MaskGenerator& operator=(MaskGenerator&&) noexcept;
  ~MaskGenerator();

  MaskKey next();
  // Fills `out` with random bytes (e.g. a handshake key).
  void fill(MutableByteSpan out);

 private:
  static constexpr std::size_t kBatch = 256;
  std::unique_ptr<Botan::RandomNumberGenerator> rng_;
  std::array<std::uint8_t, kBatch> batch_{};
  std::size_t used_ = kBatch;
};

}  // namespace vtunnel::ws
