#pragma once
// vtunnel keys: an ed25519 seed is the client's private key ("vt-priv-" + unpadded base64 of
// the 32-byte seed), its public key is "vt-pub-" + unpadded base64 of the 32-byte ed25519
// public key. The server's host key is derived from the client's public key (PROTOCOL.md):
// seed = SHA-256(string "ssh-ed25519" || string pub), so both sides know it without key
// management.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace vtunnel {

struct PublicKey {
  std::array<std::uint8_t, 32> bytes{};
  bool operator==(const PublicKey&) const = default;
};

class PrivateKey {
 public:
  PrivateKey() = default;
  explicit PrivateKey(const std::array<std::uint8_t, 32>& seed) : seed_(seed) {}
  PrivateKey(const PrivateKey&) = default;
  PrivateKey& operator=(const PrivateKey&) = default;
  ~PrivateKey();  // wipes the seed

  const std::array<std::uint8_t, 32>& seed() const noexcept { return seed_; }
  PublicKey public_key() const;

 private:
  std::array<std::uint8_t, 32> seed_{};
};

PrivateKey generate_private_key();

Result<PrivateKey> parse_private_key(std::string_view text);
Result<PublicKey> parse_public_key(std::string_view text);
std::string format_private_key(const PrivateKey& key);
std::string format_public_key(const PublicKey& key);

// The SSH wire blob of an ed25519 public key: string "ssh-ed25519" || string key.
Bytes ssh_ed25519_blob(const PublicKey& key);
// The server host key both sides derive from the client's public key.
PrivateKey derive_host_key(const PublicKey& client_key);

// OpenSSH's fingerprint of an SSH public-key blob: "SHA256:" + unpadded base64 of its SHA-256
// (what `ssh-keygen -l` prints).
std::string fingerprint_sha256(ByteSpan ssh_blob);
// The fingerprint of an ed25519 key as an SSH host key (its ssh_ed25519_blob).
std::string host_key_fingerprint(const PublicKey& key);

// Reads a vt-priv key from a file (surrounding whitespace ignored). Refuses a file that group
// or others can read or write, as OpenSSH does for private keys, so a secret that leaked to
// other users is not used silently.
Result<PrivateKey> read_private_key_file(const std::string& path);

// Unpadded standard base64 (RFC 4648 §4 without '='), as the Go original's keys use.
std::string base64_encode_unpadded(ByteSpan data);
// Strict: only the standard alphabet, no padding, no whitespace; a length that leaves one
// dangling character is rejected.
Result<Bytes> base64_decode_unpadded(std::string_view text);

}  // namespace vtunnel
