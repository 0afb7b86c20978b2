// vtunnel-bench-protocols: what do our SSH packet codec and WebSocket frame codec cost on top of
// the cryptography they wrap? Measured in one process, in the same run, interleaved operation by
// operation with the raw Botan primitive on the same bytes, so that the noise of a shared machine
// falls on both sides alike.
//
//   vtunnel-bench-protocols [--seconds S] [--repeat N] [--json FILE] [--only SUBSTR]
//   (medians of N runs; --only keeps the rows whose cipher name, or "websocket", contains SUBSTR:
//   handy under valgrind --tool=callgrind)
//
// SSH (issue 3, target: ours >= 85% of the primitive):
//   encode  PacketEncoder::begin + finish: header, random padding, sequence number, in-place
//           encryption, tag. The caller's copy of the payload into the area begin() returns is
//           timed separately ("encode+fill" column): the channel code does such a copy today.
//   decode  PacketDecoder::next over a packet already in its buffer (the socket read lands there
//           via prepare/commit; that copy is the kernel's and is not timed): length, tag check,
//           in-place decryption, padding check.
//   primitive  the same packet bytes through Botan directly: AEAD_Mode "AES-128/GCM" /
//           "AES-256/GCM" (4-byte AAD, finish on a reserved secure_vector), ChaCha(20) over the
//           body + Poly1305 over length||body (a fixed one-time key: no key-block derivation),
//           CTR-BE(AES-n) + HMAC(SHA-256) over seq||length||body.
//   Payloads: 32 KiB and PacketEncoder::kMaxPayload (261,888 B: the largest that fits one
//   256 KiB packet; a 256 KiB payload does not fit one packet).
//
// WebSocket (issue 4, target: framing+masking < 5% of AES-128-GCM seal time of the same bytes):
//   encode  MaskGenerator::next + seal_frame_in_place (client: header into headroom, payload
//           masked in place)
//   decode  FrameParser(Role::server)::parse over the frame until the message ends (unmasks in
//           place)
//   gcm     AES-128/GCM seal of the same payload bytes (the cost the framing is compared with)
//
// MB/s = 10^6 payload bytes per second. Each interval is timed with steady_clock; the median cost
// of an empty interval (measured at start-up) is subtracted from every interval.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <botan/aead.h>
#include <botan/chacha_rng.h>
#include <botan/mac.h>
#include <botan/mem_ops.h>
#include <botan/stream_cipher.h>
#include <botan/system_rng.h>
#include <botan/version.h>
#include <fmt/format.h>

#include "ssh/cipher.hpp"
#include "ssh/packet_codec.hpp"
#include "ws/frame_parser.hpp"
#include "ws/frame_writer.hpp"
#include "ws/mask_generator.hpp"

using namespace vtunnel;
using Clock = std::chrono::steady_clock;

namespace {

double g_seconds = 1.0;
std::string g_only;  // empty: every row
bool selected(std::string_view name) { return name.find(g_only) != std::string_view::npos; }
double g_clock_overhead = 0;  // seconds, subtracted from every timed interval

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "vtunnel-bench-protocols: VERIFICATION FAILED: %s\n", what.c_str());
  std::exit(1);
}

double interval(Clock::time_point a, Clock::time_point b) {
  return std::max(0.0, std::chrono::duration<double>(b - a).count() - g_clock_overhead);
}

void calibrate_clock() {
  std::vector<double> v;
  for (int i = 0; i < 10001; ++i) {
    auto a = Clock::now();
    auto b = Clock::now();
    v.push_back(std::chrono::duration<double>(b - a).count());
  }
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  g_clock_overhead = v[v.size() / 2];
}

