#pragma once
// Helpers for frame tests: build frames by hand and drive a parser with inputs split anywhere.
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "ws/frame_parser.hpp"
#include "ws/frame_writer.hpp"
#include "ws/mask.hpp"

namespace vtunnel::ws::test {

// A complete frame as bytes (payload masked when `mask` is given).
inline Bytes make_frame(Opcode op, ByteSpan payload, std::optional<MaskKey> mask, bool fin = true) {
  FrameSpec spec{op, fin, mask};
  Bytes out(kMaxFrameHeaderSize + payload.size());
  std::copy(payload.begin(), payload.end(), out.begin() + kMaxFrameHeaderSize);
  MutableByteSpan frame = seal_frame_in_place(out, kMaxFrameHeaderSize, spec);
  return Bytes(frame.begin(), frame.end());
}
inline Bytes make_frame(Opcode op, std::string_view payload, std::optional<MaskKey> mask, bool fin = true) {
  return make_frame(op, as_bytes(payload), mask, fin);
}
inline void append(Bytes& to, const Bytes& more) { to.insert(to.end(), more.begin(), more.end()); }

struct Message {
  Opcode opcode;
  std::string payload;
};
struct Control {
  Opcode opcode;
  std::string payload;
  CloseStatus close;
};
struct Outcome {
  std::vector<Message> messages;
  std::vector<Control> controls;
  std::string partial;  // data of a message not finished
  std::error_code error;
  std::size_t headers = 0;
};

// Feeds `wire` to `parser` in pieces of `chunk` bytes (copied to fresh buffers, as reads do).
inline Outcome run_parser(FrameParser& parser, const Bytes& wire, std::size_t chunk) {
  Outcome out;
  for (std::size_t pos = 0; pos < wire.size() || pos == 0; pos += chunk) {
    const std::size_t n = std::min(chunk, wire.size() - pos);
    Bytes piece(wire.begin() + static_cast<std::ptrdiff_t>(pos), wire.begin() + static_cast<std::ptrdiff_t>(pos + n));
    MutableByteSpan input(piece);
    while (true) {
      ParseStep step = parser.parse(input);
      REQUIRE(step.consumed <= input.size());
      input = input.subspan(step.consumed);
      if (step.kind == ParseStep::Kind::need_more) {
        REQUIRE(input.empty());
        break;
      }
      if (step.kind == ParseStep::Kind::error) {
        out.error = step.error;
        return out;
      }
      if (step.kind == ParseStep::Kind::frame_header) ++out.headers;
      if (step.kind == ParseStep::Kind::data) {
        out.partial += as_string(step.payload);
        if (step.message_end) {
          out.messages.push_back({step.message_opcode, out.partial});
          out.partial.clear();
        }
      }
      if (step.kind == ParseStep::Kind::control) {
        out.controls.push_back({step.control_opcode, std::string(as_string(step.control_payload)), step.close_status});
      }
    }
    if (wire.empty()) break;
  }
  return out;
}

inline Outcome parse_all(Role role, const Bytes& wire, std::size_t chunk = 1 << 20, ParserLimits limits = {}) {
  FrameParser parser(role, limits);
  return run_parser(parser, wire, chunk);
}

inline constexpr MaskKey kKey{0x37, 0xfa, 0x21, 0x3d};  // RFC 6455 5.7

}  // namespace vtunnel::ws::test
