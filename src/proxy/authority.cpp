#include "proxy/authority.hpp"

#include <arpa/inet.h>

#include <fmt/format.h>

#include "proxy/error.hpp"

namespace vtunnel::proxy {

namespace {

bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

// Decimal 1-65535, digits only.
bool parse_port(std::string_view s, std::uint16_t& out) noexcept {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + unsigned(c - '0');
  }
  if (v == 0 || v > 65535) return false;
  out = std::uint16_t(v);
  return true;
}

}  // namespace

std::string Authority::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::string Authority::host_header(std::uint16_t default_port) const {
  std::string h = host.find(':') != std::string::npos ? fmt::format("[{}]", host) : host;
  if (port != default_port) h += fmt::format(":{}", port);
  return h;
}

Result<Authority> parse_authority(std::string_view text, std::uint16_t default_port) {
  if (text.empty()) return errc::missing_host;
  Authority a;
  a.port = default_port;
  std::string_view host;
  std::string_view rest;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return errc::bad_authority;
    host = text.substr(1, close - 1);
    rest = text.substr(close + 1);
    if (host.empty()) return errc::missing_host;
    if (host.size() >= INET6_ADDRSTRLEN) return errc::bad_authority;
    std::string h(host);
    in6_addr addr{};
    if (::inet_pton(AF_INET6, h.c_str(), &addr) != 1) return errc::bad_authority;
  } else {
    auto colon = text.find(':');
    host = text.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
    if (host.empty()) return errc::missing_host;
    if (host.size() > kMaxHostLength) return errc::bad_authority;
    for (char c : host) {
      if (!is_name_char(c)) return errc::bad_authority;
    }
  }
  if (!rest.empty()) {
    if (rest.front() != ':' || !parse_port(rest.substr(1), a.port)) return errc::bad_authority;
  }
  a.host.reserve(host.size());
  for (char c : host) a.host.push_back(lower(c));
  return a;
}

}  // namespace vtunnel::proxy