Botan::secure_vector<std::uint8_t> random_bytes(Botan::RandomNumberGenerator& rng, std::size_t n) {
  Botan::secure_vector<std::uint8_t> v(n);
  rng.randomize(v.data(), n);
  return v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---- raw Botan primitives on one packet ------------------------------------------------------

// Stream cipher + MAC constructions. seal: packet = [4-byte length][body], body encrypted in
// place, tag written to tag. open: verifies, then decrypts in place; false on tag mismatch.
class Primitive {
 public:
  virtual ~Primitive() = default;
  virtual void seal(std::uint32_t seq, MutableByteSpan packet, std::uint8_t* tag) = 0;
  virtual bool open(std::uint32_t seq, MutableByteSpan packet, const std::uint8_t* tag) = 0;
};

class GcmPrimitive {
 public:
  GcmPrimitive(const char* algo, const Botan::secure_vector<std::uint8_t>& key)
      : enc_(Botan::AEAD_Mode::create_or_throw(algo, Botan::ENCRYPTION)),
        dec_(Botan::AEAD_Mode::create_or_throw(algo, Botan::DECRYPTION)) {
    enc_->set_key(key);
    dec_->set_key(key);
  }
  // The natural Botan usage, in place: the body in a secure_vector with reserved capacity (no
  // reallocation); finish() appends the tag when sealing, checks and strips it when opening.
  void seal_buf(std::uint32_t seq, const std::uint8_t* aad, Botan::secure_vector<std::uint8_t>& buf) {
    nonce(seq);
    enc_->set_associated_data(aad, 4);
    enc_->start(nonce_, 12);
    enc_->finish(buf);
  }
  bool open_buf(std::uint32_t seq, const std::uint8_t* aad, Botan::secure_vector<std::uint8_t>& buf) {
    nonce(seq);
    dec_->set_associated_data(aad, 4);
    dec_->start(nonce_, 12);
    try {
      dec_->finish(buf);
    } catch (const std::exception&) {
      return false;
    }
    return true;
  }

 private:
  void nonce(std::uint32_t seq) {
    std::memset(nonce_, 0x11, 4);
    store_be64(nonce_ + 4, seq);
  }
  std::unique_ptr<Botan::AEAD_Mode> enc_, dec_;
  std::uint8_t nonce_[12];
};

class ChachaPolyPrimitive final : public Primitive {
 public:
  explicit ChachaPolyPrimitive(const Botan::secure_vector<std::uint8_t>& key)
      : chacha_(Botan::StreamCipher::create_or_throw("ChaCha(20)")),
        poly_(Botan::MessageAuthenticationCode::create_or_throw("Poly1305")),
        poly_key_(key.begin() + 32, key.begin() + 64) {
    chacha_->set_key(key.data(), 32);
  }
  void seal(std::uint32_t seq, MutableByteSpan packet, std::uint8_t* tag) override {
    iv(seq);
    chacha_->cipher1(packet.data() + 4, packet.size() - 4);
    poly_->set_key(poly_key_);
    poly_->update(packet.data(), packet.size());
    poly_->final(tag);
  }
  bool open(std::uint32_t seq, MutableByteSpan packet, const std::uint8_t* tag) override {
    std::uint8_t expected[16];
    poly_->set_key(poly_key_);
    poly_->update(packet.data(), packet.size());
    poly_->final(expected);
    if (!Botan::constant_time_compare(expected, tag, 16)) return false;
    iv(seq);
    chacha_->cipher1(packet.data() + 4, packet.size() - 4);
    return true;
  }

 private:
  void iv(std::uint32_t seq) {
    std::uint8_t n[8];
    store_be64(n, seq);
    chacha_->set_iv(n, 8);
  }
  std::unique_ptr<Botan::StreamCipher> chacha_;
  std::unique_ptr<Botan::MessageAuthenticationCode> poly_;
  Botan::secure_vector<std::uint8_t> poly_key_;
};

class CtrHmacPrimitive final : public Primitive {
 public:
  CtrHmacPrimitive(std::size_t key_size, const Botan::secure_vector<std::uint8_t>& key,
                   const Botan::secure_vector<std::uint8_t>& iv,
                   const Botan::secure_vector<std::uint8_t>& mac_key) {
    const char* algo = key_size == 16 ? "CTR-BE(AES-128)" : "CTR-BE(AES-256)";
    enc_ = Botan::StreamCipher::create_or_throw(algo);
    dec_ = Botan::StreamCipher::create_or_throw(algo);
    for (auto* c : {enc_.get(), dec_.get()}) {
      c->set_key(key.data(), key_size);
      c->set_iv(iv.data(), 16);
    }
    mac_ = Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)");
    mac_->set_key(mac_key.data(), 32);
  }
  void seal(std::uint32_t seq, MutableByteSpan packet, std::uint8_t* tag) override {
    enc_->cipher1(packet.data() + 4, packet.size() - 4);
    mac(seq, packet, tag);
  }
  bool open(std::uint32_t seq, MutableByteSpan packet, const std::uint8_t* tag) override {
    std::uint8_t expected[32];
    mac(seq, packet, expected);
    if (!Botan::constant_time_compare(expected, tag, 32)) return false;
    dec_->cipher1(packet.data() + 4, packet.size() - 4);
    return true;
  }

 private:
  void mac(std::uint32_t seq, ByteSpan packet, std::uint8_t* out) {
    std::uint8_t s[4];
    store_be32(s, seq);
    mac_->update(s, 4);
    mac_->update(packet.data(), packet.size());
    mac_->final(out);
  }
  std::unique_ptr<Botan::StreamCipher> enc_, dec_;
  std::unique_ptr<Botan::MessageAuthenticationCode> mac_;
};

