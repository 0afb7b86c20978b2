#include <catch2/catch.hpp>

#include "ws/frame_test_util.hpp"

using namespace vtunnel;
using namespace vtunnel::ws;
using namespace vtunnel::ws::test;

namespace {
Bytes hex(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v) b.push_back(static_cast<std::uint8_t>(x));
  return b;
}
}  // namespace

TEST_CASE("RFC 6455 5.7 examples parse", "[frame_parser]") {
  SECTION("unmasked Hello, to a client") {
    auto out = parse_all(Role::client, hex({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
    REQUIRE(!out.error);
    REQUIRE(out.messages.size() == 1);
    REQUIRE(out.messages[0].opcode == Opcode::text);
    REQUIRE(out.messages[0].payload == "Hello");
  }
  SECTION("masked Hello, to a server, split at every byte") {
    const Bytes wire = hex({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
    for (std::size_t chunk = 1; chunk <= wire.size(); ++chunk) {
      auto out = parse_all(Role::server, wire, chunk);
      REQUIRE(!out.error);
      REQUIRE(out.messages.size() == 1);
      REQUIRE(out.messages[0].payload == "Hello");
    }
  }
  SECTION("fragmented unmasked text") {
    auto out = parse_all(Role::client, hex({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}));
    REQUIRE(!out.error);
    REQUIRE(out.headers == 2);
    REQUIRE(out.messages.size() == 1);
    REQUIRE(out.messages[0].payload == "Hello");
  }
  SECTION("ping with Hello") {
    auto out = parse_all(Role::client, hex({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
    REQUIRE(out.controls.size() == 1);
    REQUIRE(out.controls[0].opcode == Opcode::ping);
    REQUIRE(out.controls[0].payload == "Hello");
  }
  SECTION("masked pong with Hello") {
    auto out = parse_all(Role::server, hex({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
    REQUIRE(out.controls.size() == 1);
    REQUIRE(out.controls[0].opcode == Opcode::pong);
    REQUIRE(out.controls[0].payload == "Hello");
  }
  SECTION("256 bytes and 64 KiB binary, 16- and 64-bit lengths") {
    Bytes a = hex({0x82, 0x7E, 0x01, 0x00});
    a.resize(4 + 256, 0xAB);
    auto out = parse_all(Role::client, a);
    REQUIRE(out.messages.size() == 1);
    REQUIRE(out.messages[0].payload.size() == 256);
    Bytes b = hex({0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0});
    b.resize(10 + 65536, 0xCD);
    out = parse_all(Role::client, b, 1000);
    REQUIRE(!out.error);
    REQUIRE(out.messages.size() == 1);
    REQUIRE(out.messages[0].payload == std::string(65536, '\xCD'));
  }
}

TEST_CASE("writer and parser agree for every length class and split", "[frame_parser]") {
  for (std::size_t size : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 70001u}) {
    std::string payload(size, '\0');
    for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<char>(i * 7 + 3);
    for (Role sender : {Role::client, Role::server}) {
      const auto mask = sender == Role::client ? std::optional(kKey) : std::nullopt;
      const Role receiver = sender == Role::client ? Role::server : Role::client;
      const Bytes wire = make_frame(Opcode::binary, payload, mask);
      REQUIRE(wire.size() == frame_header_size(size, mask.has_value()) + size);
      for (std::size_t chunk : {1u, 2u, 3u, 5u, 13u, 4096u, 1u << 20}) {
        if (size > 1000 && chunk < 13) continue;  // keep the test fast
        auto out = parse_all(receiver, wire, chunk);
        REQUIRE(!out.error);
        REQUIRE(out.messages.size() == 1);
        REQUIRE(out.messages[0].payload == payload);
      }
    }
  }
}

TEST_CASE("fragments with interleaved control frames", "[frame_parser]") {
  Bytes wire = make_frame(Opcode::text, "caf\xC3", kKey, false);  // split inside a character
  append(wire, make_frame(Opcode::ping, "p", kKey));
  append(wire, make_frame(Opcode::continuation, "\xA9 ", kKey, false));
  append(wire, make_frame(Opcode::continuation, "", kKey, false));
  append(wire, make_frame(Opcode::continuation, "ok", kKey, true));
  append(wire, make_frame(Opcode::binary, "", kKey));
  for (std::size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    auto out = parse_all(Role::server, wire, chunk);
    REQUIRE(!out.error);
    REQUIRE(out.messages.size() == 2);
    REQUIRE(out.messages[0].opcode == Opcode::text);
    REQUIRE(out.messages[0].payload == "caf\xC3\xA9 ok");
    REQUIRE(out.messages[1].opcode == Opcode::binary);
    REQUIRE(out.messages[1].payload.empty());
    REQUIRE(out.controls.size() == 1);
  }
}

TEST_CASE("protocol violations are distinct errors", "[frame_parser]") {
  struct Case {
    const char* name;
    Role role;
    Bytes wire;
    errc expected;
  };
  const std::vector<Case> cases = {
      {"RSV1", Role::client, hex({0xC2, 0x00}), errc::reserved_bits_set},
      {"RSV3", Role::client, hex({0x92, 0x00}), errc::reserved_bits_set},
      {"opcode 3", Role::client, hex({0x83, 0x00}), errc::reserved_opcode},
      {"opcode 0xB", Role::client, hex({0x8B, 0x00}), errc::reserved_opcode},
      {"unmasked to server", Role::server, hex({0x82, 0x00}), errc::unmasked_frame},
      {"masked to client", Role::client, hex({0x82, 0x80, 1, 2, 3, 4}), errc::masked_frame},
      {"16-bit length < 126", Role::client, hex({0x82, 0x7E, 0x00, 0x7D}), errc::non_minimal_length},
      {"64-bit length < 65536", Role::client, hex({0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}), errc::non_minimal_length},
      {"64-bit length MSB", Role::client, hex({0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}), errc::length_msb_set},
      {"fragmented ping", Role::client, hex({0x09, 0x00}), errc::fragmented_control_frame},
      {"126-byte ping", Role::client, hex({0x89, 0x7E, 0x00, 0x7E}), errc::control_frame_too_big},
      {"continuation first", Role::client, hex({0x80, 0x00}), errc::continuation_without_start},
      {"binary inside text", Role::client, hex({0x01, 0x01, 0x41, 0x82, 0x00}), errc::data_frame_inside_message},
      {"frame after close", Role::client, hex({0x88, 0x00, 0x82, 0x00}), errc::frame_after_close},
      {"1-byte close", Role::client, hex({0x88, 0x01, 0x03}), errc::bad_close_payload},
      {"close code 1005", Role::client, hex({0x88, 0x02, 0x03, 0xED}), errc::bad_close_code},
      {"close code 999", Role::client, hex({0x88, 0x02, 0x03, 0xE7}), errc::bad_close_code},
      {"close code 1004", Role::client, hex({0x88, 0x02, 0x03, 0xEC}), errc::bad_close_code},
      {"close code 5000", Role::client, hex({0x88, 0x02, 0x13, 0x88}), errc::bad_close_code},
      {"close reason not UTF-8", Role::client, hex({0x88, 0x03, 0x03, 0xE8, 0xFF}), errc::bad_utf8},
      {"text not UTF-8", Role::client, hex({0x81, 0x01, 0xC0}), errc::bad_utf8},
      {"text ends mid-character", Role::client, hex({0x81, 0x01, 0xE2}), errc::bad_utf8},
      {"text surrogate", Role::client, hex({0x81, 0x03, 0xED, 0xA0, 0x80}), errc::bad_utf8},
  };
  for (const auto& c : cases) {
    for (std::size_t chunk : {1u, 3u, 100u}) {
      INFO(c.name << ", chunk " << chunk);
      auto out = parse_all(c.role, c.wire, chunk);
      REQUIRE(out.error == make_error_code(c.expected));
    }
  }
}

TEST_CASE("a failed parser stays failed", "[frame_parser]") {
  FrameParser parser(Role::server);
  Bytes bad = hex({0x82, 0x00});
  REQUIRE(parser.parse(bad).kind == ParseStep::Kind::error);
  Bytes good = make_frame(Opcode::binary, "x", kKey);
  auto step = parser.parse(good);
  REQUIRE(step.kind == ParseStep::Kind::error);
  REQUIRE(step.error == errc::unmasked_frame);
}

TEST_CASE("message size limit is checked at each header, across fragments", "[frame_parser]") {
  ParserLimits limits{1000};
  SECTION("one frame just fits") {
    auto out = parse_all(Role::client, make_frame(Opcode::binary, std::string(1000, 'a'), std::nullopt), 1 << 20, limits);
    REQUIRE(!out.error);
  }
  SECTION("one byte over, rejected before any payload arrives") {
    Bytes wire = make_frame(Opcode::binary, std::string(1001, 'a'), std::nullopt);
    wire.resize(4);  // the header alone
    auto out = parse_all(Role::client, wire, 1 << 20, limits);
    REQUIRE(out.error == errc::message_too_big);
  }
  SECTION("fragments add up") {
    Bytes wire = make_frame(Opcode::binary, std::string(600, 'a'), std::nullopt, false);
    append(wire, make_frame(Opcode::continuation, std::string(401, 'b'), std::nullopt, true));
    auto out = parse_all(Role::client, wire, 1 << 20, limits);
    REQUIRE(out.error == errc::message_too_big);
    REQUIRE(out.partial.size() == 600);
  }
  SECTION("the count restarts with each message") {
    Bytes wire = make_frame(Opcode::binary, std::string(600, 'a'), std::nullopt);
    append(wire, make_frame(Opcode::binary, std::string(600, 'b'), std::nullopt));
    auto out = parse_all(Role::client, wire, 1 << 20, limits);
    REQUIRE(!out.error);
    REQUIRE(out.messages.size() == 2);
  }
  SECTION("a 2^63-1 length does not overflow the check") {
    auto out = parse_all(Role::client, hex({0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}));
    REQUIRE(out.error == errc::message_too_big);
  }
}

TEST_CASE("payload_remaining lets a driver read payload straight through", "[frame_parser]") {
  FrameParser parser(Role::client);
  Bytes wire = make_frame(Opcode::binary, std::string(300, 'z'), std::nullopt);
  MutableByteSpan input(wire.data(), 4);
  auto step = parser.parse(input);
  REQUIRE(step.kind == ParseStep::Kind::frame_header);
  REQUIRE(step.header.payload_size == 300);
  REQUIRE(parser.payload_remaining() == 300);
  REQUIRE(parser.in_message() == false);
  MutableByteSpan rest(wire.data() + 4, 300);
  step = parser.parse(rest);
  REQUIRE(step.kind == ParseStep::Kind::data);
  REQUIRE(step.payload.data() == rest.data());  // in place, no copy
  REQUIRE(step.message_end);
  REQUIRE(parser.payload_remaining() == 0);
}

TEST_CASE("close frames carry code and reason", "[frame_parser]") {
  Bytes payload = hex({0x03, 0xE9});
  const std::string reason = "going \xE2\x82\xAC";
  payload.insert(payload.end(), reason.begin(), reason.end());
  auto out = parse_all(Role::server, make_frame(Opcode::close, payload, kKey), 2);
  REQUIRE(!out.error);
  REQUIRE(out.controls.size() == 1);
  REQUIRE(out.controls[0].close.code == 1001);
  REQUIRE(out.controls[0].close.reason == reason);
  auto empty = parse_all(Role::client, make_frame(Opcode::close, "", std::nullopt));
  REQUIRE(empty.controls.at(0).close.code == 1005);
}
