#pragma once
// ws:// and wss:// URLs (RFC 6455 3): scheme, host, port, resource name; no user info, no
// fragment.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace vtunnel::ws {

struct WsUrl {
  bool secure = false;      // wss: TLS with certificate verification
  std::string host;         // name or address to dial; IPv6 without brackets
  std::uint16_t port = 80;  // 80 for ws, 443 for wss unless given
  std::string target = "/";  // path and query
  std::string host_header;  // Host value: host (bracketed if IPv6), ":port" unless default
};

Result<WsUrl> parse_ws_url(std::string_view url);

}  // namespace vtunnel::ws
