#pragma once
// Authority: the host and port a proxy request names ("example.com:443", "[::1]:8080").
// Parsing is strict: a DNS name (letters, digits, '-', '.', '_') or an IP literal (IPv6 in
// brackets), an optional decimal port 1-65535, nothing else (no userinfo, no path).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace vtunnel::proxy {

inline constexpr std::size_t kMaxHostLength = 253;  // RFC 1035 name length

struct Authority {
  std::string host;  // lower-case; IPv6 without brackets
  std::uint16_t port = 0;

  // "host:port", with brackets around IPv6: the form used as a DomainTable key.
  std::string to_string() const;
  // For a Host header: the port is omitted when it is `default_port`.
  std::string host_header(std::uint16_t default_port) const;
  bool operator==(const Authority&) const = default;
};

// `text` is "host", "host:port", "[v6]" or "[v6]:port"; a missing port is `default_port`.
Result<Authority> parse_authority(std::string_view text, std::uint16_t default_port);

}  // namespace vtunnel::proxy
