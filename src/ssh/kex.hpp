#pragma once
// Key exchange methods (curve25519-sha256 RFC 8731, ecdh-sha2-nistp256 RFC 5656), the
// exchange hash H (RFC 4253 §8 / RFC 5656 §4) and key derivation (RFC 4253 §7.2).
#include <memory>
#include <span>
#include <string_view>

#include <botan/rng.h>
#include <botan/secmem.h>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ssh/errc.hpp"

namespace vtunnel::ssh {

using SecureBytes = Botan::secure_vector<std::uint8_t>;

// Our kex methods in preference order (all use SHA-256 as the exchange hash).
std::span<const std::string_view> supported_kex() noexcept;

class KeyAgreement {
 public:
  virtual ~KeyAgreement() = default;
  // Our ephemeral public value (Q_C or Q_S) as it goes on the wire.
  virtual ByteSpan public_value() const noexcept = 0;
  // The shared secret K as an unsigned big-endian number (not yet mpint-encoded). Rejects
  // malformed peer values and the all-zero curve25519 result.
  virtual Result<SecureBytes> shared_secret(ByteSpan peer_public) noexcept = 0;
};

Result<std::unique_ptr<KeyAgreement>> make_key_agreement(std::string_view kex_name,
                                                         Botan::RandomNumberGenerator& rng);
// For known-answer tests: curve25519 with a given 32-byte private scalar.
std::unique_ptr<KeyAgreement> curve25519_with_private(const SecureBytes& private_key,
                                                      Botan::RandomNumberGenerator& rng);

struct ExchangeHashInput {
  std::string_view client_version;  // without CR LF
  std::string_view server_version;
  ByteSpan client_kexinit;          // full payloads, message type byte included
  ByteSpan server_kexinit;
  ByteSpan host_key_blob;
  ByteSpan client_public;           // Q_C
  ByteSpan server_public;           // Q_S
  ByteSpan shared_secret;           // K, unsigned big-endian
};

// H = SHA-256(string V_C || string V_S || string I_C || string I_S || string K_S ||
//             string Q_C || string Q_S || mpint K)
Bytes exchange_hash(const ExchangeHashInput& in);

// HASH(K || H || letter || session_id), extended with HASH(K || H || K1 || ...) to `length`.
SecureBytes derive_key(ByteSpan shared_secret, ByteSpan exchange_hash, char letter,
                       ByteSpan session_id, std::size_t length);

}  // namespace vtunnel::ssh
