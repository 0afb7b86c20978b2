#pragma once
// Sec-WebSocket-Key / Sec-WebSocket-Accept (RFC 6455 4.2.2): the accept value is
// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace vtunnel::ws {

inline constexpr std::size_t kClientKeyBytes = 16;

std::string compute_accept_key(std::string_view client_key);

// The client key: base64 of 16 random bytes (24 characters).
std::string encode_client_key(const std::array<std::uint8_t, kClientKeyBytes>& random_bytes);

// True if `key` is base64 (with padding) of exactly 16 bytes.
bool is_valid_client_key(std::string_view key) noexcept;

}  // namespace vtunnel::ws
