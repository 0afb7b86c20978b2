// Known-answer vectors computed once with asyncssh 2.10 (chacha, GCM) and pyca/cryptography
// (aes-ctr + hmac-sha2-256-etm), independent implementations of the same constructions.
#include <catch2/catch.hpp>

#include <botan/aead.h>

#include "hex.hpp"
#include "ssh/cipher.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;
using vtunnel::test::from_hex;
using vtunnel::test::to_hex;

namespace {
using SecureBytes = Botan::secure_vector<std::uint8_t>;

SecureBytes range_key(int first, int n) {
  SecureBytes k;
  for (int i = 0; i < n; ++i) k.push_back(std::uint8_t(first + i));
  return k;
}

struct Vector {
  std::uint32_t seq;
  const char* plain;
  const char* cipher;
  const char* tag;
};

void check_vectors(const char* name, const SecureBytes& key, const SecureBytes& iv,
                   const SecureBytes& mac_key, std::initializer_list<Vector> vectors) {
  auto enc = make_cipher(name, key, iv, mac_key);
  auto dec = make_cipher(name, key, iv, mac_key);
  REQUIRE(enc.ok());
  REQUIRE(dec.ok());
  for (const auto& v : vectors) {
    Bytes packet = from_hex(v.plain);
    Bytes tag((*enc)->tag_size());
    (*enc)->seal(v.seq, packet, tag);
    CHECK(to_hex(packet) == v.cipher);
    CHECK(to_hex(tag) == v.tag);

    Bytes expected_plain = from_hex(v.plain);
    CHECK((*dec)->peek_length(v.seq, ByteSpan(packet).first(4)) ==
          load_be32(expected_plain.data()));
    REQUIRE((*dec)->open(v.seq, packet, tag).ok());
    // Bytes after the length field are back to the plaintext.
    CHECK(to_hex(ByteSpan(packet).subspan(4)) == to_hex(ByteSpan(expected_plain).subspan(4)));
  }
}

constexpr const char* kP1 = "000000100668656c6c6f20737368000000000000";
constexpr const char* kP2 =
    "00000030057365636f6e64207061636b65742c206120626974206c6f6e676572207468616e206f6e6520626c6f"
    "636b0000000000";
}  // namespace

TEST_CASE("chacha20-poly1305@openssh.com known answers") {
  check_vectors("chacha20-poly1305@openssh.com", range_key(0, 64), {}, {},
                {{7, kP1, "a39afcba2e2e702f22ec0a2d1f05bbf0d78fd32c", "3eeae61ca52636cbcc2276e4523b7971"},
                 {8, kP2,
                  "2fe1f291ded033c5c72c6336f93f204f8ee46d92e4fce393d0572cdb2ff01cf8fc6666d00bc0906d5b"
                  "5679985e5527b8bdbe9f59",
                  "eae10ac556de473ef4c086a5ff8b43ab"}});
}

TEST_CASE("aes128-gcm@openssh.com known answers (nonce counter advances per packet)") {
  check_vectors("aes128-gcm@openssh.com", range_key(100, 16), range_key(200, 12), {},
                {{0, kP1, "0000001049e308760ef2f49ea723c70edf9eb33a", "c5e94439b38c474075df4e8931f5a59e"},
                 {1, kP2,
                  "00000030e1fcdb68a9729cb7ce01457982ce90e3c277f47cbc9533dbab0b39421d3b94b08fffea95fb"
                  "1d4d040f81f09c2b4f5e99",
                  "3d9d37ee82eb55a839592f2dd3fcadef"}});
}

TEST_CASE("aes256-gcm@openssh.com known answers") {
  check_vectors("aes256-gcm@openssh.com", range_key(100, 32), range_key(200, 12), {},
                {{0, kP1, "000000106a2affe933394501d6d156a605fe226a", "c98d6b0a8126b7c8e64c6316618cd756"},
                 {1, kP2,
                  "0000003056dd6769e8077c01cebaa7c28bb0c18da29534ce6aca5356da04d6377a1b4b96cc1684f557"
                  "4130f003387749b3d84e27",
                  "13dce48e7d14dd28abb214ddd26e87e4"}});
}

