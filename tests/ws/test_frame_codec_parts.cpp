// Mask, UTF-8 validation, close payloads and the frame writer.
#include <catch2/catch.hpp>

#include <cstring>
#include <set>

#include "ws/close.hpp"
#include "ws/error.hpp"
#include "ws/frame_test_util.hpp"
#include "ws/mask_generator.hpp"
#include "ws/utf8.hpp"

using namespace vtunnel;
using namespace vtunnel::ws;
using namespace vtunnel::ws::test;

TEST_CASE("apply_mask matches the byte-wise definition at every phase and alignment", "[mask]") {
  Bytes original(300);
  for (std::size_t i = 0; i < original.size(); ++i) original[i] = static_cast<std::uint8_t>(i * 31 + 5);
  for (std::size_t offset = 0; offset < 9; ++offset) {
    for (std::size_t size : {0u, 1u, 7u, 8u, 9u, 31u, 32u, 33u, 100u, 291u}) {
      for (std::size_t phase = 0; phase < 4; ++phase) {
        Bytes data = original;
        MutableByteSpan span(data.data() + offset, size);
        const std::size_t next = apply_mask(span, kKey, phase);
        REQUIRE(next == (phase + size) % 4);
        for (std::size_t i = 0; i < size; ++i) {
          REQUIRE(data[offset + i] == (original[offset + i] ^ kKey[(phase + i) % 4]));
        }
        REQUIRE(std::equal(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(offset), original.begin()));
      }
    }
  }
}

TEST_CASE("masking in chunks equals masking at once", "[mask]") {
  Bytes whole(1000, 0x5A), chunked = whole;
  apply_mask(whole, kKey, 0);
  std::size_t phase = 0, pos = 0;
  for (std::size_t n : {3u, 1u, 17u, 64u, 2u, 913u}) {
    phase = apply_mask(MutableByteSpan(chunked).subspan(pos, n), kKey, phase);
    pos += n;
  }
  REQUIRE(pos == 1000);
  REQUIRE(whole == chunked);
}

TEST_CASE("UTF-8 validation", "[utf8]") {
  REQUIRE(is_valid_utf8(as_bytes("")));
  REQUIRE(is_valid_utf8(as_bytes("plain ascii that is longer than eight bytes")));
  REQUIRE(is_valid_utf8(as_bytes("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5")));  // κόσμε
  REQUIRE(is_valid_utf8(as_bytes("\xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF \xEF\xBF\xBF")));
  REQUIRE_FALSE(is_valid_utf8(as_bytes("\xC0\xAF")));          // overlong '/'
  REQUIRE_FALSE(is_valid_utf8(as_bytes("\xE0\x80\xAF")));      // overlong
  REQUIRE_FALSE(is_valid_utf8(as_bytes("\xF0\x80\x80\xAF")));  // overlong
  REQUIRE_FALSE(is_valid_utf8(as_bytes("\xED\xA0\x80")));      // surrogate
  REQUIRE_FALSE(is_valid_utf8(as_bytes("\xF4\x90\x80\x80")));  // > U+10FFFF
  REQUIRE_FALSE(is_valid_utf8(as_bytes("\xF5\x80\x80\x80")));
  REQUIRE_FALSE(is_valid_utf8(as_bytes("\x80")));
  REQUIRE_FALSE(is_valid_utf8(as_bytes("abcdefgh\xFF")));
  REQUIRE_FALSE(is_valid_utf8(as_bytes("\xE2\x82")));  // truncated
  // Split anywhere, incrementally.
  const std::string s = "a\xF0\x9F\x98\x80" "b\xE2\x82\xAC";
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    Utf8Validator v;
    REQUIRE(v.feed(as_bytes(std::string_view(s).substr(0, cut))));
    REQUIRE(v.feed(as_bytes(std::string_view(s).substr(cut))));
    REQUIRE(v.complete());
  }
  Utf8Validator v;
  REQUIRE(v.feed(as_bytes("\xF0\x9F")));
  REQUIRE_FALSE(v.complete());
  REQUIRE_FALSE(v.feed(as_bytes("A")));  // fails at the first impossible byte
}

