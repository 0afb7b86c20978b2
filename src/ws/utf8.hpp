#pragma once
// Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
// Text messages arrive in chunks split anywhere, so the state of a partial character carries
// over from one feed() to the next; an invalid byte is reported as soon as it is seen.
#include "core/bytes.hpp"

namespace vtunnel::ws {

class Utf8Validator {
 public:
  // False as soon as `bytes` (appended to everything fed before) cannot be valid UTF-8.
  bool feed(ByteSpan bytes) noexcept;
  // True if everything fed so far ends on a character boundary.
  bool complete() const noexcept { return pending_ == 0; }
  void reset() noexcept { *this = Utf8Validator{}; }

 private:
  std::uint8_t pending_ = 0;  // continuation bytes still expected
  std::uint8_t lower_ = 0x80;  // allowed range of the next continuation byte
  std::uint8_t upper_ = 0xBF;
};

// Whole-buffer convenience.
bool is_valid_utf8(ByteSpan bytes) noexcept;

}  // namespace vtunnel::ws
