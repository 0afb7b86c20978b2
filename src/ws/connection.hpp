#pragma once
// Connection: the WebSocket protocol after the handshake, sans-I/O. It wraps a FrameParser and
// answers the control frames itself: a ping queues a pong (only the newest unsent one is kept),
// pongs are ignored, the peer's close is echoed, and a protocol error queues a close frame with
// the matching status (1002, 1007, 1009). The driver sends pending_output() whenever it is not
// empty, between data frames, and frames its data with data_frame().
#include <cstddef>
#include <optional>
#include <string_view>
#include <system_error>

#include "core/bytes.hpp"
#include "ws/close.hpp"
#include "ws/frame_parser.hpp"
#include "ws/frame_writer.hpp"
#include "ws/mask_generator.hpp"

namespace vtunnel::ws {

struct ReadStep {
  enum class Kind : std::uint8_t {
    need_more,  // all input consumed
    data,       // payload bytes of a text/binary message, unmasked in place in the input
    closed,     // the peer's close frame arrived (peer_close() has it); no more data follows
    failed,     // protocol error: `error`; a close frame is queued, then the driver hangs up
  };
  Kind kind = Kind::need_more;
  std::size_t consumed = 0;
  MutableByteSpan payload{};
  Opcode message_opcode = Opcode::binary;
  bool message_end = false;
  std::error_code error{};
};

class Connection {
 public:
  enum class State : std::uint8_t {
    open,
    closing,  // we queued our close frame and wait for the peer's
    closed,   // both close frames exchanged (or the connection failed): flush output, hang up
  };

  // Clients need a MaskGenerator; servers ignore it.
  Connection(Role role, ParserLimits limits, MaskGenerator masks);
  explicit Connection(Role role, ParserLimits limits = {});

  ReadStep read(MutableByteSpan input);

  // Control frames to send, in order. consume_output(n) after n bytes went out.
  ByteSpan pending_output() const noexcept { return ByteSpan(output_).subspan(output_sent_); }
  void consume_output(std::size_t n) noexcept;

  // Starts the close handshake (no-op unless open). The reason is cut to fit a control frame.
  void close(std::uint16_t code, std::string_view reason = {});

  // The frame spec for the next outgoing data frame (a fresh mask key for clients).
  FrameSpec data_frame(Opcode opcode = Opcode::binary, bool fin = true);
  bool can_send_data() const noexcept { return state_ == State::open; }

  State state() const noexcept { return state_; }
  Role role() const noexcept { return role_; }
  const std::optional<CloseStatus>& peer_close() const noexcept { return peer_close_; }
  std::error_code error() const noexcept { return error_; }
  const FrameParser& parser() const noexcept { return parser_; }

 private:
  void queue_control(Opcode opcode, ByteSpan payload);
  void queue_close(std::uint16_t code, std::string_view reason, bool with_code);

  Role role_;
  FrameParser parser_;
  std::optional<MaskGenerator> masks_;
  State state_ = State::open;
  bool close_queued_ = false;
  std::optional<CloseStatus> peer_close_;
  std::error_code error_{};
  Bytes output_;
  std::size_t output_sent_ = 0;
  std::optional<std::size_t> unsent_pong_at_;  // offset of a queued pong not yet started
};

}  // namespace vtunnel::ws
