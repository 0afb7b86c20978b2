#include "ws/ws_connect.hpp"

#include "core/log.hpp"
#include "core/resolver.hpp"
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

Task<HandshakeResult<WsStream>> connect(std::string url, WsConnectOptions options, Dialer dial) {
  HandshakeResult<WsStream> result;
  Result<WsUrl> parsed = parse_ws_url(url);
  if (!parsed) {
    result.error = parsed.error();
    result.detail = "not a valid ws:// or wss:// URL: " + log::escaped(url);
    co_return result;
  }
  const WsUrl& target = *parsed;
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
