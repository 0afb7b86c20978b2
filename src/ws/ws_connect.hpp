#pragma once
// connect(): a WebSocket client connection from a URL: dial, TLS for wss://, upgrade.
// The dialer is a parameter so the URL/TLS/handshake sequence does not depend on how TCP
// connections are made (the runtime's TcpStream::connect + resolver in production, blocking
// sockets in tests). Deadlines are the caller's: wrap in with_timeout().
#include <functional>
#include <memory>
#include <string>

#include "core/result.hpp"
#include "core/stream.hpp"
#include "core/task.hpp"
#include "ws/handshake_result.hpp"
#include "ws/tls_client_stream.hpp"
#include "ws/ws_handshake.hpp"

namespace vtunnel::ws {

struct ConnectOptions {
  HeaderList headers;          // extra handshake headers
  HandshakeLimits handshake{};
  WsStreamOptions stream{};
  std::string tls_server_name;  // SNI / certificate name; default: the URL's host
  std::string tls_ca_file;      // trusted CAs; default: SSL_CERT_FILE / SSL_CERT_DIR / system
  std::string tls_ca_dir;
};

// Makes a TCP connection to host:port. Called with the URL's host (name or address).
using Dialer = std::function<Task<Result<std::unique_ptr<Stream>>>(std::string host, std::uint16_t port)>;

Task<HandshakeResult<WsStream>> connect(std::string url, ConnectOptions options, Dialer dial);

}  // namespace vtunnel::ws
