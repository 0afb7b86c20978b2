#include "ws/http_proxy.hpp"

#include <arpa/inet.h>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <botan/base64.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "core/log.hpp"
#include "ws/detail/http_tokens.hpp"
#include "ws/error.hpp"
#include "ws/url.hpp"

namespace vtunnel::ws {
namespace http = boost::beast::http;

namespace {

bool is_host_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::optional<std::uint16_t> parse_port(std::string_view s) noexcept {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// An IPv4 or IPv6 address in binary (4 or 16 bytes), or nullopt for a name.
struct IpBytes {
  std::array<std::uint8_t, 16> b{};
  std::size_t size = 0;
};
std::optional<IpBytes> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string s(text);
  IpBytes ip;
  if (::inet_pton(AF_INET, s.c_str(), ip.b.data()) == 1) {
    ip.size = 4;
    return ip;
  }
  if (::inet_pton(AF_INET6, s.c_str(), ip.b.data()) == 1) {
    ip.size = 16;
    // An IPv4-mapped IPv6 address compares as IPv4.
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(ip.b.data(), kMapped, 12) == 0) {
      std::memmove(ip.b.data(), ip.b.data() + 12, 4);
      ip.size = 4;
    }
    return ip;
  }
  return std::nullopt;
}

bool prefix_equal(const IpBytes& a, const IpBytes& b, unsigned bits) noexcept {
  if (a.size != b.size || bits > a.size * 8) return false;
  const unsigned whole = bits / 8;
  if (std::memcmp(a.b.data(), b.b.data(), whole) != 0) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFF00u >> rest);
  return (a.b[whole] & mask) == (b.b[whole] & mask);
}

bool is_loopback(std::string_view host) {
  if (detail::iequals(host, "localhost")) return true;
  auto ip = parse_ip(host);
  if (!ip) return false;
  if (ip->size == 4) return ip->b[0] == 127;
  static constexpr std::array<std::uint8_t, 16> kV6Loopback = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return ip->b == kV6Loopback;
}

// One NO_PROXY entry against host (lower-case, no brackets) and port.
bool entry_matches(std::string_view entry, std::string_view host, std::uint16_t port) {
  if (entry == "*") return true;
  // Split an optional ":port" (IPv6 entries need brackets for that).
  std::string_view name = entry;
  std::optional<std::uint16_t> entry_port;
  if (!name.empty() && name.front() == '[') {
    const std::size_t close = name.find(']');
    if (close == std::string_view::npos) return false;
    const std::string_view after = name.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      entry_port = parse_port(after.substr(1));
      if (!entry_port) return false;
    }
    name = name.substr(1, close - 1);
  } else if (std::count(name.begin(), name.end(), ':') == 1) {
    const std::size_t colon = name.find(':');
    entry_port = parse_port(name.substr(colon + 1));
    if (!entry_port) return false;
    name = name.substr(0, colon);
  }
  if (entry_port && *entry_port != port) return false;
  if (name.empty()) return false;

  const auto host_ip = parse_ip(host);
  if (const std::size_t slash = name.find('/'); slash != std::string_view::npos) {
    const auto net = parse_ip(name.substr(0, slash));
    const std::string_view bits_text = name.substr(slash + 1);
    if (!net || !host_ip || bits_text.empty() || bits_text.size() > 3) return false;
    unsigned bits = 0;
    for (char c : bits_text) {
      if (c < '0' || c > '9') return false;
      bits = bits * 10 + static_cast<unsigned>(c - '0');
    }
    return prefix_equal(*host_ip, *net, bits);
  }
  if (const auto ip = parse_ip(name)) {
    return host_ip && host_ip->size == ip->size && prefix_equal(*host_ip, *ip, static_cast<unsigned>(ip->size * 8));
  }
  if (host_ip) return false;  // a name never matches an address target
  if (name.size() >= 2 && name[0] == '*' && name[1] == '.') name.remove_prefix(1);
  if (name.front() == '.') {  // subdomains only
    return host.size() > name.size() && host.ends_with(name);
  }
  if (host == name) return true;
  return host.size() > name.size() && host.ends_with(name) && host[host.size() - name.size() - 1] == '.';
}

