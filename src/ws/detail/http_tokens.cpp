#include "ws/detail/http_tokens.hpp"

#include <algorithm>
#include <cstring>

namespace vtunnel::ws::detail {
namespace {

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool token_list_contains(std::string_view list, std::string_view token) noexcept {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view element = list.substr(0, comma);
    while (!element.empty() && is_ows(element.front())) element.remove_prefix(1);
    while (!element.empty() && is_ows(element.back())) element.remove_suffix(1);
    if (iequals(element, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::size_t find_head_end(std::string_view text, std::size_t from) noexcept {
  const std::size_t at = text.find("\r\n\r\n", from);
  return at == std::string_view::npos ? 0 : at + 4;
}

bool is_http_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!ok || c == '\0') return false;
  }
  return true;
}

bool plausible_request_start(std::string_view start) noexcept {
  const std::string_view method = start.substr(0, start.find(' '));
  return method.empty() || is_http_token(method);
}

bool plausible_response_start(std::string_view start) noexcept {
  constexpr std::string_view kPrefix = "HTTP/";
  const std::size_t n = std::min(start.size(), kPrefix.size());
  return start.substr(0, n) == kPrefix.substr(0, n);
}

bool is_safe_header_value(std::string_view s) noexcept {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t') return false;
    if (u == 0x7F) return false;
  }
  return true;
}

}  // namespace vtunnel::ws::detail