// Our GCM is assembled from Botan's AES and GHASH with a batched counter mode (cipher.cpp);
// Botan's own GCM mode is an independent oracle for packets long enough to span several
// keystream batches, with the nonce's invocation counter advancing across packets.
TEST_CASE("aes-gcm packets of every size match Botan's GCM mode, both ways") {
  for (std::size_t key_size : {16u, 32u}) {
    INFO("key size " << key_size);
    const SecureBytes key = range_key(9, int(key_size)), iv = range_key(40, 12);
    const char* name = key_size == 16 ? "aes128-gcm@openssh.com" : "aes256-gcm@openssh.com";
    auto enc = make_cipher(name, key, iv, {});
    auto dec = make_cipher(name, key, iv, {});
    REQUIRE(enc.ok());
    REQUIRE(dec.ok());
    auto oracle = Botan::AEAD_Mode::create_or_throw(key_size == 16 ? "AES-128/GCM" : "AES-256/GCM", Botan::ENCRYPTION);
    oracle->set_key(key.data(), key.size());
    SecureBytes nonce(iv.begin(), iv.end());
    std::uint32_t seq = 0;
    // Body sizes (after the 4-byte length) are multiples of the 16-byte block, as in SSH.
    for (std::size_t body : {16u, 32u, 4096u, 16368u, 16384u, 16400u, 65536u, 200000u, 261136u, 262144u + 48u}) {
      INFO("body " << body);
      Bytes packet(4 + body);
      store_be32(packet.data(), std::uint32_t(body));
      for (std::size_t i = 4; i < packet.size(); ++i) packet[i] = std::uint8_t(i * 131 + body);
      const Bytes plain = packet;

      SecureBytes expected(plain.begin() + 4, plain.end());
      oracle->set_associated_data(plain.data(), 4);
      oracle->start(nonce.data(), nonce.size());
      oracle->finish(expected);  // ciphertext || tag
      for (std::size_t i = 11; i >= 4 && ++nonce[i] == 0; --i) {
      }

      Bytes tag(16);
      (*enc)->seal(seq, packet, tag);
      REQUIRE(std::equal(packet.begin() + 4, packet.end(), expected.begin()));
      REQUIRE(std::equal(tag.begin(), tag.end(), expected.end() - 16));
      REQUIRE((*dec)->open(seq, packet, tag).ok());
      REQUIRE(packet == plain);
      ++seq;
    }
  }
}

TEST_CASE("aes128-ctr + hmac-sha2-256-etm known answers") {
  check_vectors("aes128-ctr", range_key(0, 16), range_key(16, 16), range_key(32, 32),
                {{3, kP1, "0000001001968a188dba231de366ee118e949293",
                  "4d5b259b98e347f3ee65aee99865bc72d45d7346ba56e655a315257a2fc72b58"},
                 {4, kP2,
                  "0000003097b1a067b762e62236181e09ee8df228ab015a0e41c594c40bf1ef5e81a1551b3ed209da3e"
                  "62df1943f05e02ce0cd108",
                  "1f0d0fa9c6c1ba64612c207be53123e56775f7c3dd69ab93c518249cf022ff2b"}});
}

TEST_CASE("every cipher detects a flipped bit anywhere in the packet or tag") {
  for (const auto& spec : supported_ciphers()) {
    INFO(spec.name);
    SecureBytes key = range_key(1, int(spec.key_size)), iv = range_key(2, int(spec.iv_size)),
                mac = range_key(3, int(spec.mac_key_size));
    Bytes original = from_hex(kP2);
    for (std::size_t bit = 0; bit < (original.size() + 16) * 8; bit += 13) {
      auto enc = make_cipher(spec.name, key, iv, mac);
      auto dec = make_cipher(spec.name, key, iv, mac);
      Bytes packet = original;
      Bytes tag((*enc)->tag_size());
      (*enc)->seal(5, packet, tag);
      std::size_t byte = bit / 8;
      if (byte < packet.size()) packet[byte] ^= std::uint8_t(1u << (bit % 8));
      else if (byte - packet.size() < tag.size()) tag[byte - packet.size()] ^= std::uint8_t(1u << (bit % 8));
      else continue;
      REQUIRE((*dec)->open(5, packet, tag).error() == errc::mac_failure);
    }
    // Wrong sequence number fails too (for ciphers that bind it).
    auto enc = make_cipher(spec.name, key, iv, mac);
    auto dec = make_cipher(spec.name, key, iv, mac);
    Bytes packet = original;
    Bytes tag((*enc)->tag_size());
    (*enc)->seal(5, packet, tag);
    if (!spec.name.starts_with("aes") || !spec.name.ends_with("gcm@openssh.com"))
      REQUIRE_FALSE((*dec)->open(6, packet, tag).ok());
  }
}

TEST_CASE("make_cipher rejects unknown names and short keys") {
  REQUIRE(make_cipher("3des-cbc", range_key(0, 24), range_key(0, 8), {}).error() ==
          errc::kex_failed);
  REQUIRE(make_cipher("aes256-gcm@openssh.com", range_key(0, 16), range_key(0, 12), {})
              .error() == errc::kex_failed);
}
