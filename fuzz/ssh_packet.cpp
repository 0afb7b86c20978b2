// SSH binary packet layer and the key parsing a peer controls. Input byte 0 picks the mode:
//  - plaintext: the rest is raw wire bytes for a PacketDecoder (as before NEWKEYS), fed in
//    pieces; every payload returned must lie inside what was fed;
//  - a cipher (each one we implement): the rest is a list of [u16 len][payload]; each payload
//    is encoded with fixed keys, optionally one byte of the wire is flipped (input-chosen),
//    and decoded again: unflipped packets must round-trip exactly, a flipped one must fail;
//  - public-key blobs and signatures: blob_algorithm() and verify_signature() on peer bytes.
#include <botan/chacha_rng.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ssh/cipher.hpp"
#include "ssh/host_key.hpp"
#include "ssh/packet_codec.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}

std::unique_ptr<PacketCipher> cipher(const CipherSpec& spec) {
  Botan::secure_vector<std::uint8_t> key(spec.key_size, 0x11), iv(spec.iv_size, 0x22), mac(spec.mac_key_size, 0x33);
  return std::move(*make_cipher(spec.name, key, iv, mac));
}

void plaintext(ByteSpan in, std::size_t chunk) {
  PacketDecoder dec;
  std::size_t at = 0;
  while (at < in.size()) {
    std::size_t n = dec.feed(in.subspan(at, std::min(chunk, in.size() - at)));
    at += n;
    for (;;) {
      auto p = dec.next();
      if (!p) return;
      if (!*p) break;
      check((*p)->size() <= kMaxPacketSize);
    }
    if (n == 0) return;
  }
}

void round_trip(const CipherSpec& spec, ByteSpan in) {
  Botan::ChaCha_RNG rng(Botan::secure_vector<std::uint8_t>(32, 5));
  PacketEncoder enc(rng);
  PacketDecoder dec;
  enc.set_cipher(cipher(spec));
  dec.set_cipher(cipher(spec));
  std::size_t at = 0;
  while (at + 3 <= in.size()) {
    std::size_t len = std::min<std::size_t>(load_be16(in.data() + at) % 2048, in.size() - at - 3);
    std::uint8_t flip = in[at + 2];
    at += 3;
    ByteSpan payload = in.subspan(at, len);
    at += len;
    Bytes wire;
    enc.encode(payload, wire);
    if (flip & 0x80) wire[(std::size_t(flip & 0x7f) * 7) % wire.size()] ^= std::uint8_t(1 + (flip & 0x7f));
    std::size_t taken = dec.feed(wire);
    check(taken == wire.size());
    auto p = dec.next();
    if (flip & 0x80) {
      // A flipped length byte may make the decoder wait for more; otherwise it must fail.
      if (p && !*p) return;
      check(!p);
      return;
    }
    check(p && *p);
    check((*p)->size() == payload.size() && std::memcmp((*p)->data(), payload.data(), payload.size()) == 0);
  }
}

void keys(ByteSpan in) {
  if (in.size() < 2) return;
  std::size_t split = std::min<std::size_t>(in[0], in.size() - 1);
  ByteSpan blob = in.subspan(1, split);
  ByteSpan sig = in.subspan(1 + split);
  auto alg = blob_algorithm(blob);
  static const Bytes message = to_bytes("exchange hash");
  if (alg) (void)verify_signature(*alg, blob, sig, message);
  (void)verify_signature(kEd25519, blob, sig, message);
  (void)verify_signature(kEcdsaP256, blob, sig, message);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  ByteSpan in(data + 1, size - 1);
  auto ciphers = supported_ciphers();
  std::size_t mode = data[0] % (ciphers.size() + 2);
  if (mode == 0) {
    plaintext(in, 1 + (data[0] >> 4) * 97);
  } else if (mode == 1) {
    keys(in);
  } else {
    round_trip(ciphers[mode - 2], in);
  }
  return 0;
}
