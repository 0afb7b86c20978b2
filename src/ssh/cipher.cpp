#include "ssh/cipher.hpp"

#include <array>
#include <botan/aead.h>
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
class AesGcmCipher final : public PacketCipher {
 public:
  AesGcmCipher(std::size_t key_size, bool encrypt, const Botan::secure_vector<std::uint8_t>& key,
               const Botan::secure_vector<std::uint8_t>& iv)
      : mode_(Botan::AEAD_Mode::create_or_throw(key_size == 16 ? "AES-128/GCM" : "AES-256/GCM",
                                                encrypt ? Botan::ENCRYPTION : Botan::DECRYPTION)) {
    mode_->set_key(key.data(), key.size());
    std::copy(iv.begin(), iv.begin() + 12, nonce_.begin());
    tail_.reserve(128);
  }
  std::size_t block_size() const noexcept override { return 16; }
  std::size_t tag_size() const noexcept override { return 16; }
  std::uint32_t peek_length(std::uint32_t, ByteSpan first4) noexcept override {
    return load_be32(first4.data());
  }
  void seal(std::uint32_t, MutableByteSpan packet, MutableByteSpan tag_out) noexcept override {
    MutableByteSpan body = packet.subspan(4);
    mode_->set_associated_data(packet.data(), 4);
    mode_->start(nonce_.data(), nonce_.size());
    // Botan processes whole multiples of its granularity in place; the short tail goes
    // through finish() in a reused buffer together with the tag.
    std::size_t bulk = body.size() - body.size() % mode_->update_granularity();
    mode_->process(body.data(), bulk);
    tail_.assign(body.begin() + bulk, body.end());
    mode_->finish(tail_);
    std::copy(tail_.begin(), tail_.end() - 16, body.begin() + bulk);
    std::copy(tail_.end() - 16, tail_.end(), tag_out.begin());
    increment_counter();
  }
  Result<void> open(std::uint32_t, MutableByteSpan packet, ByteSpan tag) noexcept override {
    MutableByteSpan body = packet.subspan(4);
    try {
      mode_->set_associated_data(packet.data(), 4);
      mode_->start(nonce_.data(), nonce_.size());
      std::size_t bulk = body.size() - body.size() % mode_->update_granularity();
      mode_->process(body.data(), bulk);
      tail_.assign(body.begin() + bulk, body.end());
      tail_.insert(tail_.end(), tag.begin(), tag.end());
      increment_counter();
      mode_->finish(tail_);  // throws Invalid_Authentication_Tag on mismatch
      std::copy(tail_.begin(), tail_.end(), body.begin() + bulk);
    } catch (const std::exception&) {
      return errc::mac_failure;
    }
    return {};
  }

 private:
  void increment_counter() noexcept {
    for (std::size_t i = 11; i >= 4; --i) {
      if (++nonce_[i] != 0) break;
    }
  }
  std::unique_ptr<Botan::AEAD_Mode> mode_;
  std::array<std::uint8_t, 12> nonce_{};
  Botan::secure_vector<std::uint8_t> tail_;
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

Result<std::unique_ptr<PacketCipher>> make_cipher(std::string_view name, bool encrypt,
                                                  const Botan::secure_vector<std::uint8_t>& key,
                                                  const Botan::secure_vector<std::uint8_t>& iv,
                                                  const Botan::secure_vector<std::uint8_t>& mac_key) {
  const CipherSpec* spec = find_cipher(name);
  if (!spec || key.size() < spec->key_size || iv.size() < spec->iv_size ||
      mac_key.size() < spec->mac_key_size)
    return errc::kex_failed;
  try {
    if (name.starts_with("aes") && name.ends_with("gcm@openssh.com"))
      return std::unique_ptr<PacketCipher>(new AesGcmCipher(spec->key_size, encrypt, key, iv));
    if (name == "chacha20-poly1305@openssh.com")
      return std::unique_ptr<PacketCipher>(new ChachaPolyCipher(key));
    return std::unique_ptr<PacketCipher>(new AesCtrEtmCipher(spec->key_size, key, iv, mac_key));
  } catch (const std::exception&) {
    return errc::kex_failed;
  }
}

}  // namespace vtunnel::ssh
