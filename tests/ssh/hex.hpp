#pragma once
#include <string>
#include <string_view>

#include "core/bytes.hpp"

namespace vtunnel::test {
inline Bytes from_hex(std::string_view hex) {
  Bytes out;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(std::uint8_t(nib(hex[i]) * 16 + nib(hex[i + 1])));
  return out;
}
inline std::string to_hex(ByteSpan b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto c : b) { s += d[c >> 4]; s += d[c & 15]; }
  return s;
}
}  // namespace vtunnel::test
