#pragma once
// The payload of a close frame: empty, or a 2-byte status code and a UTF-8 reason.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ws/error.hpp"
#include "ws/frame.hpp"

namespace vtunnel::ws {

struct CloseStatus {
  std::uint16_t code = static_cast<std::uint16_t>(CloseCode::no_status);  // 1005: no code sent
  std::string reason;
};

// Validates a received close payload: not 1 byte long, a code allowed on the wire, a UTF-8
// reason. The payload is at most kMaxControlPayload bytes (the frame parser enforces it).
Result<CloseStatus> parse_close_payload(ByteSpan payload);

// Writes code + reason into `out` (at least kMaxControlPayload bytes) and returns the size.
// The reason is cut to fit 125 bytes, at a UTF-8 character boundary.
std::size_t write_close_payload(MutableByteSpan out, std::uint16_t code, std::string_view reason) noexcept;

}  // namespace vtunnel::ws
