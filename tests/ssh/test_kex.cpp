// Vectors: RFC 7748 §6.1, RFC 8032 §7.1 test 1 (both re-checked with pyca/cryptography), an
// ecdsa signature made by pyca/cryptography, and H / derived keys computed by an independent
// Python implementation of RFC 4253 §7.2/§8 with hashlib.
#include <catch2/catch.hpp>

#include <botan/chacha_rng.h>
#include <botan/system_rng.h>

#include "hex.hpp"
#include "ssh/host_key.hpp"
#include "ssh/kex.hpp"
#include "ssh/wire.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;
using vtunnel::test::from_hex;
using vtunnel::test::to_hex;

namespace {
SecureBytes secure_hex(std::string_view h) {
  Bytes b = from_hex(h);
  return SecureBytes(b.begin(), b.end());
}
}  // namespace

TEST_CASE("curve25519 RFC 7748 §6.1 through our wrapper") {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  auto alice = curve25519_with_private(
      secure_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"), rng);
  auto bob = curve25519_with_private(
      secure_hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"), rng);
  REQUIRE(to_hex(alice->public_value()) ==
          "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  REQUIRE(to_hex(bob->public_value()) ==
          "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  auto k1 = alice->shared_secret(bob->public_value());
  auto k2 = bob->shared_secret(alice->public_value());
  REQUIRE(k1.ok());
  REQUIRE(k2.ok());
  REQUIRE(to_hex(*k1) == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  REQUIRE(*k1 == *k2);
}

TEST_CASE("curve25519 rejects bad peer values") {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  auto a = make_key_agreement("curve25519-sha256", rng);
  REQUIRE(a.ok());
  REQUIRE((*a)->shared_secret(Bytes(31, 9)).error() == errc::kex_failed);
  // The all-zero point (low order) gives an all-zero secret, which must be refused.
  REQUIRE((*a)->shared_secret(Bytes(32, 0)).error() == errc::kex_failed);
}

TEST_CASE("ecdh-sha2-nistp256 agrees and rejects points off the curve") {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  auto a = make_key_agreement("ecdh-sha2-nistp256", rng);
  auto b = make_key_agreement("ecdh-sha2-nistp256", rng);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE((*a)->public_value().size() == 65);
  auto k1 = (*a)->shared_secret((*b)->public_value());
  auto k2 = (*b)->shared_secret((*a)->public_value());
  REQUIRE(k1.ok());
  REQUIRE(*k1 == *k2);
  Bytes off_curve((*b)->public_value().begin(), (*b)->public_value().end());
  off_curve[40] ^= 1;
  REQUIRE((*a)->shared_secret(off_curve).error() == errc::kex_failed);
  REQUIRE((*a)->shared_secret(Bytes(33, 2)).error() == errc::kex_failed);
  REQUIRE(make_key_agreement("diffie-hellman-group1-sha1", rng).error() == errc::kex_failed);
}

TEST_CASE("ed25519 RFC 8032 test 1 through our wrapper") {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  auto key = SigningKey::ed25519_from_seed(
      from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  REQUIRE(key.ok());
  Bytes expected_blob =
      ed25519_public_blob(from_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"));
  REQUIRE(key->public_blob() == expected_blob);
  Bytes sig = key->sign({}, rng);
  Reader r(sig);
  REQUIRE(*r.text() == "ssh-ed25519");
  REQUIRE(to_hex(*r.string()) ==
          "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b4"
          "6bd25bf5f0595bbe24655141438e7a100b");
  REQUIRE(verify_signature(kEd25519, key->public_blob(), sig, {}).ok());
  Bytes msg = to_bytes("x");
  REQUIRE_FALSE(verify_signature(kEd25519, key->public_blob(), sig, msg).ok());
  REQUIRE_FALSE(verify_signature(kEcdsaP256, key->public_blob(), sig, {}).ok());
  sig[sig.size() - 1] ^= 1;
  REQUIRE_FALSE(verify_signature(kEd25519, key->public_blob(), sig, {}).ok());
}

TEST_CASE("ecdsa-sha2-nistp256 verifies a signature made by another implementation") {
  Bytes blob = from_hex(
      "0000001365636473612d736861322d6e69737470323536000000086e697374703235360000004104f9ebe46414"
      "7cc102d92324d099d927c1a50e42d57a08a116ffec0a29819d8c6570baf7d12888902a6a0c1d67add103123c85"
      "9ab69bf8e9431c9384930d4b7eee");
  Bytes sig = from_hex(
      "0000001365636473612d736861322d6e69737470323536000000490000002100c68a3c77e738df9bcf6eb3d8c7"
      "070f9b4e9d00087a0f2d8485000c6021c2c975000000204898360ffacd6ff572b0b55c4078f2820debf66909cc"
      "2a4ce8d25f14bdc05af9");
  Bytes msg = to_bytes("exchange hash stand-in");
  REQUIRE(verify_signature(kEcdsaP256, blob, sig, msg).ok());
  msg[0] ^= 1;
  REQUIRE_FALSE(verify_signature(kEcdsaP256, blob, sig, msg).ok());
  msg[0] ^= 1;
  blob[blob.size() - 1] ^= 1;  // point no longer on the curve
  REQUIRE_FALSE(verify_signature(kEcdsaP256, blob, sig, msg).ok());
  REQUIRE_FALSE(verify_signature(kEcdsaP256, Bytes{0, 0, 0}, sig, msg).ok());
}

TEST_CASE("ecdsa-sha2-nistp256 sign/verify round trip") {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  SigningKey key = SigningKey::generate_ecdsa_p256(rng);
  REQUIRE(blob_algorithm(key.public_blob()).ok());
  REQUIRE(*blob_algorithm(key.public_blob()) == kEcdsaP256);
  Bytes msg = to_bytes("hello");
  for (int i = 0; i < 20; ++i) {  // exercises r/s with and without a sign byte
    Bytes sig = key.sign(msg, rng);
    REQUIRE(verify_signature(kEcdsaP256, key.public_blob(), sig, msg).ok());
  }
}

TEST_CASE("exchange hash and key derivation match an independent computation") {
  Bytes kexinit_c = to_bytes("\x14" "ckex"), kexinit_s = to_bytes("\x14" "skex");
  Bytes host = to_bytes("hostkeyblob"), qc(32, 'Q'), qs(32, 'R');
  Bytes k = from_hex("80" "11111111111111111111111111111111111111111111111111111111111111");
  Bytes h = exchange_hash({"SSH-2.0-client", "SSH-2.0-server", kexinit_c, kexinit_s, host, qc, qs, k});
  REQUIRE(to_hex(h) == "21eb8be078ca777f0991cc514d30238c438c1d8943e69253214a40344b0d1753");
  SecureBytes key = derive_key(k, h, 'C', to_bytes("session-id-bytes"), 64);
  REQUIRE(to_hex(key) ==
          "29c4ca5ae53d991a32f85c8e6ac42aaf198ba6bd396fd52d7dc5e3fe4b322123c3e4c549ba33a29d5357a05669"
          "87432afa7febcc9ae31369ad2c8dab200e4c84");
}
