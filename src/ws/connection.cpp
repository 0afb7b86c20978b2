#include "ws/connection.hpp"

#include <array>

namespace vtunnel::ws {

Connection::Connection(Role role, ParserLimits limits, MaskGenerator masks)
    : role_(role), parser_(role, limits) {
  if (role == Role::client) masks_.emplace(std::move(masks));
}

Connection::Connection(Role role, ParserLimits limits) : role_(role), parser_(role, limits) {
  if (role == Role::client) masks_.emplace();
}

FrameSpec Connection::data_frame(Opcode opcode, bool fin) {
  FrameSpec spec{opcode, fin, std::nullopt};
  if (masks_) spec.mask = masks_->next();
  return spec;
}

void Connection::queue_control(Opcode opcode, ByteSpan payload) {
  const FrameSpec spec{opcode, true, masks_ ? std::optional(masks_->next()) : std::nullopt};
  const std::size_t start = output_.size();
  const std::size_t header = frame_header_size(payload.size(), spec.mask.has_value());
  output_.resize(start + header + payload.size());
  std::copy(payload.begin(), payload.end(), output_.begin() + static_cast<std::ptrdiff_t>(start + header));
  seal_frame_in_place(MutableByteSpan(output_).subspan(start), header, spec);
}

void Connection::queue_close(std::uint16_t code, std::string_view reason, bool with_code) {
  if (close_queued_) return;
  close_queued_ = true;
  // Nothing may follow a close frame, and a pong not yet started is no longer owed.
  if (unsent_pong_at_) {
    output_.resize(*unsent_pong_at_);
    unsent_pong_at_.reset();
  }
  std::array<std::uint8_t, kMaxControlPayload> payload;
  const std::size_t size = with_code ? write_close_payload(payload, code, reason) : 0;
  queue_control(Opcode::close, ByteSpan(payload.data(), size));
}

void Connection::consume_output(std::size_t n) noexcept {
  output_sent_ += n;
  if (unsent_pong_at_ && output_sent_ > *unsent_pong_at_) unsent_pong_at_.reset();
  if (output_sent_ >= output_.size()) {
    output_.clear();
    output_sent_ = 0;
  }
}

void Connection::close(std::uint16_t code, std::string_view reason) {
  if (state_ != State::open) return;
  queue_close(code, reason, true);
  state_ = State::closing;
}

ReadStep Connection::read(MutableByteSpan input) {
  ReadStep out;
  if (state_ == State::closed) {
    // After the close handshake the peer has nothing more to say; bytes are ignored.
    out.consumed = input.size();
    return out;
  }
  while (true) {
    const ParseStep step = parser_.parse(input.subspan(out.consumed));
    out.consumed += step.consumed;
    switch (step.kind) {
      case ParseStep::Kind::need_more:
        return out;
      case ParseStep::Kind::frame_header:
        break;
      case ParseStep::Kind::data:
        if (step.payload.empty() && !step.message_end) break;
        out.kind = ReadStep::Kind::data;
        out.payload = step.payload;
        out.message_opcode = step.message_opcode;
        out.message_end = step.message_end;
        return out;
      case ParseStep::Kind::control:
        if (step.control_opcode == Opcode::ping) {
          if (!close_queued_) {
            if (unsent_pong_at_) output_.resize(*unsent_pong_at_);  // only the newest is owed
            unsent_pong_at_ = output_.size();
            queue_control(Opcode::pong, step.control_payload);
          }
        } else if (step.control_opcode == Opcode::close) {
          peer_close_ = step.close_status;
          const bool had_code = !step.control_payload.empty();
          queue_close(step.close_status.code, {}, had_code);  // echo the code (no-op if we closed first)
          state_ = State::closed;
          out.kind = ReadStep::Kind::closed;
          return out;
        }
        break;  // pong: nothing to do
      case ParseStep::Kind::error:
        error_ = step.error;
        queue_close(static_cast<std::uint16_t>(close_code_for(step.error)), step.error.message(), true);
        state_ = State::closed;
        out.kind = ReadStep::Kind::failed;
        out.error = step.error;
        return out;
    }
  }
}

}  // namespace vtunnel::ws
