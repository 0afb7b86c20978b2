#include "ws/close.hpp"

#include <cassert>
#include <cstring>

#include "ws/utf8.hpp"

namespace vtunnel::ws {

Result<CloseStatus> parse_close_payload(ByteSpan payload) {
  if (payload.empty()) return CloseStatus{};
  if (payload.size() == 1) return errc::bad_close_payload;
  const std::uint16_t code = load_be16(payload.data());
  if (!is_valid_wire_close_code(code)) return errc::bad_close_code;
  const ByteSpan reason = payload.subspan(2);
  if (!is_valid_utf8(reason)) return errc::bad_utf8;
  return CloseStatus{code, std::string(as_string(reason))};
}

std::size_t write_close_payload(MutableByteSpan out, std::uint16_t code, std::string_view reason) noexcept {
  assert(out.size() >= kMaxControlPayload);
  std::size_t n = reason.size();
  if (n > kMaxControlPayload - 2) {
    n = kMaxControlPayload - 2;
    // Back up over continuation bytes so the cut does not split a character.
    while (n > 0 && (static_cast<std::uint8_t>(reason[n]) & 0xC0) == 0x80) --n;
  }
  store_be16(out.data(), code);
  if (n != 0) std::memcpy(out.data() + 2, reason.data(), n);
  return 2 + n;
}

}  // namespace vtunnel::ws
