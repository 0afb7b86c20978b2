#pragma once
// One packet cipher object per direction (RFC 4253 §6 with the OpenSSH AEAD/EtM variants).
// All of them keep the 4-byte packet length outside the block alignment ("aad" style) and
// encrypt/decrypt in place.
#include <cstdint>
#include <memory>
#include <string_view>

#include <botan/secmem.h>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ssh/errc.hpp"

namespace vtunnel::ssh {

struct CipherSpec {
  std::string_view name;
  std::size_t key_size;
  std::size_t iv_size;
  std::size_t mac_key_size;    // 0 for AEAD ciphers (the MAC is implied)
  std::size_t block_size;      // padding alignment of packet_length
  std::size_t tag_size;
  bool is_aead;
  std::uint64_t default_rekey_bytes;  // OpenSSH/Go defaults: 1 GiB for 64-bit-block-like, 64 GiB for AES
};

// Ciphers we implement, in our preference order (AES-GCM first: AES-NI makes it fastest).
std::span<const CipherSpec> supported_ciphers() noexcept;
const CipherSpec* find_cipher(std::string_view name) noexcept;
// The MAC names we offer (used only with non-AEAD ciphers).
inline constexpr std::string_view kMacHmacSha256Etm = "hmac-sha2-256-etm@openssh.com";

class PacketCipher {
 public:
  virtual ~PacketCipher() = default;
  virtual std::size_t block_size() const noexcept = 0;
  virtual std::size_t tag_size() const noexcept = 0;

  // The packet_length field of the packet with sequence number `seq`, from its first four
  // wire bytes (which are not modified: the tag covers them).
  virtual std::uint32_t peek_length(std::uint32_t seq, ByteSpan first4) noexcept = 0;

  // packet = [4-byte length in clear][packet_length bytes], encrypted in place; the tag is
  // written to tag_out (tag_size() bytes).
  virtual void seal(std::uint32_t seq, MutableByteSpan packet, MutableByteSpan tag_out) noexcept = 0;
  // Verifies the tag, then decrypts the bytes after the length field in place. On failure the
  // packet content is unspecified and must be discarded.
  virtual Result<void> open(std::uint32_t seq, MutableByteSpan packet, ByteSpan tag) noexcept = 0;
};

// Creates the cipher for one direction from derived key material. Returns kex_failed for an
// unknown name or wrong key sizes.
Result<std::unique_ptr<PacketCipher>> make_cipher(std::string_view name,
                                                  const Botan::secure_vector<std::uint8_t>& key,
                                                  const Botan::secure_vector<std::uint8_t>& iv,
                                                  const Botan::secure_vector<std::uint8_t>& mac_key);

}  // namespace vtunnel::ssh
