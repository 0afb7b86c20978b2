#pragma once
// Named limits of the SSH layer. Every length or count a peer controls is checked against one
// of these before it is used or allocated.
#include <cstddef>
#include <cstdint>

namespace vtunnel::ssh {

// Largest packet_length accepted or sent (OpenSSH and Go use the same).
inline constexpr std::size_t kMaxPacketSize = 256 * 1024;
// Longest MAC/tag we implement (hmac-sha2-256).
inline constexpr std::size_t kMaxTagSize = 32;
// Identification exchange (RFC 4253 §4.2): lines before the version line, and line length.
inline constexpr std::size_t kMaxBannerLines = 32;
inline constexpr std::size_t kMaxIdentLineLength = 255;  // including CR LF
inline constexpr std::size_t kMaxBannerBytes = 8 * 1024;

}  // namespace vtunnel::ssh
