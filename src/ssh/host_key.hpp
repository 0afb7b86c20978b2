#pragma once
// Host and user keys: ssh-ed25519 (sign + verify) and ecdsa-sha2-nistp256 (sign + verify),
// as SSH public-key blobs and signature blobs (RFC 8709, RFC 5656).
#include <memory>
#include <string_view>

#include <botan/rng.h>
#include <botan/secmem.h>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ssh/errc.hpp"

namespace Botan {
class Private_Key;
}

namespace vtunnel::ssh {

inline constexpr std::string_view kEd25519 = "ssh-ed25519";
inline constexpr std::string_view kEcdsaP256 = "ecdsa-sha2-nistp256";

// Verifies an SSH signature blob over `message` made by the key in `public_blob`. The blob's
// algorithm must equal `algorithm`. Never throws on peer input.
Result<void> verify_signature(std::string_view algorithm, ByteSpan public_blob,
                              ByteSpan signature_blob, ByteSpan message) noexcept;

// The algorithm name at the start of a public-key blob, or an error.
Result<std::string_view> blob_algorithm(ByteSpan public_blob) noexcept;

// The SSH public-key blob of an ed25519 public key: string "ssh-ed25519" || string key.
Bytes ed25519_public_blob(ByteSpan public_key32);

class SigningKey {
 public:
  // ed25519 key from its 32-byte seed (the vt-priv secret).
  static Result<SigningKey> ed25519_from_seed(ByteSpan seed);
  static SigningKey generate_ecdsa_p256(Botan::RandomNumberGenerator& rng);

  SigningKey(SigningKey&&) noexcept;
  SigningKey& operator=(SigningKey&&) noexcept;
  ~SigningKey();

  std::string_view algorithm() const noexcept { return algorithm_; }
  const Bytes& public_blob() const noexcept { return public_blob_; }
  // An SSH signature blob over message.
  Bytes sign(ByteSpan message, Botan::RandomNumberGenerator& rng) const;

 private:
  SigningKey() = default;
  std::string_view algorithm_;
  Bytes public_blob_;
  std::unique_ptr<Botan::Private_Key> key_;
};

}  // namespace vtunnel::ssh
