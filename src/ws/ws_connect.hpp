#pragma once
// connect(): a WebSocket client connection from a URL: dial, TLS for wss://, upgrade.
// By default it dials with the runtime (resolve + TcpStream::connect); the dialer is a
// parameter so tests can use other transports. One deadline (options.timeout) covers dial,
// TLS and upgrade.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/result.hpp"
#include "core/socket.hpp"
#include "core/stream.hpp"
#include "core/task.hpp"
#include "ws/handshake_result.hpp"
#include "ws/http_proxy.hpp"
#include "ws/tls_client_stream.hpp"
#include "ws/ws_handshake.hpp"

namespace vtunnel::ws {

// Dial + TLS + upgrade must finish within this unless told otherwise.
inline constexpr std::chrono::seconds kDefaultConnectTimeout{30};

// A proxy that accepted the TCP connection must answer CONNECT within this.
inline constexpr std::chrono::seconds kDefaultProxyAnswerTimeout{10};

struct WsConnectOptions {
  // Zero: no deadline of ours (the caller's with_timeout, or none: needs no Loop).
  std::chrono::milliseconds timeout = kDefaultConnectTimeout;
  HeaderList headers;          // extra handshake headers
  ConnectOptions tcp{};        // TCP connect timeout, no-delay (used by the default dialer)
  HandshakeLimits handshake{};
  WsStreamOptions stream{};
  std::string tls_server_name;  // SNI / certificate name; default: the URL's host
  std::string tls_ca_file;      // trusted CAs; default: SSL_CERT_FILE / SSL_CERT_DIR / system
  std::string tls_ca_dir;
  // Reach the server through this HTTP proxy (CONNECT host:port), TLS for wss:// inside the
  // tunnel. None: direct. Choose it with select_proxy() (flag / environment / NO_PROXY).
  std::optional<ProxyUrl> proxy;
  // The proxy must answer CONNECT within this (on top of the overall timeout).
  std::chrono::milliseconds proxy_answer_timeout = kDefaultProxyAnswerTimeout;
};

// Makes a TCP connection to host:port. Called with the URL's host (name or address).
using Dialer = std::function<Task<Result<std::unique_ptr<Stream>>>(std::string host, std::uint16_t port)>;

Task<HandshakeResult<WsStream>> connect(std::string url, WsConnectOptions options, Dialer dial);

// connect() for an already parsed URL, without options.timeout (the caller's deadline).
Task<HandshakeResult<WsStream>> connect_parsed(WsUrl url, WsConnectOptions options, Dialer dial);

// With the runtime's dialer: resolve `host` and connect to the first address that accepts.
Task<HandshakeResult<WsStream>> connect(std::string url, WsConnectOptions options);
// Not a default argument: GCC 12 miscompiles `co_await f(Aggregate{...})` (and `= {}`
// defaults) when the aggregate has non-trivial members: the temporary is bit-copied into the
// callee's frame and freed twice. Callers inside coroutines must name such arguments.
inline Task<HandshakeResult<WsStream>> connect(std::string url) {
  return connect(std::move(url), WsConnectOptions{});
}

// The CONNECT exchange over `transport` (a connection to `proxy`): on a 2xx answer, the
// stream to host:port through the proxy (bytes the proxy sent past its answer kept).
// Otherwise the error, and *detail a sentence with the proxy's status line (escaped). The
// deadline is the caller's. *detail must outlive the task.
Task<Result<std::unique_ptr<Stream>>> proxy_connect(std::unique_ptr<Stream> transport, ProxyUrl proxy,
                                                    std::string host, std::uint16_t port, HandshakeLimits limits,
                                                    std::string* detail);

// The runtime's dialer as a Dialer-shaped function.
Task<Result<std::unique_ptr<Stream>>> dial_tcp(std::string host, std::uint16_t port, ConnectOptions options);

}  // namespace vtunnel::ws
