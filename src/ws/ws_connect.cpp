#include "ws/ws_connect.hpp"

#include "core/log.hpp"
#include "core/resolver.hpp"
#include "core/timer.hpp"
#include "ws/error.hpp"
#include "ws/url.hpp"

namespace vtunnel::ws {

Task<Result<std::unique_ptr<Stream>>> dial_tcp(std::string host, std::uint16_t port, ConnectOptions options) {
  Result<TcpStream> tcp = co_await connect_host(std::move(host), port, options);
  if (!tcp) co_return tcp.error();
  co_return std::unique_ptr<Stream>(std::make_unique<TcpStream>(std::move(*tcp)));
}

Task<HandshakeResult<WsStream>> connect(std::string url, WsConnectOptions options) {
  const ConnectOptions tcp = options.tcp;
  Dialer dial = [tcp](std::string host, std::uint16_t port) { return dial_tcp(std::move(host), port, tcp); };
  co_return co_await connect(std::move(url), std::move(options), std::move(dial));
}

namespace {

// The steps of connect() as one Result-returning task (so with_timeout applies); the
// sentence for the user goes to *detail, which lives in the awaiting connect() frame.
Task<Result<std::unique_ptr<WsStream>>> connect_steps(WsUrl target, WsConnectOptions options, Dialer dial,
                                                      std::string* detail) {
  HandshakeResult<WsStream> result = co_await connect_parsed(std::move(target), std::move(options), std::move(dial));
  if (result.ok()) co_return std::move(result.stream);
  *detail = result.message();
  co_return result.error;
}

}  // namespace

Task<HandshakeResult<WsStream>> connect(std::string url, WsConnectOptions options, Dialer dial) {
  HandshakeResult<WsStream> result;
  Result<WsUrl> parsed = parse_ws_url(url);
  if (!parsed) {
    result.error = parsed.error();
    result.detail = "not a valid ws:// or wss:// URL: " + log::escaped(url);
    co_return result;
  }
  if (options.timeout.count() == 0) {
    co_return co_await connect_parsed(std::move(*parsed), std::move(options), std::move(dial));
  }
  const std::string where = parsed->host_header;
  const auto timeout = options.timeout;
  std::string detail;
  Result<std::unique_ptr<WsStream>> connected =
      co_await with_timeout(connect_steps(std::move(*parsed), std::move(options), std::move(dial), &detail), timeout);
  if (connected) {
    result.stream = std::move(*connected);
    co_return result;
  }
  result.error = connected.error();
  if (connected.error() == vtunnel::errc::timed_out) {
    result.detail = "connecting to " + where + " (TCP, TLS, WebSocket upgrade) timed out after " +
                    std::to_string(timeout.count()) + " ms";
  } else {
    result.detail = std::move(detail);
  }
  co_return result;
}

Task<HandshakeResult<WsStream>> connect_parsed(WsUrl target, WsConnectOptions options, Dialer dial) {
  HandshakeResult<WsStream> result;
  Result<std::unique_ptr<Stream>> tcp = co_await dial(target.host, target.port);
  if (!tcp) {
    result.error = tcp.error();
    result.detail = "cannot connect to " + target.host_header + ": " + tcp.error().message();
    co_return result;
  }
  std::unique_ptr<Stream> transport = std::move(*tcp);
  if (target.secure) {
    TlsClientOptions tls;
    tls.server_name = options.tls_server_name.empty() ? target.host : options.tls_server_name;
    tls.port = target.port;
    tls.ca_file = options.tls_ca_file;
    tls.ca_dir = options.tls_ca_dir;
    HandshakeResult<TlsClientStream> secured = co_await TlsClientStream::handshake(std::move(transport), tls);
    if (!secured.ok()) {
      result.error = secured.error;
      result.detail = target.host_header + ": " + secured.message();
      co_return result;
    }
    transport = std::move(secured.stream);
  }
  ClientOptions client;
  client.headers = std::move(options.headers);
  client.handshake = options.handshake;
  client.stream = options.stream;
  co_return co_await client_handshake(std::move(transport), target, std::move(client));
}

}  // namespace vtunnel::ws
