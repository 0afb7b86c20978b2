#include "ssh/cipher.hpp"

#include <array>
#include <cstring>

// Botan::GHASH (botan/ghash.h) is public API in Botan 2 but marked "will be made internal";
// that notice would break a warnings-clean build. Botan 3 would need its GCM mode instead.
#define BOTAN_NO_DEPRECATED_WARNINGS
#include <botan/block_cipher.h>
#include <botan/ghash.h>
#include <botan/mac.h>
#include <botan/mem_ops.h>
#include <botan/stream_cipher.h>

namespace vtunnel::ssh {
namespace {

constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;

constexpr CipherSpec kCiphers[] = {
    {"aes128-gcm@openssh.com", 16, 12, 0, 16, 16, true, 64 * kGiB},
    {"aes256-gcm@openssh.com", 32, 12, 0, 16, 16, true, 64 * kGiB},
    // OpenSSH treats chacha20-poly1305 as an 8-byte block cipher: rekey after 2^30 bytes.
    {"chacha20-poly1305@openssh.com", 64, 0, 0, 8, 16, true, 1 * kGiB},
    {"aes128-ctr", 16, 16, 32, 16, 32, false, 64 * kGiB},
    {"aes256-ctr", 32, 16, 32, 16, 32, false, 64 * kGiB},
};

// RFC 5647 as OpenSSH does it: nonce = 4-byte fixed field || 8-byte invocation counter,
// the counter incremented after every packet; the clear length field is the AAD.
//
// GCM is put together here from Botan's AES block cipher and its GHASH rather than taken whole
// from Botan's "AES-128/GCM" mode: that mode's counter mode makes its keystream a few blocks at
// a time, which ran at about 3.4 GB/s on the benchmark machine against 9 GB/s for AES-NI
// itself. Here the counter blocks for up to kKeystreamBlocks are encrypted in one
// encrypt_n() call (AES-NI pipelines them), then XORed in. Same arithmetic as Botan's mode
// (tests/ssh/test_cipher.cpp checks it against that mode and against asyncssh's answers);
// 5-14% faster than Botan's mode on the same bytes (bench/PROTOCOLS.md).
class AesGcmCipher final : public PacketCipher {
 public:
  AesGcmCipher(std::size_t key_size, const Botan::secure_vector<std::uint8_t>& key,
               const Botan::secure_vector<std::uint8_t>& iv)
      : aes_(Botan::BlockCipher::create_or_throw(key_size == 16 ? "AES-128" : "AES-256")),
        keystream_(kKeystreamBytes) {
    aes_->set_key(key.data(), key_size);
    std::array<std::uint8_t, kBlock> h{};  // H = E(K, 0^128)
    aes_->encrypt(h.data());
    ghash_.set_key(h.data(), h.size());
    std::copy(iv.begin(), iv.begin() + 12, nonce_.begin());
  }
  std::size_t block_size() const noexcept override { return kBlock; }
  std::size_t tag_size() const noexcept override { return kBlock; }
  std::uint32_t peek_length(std::uint32_t, ByteSpan first4) noexcept override {
    return load_be32(first4.data());
  }
  void seal(std::uint32_t, MutableByteSpan packet, MutableByteSpan tag_out) noexcept override {
    MutableByteSpan body = packet.subspan(4);
    start(packet.first(4));
    // Encrypt and hash one keystream's worth at a time, so GHASH reads what CTR just wrote
    // while it is still in L1.
    std::uint32_t counter = 2;
    for (std::size_t off = 0; off < body.size(); off += kKeystreamBytes) {
      MutableByteSpan piece = keystream_piece(body, off);
      counter = apply_keystream(piece, counter);
      ghash_.update(piece.data(), piece.size());
    }
    ghash_.final(tag_out.data(), kBlock);
    increment_invocation_counter();
  }
  Result<void> open(std::uint32_t, MutableByteSpan packet, ByteSpan tag) noexcept override {
    MutableByteSpan body = packet.subspan(4);
    start(packet.first(4));
    ghash_.update(body.data(), body.size());
    std::array<std::uint8_t, kBlock> expected;
    ghash_.final(expected.data(), kBlock);
    const bool good = tag.size() == kBlock && Botan::constant_time_compare(expected.data(), tag.data(), kBlock);
    // Decrypted only once the tag is known to be good (the keystream uses this packet's nonce).
    std::uint32_t counter = 2;
    for (std::size_t off = 0; good && off < body.size(); off += kKeystreamBytes)
      counter = apply_keystream(keystream_piece(body, off), counter);
    increment_invocation_counter();
    if (!good) return errc::mac_failure;
    return {};
  }

