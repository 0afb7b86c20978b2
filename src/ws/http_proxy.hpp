#pragma once
// Reaching the server through an HTTP proxy (CONNECT), sans-I/O: the proxy URL, which proxy a
// target uses (flag, HTTPS_PROXY / HTTP_PROXY, NO_PROXY), and the CONNECT exchange itself.
//
// Selection (select_proxy), in order:
//   1. an explicit proxy (the client's -proxy-url): used for every target, loopback included,
//      and NO_PROXY is not consulted; "" or "direct" there means: no proxy at all;
//   2. the environment, as Go's golang.org/x/net/http/httpproxy and curl read it: wss:// uses
//      HTTPS_PROXY (or https_proxy), ws:// uses HTTP_PROXY (or http_proxy); the upper-case name
//      wins when both are set. Such a proxy is never used for "localhost" or a loopback address
//      (Go's rule), nor for a target NO_PROXY (or no_proxy) excludes:
//        comma-separated entries, blanks ignored, compared case-insensitively;
//        "*"            excludes everything;
//        "1.2.3.4", "::1", "10.0.0.0/8", "fd00::/8"   an address or a CIDR range (IP targets);
//        "example.com"  that name and every subdomain; ".example.com" / "*.example.com":
//                       subdomains only;
//        any of the above with ":port" matches only that port.
// Proxy URLs: http://[user[:password]@]host[:port][/]; a missing scheme means http://, the
// port defaults to 80. https://, socks5:// and other schemes are refused (not supported).
// user and password are percent-decoded and sent as Proxy-Authorization: Basic.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ws/handshake_limits.hpp"

namespace vtunnel::ws {

struct WsUrl;

struct ProxyUrl {
  std::string host;         // name or address; IPv6 without brackets
  std::uint16_t port = 80;
  std::optional<std::string> user;  // percent-decoded
  std::string password;             // percent-decoded; never log it

  // "http://host:port", with "user:***@" when there are credentials: safe to log.
  std::string redacted() const;
  // "host:port" ("[v6]:port"): what to dial, for messages.
  std::string authority() const;
};

// Parses a proxy URL (see above). errc::proxy_scheme_unsupported for https:// and the like,
// errc::bad_proxy_url for anything else malformed.
Result<ProxyUrl> parse_proxy_url(std::string_view text);

// Proxy settings as read from the environment, kept apart so selection is testable.
struct ProxyEnvironment {
  std::optional<std::string> https_proxy;  // HTTPS_PROXY, else https_proxy
  std::optional<std::string> http_proxy;   // HTTP_PROXY, else http_proxy
  std::optional<std::string> no_proxy;     // NO_PROXY, else no_proxy
  // The process environment (getenv).
  static ProxyEnvironment from_process();
};

// True if the NO_PROXY list `no_proxy` excludes host:port (host without brackets).
bool no_proxy_matches(std::string_view no_proxy, std::string_view host, std::uint16_t port);

// The proxy to use for `target`, or nullopt for a direct connection. `explicit_proxy` is the
// -proxy-url flag when given (it replaces the environment entirely). Errors: the chosen
// proxy URL is malformed or of an unsupported scheme.
Result<std::optional<ProxyUrl>> select_proxy(const WsUrl& target, const std::optional<std::string>& explicit_proxy,
                                             const ProxyEnvironment& env);

// The CONNECT exchange over a connection to the proxy. Send request(), feed the bytes read
// back until the outcome is not need_more. On `established`, input past `consumed` belongs
// to the tunnel (the server's first bytes). The response head is bounded by
// limits.max_head_size; the deadline is the caller's.
class ProxyConnectHandshake {
 public:
  enum class Outcome : std::uint8_t { need_more, established, failed };
  struct Step {
    Outcome outcome = Outcome::need_more;
    std::size_t consumed = 0;
  };

  // target_host without brackets; credentials from proxy.user / proxy.password.
  static Result<ProxyConnectHandshake> create(const ProxyUrl& proxy, std::string_view target_host,
                                              std::uint16_t target_port, HandshakeLimits limits = {});

  const std::string& request() const noexcept { return request_; }
  Step feed(ByteSpan input);

  std::error_code error() const noexcept { return error_; }
  // e.g. "proxy 127.0.0.1:3128 answered \"HTTP/1.1 407 Proxy Authentication Required\"" (escaped).
  const std::string& failure_detail() const noexcept { return failure_detail_; }
  unsigned status() const noexcept { return status_; }

 private:
  ProxyConnectHandshake() = default;
  Outcome evaluate(std::string_view head);
  Outcome fail(std::error_code why, std::string detail);

  HandshakeLimits limits_;
  std::string proxy_name_;  // authority of the proxy, for messages
  std::string request_;
  std::string head_;
  Outcome done_ = Outcome::need_more;
  unsigned status_ = 0;
  std::error_code error_{};
  std::string failure_detail_;
};

}  // namespace vtunnel::ws
