#include "ws/frame_parser.hpp"

#include <algorithm>
#include <cstring>

#include "ws/mask.hpp"

namespace vtunnel::ws {
namespace {

bool is_known_opcode(std::uint8_t op) noexcept {
  return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

}  // namespace

ParseStep FrameParser::fail(errc e, std::size_t consumed) {
  state_ = State::failed;
  error_ = make_error_code(e);
  ParseStep step;
  step.kind = ParseStep::Kind::error;
  step.consumed = consumed;
  step.error = error_;
  return step;
}

ParseStep FrameParser::parse(MutableByteSpan input) {
  switch (state_) {
    case State::header: return parse_header(input);
    case State::data_payload: return parse_data(input);
    case State::control_payload: return parse_control(input);
    case State::closed:
      if (input.empty()) return ParseStep{};
      return fail(errc::frame_after_close, 0);
    case State::failed: {
      ParseStep step;
      step.kind = ParseStep::Kind::error;
      step.error = error_;
      return step;
    }
  }
  return ParseStep{};
}

errc FrameParser::check_first_bytes(std::uint8_t b0, std::uint8_t b1,
                                    std::size_t& header_size) const noexcept {
  if (b0 & 0x70) return errc::reserved_bits_set;
  const std::uint8_t op = b0 & 0x0F;
  if (!is_known_opcode(op)) return errc::reserved_opcode;
  const bool masked = (b1 & 0x80) != 0;
  if (role_ == Role::server && !masked) return errc::unmasked_frame;
  if (role_ == Role::client && masked) return errc::masked_frame;
  const std::uint8_t len7 = b1 & 0x7F;
  if (is_control(static_cast<Opcode>(op))) {
    if (!(b0 & 0x80)) return errc::fragmented_control_frame;
    if (len7 > kMaxControlPayload) return errc::control_frame_too_big;
  }
  header_size = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0);
  return errc{};
}

errc FrameParser::decode_header(const std::uint8_t* h, std::size_t size,
                                FrameHeader& out) const noexcept {
  out.fin = (h[0] & 0x80) != 0;
  out.opcode = static_cast<Opcode>(h[0] & 0x0F);
  out.masked = (h[1] & 0x80) != 0;
  const std::uint8_t len7 = h[1] & 0x7F;
  std::size_t pos = 2;
  if (len7 == 126) {
    out.payload_size = load_be16(h + 2);
    if (out.payload_size < 126) return errc::non_minimal_length;
    pos = 4;
  } else if (len7 == 127) {
    out.payload_size = load_be64(h + 2);
    if (out.payload_size >> 63) return errc::length_msb_set;
    if (out.payload_size <= 0xFFFF) return errc::non_minimal_length;
    pos = 10;
  } else {
    out.payload_size = len7;
  }
  if (out.masked) {
    std::memcpy(out.mask.data(), h + pos, 4);
    pos += 4;
  } else {
    out.mask = {};
  }
  (void)size;  // == pos, guaranteed by check_first_bytes
  return errc{};
}

ParseStep FrameParser::parse_header(MutableByteSpan input) {
  std::size_t header_size = 0;
  FrameHeader header;
  if (spill_size_ == 0) {
    // Fast path: the whole header is in the input; decode it where it lies.
    if (input.size() >= 2) {
      if (errc e = check_first_bytes(input[0], input[1], header_size); e != errc{}) return fail(e, 0);
      if (input.size() >= header_size) {
        if (errc e = decode_header(input.data(), header_size, header); e != errc{}) return fail(e, 0);
        return begin_frame(header, input, header_size);
      }
    }
  }
  // Slow path: gather the header in the spill buffer, checking as soon as 2 bytes are known.
  std::size_t consumed = 0;
  auto take = [&](std::size_t want) {
    const std::size_t n = std::min(want - spill_size_, input.size() - consumed);
    std::memcpy(spill_.data() + spill_size_, input.data() + consumed, n);
    spill_size_ += n;
    consumed += n;
  };
  if (spill_size_ < 2) take(2);
  if (spill_size_ < 2) return ParseStep{ParseStep::Kind::need_more, consumed};
  if (errc e = check_first_bytes(spill_[0], spill_[1], header_size); e != errc{}) return fail(e, consumed);
  take(header_size);
  if (spill_size_ < header_size) return ParseStep{ParseStep::Kind::need_more, consumed};
  if (errc e = decode_header(spill_.data(), header_size, header); e != errc{}) return fail(e, consumed);
  spill_size_ = 0;
  return begin_frame(header, input, consumed);
}

ParseStep FrameParser::begin_frame(const FrameHeader& header, MutableByteSpan input,
                                   std::size_t consumed) {
  frame_ = header;
  remaining_ = header.payload_size;
  mask_phase_ = 0;
  if (is_control(header.opcode)) {
    control_size_ = 0;
    state_ = State::control_payload;
    // Go on with whatever payload bytes follow the header in this input.
    ParseStep step = parse_control(input.subspan(consumed));
    step.consumed += consumed;
    return step;
  }
  if (header.opcode == Opcode::continuation) {
    if (!in_message_) return fail(errc::continuation_without_start, consumed);
  } else {
    if (in_message_) return fail(errc::data_frame_inside_message, consumed);
    message_opcode_ = header.opcode;
    message_size_ = 0;
    utf8_.reset();
  }
  if (header.payload_size > limits_.max_message_size - message_size_) {
    return fail(errc::message_too_big, consumed);
  }
  message_size_ += header.payload_size;
  in_message_ = !header.fin;
  state_ = State::data_payload;
  ParseStep step;
  step.kind = ParseStep::Kind::frame_header;
  step.consumed = consumed;
  step.header = header;
  return step;
}

ParseStep FrameParser::parse_data(MutableByteSpan input) {
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size()));
  if (n == 0 && remaining_ != 0) return ParseStep{};  // input empty
  MutableByteSpan payload = input.first(n);
  if (frame_.masked) mask_phase_ = apply_mask(payload, frame_.mask, mask_phase_);
  remaining_ -= n;
  ParseStep step;
  step.kind = ParseStep::Kind::data;
  step.consumed = n;
  step.payload = payload;
  step.message_opcode = message_opcode_;
  step.frame_end = remaining_ == 0;
  step.message_end = step.frame_end && frame_.fin;
  if (message_opcode_ == Opcode::text) {
    if (!utf8_.feed(payload)) return fail(errc::bad_utf8, n);
    if (step.message_end && !utf8_.complete()) return fail(errc::bad_utf8, n);
  }
  if (step.frame_end) state_ = State::header;
  return step;
}

ParseStep FrameParser::parse_control(MutableByteSpan input) {
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size()));
  std::memcpy(control_.data() + control_size_, input.data(), n);
  control_size_ += n;
  remaining_ -= n;
  if (remaining_ != 0) return ParseStep{ParseStep::Kind::need_more, n};
  return finish_control(n);
}

ParseStep FrameParser::finish_control(std::size_t consumed) {
  const MutableByteSpan payload(control_.data(), control_size_);
  if (frame_.masked) apply_mask(payload, frame_.mask, 0);
  ParseStep step;
  step.kind = ParseStep::Kind::control;
  step.consumed = consumed;
  step.control_opcode = frame_.opcode;
  step.control_payload = payload;
  if (frame_.opcode == Opcode::close) {
    Result<CloseStatus> status = parse_close_payload(payload);
    if (!status) {
      state_ = State::failed;
      error_ = status.error();
      step.kind = ParseStep::Kind::error;
      step.error = error_;
      return step;
    }
    step.close_status = std::move(*status);
    state_ = State::closed;
  } else {
    state_ = State::header;
  }
  return step;
}

}  // namespace vtunnel::ws
