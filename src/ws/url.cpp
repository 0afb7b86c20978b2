#include "ws/url.hpp"

#include <algorithm>

#include "ws/detail/http_tokens.hpp"
#include "ws/error.hpp"

namespace vtunnel::ws {
namespace {

bool is_host_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}
bool is_ipv6_char(char c) noexcept {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

}  // namespace

Result<WsUrl> parse_ws_url(std::string_view url) {
  WsUrl out;
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return errc::bad_url;
  const std::string_view scheme = url.substr(0, scheme_end);
  if (detail::iequals(scheme, "ws")) {
    out.secure = false;
    out.port = 80;
  } else if (detail::iequals(scheme, "wss")) {
    out.secure = true;
    out.port = 443;
  } else {
    return errc::bad_url;
  }
  std::string_view rest = url.substr(scheme_end + 3);
  if (rest.find('#') != std::string_view::npos) return errc::bad_url;  // fragments not allowed
  const std::size_t authority_end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? "/" : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return errc::bad_url;  // no user info

  std::string_view host, port;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return errc::bad_url;
    host = authority.substr(1, close - 1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), is_ipv6_char) ||
        host.find(':') == std::string_view::npos) {
      return errc::bad_url;
    }
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return errc::bad_url;
      port = after.substr(1);
      if (port.empty()) return errc::bad_url;
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return errc::bad_url;
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), is_host_char)) return errc::bad_url;
  }
  if (!port.empty()) {
    if (port.size() > 5) return errc::bad_url;
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return errc::bad_url;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return errc::bad_url;
    out.port = static_cast<std::uint16_t>(value);
  }
  out.target.clear();
  if (target.front() == '?') out.target.push_back('/');
  out.target.append(target.data(), target.size());
  if (!std::all_of(out.target.begin(), out.target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7F;
      })) {
    return errc::bad_url;
  }
  out.host = host;
  const bool ipv6 = host.find(':') != std::string_view::npos;
  out.host_header.clear();
  if (ipv6) out.host_header.push_back('[');
  out.host_header.append(out.host);
  if (ipv6) out.host_header.push_back(']');
  const bool default_port = out.port == (out.secure ? 443 : 80);
  if (!default_port) {
    out.host_header.push_back(':');
    out.host_header.append(std::to_string(out.port));
  }
  return out;
}

}  // namespace vtunnel::ws