std::optional<std::string> env_any(const char* upper, const char* lower_name) {
  for (const char* n : {upper, lower_name}) {
    const char* v = std::getenv(n);
    if (v && *v) return std::string(v);
  }
  return std::nullopt;
}

}  // namespace

std::string ProxyUrl::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string ProxyUrl::redacted() const {
  std::string out = "http://";
  if (user) out += log::escaped(*user, 64) + ":***@";
  return out + authority();
}

Result<ProxyUrl> parse_proxy_url(std::string_view text) {
  std::string_view rest = trim(text);
  const std::size_t scheme_end = rest.find("://");
  if (scheme_end != std::string_view::npos) {
    const std::string_view scheme = rest.substr(0, scheme_end);
    if (!detail::iequals(scheme, "http")) {
      const bool scheme_like = !scheme.empty() && std::all_of(scheme.begin(), scheme.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
      });
      return scheme_like ? errc::proxy_scheme_unsupported : errc::bad_proxy_url;
    }
    rest.remove_prefix(scheme_end + 3);
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);  // "http://proxy:3128/"
  if (rest.empty() || rest.find_first_of("/?#") != std::string_view::npos) return errc::bad_proxy_url;
  ProxyUrl out;
  if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    const std::size_t colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    if (!user || user->find(':') != std::string::npos) return errc::bad_proxy_url;
    out.user = std::move(*user);
    if (colon != std::string_view::npos) {
      auto password = percent_decode(userinfo.substr(colon + 1));
      if (!password) return errc::bad_proxy_url;
      out.password = std::move(*password);
    }
  }
  std::string_view host, port;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) return errc::bad_proxy_url;
    host = rest.substr(1, close - 1);
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return errc::bad_proxy_url;
      port = after.substr(1);
      if (port.empty()) return errc::bad_proxy_url;
    }
    if (!parse_ip(host) || host.find(':') == std::string_view::npos) return errc::bad_proxy_url;
  } else {
    const std::size_t colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return errc::bad_proxy_url;
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), is_host_char)) return errc::bad_proxy_url;
  }
  if (!port.empty()) {
    auto p = parse_port(port);
    if (!p) return errc::bad_proxy_url;
    out.port = *p;
  }
  out.host = std::string(host);
  return out;
}

ProxyEnvironment ProxyEnvironment::from_process() {
  ProxyEnvironment env;
  env.https_proxy = env_any("HTTPS_PROXY", "https_proxy");
  env.http_proxy = env_any("HTTP_PROXY", "http_proxy");
  env.no_proxy = env_any("NO_PROXY", "no_proxy");
  return env;
}

bool no_proxy_matches(std::string_view no_proxy, std::string_view host_in, std::uint16_t port) {
  const std::string host = lower(host_in);
  std::string_view list = no_proxy;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string entry = lower(trim(list.substr(0, comma)));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (!entry.empty() && entry_matches(entry, host, port)) return true;
  }
  return false;
}

Result<std::optional<ProxyUrl>> select_proxy(const WsUrl& target, const std::optional<std::string>& explicit_proxy,
                                             const ProxyEnvironment& env) {
  if (explicit_proxy) {
    const std::string_view text = trim(*explicit_proxy);
    if (text.empty() || detail::iequals(text, "direct")) return std::optional<ProxyUrl>();
    Result<ProxyUrl> parsed = parse_proxy_url(text);
    if (!parsed) return parsed.error();
    return std::optional<ProxyUrl>(std::move(*parsed));
  }
  const std::optional<std::string>& chosen = target.secure ? env.https_proxy : env.http_proxy;
  if (!chosen || trim(*chosen).empty()) return std::optional<ProxyUrl>();
  if (is_loopback(target.host)) return std::optional<ProxyUrl>();
  if (env.no_proxy && no_proxy_matches(*env.no_proxy, target.host, target.port)) return std::optional<ProxyUrl>();
  Result<ProxyUrl> parsed = parse_proxy_url(*chosen);
  if (!parsed) return parsed.error();
  return std::optional<ProxyUrl>(std::move(*parsed));
}

// ---- CONNECT ---------------------------------------------------------------------------------

