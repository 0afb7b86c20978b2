#pragma once
// The sending half of the frame codec: frame headers, written either into room the caller
// reserved in front of the payload (so header and payload leave in one send) or on their own.
// Clients mask the payload in place; servers never mask.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/bytes.hpp"
#include "ws/frame.hpp"

namespace vtunnel::ws {

struct FrameSpec {
  Opcode opcode = Opcode::binary;
  bool fin = true;
  std::optional<MaskKey> mask;  // set by clients (a fresh random key per frame), never by servers
};

// Header size of a frame with `payload_size` bytes: 2, 4 or 10, plus 4 if masked.
constexpr std::size_t frame_header_size(std::uint64_t payload_size, bool masked) noexcept {
  return (payload_size < 126 ? 2 : payload_size <= 0xFFFF ? 4 : 10) + (masked ? 4 : 0);
}

// Writes the header alone into `out` (at least frame_header_size bytes); returns its size.
// The payload is not touched: a client must mask it with apply_mask(payload, *spec.mask).
std::size_t write_frame_header(MutableByteSpan out, const FrameSpec& spec,
                               std::uint64_t payload_size) noexcept;

// `buffer` holds headroom followed by the payload at `payload_offset`. Writes the header so
// that it ends right where the payload starts, masks the payload in place if spec.mask is
// set, and returns the complete frame (a subspan of buffer). The headroom must be at least
// frame_header_size(payload size, masked) bytes; kMaxFrameHeaderSize always suffices.
MutableByteSpan seal_frame_in_place(MutableByteSpan buffer, std::size_t payload_offset,
                                    const FrameSpec& spec) noexcept;

}  // namespace vtunnel::ws
