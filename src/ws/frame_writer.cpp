#include "ws/frame_writer.hpp"

#include <cassert>
#include <cstring>

#include "ws/mask.hpp"

namespace vtunnel::ws {

std::size_t write_frame_header(MutableByteSpan out, const FrameSpec& spec,
                               std::uint64_t payload_size) noexcept {
  const std::size_t size = frame_header_size(payload_size, spec.mask.has_value());
  assert(out.size() >= size);
  assert(payload_size >> 63 == 0);
  std::uint8_t* p = out.data();
  p[0] = static_cast<std::uint8_t>((spec.fin ? 0x80 : 0x00) | static_cast<std::uint8_t>(spec.opcode));
  const std::uint8_t mask_bit = spec.mask ? 0x80 : 0x00;
  std::size_t pos = 2;
  if (payload_size < 126) {
    p[1] = static_cast<std::uint8_t>(mask_bit | payload_size);
  } else if (payload_size <= 0xFFFF) {
    p[1] = mask_bit | 126;
    store_be16(p + 2, static_cast<std::uint16_t>(payload_size));
    pos = 4;
  } else {
    p[1] = mask_bit | 127;
    store_be64(p + 2, payload_size);
    pos = 10;
  }
  if (spec.mask) std::memcpy(p + pos, spec.mask->data(), 4);
  return size;
}

MutableByteSpan seal_frame_in_place(MutableByteSpan buffer, std::size_t payload_offset,
                                    const FrameSpec& spec) noexcept {
  assert(payload_offset <= buffer.size());
  const std::size_t payload_size = buffer.size() - payload_offset;
  const std::size_t header_size = frame_header_size(payload_size, spec.mask.has_value());
  assert(payload_offset >= header_size);
  const std::size_t start = payload_offset - header_size;
  write_frame_header(buffer.subspan(start, header_size), spec, payload_size);
  if (spec.mask) apply_mask(buffer.subspan(payload_offset), *spec.mask, 0);
  return buffer.subspan(start);
}

}  // namespace vtunnel::ws