Result<ProxyConnectHandshake> ProxyConnectHandshake::create(const ProxyUrl& proxy, std::string_view target_host,
                                                            std::uint16_t target_port, HandshakeLimits limits) {
  if (target_host.empty() || !detail::is_safe_header_value(target_host) ||
      target_host.find_first_of(" \t/@") != std::string_view::npos) {
    return errc::bad_url;
  }
  ProxyConnectHandshake hs;
  hs.limits_ = limits;
  hs.proxy_name_ = proxy.authority();
  const bool v6 = target_host.find(':') != std::string_view::npos;
  std::string authority = v6 ? "[" + std::string(target_host) + "]" : std::string(target_host);
  authority += ":" + std::to_string(target_port);
  std::string& r = hs.request_;
  r = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\nUser-Agent: vtunnel\r\n";
  if (proxy.user) {
    const std::string credentials = *proxy.user + ":" + proxy.password;
    r += "Proxy-Authorization: Basic " +
         Botan::base64_encode(reinterpret_cast<const std::uint8_t*>(credentials.data()), credentials.size()) + "\r\n";
  }
  r += "\r\n";
  if (r.size() > limits.max_head_size) return errc::head_too_large;
  return hs;
}

ProxyConnectHandshake::Outcome ProxyConnectHandshake::fail(std::error_code why, std::string detail) {
  error_ = why;
  failure_detail_ = std::move(detail);
  return Outcome::failed;
}

ProxyConnectHandshake::Step ProxyConnectHandshake::feed(ByteSpan input) {
  if (done_ != Outcome::need_more) return {done_, 0};
  const std::size_t before = head_.size();
  const std::size_t take = std::min(limits_.max_head_size - before, input.size());
  head_.append(as_string(input.first(take)));
  if (!detail::plausible_response_start(head_)) {
    done_ = fail(errc::proxy_bad_response, "proxy " + proxy_name_ + " answered CONNECT with something that is not HTTP: \"" +
                                               log::escaped(head_, 40) + "\" (is it an HTTP proxy?)");
    return {done_, take};
  }
  const std::size_t end = detail::find_head_end(head_, before >= 3 ? before - 3 : 0);
  if (end == 0) {
    if (head_.size() < limits_.max_head_size) return {Outcome::need_more, take};
    done_ = fail(errc::proxy_bad_response, "proxy " + proxy_name_ + "'s answer to CONNECT exceeds " +
                                               std::to_string(limits_.max_head_size) + " bytes");
    return {done_, take};
  }
  done_ = evaluate(std::string_view(head_).substr(0, end));
  head_.clear();
  head_.shrink_to_fit();
  return {done_, end - before};
}

ProxyConnectHandshake::Outcome ProxyConnectHandshake::evaluate(std::string_view head) {
  const std::string_view status_line = head.substr(0, head.find("\r\n"));
  http::response_parser<http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits_.max_head_size));
  parser.eager(false);
  parser.skip(true);  // the answer to CONNECT has no body (RFC 9110 9.3.6)
  boost::system::error_code ec;
  try {
    parser.put(boost::asio::buffer(head.data(), head.size()), ec);
  } catch (const std::exception&) {
    ec = http::error::bad_value;
  }
  if (ec || !parser.is_header_done()) {
    return fail(errc::proxy_bad_response, "proxy " + proxy_name_ + " sent a malformed answer to CONNECT (" +
                                              ec.message() + "): \"" + log::escaped(status_line, 120) + "\"");
  }
  status_ = parser.get().result_int();
  if (status_ < 200 || status_ > 299) {
    std::string detail = "proxy " + proxy_name_ + " refused CONNECT: \"" + log::escaped(status_line, 120) + "\"";
    // 407 is the standard answer; some proxies (tinyproxy) send 401 to CONNECT instead.
    if (status_ == 407 || status_ == 401) detail += request_.find("Proxy-Authorization:") == std::string::npos
                                      ? " (it wants credentials: http://user:password@host:port)"
                                      : " (credentials rejected)";
    return fail(errc::proxy_refused, std::move(detail));
  }
  return Outcome::established;
}

}  // namespace vtunnel::ws
