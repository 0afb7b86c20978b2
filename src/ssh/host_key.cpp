#include "ssh/host_key.hpp"

#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/ed25519.h>
#include <botan/pubkey.h>

#include "ssh/wire.hpp"

namespace vtunnel::ssh {
namespace {

constexpr std::size_t kEcdsaScalarSize = 32;

const Botan::EC_Group& p256() {
  static const Botan::EC_Group group("secp256r1");
  return group;
}

// mpint -> fixed 32-byte big-endian scalar, rejecting values that do not fit.
Result<void> put_scalar(ByteSpan mpint, std::uint8_t* out) {
  if (mpint.size() > kEcdsaScalarSize + 1) return errc::kex_failed;
  if (mpint.size() == kEcdsaScalarSize + 1) mpint = mpint.subspan(1);  // sign byte (checked minimal)
  std::fill(out, out + kEcdsaScalarSize, 0);
  std::copy(mpint.begin(), mpint.end(), out + (kEcdsaScalarSize - mpint.size()));
  return {};
}

Result<void> verify_ed25519(ByteSpan public_blob, ByteSpan signature, ByteSpan message) {
  Reader key(public_blob);
  auto name = key.text();
  auto pub = key.string();
  if (!name || !pub || !key.expect_end() || *name != kEd25519 || pub->size() != 32)
    return errc::kex_failed;
  if (signature.size() != 64) return errc::kex_failed;
  Botan::Ed25519_PublicKey pk(std::vector<std::uint8_t>(pub->begin(), pub->end()));
  Botan::PK_Verifier verifier(pk, "Pure");
  if (!verifier.verify_message(message.data(), message.size(), signature.data(), signature.size()))
    return errc::kex_failed;
  return {};
}

Result<void> verify_ecdsa(ByteSpan public_blob, ByteSpan signature, ByteSpan message) {
  Reader key(public_blob);
  auto name = key.text();
  auto curve = key.text();
  auto point = key.string();
  if (!name || !curve || !point || !key.expect_end() || *name != kEcdsaP256 ||
      *curve != "nistp256" || point->size() != 65 || (*point)[0] != 0x04)
    return errc::kex_failed;
  Reader sig(signature);
  auto r = sig.mpint_unsigned();
  auto s = sig.mpint_unsigned();
  if (!r || !s || !sig.expect_end()) return errc::kex_failed;
  std::uint8_t rs[2 * kEcdsaScalarSize];
  if (!put_scalar(*r, rs) || !put_scalar(*s, rs + kEcdsaScalarSize)) return errc::kex_failed;
  Botan::ECDSA_PublicKey pk(p256(), p256().OS2ECP(point->data(), point->size()));  // checks on-curve
  Botan::PK_Verifier verifier(pk, "EMSA1(SHA-256)");
  if (!verifier.verify_message(message.data(), message.size(), rs, sizeof rs)) return errc::kex_failed;
  return {};
}

}  // namespace

Result<std::string_view> blob_algorithm(ByteSpan public_blob) noexcept {
  Reader r(public_blob);
  auto name = r.text();
  if (!name) return errc::kex_failed;
  if (*name == kEd25519) return kEd25519;
  if (*name == kEcdsaP256) return kEcdsaP256;
  return errc::kex_failed;
}

Result<void> verify_signature(std::string_view algorithm, ByteSpan public_blob,
                              ByteSpan signature_blob, ByteSpan message) noexcept {
  try {
    Reader r(signature_blob);
    auto name = r.text();
    auto sig = r.string();
    if (!name || !sig || !r.expect_end() || *name != algorithm) return errc::kex_failed;
    if (algorithm == kEd25519) return verify_ed25519(public_blob, *sig, message);
    if (algorithm == kEcdsaP256) return verify_ecdsa(public_blob, *sig, message);
    return errc::kex_failed;
  } catch (const std::exception&) {
    return errc::kex_failed;  // Botan rejected the key material (e.g. point not on the curve)
  }
}

Bytes ed25519_public_blob(ByteSpan public_key32) {
  Bytes blob;
  Writer(blob).string(kEd25519).string(public_key32);
  return blob;
}

SigningKey::SigningKey(SigningKey&&) noexcept = default;
SigningKey& SigningKey::operator=(SigningKey&&) noexcept = default;
SigningKey::~SigningKey() = default;

Result<SigningKey> SigningKey::ed25519_from_seed(ByteSpan seed) {
  if (seed.size() != 32) return errc::invalid_argument;
  SigningKey k;
  auto key = std::make_unique<Botan::Ed25519_PrivateKey>(
      Botan::secure_vector<std::uint8_t>(seed.begin(), seed.end()));
  k.algorithm_ = kEd25519;
  k.public_blob_ = ed25519_public_blob(key->get_public_key());
  k.key_ = std::move(key);
  return k;
}

SigningKey SigningKey::generate_ecdsa_p256(Botan::RandomNumberGenerator& rng) {
  SigningKey k;
  auto key = std::make_unique<Botan::ECDSA_PrivateKey>(rng, p256());
  k.algorithm_ = kEcdsaP256;
  std::vector<std::uint8_t> point = key->public_point().encode(Botan::PointGFp::UNCOMPRESSED);
  Writer(k.public_blob_).string(kEcdsaP256).string("nistp256").string(point);
  k.key_ = std::move(key);
  return k;
}

Bytes SigningKey::sign(ByteSpan message, Botan::RandomNumberGenerator& rng) const {
  Bytes blob;
  Writer w(blob);
  w.string(algorithm_);
  if (algorithm_ == kEd25519) {
    Botan::PK_Signer signer(*key_, rng, "Pure");
    std::vector<std::uint8_t> sig = signer.sign_message(message.data(), message.size(), rng);
    w.string(sig);
  } else {
    Botan::PK_Signer signer(*key_, rng, "EMSA1(SHA-256)");
    std::vector<std::uint8_t> rs = signer.sign_message(message.data(), message.size(), rng);
    Bytes inner;
    Writer(inner)
        .mpint_unsigned(ByteSpan(rs).first(kEcdsaScalarSize))
        .mpint_unsigned(ByteSpan(rs).subspan(kEcdsaScalarSize));
    w.string(inner);
  }
  return blob;
}

}  // namespace vtunnel::ssh