 private:
  static constexpr std::size_t kBlock = 16;
  // 16 KiB of keystream per encrypt_n(): larger batches bought nothing more.
  static constexpr std::size_t kKeystreamBlocks = 1024;
  static constexpr std::size_t kKeystreamBytes = kKeystreamBlocks * kBlock;

  // The part of `body` from `off` that one keystream batch covers.
  static MutableByteSpan keystream_piece(MutableByteSpan body, std::size_t off) noexcept {
    return body.subspan(off, std::min(body.size() - off, kKeystreamBytes));
  }

  // J0 = nonce || 0x00000001 (96-bit nonce); the tag is GHASH(aad, ciphertext) XOR E(K, J0),
  // and the payload uses the counter blocks from J0 + 1 on.
  void start(ByteSpan aad) noexcept {
    std::array<std::uint8_t, kBlock> j0{};
    std::copy(nonce_.begin(), nonce_.end(), j0.begin());
    j0[15] = 1;
    aes_->encrypt(j0.data());
    ghash_.set_associated_data(aad.data(), aad.size());
    ghash_.start(j0.data(), j0.size());
  }

  // XORs the keystream for counter blocks `counter`, `counter + 1`, ... into `data` (at most
  // kKeystreamBlocks blocks); returns the next counter. The counter is the low 32 bits of the
  // block (GCM's inc32); packets are far too short to wrap it.
  std::uint32_t apply_keystream(MutableByteSpan data, std::uint32_t counter) noexcept {
    const std::size_t blocks = (data.size() + kBlock - 1) / kBlock;
    std::uint8_t* ks = keystream_.data();
    for (std::size_t i = 0; i < blocks; ++i) {
      std::memcpy(ks + i * kBlock, nonce_.data(), nonce_.size());
      store_be32(ks + i * kBlock + 12, counter + static_cast<std::uint32_t>(i));
    }
    aes_->encrypt_n(ks, ks, blocks);
    std::uint8_t* d = data.data();
    std::size_t i = 0;
    for (; i + 16 <= data.size(); i += 16) {
      std::uint64_t x[2], k[2];
      std::memcpy(x, d + i, 16);
      std::memcpy(k, ks + i, 16);
      x[0] ^= k[0];
      x[1] ^= k[1];
      std::memcpy(d + i, x, 16);
    }
    for (; i < data.size(); ++i) d[i] ^= ks[i];
    return counter + static_cast<std::uint32_t>(blocks);
  }

  void increment_invocation_counter() noexcept {
    for (std::size_t i = 11; i >= 4; --i) {
      if (++nonce_[i] != 0) break;
    }
  }

  std::unique_ptr<Botan::BlockCipher> aes_;
  Botan::GHASH ghash_;
  std::array<std::uint8_t, 12> nonce_{};
  Botan::secure_vector<std::uint8_t> keystream_;
};

// OpenSSH chacha20-poly1305: key = K_2 (main, first 32 bytes) || K_1 (length, last 32).
// Nonce = sequence number as 64-bit big-endian; K_1 encrypts the length; K_2 block 0 gives the
// Poly1305 key; K_2 from block 1 encrypts the rest. The tag covers length || ciphertext.
class ChachaPolyCipher final : public PacketCipher {
 public:
  explicit ChachaPolyCipher(const Botan::secure_vector<std::uint8_t>& key)
      : main_(Botan::StreamCipher::create_or_throw("ChaCha(20)")),
        length_(Botan::StreamCipher::create_or_throw("ChaCha(20)")),
        poly_(Botan::MessageAuthenticationCode::create_or_throw("Poly1305")),
        block0_(64) {
    main_->set_key(key.data(), 32);
    length_->set_key(key.data() + 32, 32);
  }
  std::size_t block_size() const noexcept override { return 8; }
  std::size_t tag_size() const noexcept override { return 16; }
  std::uint32_t peek_length(std::uint32_t seq, ByteSpan first4) noexcept override {
    std::array<std::uint8_t, 4> clear{};
    set_nonce(*length_, seq);
    length_->cipher(first4.data(), clear.data(), 4);
    return load_be32(clear.data());
  }
  void seal(std::uint32_t seq, MutableByteSpan packet, MutableByteSpan tag_out) noexcept override {
    set_nonce(*length_, seq);
    length_->cipher1(packet.data(), 4);
    start_main(seq);
    main_->cipher1(packet.data() + 4, packet.size() - 4);
    poly_->update(packet.data(), packet.size());
    poly_->final(tag_out.data());
  }
  Result<void> open(std::uint32_t seq, MutableByteSpan packet, ByteSpan tag) noexcept override {
    start_main(seq);
    std::array<std::uint8_t, 16> expected{};
    poly_->update(packet.data(), packet.size());
    poly_->final(expected.data());
    if (!Botan::constant_time_compare(expected.data(), tag.data(), 16)) return errc::mac_failure;
    main_->cipher1(packet.data() + 4, packet.size() - 4);
    return {};
  }