// ---- SSH ---------------------------------------------------------------------------------------

struct SshSample {
  double enc = 0, enc_fill = 0, dec = 0, prim_seal = 0, prim_open = 0;  // MB/s
};

SshSample ssh_sample(const ssh::CipherSpec& spec, std::size_t payload_len) {
  Botan::ChaCha_RNG rng(Botan::system_rng());  // the RNG type ssh::Connection pads with
  const auto key = random_bytes(rng, spec.key_size);
  const auto iv = random_bytes(rng, std::max<std::size_t>(spec.iv_size, 16));
  const auto mac_key = random_bytes(rng, std::max<std::size_t>(spec.mac_key_size, 32));

  ssh::PacketEncoder encoder(rng);
  ssh::PacketDecoder decoder;
  {
    auto e = ssh::make_cipher(spec.name, key, iv, mac_key);
    auto d = ssh::make_cipher(spec.name, key, iv, mac_key);
    if (!e || !d) die(fmt::format("make_cipher({})", spec.name));
    encoder.set_cipher(std::move(*e));
    decoder.set_cipher(std::move(*d));
  }
  Bytes source(payload_len);
  rng.randomize(source.data(), source.size());
  Bytes out;
  out.reserve(encoder.max_wire_size(payload_len));

  // The primitive runs over a packet of exactly the length our encoder produces.
  encoder.encode(source, out);
  const std::size_t wire = out.size();
  const std::size_t tag_size = spec.tag_size;
  const std::size_t packet_size = wire - tag_size;  // 4 + packet_length
  {  // keep the decoder in step with the encoder
    decoder.feed(out);
    auto r = decoder.next();
    if (!r || !*r || (*r)->size() != payload_len) die("first SSH packet");
  }
  Bytes plain(packet_size);
  std::memcpy(plain.data(), out.data(), 5);  // length and padding length as ours wrote them
  std::memcpy(plain.data() + 5, source.data(), payload_len);
  rng.randomize(plain.data() + 5 + payload_len, packet_size - 5 - payload_len);
  Bytes pkt = plain;
  std::vector<std::uint8_t> tag(tag_size);

  std::unique_ptr<Primitive> prim;
  std::unique_ptr<GcmPrimitive> gcm;
  if (spec.name.starts_with("aes") && spec.name.ends_with("gcm@openssh.com")) {
    gcm = std::make_unique<GcmPrimitive>(spec.key_size == 16 ? "AES-128/GCM" : "AES-256/GCM", key);
  } else if (spec.name == "chacha20-poly1305@openssh.com") {
    prim = std::make_unique<ChachaPolyPrimitive>(key);
  } else {
    prim = std::make_unique<CtrHmacPrimitive>(spec.key_size, key, iv, mac_key);
  }
  Botan::secure_vector<std::uint8_t> gbuf;
  gbuf.reserve(packet_size + 16);
  gbuf.assign(plain.begin() + 4, plain.end());

  double t_enc = 0, t_fill = 0, t_dec = 0, t_seal = 0, t_open = 0;
  std::uint64_t n = 0;
  std::uint32_t pseq = 1;
  const auto deadline = Clock::now() + std::chrono::duration<double>(g_seconds);
  while (Clock::now() < deadline) {
    // ours: encode
    out.clear();
    auto t0 = Clock::now();
    MutableByteSpan room = encoder.begin(out, payload_len);
    auto t1 = Clock::now();
    std::memcpy(room.data(), source.data(), payload_len);
    auto t2 = Clock::now();
    encoder.finish(out);
    auto t3 = Clock::now();
    t_enc += interval(t0, t1) + interval(t2, t3);
    t_fill += interval(t1, t2);
    if (out.size() != wire) die("SSH packet size changed");
    // ours: decode (the bytes land in the decoder's buffer as a socket read would put them)
    MutableByteSpan in = decoder.prepare(out.size());
    std::memcpy(in.data(), out.data(), out.size());
    decoder.commit(out.size());
    auto t4 = Clock::now();
    auto r = decoder.next();
    auto t5 = Clock::now();
    t_dec += interval(t4, t5);
    if (!r) die(fmt::format("{}: decode error {}", spec.name, r.error().message()));
    if (!*r || (*r)->size() != payload_len || std::memcmp((*r)->data(), source.data(), payload_len) != 0)
      die(fmt::format("{}: decoded payload differs from the encoded one", spec.name));

    // primitive on the same bytes
    if (gcm) {
      auto p0 = Clock::now();
      gcm->seal_buf(pseq, plain.data(), gbuf);
      auto p1 = Clock::now();
      bool ok = gcm->open_buf(pseq, plain.data(), gbuf);
      auto p2 = Clock::now();
      t_seal += interval(p0, p1);
      t_open += interval(p1, p2);
      if (!ok || gbuf.size() != packet_size - 4 ||
          std::memcmp(gbuf.data(), plain.data() + 4, packet_size - 4) != 0)
        die(fmt::format("{}: primitive round trip", spec.name));
    } else {
      auto p0 = Clock::now();
      prim->seal(pseq, pkt, tag.data());
      auto p1 = Clock::now();
      bool ok = prim->open(pseq, pkt, tag.data());
      auto p2 = Clock::now();
      t_seal += interval(p0, p1);
      t_open += interval(p1, p2);
      if (!ok || pkt != plain) die(fmt::format("{}: primitive round trip", spec.name));
    }
    ++pseq;
    ++n;
  }
  const double bytes = double(n) * double(payload_len) / 1e6;
  return {bytes / t_enc, bytes / (t_enc + t_fill), bytes / t_dec, bytes / t_seal, bytes / t_open};
}

