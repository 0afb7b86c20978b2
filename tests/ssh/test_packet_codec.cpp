#include <catch2/catch.hpp>

#include <botan/chacha_rng.h>
#include <botan/system_rng.h>

#include "hex.hpp"
#include "ssh/packet_codec.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;
using vtunnel::test::from_hex;

namespace {
using SecureBytes = Botan::secure_vector<std::uint8_t>;
SecureBytes key_of(std::size_t n, std::uint8_t v) { return SecureBytes(n, v); }

void install(const char* name, PacketEncoder& enc, PacketDecoder& dec) {
  const CipherSpec* s = find_cipher(name);
  REQUIRE(s);
  auto k = key_of(s->key_size, 1), iv = key_of(s->iv_size, 2), m = key_of(s->mac_key_size, 3);
  enc.set_cipher(std::move(*make_cipher(name, k, iv, m)));
  dec.set_cipher(std::move(*make_cipher(name, k, iv, m)));
}

Bytes payload_of(std::size_t n, std::uint8_t seed) {
  Bytes p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = std::uint8_t(seed + i * 7);
  return p;
}
}  // namespace

TEST_CASE("packets round-trip in clear and under every cipher, fed byte by byte or at once") {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  std::vector<const char*> names = {nullptr};
  for (const auto& s : supported_ciphers()) names.push_back(s.name.data());
  for (const char* name : names) {
    INFO((name ? name : "none"));
    PacketEncoder enc(rng);
    PacketDecoder dec;
    if (name) install(name, enc, dec);
    Bytes wire;
    std::vector<Bytes> sent;
    for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 1000u, 32768u, unsigned(PacketEncoder::kMaxPayload)}) {
      sent.push_back(payload_of(n, std::uint8_t(n)));
      enc.encode(sent.back(), wire);
    }
    std::size_t got = 0;
    std::size_t step = name ? 1 : 4096;  // byte-by-byte once per cipher is slow for big packets
    for (std::size_t at = 0; at < wire.size();) {
      std::size_t n = std::min(at < 4096 ? step : 65536, wire.size() - at);
      REQUIRE(dec.feed(ByteSpan(wire).subspan(at, n)) == n);
      at += n;
      for (;;) {
        auto r = dec.next();
        REQUIRE(r.ok());
        if (!*r) break;
        REQUIRE(got < sent.size());
        REQUIRE(std::equal((*r)->begin(), (*r)->end(), sent[got].begin(), sent[got].end()));
        ++got;
      }
    }
    REQUIRE(got == sent.size());
    REQUIRE(dec.sequence() == sent.size());
    REQUIRE(enc.sequence() == sent.size());
    REQUIRE(dec.buffered() == 0);
  }
}

TEST_CASE("padding is at least 4 bytes and block aligned, random") {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  PacketEncoder enc(rng);
  for (std::size_t n = 0; n < 40; ++n) {
    Bytes wire;
    enc.encode(payload_of(n, 1), wire);
    std::uint32_t len = load_be32(wire.data());
    REQUIRE((len + 4) % 8 == 0);
    REQUIRE(wire[4] >= 4);
    REQUIRE(len == 1 + n + wire[4]);
  }
}

TEST_CASE("oversized length is rejected before buffering it") {
  PacketDecoder dec;
  Bytes wire = from_hex("00040004");  // 256 KiB + 4
  dec.feed(wire);
  REQUIRE(dec.next().error() == errc::packet_too_large);
  PacketDecoder dec2;
  dec2.feed(from_hex("ffffffff"));
  REQUIRE(dec2.next().error() == errc::packet_too_large);
}

TEST_CASE("bad padding and misalignment are rejected") {
  SECTION("padding < 4") {
    PacketDecoder dec;
    dec.feed(from_hex("0000000c03" "0102030405060708" "aabbcc"));
    REQUIRE(dec.next().error() == errc::bad_padding);
  }
  SECTION("padding longer than packet") {
    PacketDecoder dec;
    dec.feed(from_hex("0000000cff" "0102030405060708" "aabbcc"));
    REQUIRE(dec.next().error() == errc::bad_padding);
  }
  SECTION("length not aligned") {
    PacketDecoder dec;
    dec.feed(from_hex("0000000d04"));
    REQUIRE(dec.next().error() == errc::bad_padding);
  }
  SECTION("too short") {
    PacketDecoder dec;
    dec.feed(from_hex("00000004"));
    REQUIRE(dec.next().error() == errc::bad_padding);
  }
}

TEST_CASE("tampered ciphertext yields mac_failure from the decoder") {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  for (const auto& s : supported_ciphers()) {
    INFO(s.name);
    PacketEncoder enc(rng);
    PacketDecoder dec;
    install(s.name.data(), enc, dec);
    Bytes wire;
    enc.encode(payload_of(100, 3), wire);
    wire[wire.size() / 2] ^= 0x40;
    dec.feed(wire);
    REQUIRE(dec.next().error() == errc::mac_failure);
  }
}

TEST_CASE("need-more is not an error and partial length state is kept") {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  PacketEncoder enc(rng);
  PacketDecoder dec;
  install("chacha20-poly1305@openssh.com", enc, dec);
  Bytes wire;
  enc.encode(payload_of(50, 9), wire);
  dec.feed(ByteSpan(wire).first(2));
  auto r = dec.next();
  REQUIRE(r.ok());
  REQUIRE_FALSE(*r);
  dec.feed(ByteSpan(wire).subspan(2, 10));
  r = dec.next();
  REQUIRE(r.ok());
  REQUIRE_FALSE(*r);
  dec.feed(ByteSpan(wire).subspan(12));
  r = dec.next();
  REQUIRE(r.ok());
  REQUIRE(*r);
  REQUIRE((*r)->size() == 50);
}
