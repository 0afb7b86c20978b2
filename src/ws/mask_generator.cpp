#include "ws/mask_generator.hpp"

#include <botan/chacha_rng.h>
#include <botan/system_rng.h>

#include <cstring>

namespace vtunnel::ws {

MaskGenerator::MaskGenerator() : rng_(std::make_unique<Botan::ChaCha_RNG>(Botan::system_rng())) {}

MaskGenerator::MaskGenerator(ByteSpan fixed_seed)
    : rng_(std::make_unique<Botan::ChaCha_RNG>(
          Botan::secure_vector<std::uint8_t>(fixed_seed.begin(), fixed_seed.end()))) {}

MaskGenerator::MaskGenerator(MaskGenerator&&) noexcept = default;
MaskGenerator& MaskGenerator::operator=(MaskGenerator&&) noexcept = default;
MaskGenerator::~MaskGenerator() = default;

MaskKey MaskGenerator::next() {
  if (used_ + 4 > kBatch) {
    rng_->randomize(batch_.data(), batch_.size());
    used_ = 0;
  }
  MaskKey key;
  std::memcpy(key.data(), batch_.data() + used_, 4);
  used_ += 4;
  return key;
}

void MaskGenerator::fill(MutableByteSpan out) { rng_->randomize(out.data(), out.size()); }

}  // namespace vtunnel::ws
