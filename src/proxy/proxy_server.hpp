#pragma once
// ProxyServer: the HTTP CONNECT / plain-HTTP proxy of `vtunnel server -proxy PORT`.
//
// Per connection: read the request head within head_timeout (slowloris-safe), then
//   CONNECT host:port -> DomainTable mapping, else a direct dial; "200 Connection Established",
//                        bytes read past the head forwarded, relay() with the idle timeout.
//   absolute-form     -> same lookup (port 80), origin-form head upstream (see request_head.hpp),
//                        the body relayed by its framing, one response relayed back, close.
// Refusals: 400 malformed / no host, 431 head too large, 408 head too slow, 501 transfer
// coding, 502 upstream unreachable, 503 over max_connections. Each is logged (peer text
// escaped) and the connection closed; nothing a peer sends can end the server.
//
// All calls on the loop thread that runs the server. close() must be awaited before the
// ProxyServer is destroyed if start() succeeded.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/loop.hpp"
#include "core/metrics.hpp"
#include "core/result.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/task.hpp"
#include "proxy/domain_table.hpp"
#include "proxy/request_head.hpp"

namespace vtunnel::proxy {

inline constexpr Duration kProxyHeadTimeout = std::chrono::seconds(10);  // whole head (slowloris)
inline constexpr std::chrono::milliseconds kProxyConnectTimeout{10'000};  // DNS + dial
inline constexpr Duration kProxyIdleTimeout = std::chrono::minutes(5);    // as the Go original
inline constexpr std::size_t kMaxProxyConnections = 1024;                 // concurrent, then 503
inline constexpr std::size_t kProxyRelayBufferBytes = 64 * 1024;          // per direction

// How a proxy request ended, for metrics (vtunnel_proxy_requests_total{outcome=...}).
// Counted once per request: a CONNECT when the upstream is reached (ok) or refused, a plain
// HTTP request when its response was relayed (ok) or it was refused.
enum class ProxyOutcome : std::uint8_t {
  ok,               // CONNECT established / response relayed
  bad_request,      // 400: malformed head, no host, bad authority, scheme, body framing
  head_too_large,   // 431
  not_implemented,  // 501: transfer coding other than chunked
  timeout,          // 408: head not complete within head_timeout
  upstream_failed,  // 502: dial failed, or the upstream closed without a response
  overloaded,       // 503: max_connections reached
};
inline constexpr std::size_t kProxyOutcomeCount = 7;
std::string_view outcome_name(ProxyOutcome outcome) noexcept;

struct ProxyStats {
  std::array<metrics::Counter, kProxyOutcomeCount> requests{};
  void count(ProxyOutcome o) noexcept { requests[static_cast<std::size_t>(o)].inc(); }
  std::uint64_t of(ProxyOutcome o) const noexcept { return requests[static_cast<std::size_t>(o)].value(); }
};

struct ProxyOptions {
  Duration head_timeout = kProxyHeadTimeout;
  std::chrono::milliseconds connect_timeout = kProxyConnectTimeout;
  Duration idle_timeout = kProxyIdleTimeout;  // no byte either way -> close
  std::size_t max_connections = kMaxProxyConnections;
  std::size_t relay_buffer_size = kProxyRelayBufferBytes;
  ProxyStats* stats = nullptr;  // counted here when set (must outlive the ProxyServer)
};

class ProxyServer {
 public:
  explicit ProxyServer(ProxyOptions options = {}) : options_(options) {}
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;
  ~ProxyServer();

  // Binds and starts accepting. 127.0.0.1 is the documented default; any other address is
  // logged as a warning (an open proxy on a public interface lets anyone use it).
  Result<void> start(SocketAddress address);
  // "PORT" (127.0.0.1), "IP:PORT" or "[IPv6]:PORT", numeric only.
  Result<void> start(std::string_view address);
  // Closes the listener and ends every connection; returns once all have ended.
  Task<void> close();

  // The tunnel server's calls when a client's Listen names a domain ("gitlab.example.com:443"
  // -> "127.0.0.1:8083") and when that listener goes away. Logged; malformed input refused.
  Result<void> set_domain_mapping(std::string_view domain, std::string_view target);
  void remove_domain_mapping(std::string_view domain);

  DomainTable& domains() noexcept { return domains_; }
  const DomainTable& domains() const noexcept { return domains_; }

  std::uint16_t port() const noexcept { return listener_.port(); }
  const SocketAddress& local_address() const noexcept { return listener_.local_address(); }
  std::size_t active_connections() const noexcept { return active_; }
  bool running() const noexcept { return running_; }

 private:
  class ConnectionSlot;
  Task<void> accept_loop();
  Task<void> serve(TcpStream client, ConnectionSlot slot);
  void count(ProxyOutcome o) noexcept {
    if (options_.stats) options_.stats->count(o);
  }

  ProxyOptions options_;
  DomainTable domains_;
  TcpListener listener_;
  Scope acceptor_;
  Scope connections_;
  std::size_t active_ = 0;
  bool running_ = false;
};

}  // namespace vtunnel::proxy
