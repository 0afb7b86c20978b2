#pragma once
// FrameParser: the receiving half of the RFC 6455 frame codec, sans-I/O.
//
// Feed it whatever bytes arrived; each parse() call reports one step:
//   need_more     everything given was consumed (header bytes are kept in a tiny spill buffer)
//   frame_header  a data frame (text, binary, continuation) starts; its header is consumed
//   data          payload bytes of a data frame, unmasked in place inside the caller's input
//   control       a complete close/ping/pong frame (payload held by the parser, <= 125 bytes)
//   error         a protocol violation; the parser stays failed
// The caller advances its input by `consumed` after every step and stops at need_more.
// Strict like Beast: mask direction by role, minimal lengths, no reserved bits or opcodes,
// unfragmented control frames <= 125 bytes, well-formed fragmentation, a message size limit
// checked at each header (across fragments), UTF-8 in text messages and close reasons.
#include <array>
#include <cstddef>
#include <cstdint>
#include <system_error>

#include "core/bytes.hpp"
#include "ws/close.hpp"
#include "ws/error.hpp"
#include "ws/frame.hpp"
#include "ws/utf8.hpp"

namespace vtunnel::ws {

struct ParserLimits {
  std::uint64_t max_message_size = kDefaultMaxMessageSize;
};

struct ParseStep {
  enum class Kind : std::uint8_t { need_more, frame_header, data, control, error };
  Kind kind = Kind::need_more;
  std::size_t consumed = 0;  // bytes of the input used by this step

  FrameHeader header{};        // frame_header: the header (masked data frames: key included)

  MutableByteSpan payload{};   // data: unmasked payload bytes, a view into the input
  Opcode message_opcode = Opcode::binary;  // data: text or binary (also for continuations)
  bool frame_end = false;      // data: these are the last bytes of the frame
  bool message_end = false;    // data: ...and of the message

  Opcode control_opcode = Opcode::ping;  // control: close, ping or pong
  ByteSpan control_payload{};  // control: valid until the next parse() call
  CloseStatus close_status{};  // control (close only): the validated code and reason

  std::error_code error{};     // error
};

class FrameParser {
 public:
  explicit FrameParser(Role role, ParserLimits limits = {}) noexcept : role_(role), limits_(limits) {}

  ParseStep parse(MutableByteSpan input);

  // Payload bytes of the current data frame not yet returned (0 between frames). A driver can
  // read at most this many bytes straight into its destination: they will all be payload.
  std::uint64_t payload_remaining() const noexcept {
    return state_ == State::data_payload ? remaining_ : 0;
  }
  bool in_message() const noexcept { return in_message_; }
  // True between frames (no header bytes pending, no payload owed).
  bool between_frames() const noexcept { return state_ == State::header && spill_size_ == 0; }
  // True once a close frame was parsed; any later byte is an error.
  bool close_received() const noexcept { return state_ == State::closed; }

 private:
  enum class State : std::uint8_t { header, data_payload, control_payload, closed, failed };

  ParseStep fail(errc e, std::size_t consumed);
  ParseStep parse_header(MutableByteSpan input);
  ParseStep parse_data(MutableByteSpan input);
  ParseStep parse_control(MutableByteSpan input);
  // Checks the first two header bytes; returns the total header size or an error.
  errc check_first_bytes(std::uint8_t b0, std::uint8_t b1, std::size_t& header_size) const noexcept;
  // Decodes and checks a complete header of `size` bytes.
  errc decode_header(const std::uint8_t* h, std::size_t size, FrameHeader& out) const noexcept;
  // Starts the frame whose header ends at input[consumed].
  ParseStep begin_frame(const FrameHeader& header, MutableByteSpan input, std::size_t consumed);
  ParseStep finish_control(std::size_t consumed);

  Role role_;
  ParserLimits limits_;
  State state_ = State::header;

  std::array<std::uint8_t, kMaxFrameHeaderSize> spill_{};  // a header split across inputs
  std::size_t spill_size_ = 0;

  FrameHeader frame_{};
  std::uint64_t remaining_ = 0;  // payload bytes of the current frame still to come
  std::size_t mask_phase_ = 0;

  bool in_message_ = false;  // a data message is open (more fragments expected)
  Opcode message_opcode_ = Opcode::binary;
  std::uint64_t message_size_ = 0;
  Utf8Validator utf8_;

  std::array<std::uint8_t, kMaxControlPayload> control_{};
  std::size_t control_size_ = 0;
  std::error_code error_{};
};

}  // namespace vtunnel::ws
