#include "ws/accept_key.hpp"

#include <botan/base64.h>
#include <botan/hash.h>

#include <cstring>

namespace vtunnel::ws {
namespace {

constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_base64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

}  // namespace

std::string compute_accept_key(std::string_view client_key) {
  auto sha1 = Botan::HashFunction::create_or_throw("SHA-1");
  sha1->update(reinterpret_cast<const std::uint8_t*>(client_key.data()), client_key.size());
  sha1->update(reinterpret_cast<const std::uint8_t*>(kAcceptGuid.data()), kAcceptGuid.size());
  const auto digest = sha1->final();
  return Botan::base64_encode(digest.data(), digest.size());
}

std::string encode_client_key(const std::array<std::uint8_t, kClientKeyBytes>& random_bytes) {
  return Botan::base64_encode(random_bytes.data(), random_bytes.size());
}

bool is_valid_client_key(std::string_view key) noexcept {
  // 16 bytes = 22 base64 characters carrying 128 bits (+4 zero bits) and "==".
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    if (!is_base64_char(key[i])) return false;
  }
  return true;
}

}  // namespace vtunnel::ws