TEST_CASE("close payloads", "[close]") {
  std::array<std::uint8_t, kMaxControlPayload> buf{};
  SECTION("round trip") {
    const std::size_t n = write_close_payload(buf, 1000, "bye");
    auto status = parse_close_payload(ByteSpan(buf.data(), n));
    REQUIRE(status.ok());
    REQUIRE(status->code == 1000);
    REQUIRE(status->reason == "bye");
  }
  SECTION("long reasons are cut on a character boundary") {
    std::string reason;
    while (reason.size() < 200) reason += "\xE2\x82\xAC";  // 3-byte characters
    const std::size_t n = write_close_payload(buf, 1001, reason);
    REQUIRE(n <= kMaxControlPayload);
    REQUIRE(n == 2 + 123 - 123 % 3);
    REQUIRE(parse_close_payload(ByteSpan(buf.data(), n)).ok());
  }
  SECTION("codes") {
    for (std::uint16_t ok : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999}) {
      REQUIRE(is_valid_wire_close_code(ok));
    }
    for (std::uint16_t bad : {0, 999, 1004, 1005, 1006, 1015, 1100, 2999, 5000, 65535}) {
      REQUIRE_FALSE(is_valid_wire_close_code(bad));
    }
  }
}

TEST_CASE("error codes map to close statuses and read well", "[error]") {
  REQUIRE(close_code_for(errc::bad_utf8) == CloseCode::invalid_payload);
  REQUIRE(close_code_for(errc::message_too_big) == CloseCode::too_big);
  REQUIRE(close_code_for(errc::unmasked_frame) == CloseCode::protocol_error);
  REQUIRE(close_code_for(errc::reserved_opcode) == CloseCode::protocol_error);
  REQUIRE(close_code_for(std::make_error_code(std::errc::io_error)) == CloseCode::internal_error);
  std::error_code ec = errc::masked_frame;
  REQUIRE(ec.message() == "WebSocket server sent a masked frame");
  REQUIRE(std::string(ec.category().name()) == "vtunnel.ws");
}

TEST_CASE("frame writer: headers in place", "[frame_writer]") {
  SECTION("server frame, 7-bit length") {
    Bytes buf(kMaxFrameHeaderSize + 5);
    std::memcpy(buf.data() + kMaxFrameHeaderSize, "Hello", 5);
    auto frame = seal_frame_in_place(buf, kMaxFrameHeaderSize, FrameSpec{Opcode::text, true, std::nullopt});
    REQUIRE(Bytes(frame.begin(), frame.end()) == Bytes{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'});
    REQUIRE(frame.data() + frame.size() == buf.data() + buf.size());
  }
  SECTION("client frame: RFC example, masked in place") {
    Bytes buf(6 + 5);
    std::memcpy(buf.data() + 6, "Hello", 5);
    auto frame = seal_frame_in_place(buf, 6, FrameSpec{Opcode::text, true, kKey});
    REQUIRE(Bytes(frame.begin(), frame.end()) ==
            Bytes{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  }
  SECTION("length classes and exact headroom") {
    REQUIRE(frame_header_size(125, false) == 2);
    REQUIRE(frame_header_size(126, false) == 4);
    REQUIRE(frame_header_size(65535, true) == 8);
    REQUIRE(frame_header_size(65536, false) == 10);
    REQUIRE(frame_header_size(65536, true) == kMaxFrameHeaderSize);
    std::array<std::uint8_t, 10> header{};
    REQUIRE(write_frame_header(header, FrameSpec{Opcode::binary, false, std::nullopt}, 65536) == 10);
    REQUIRE(header == std::array<std::uint8_t, 10>{0x02, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0});
    REQUIRE(write_frame_header(header, FrameSpec{Opcode::binary, true, std::nullopt}, 300) == 4);
    REQUIRE(header[0] == 0x82);
    REQUIRE(header[1] == 0x7E);
    REQUIRE(load_be16(&header[2]) == 300);
  }
}

TEST_CASE("mask generator", "[mask]") {
  const std::array<std::uint8_t, 32> seed{1, 2, 3};
  MaskGenerator a(seed), b(seed), random;
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 200; ++i) {
    const MaskKey ka = a.next();
    REQUIRE(ka == b.next());  // deterministic for a fixed seed
    std::uint32_t k;
    const MaskKey kr = random.next();
    std::memcpy(&k, kr.data(), 4);
    seen.insert(k);
  }
  REQUIRE(seen.size() > 190);  // 200 draws from 2^32 almost never collide
}
