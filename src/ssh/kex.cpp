#include "ssh/kex.hpp"

#include <botan/curve25519.h>
#include <botan/ec_group.h>
#include <botan/ecdh.h>
#include <botan/hash.h>
#include <botan/pubkey.h>

#include "ssh/wire.hpp"

namespace vtunnel::ssh {
namespace {

constexpr std::string_view kKex[] = {"curve25519-sha256", "curve25519-sha256@libssh.org",
                                     "ecdh-sha2-nistp256"};

class Curve25519Agreement final : public KeyAgreement {
 public:
  Curve25519Agreement(std::unique_ptr<Botan::Curve25519_PrivateKey> key,
                      Botan::RandomNumberGenerator& rng)
      : key_(std::move(key)), rng_(rng), public_(key_->public_value()) {}
  ByteSpan public_value() const noexcept override { return public_; }
  Result<SecureBytes> shared_secret(ByteSpan peer) noexcept override {
    if (peer.size() != 32) return errc::kex_failed;
    try {
      Botan::PK_Key_Agreement ka(*key_, rng_, "Raw");
      SecureBytes k = ka.derive_key(0, peer.data(), peer.size()).bits_of();
      std::uint8_t any = 0;
      for (auto b : k) any |= b;
      if (k.size() != 32 || any == 0) return errc::kex_failed;  // RFC 7748 §6.1 zero check
      return k;
    } catch (const std::exception&) {
      return errc::kex_failed;
    }
  }

 private:
  std::unique_ptr<Botan::Curve25519_PrivateKey> key_;
  Botan::RandomNumberGenerator& rng_;
  std::vector<std::uint8_t> public_;
};

class EcdhP256Agreement final : public KeyAgreement {
 public:
  explicit EcdhP256Agreement(Botan::RandomNumberGenerator& rng)
      : rng_(rng), key_(rng, Botan::EC_Group("secp256r1")), public_(key_.public_value()) {}
  ByteSpan public_value() const noexcept override { return public_; }
  Result<SecureBytes> shared_secret(ByteSpan peer) noexcept override {
    if (peer.size() != 65 || peer[0] != 0x04) return errc::kex_failed;  // uncompressed point
    try {
      Botan::PK_Key_Agreement ka(key_, rng_, "Raw");
      // Botan decodes the point and rejects points not on the curve.
      return ka.derive_key(0, peer.data(), peer.size()).bits_of();
    } catch (const std::exception&) {
      return errc::kex_failed;
    }
  }

 private:
  Botan::RandomNumberGenerator& rng_;
  Botan::ECDH_PrivateKey key_;
  std::vector<std::uint8_t> public_;
};

}  // namespace

std::span<const std::string_view> supported_kex() noexcept { return kKex; }

Result<std::unique_ptr<KeyAgreement>> make_key_agreement(std::string_view kex_name,
                                                         Botan::RandomNumberGenerator& rng) {
  if (kex_name == "curve25519-sha256" || kex_name == "curve25519-sha256@libssh.org")
    return std::unique_ptr<KeyAgreement>(std::make_unique<Curve25519Agreement>(
        std::make_unique<Botan::Curve25519_PrivateKey>(rng), rng));
  if (kex_name == "ecdh-sha2-nistp256")
    return std::unique_ptr<KeyAgreement>(std::make_unique<EcdhP256Agreement>(rng));
  return errc::kex_failed;
}

std::unique_ptr<KeyAgreement> curve25519_with_private(const SecureBytes& private_key,
                                                      Botan::RandomNumberGenerator& rng) {
  return std::make_unique<Curve25519Agreement>(
      std::make_unique<Botan::Curve25519_PrivateKey>(private_key), rng);
}

Bytes exchange_hash(const ExchangeHashInput& in) {
  SecureBytes buf;
  Bytes data;
  Writer w(data);
  w.string(in.client_version).string(in.server_version);
  w.string(in.client_kexinit).string(in.server_kexinit);
  w.string(in.host_key_blob).string(in.client_public).string(in.server_public);
  w.mpint_unsigned(in.shared_secret);
  auto hash = Botan::HashFunction::create_or_throw("SHA-256");
  hash->update(data.data(), data.size());
  Bytes h(hash->output_length());
  hash->final(h.data());
  Botan::secure_scrub_memory(data.data(), data.size());  // contains K
  return h;
}

SecureBytes derive_key(ByteSpan shared_secret, ByteSpan exchange_hash, char letter,
                       ByteSpan session_id, std::size_t length) {
  Bytes k_mpint;
  Writer(k_mpint).mpint_unsigned(shared_secret);
  auto hash = Botan::HashFunction::create_or_throw("SHA-256");
  SecureBytes out;
  hash->update(k_mpint.data(), k_mpint.size());
  hash->update(exchange_hash.data(), exchange_hash.size());
  hash->update(static_cast<std::uint8_t>(letter));
  hash->update(session_id.data(), session_id.size());
  out = hash->final();
  while (out.size() < length) {
    hash->update(k_mpint.data(), k_mpint.size());
    hash->update(exchange_hash.data(), exchange_hash.size());
    hash->update(out.data(), out.size());
    SecureBytes more = hash->final();
    out.insert(out.end(), more.begin(), more.end());
  }
  out.resize(length);
  Botan::secure_scrub_memory(k_mpint.data(), k_mpint.size());
  return out;
}

}  // namespace vtunnel::ssh