// ---- WebSocket ----------------------------------------------------------------------------------

struct WsSample {
  double enc = 0, dec = 0, gcm = 0;  // MB/s
};

WsSample ws_sample(std::size_t message) {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  ws::MaskGenerator masks;
  ws::FrameParser parser(ws::Role::server);
  const std::size_t headroom = ws::kMaxFrameHeaderSize;
  Bytes source(message);
  rng.randomize(source.data(), source.size());
  Bytes buffer(headroom + message);
  std::memcpy(buffer.data() + headroom, source.data(), message);

  const auto key = random_bytes(rng, 16);
  GcmPrimitive gcm("AES-128/GCM", key);
  Botan::secure_vector<std::uint8_t> gbuf;
  gbuf.reserve(message + 16);
  gbuf.assign(source.begin(), source.end());
  const std::uint8_t aad[4] = {0, 0, 0, 0};

  double t_enc = 0, t_dec = 0, t_gcm = 0;
  std::uint64_t n = 0;
  std::uint32_t seq = 0;
  const auto deadline = Clock::now() + std::chrono::duration<double>(g_seconds);
  while (Clock::now() < deadline) {
    auto t0 = Clock::now();
    ws::FrameSpec spec{ws::Opcode::binary, true, masks.next()};
    MutableByteSpan frame = ws::seal_frame_in_place(buffer, headroom, spec);
    auto t1 = Clock::now();
    t_enc += interval(t0, t1);
    if (frame.size() != ws::frame_header_size(message, true) + message) die("WS frame size");

    auto t2 = Clock::now();
    std::size_t got = 0;
    bool end = false;
    MutableByteSpan input = frame;
    while (!input.empty()) {
      ws::ParseStep step = parser.parse(input);
      if (step.kind == ws::ParseStep::Kind::error) die("WS parse error: " + step.error.message());
      if (step.kind == ws::ParseStep::Kind::data) {
        got += step.payload.size();
        end = step.message_end;
      }
      input = input.subspan(step.consumed);
    }
    auto t3 = Clock::now();
    t_dec += interval(t2, t3);
    if (!end || got != message || std::memcmp(buffer.data() + headroom, source.data(), message) != 0)
      die("WS round trip: decoded message differs");

    auto g0 = Clock::now();
    gcm.seal_buf(seq, aad, gbuf);
    auto g1 = Clock::now();
    t_gcm += interval(g0, g1);
    // back to plaintext, untimed
    if (!gcm.open_buf(seq, aad, gbuf)) die("AES-GCM round trip");
    ++seq;
    ++n;
  }
  const double bytes = double(n) * double(message) / 1e6;
  return {bytes / t_enc, bytes / t_dec, bytes / t_gcm};
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  int repeat = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) g_seconds = std::stod(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc) repeat = std::max(1, std::stoi(argv[++i]));
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--only" && i + 1 < argc) g_only = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--repeat N] [--json FILE] [--only SUBSTR]\n", argv[0]);
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  calibrate_clock();
  std::fprintf(stderr, "%s; each figure runs %.2f s, median of %d; clock overhead %.0f ns subtracted\n",
               Botan::version_cstr(), g_seconds, repeat, g_clock_overhead * 1e9);

  std::string json = "{\n  \"ssh\": [\n";
  const std::size_t sizes[] = {32 * 1024, ssh::PacketEncoder::kMaxPayload};
  bool first = true;
  for (const auto& spec : ssh::supported_ciphers()) {
    if (!selected(spec.name)) continue;
    if (first) {
      std::printf("### SSH packet codec vs Botan primitive (MB/s of payload; target ratio >= 0.85)\n\n");
      std::printf("| cipher | payload B | encode | encode+fill | Botan seal | enc ratio | decode | Botan open | dec ratio |\n");
      std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    }
    for (std::size_t size : sizes) {
      std::vector<double> enc, encf, dec, ps, po, er, dr;
      for (int i = 0; i < repeat; ++i) {
        SshSample s = ssh_sample(spec, size);
        enc.push_back(s.enc);
        encf.push_back(s.enc_fill);
        dec.push_back(s.dec);
        ps.push_back(s.prim_seal);
        po.push_back(s.prim_open);
        er.push_back(s.enc / s.prim_seal);
        dr.push_back(s.dec / s.prim_open);
      }
      std::printf("| %s | %zu | %.0f | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f |\n", std::string(spec.name).c_str(),
                  size, median(enc), median(encf), median(ps), median(er), median(dec), median(po), median(dr));
      std::fflush(stdout);
      json += fmt::format(
          "{}    {{\"cipher\":\"{}\",\"payload\":{},\"encode\":{:.1f},\"encode_fill\":{:.1f},\"botan_seal\":{:.1f},"
          "\"encode_ratio\":{:.3f},\"decode\":{:.1f},\"botan_open\":{:.1f},\"decode_ratio\":{:.3f}}}",
          first ? "" : ",\n", spec.name, size, median(enc), median(encf), median(ps), median(er), median(dec),
          median(po), median(dr));
      first = false;
    }
  }
  json += "\n  ],\n  \"ws\": [\n";

  if (selected("websocket")) {
    std::printf("\n### WebSocket frame codec (client masking) vs AES-128-GCM seal of the same bytes (target < 5%%)\n\n");
    std::printf("| message B | frame encode MB/s | frame decode MB/s | AES-128-GCM seal MB/s | encode %% of GCM | decode %% of GCM |\n");
    std::printf("|---:|---:|---:|---:|---:|---:|\n");
  }
  first = true;
  for (std::size_t size : {std::size_t{16 * 1024}, std::size_t{256 * 1024}}) {
    if (!selected("websocket")) break;
    std::vector<double> enc, dec, g, ep, dp;
    for (int i = 0; i < repeat; ++i) {
      WsSample s = ws_sample(size);
      enc.push_back(s.enc);
      dec.push_back(s.dec);
      g.push_back(s.gcm);
      ep.push_back(100.0 * s.gcm / s.enc);  // time ratio = inverse throughput ratio
      dp.push_back(100.0 * s.gcm / s.dec);
    }
    std::printf("| %zu | %.0f | %.0f | %.0f | %.1f%% | %.1f%% |\n", size, median(enc), median(dec), median(g),
                median(ep), median(dp));
    std::fflush(stdout);
    json += fmt::format(
        "{}    {{\"message\":{},\"encode\":{:.1f},\"decode\":{:.1f},\"aes128gcm_seal\":{:.1f},"
        "\"encode_pct_of_gcm\":{:.2f},\"decode_pct_of_gcm\":{:.2f}}}",
        first ? "" : ",\n", size, median(enc), median(dec), median(g), median(ep), median(dp));
    first = false;
  }
  json += fmt::format("\n  ],\n  \"seconds\": {}, \"repeat\": {}\n}}\n", g_seconds, repeat);
  if (!json_path.empty()) std::ofstream(json_path) << json;
  return 0;
}