 private:
  static void set_nonce(Botan::StreamCipher& c, std::uint32_t seq) noexcept {
    std::array<std::uint8_t, 8> nonce{};
    store_be64(nonce.data(), seq);
    c.set_iv(nonce.data(), nonce.size());
  }
  // Keys Poly1305 with the first 32 bytes of block 0 and leaves the stream at block 1.
  void start_main(std::uint32_t seq) noexcept {
    set_nonce(*main_, seq);
    std::fill(block0_.begin(), block0_.end(), 0);
    main_->cipher1(block0_.data(), block0_.size());
    poly_->set_key(block0_.data(), 32);
  }
  std::unique_ptr<Botan::StreamCipher> main_;
  std::unique_ptr<Botan::StreamCipher> length_;
  std::unique_ptr<Botan::MessageAuthenticationCode> poly_;
  Botan::secure_vector<std::uint8_t> block0_;
};

// aes-ctr with hmac-sha2-256-etm@openssh.com: length in clear, MAC over
// seq || length || ciphertext, checked before decrypting.
class AesCtrEtmCipher final : public PacketCipher {
 public:
  AesCtrEtmCipher(std::size_t key_size, const Botan::secure_vector<std::uint8_t>& key,
                  const Botan::secure_vector<std::uint8_t>& iv,
                  const Botan::secure_vector<std::uint8_t>& mac_key)
      : ctr_(Botan::StreamCipher::create_or_throw(key_size == 16 ? "CTR-BE(AES-128)"
                                                                 : "CTR-BE(AES-256)")),
        mac_(Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)")) {
    ctr_->set_key(key.data(), key_size);
    ctr_->set_iv(iv.data(), 16);
    mac_->set_key(mac_key.data(), 32);
  }
  std::size_t block_size() const noexcept override { return 16; }
  std::size_t tag_size() const noexcept override { return 32; }
  std::uint32_t peek_length(std::uint32_t, ByteSpan first4) noexcept override {
    return load_be32(first4.data());
  }
  void seal(std::uint32_t seq, MutableByteSpan packet, MutableByteSpan tag_out) noexcept override {
    ctr_->cipher1(packet.data() + 4, packet.size() - 4);
    compute_mac(seq, packet, tag_out.data());
  }
  Result<void> open(std::uint32_t seq, MutableByteSpan packet, ByteSpan tag) noexcept override {
    std::array<std::uint8_t, 32> expected{};
    compute_mac(seq, packet, expected.data());
    if (!Botan::constant_time_compare(expected.data(), tag.data(), 32)) return errc::mac_failure;
    ctr_->cipher1(packet.data() + 4, packet.size() - 4);
    return {};
  }

 private:
  void compute_mac(std::uint32_t seq, ByteSpan packet, std::uint8_t* out) noexcept {
    std::array<std::uint8_t, 4> seq_be{};
    store_be32(seq_be.data(), seq);
    mac_->update(seq_be.data(), 4);
    mac_->update(packet.data(), packet.size());
    mac_->final(out);
  }
  std::unique_ptr<Botan::StreamCipher> ctr_;
  std::unique_ptr<Botan::MessageAuthenticationCode> mac_;
};

}  // namespace

std::span<const CipherSpec> supported_ciphers() noexcept { return kCiphers; }

const CipherSpec* find_cipher(std::string_view name) noexcept {
  for (const auto& c : kCiphers)
    if (c.name == name) return &c;
  return nullptr;
}

Result<std::unique_ptr<PacketCipher>> make_cipher(std::string_view name,
                                                  const Botan::secure_vector<std::uint8_t>& key,
                                                  const Botan::secure_vector<std::uint8_t>& iv,
                                                  const Botan::secure_vector<std::uint8_t>& mac_key) {
  const CipherSpec* spec = find_cipher(name);
  if (!spec || key.size() < spec->key_size || iv.size() < spec->iv_size ||
      mac_key.size() < spec->mac_key_size)
    return errc::kex_failed;
  try {
    if (name.starts_with("aes") && name.ends_with("gcm@openssh.com"))
      return std::unique_ptr<PacketCipher>(new AesGcmCipher(spec->key_size, key, iv));
    if (name == "chacha20-poly1305@openssh.com")
      return std::unique_ptr<PacketCipher>(new ChachaPolyCipher(key));
    return std::unique_ptr<PacketCipher>(new AesCtrEtmCipher(spec->key_size, key, iv, mac_key));
  } catch (const std::exception&) {
    return errc::kex_failed;
  }
}

}  // namespace vtunnel::ssh
