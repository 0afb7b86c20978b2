#include "ws/utf8.hpp"

#include <cstring>

namespace vtunnel::ws {

bool Utf8Validator::feed(ByteSpan bytes) noexcept {
  const std::uint8_t* p = bytes.data();
  const std::uint8_t* const end = p + bytes.size();
  while (p != end) {
    if (pending_ == 0) {
      // ASCII runs are the common case: skip them 8 bytes at a time.
      while (end - p >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        if (word & 0x8080808080808080ULL) break;
        p += 8;
      }
      if (p == end) break;
      const std::uint8_t b = *p++;
      if (b < 0x80) continue;
      lower_ = 0x80;
      upper_ = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) {
        pending_ = 1;
      } else if (b >= 0xE0 && b <= 0xEF) {
        pending_ = 2;
        if (b == 0xE0) lower_ = 0xA0;       // overlong
        else if (b == 0xED) upper_ = 0x9F;  // UTF-16 surrogates
      } else if (b >= 0xF0 && b <= 0xF4) {
        pending_ = 3;
        if (b == 0xF0) lower_ = 0x90;       // overlong
        else if (b == 0xF4) upper_ = 0x8F;  // above U+10FFFF
      } else {
        return false;  // continuation byte without a lead, C0/C1 overlongs, F5..FF
      }
    } else {
      const std::uint8_t b = *p++;
      if (b < lower_ || b > upper_) return false;
      lower_ = 0x80;
      upper_ = 0xBF;
      --pending_;
    }
  }
  return true;
}

bool is_valid_utf8(ByteSpan bytes) noexcept {
  Utf8Validator v;
  return v.feed(bytes) && v.complete();
}

}  // namespace vtunnel::ws
