#pragma once
// Shared set-up of the tunnel tests (Server and Client in one loop over real loopback sockets):
// an echo backend, a Server running on an ephemeral port, bringing a Client's tunnel up,
// bounded waits and one-shot exchanges. Use inside a coroutine run by sync_wait(loop, ...);
// every piece that runs something has a stop() to co_await before it goes out of scope.
#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "support/echo.hpp"
#include "tunnel/client.hpp"
#include "tunnel/server.hpp"

namespace vtunnel::test {

// A loopback port that was free a moment ago (a tunnel's remote port is named up front).
inline std::uint16_t free_port() {
  auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
  return l.value().port();
}

// Waits (bounded) until `pred` holds; false if it still does not after `limit`.
inline Task<bool> eventually(std::function<bool()> pred, Duration limit = std::chrono::seconds(10)) {
  auto deadline = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > deadline) co_return false;
    (void)co_await sleep_for(std::chrono::milliseconds(10));
  }
  co_return true;
}

// Connects to `to`, sends `msg`, half-closes, reads until EOF (each read bounded): what came back.
inline Task<Result<std::string>> exchange(SocketAddress to, std::string msg) {
  auto c = co_await TcpStream::connect(to);
  if (!c) co_return c.error();
  auto w = co_await c->write_all(as_bytes(msg));
  if (!w) co_return w.error();
  auto sh = co_await c->shutdown_write();
  if (!sh) co_return sh.error();
  std::string got;
  std::uint8_t buf[4096];
  for (;;) {
    auto n = co_await c->read_some(MutableByteSpan(buf), std::chrono::seconds(10));
    if (!n) {
      if (n.error() == errc::eof) break;
      co_return n.error();
    }
    got.append(reinterpret_cast<char*>(buf), *n);
  }
  co_return got;
}

// One request/response through a tunnel port on 127.0.0.1.
inline Task<Result<std::string>> round_trip(std::uint16_t port, std::string msg) {
  return exchange(SocketAddress::loopback_v4(port), std::move(msg));
}

struct Keys {
  PrivateKey priv = generate_private_key();
  PublicKey pub = priv.public_key();
};

inline std::string url_of(const SocketAddress& a) { return "ws://127.0.0.1:" + std::to_string(a.port()) + "/"; }

// A TCP echo server (127.0.0.1 unless told): each connection gets back what it sends, and EOF
// after the peer's EOF.
class EchoBackend {
 public:
  explicit EchoBackend(SocketAddress at = SocketAddress::loopback_v4(0)) : listener_(bound(at)) {
    accepting_.spawn(echo_server(listener_, conns_, 16 * 1024));
  }
  // "host:port", as Client::listen() takes it.
  std::string target() const { return listener_.local_address().to_string(); }
  // Stops accepting, ends the open connections.
  Task<void> stop() {
    listener_.close();
    conns_.cancel();
    co_await accepting_.join();
    co_await conns_.join();
  }

 private:
  static TcpListener bound(SocketAddress at) {
    auto l = TcpListener::bind(at);
    REQUIRE(l.ok());
    return std::move(*l);
  }
  TcpListener listener_;
  Scope accepting_, conns_;
};

// A Server listening on an ephemeral 127.0.0.1 port and running until stop(). run() starts on
// the loop's next turn, so start_proxy() / start_metrics() right after construction come first.
class RunningServer : public Server {
 public:
  explicit RunningServer(ServerOptions options) : Server(std::move(options)) {
    auto a = listen(SocketAddress::loopback_v4(0));
    REQUIRE(a.ok());
    address = *a;
    running_.spawn(run());
  }
  std::string url() const { return url_of(address); }
  Task<void> stop() {
    close();
    co_await running_.join();
  }

  SocketAddress address;  // the HTTP + WebSocket port

 private:
  Scope running_;
};

// True once `server` listens on `port` for its client (bounded).
inline Task<bool> listening(const Server& server, std::uint16_t port) {
  return eventually([&server, port] { return server.listener_ports().count(port) == 1; });
}

// `client` forwards `port` to `target` and connects; returns once `server` listens there.
inline Task<void> bring_up(Client& client, const Server& server, std::uint16_t port, std::string target) {
  auto listened = co_await client.listen(port, target);
  REQUIRE(listened.ok());
  auto connected = co_await client.connect();
  REQUIRE(connected.ok());
  auto ready = co_await listening(server, port);
  REQUIRE(ready);
}

inline ServerOptions server_options(const std::optional<PrivateKey>& client_key) {
  ServerOptions so;
  if (client_key) so.client_key = client_key->public_key();
  return so;
}

inline ClientOptions client_options(std::optional<PrivateKey> key) {
  ClientOptions co;
  co.key = std::move(key);
  return co;
}

// The usual whole tunnel: an echo backend, a Server that accepts `key` (keyless without one),
// and a Client with `key` forwarding a fresh tunnel port to the backend. up() brings the tunnel
// up; stop() closes the client, then the server, then the backend.
struct EchoTunnel {
  explicit EchoTunnel(const std::optional<PrivateKey>& key)
      : server(server_options(key)), client(server.url(), client_options(key)) {}
  Task<void> up() { co_await bring_up(client, server, port, backend.target()); }
  Task<void> stop() {
    co_await client.close();
    co_await server.stop();
    co_await backend.stop();
  }

  EchoBackend backend;
  RunningServer server;
  Client client;
  std::uint16_t port = free_port();  // the tunnel port on the server side
};

}  // namespace vtunnel::test
