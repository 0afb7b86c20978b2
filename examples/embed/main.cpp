// The README's library example: a vtunnel server and client in one process (each would
// normally run on its own machine), exposing a local echo service through the tunnel.
#include <cstdio>
#include <string>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "tunnel/client.hpp"
#include "tunnel/server.hpp"

using namespace vtunnel;
using namespace std::chrono_literals;

// The local service the client exposes: echoes one message.
Task<void> echo_once(TcpListener& backend) {
  auto conn = co_await backend.accept();
  if (!conn) co_return;
  std::uint8_t buf[256];
  auto n = co_await conn->read_some(MutableByteSpan(buf));
  if (n) (void)co_await conn->write_all(ByteSpan(buf, *n));
}

Task<int> demo() {
  PrivateKey key = generate_private_key();         // vtunnel keygen
  auto backend = TcpListener::bind(SocketAddress::loopback_v4(0));
  if (!backend) co_return 1;

  ServerOptions server_options;
  server_options.client_key = key.public_key();    // -client-key vt-pub-...
  Server server(server_options);
  auto http = server.listen(SocketAddress::loopback_v4(0));  // WebSocket + /health
  if (!http) co_return 1;

  ClientOptions client_options;
  client_options.key = key;                        // -key vt-priv-...
  Client client("ws://127.0.0.1:" + std::to_string(http->port()) + "/", client_options);
  std::uint16_t tunnel_port = TcpListener::bind(SocketAddress::loopback_v4(0))->port();  // a free port
  // -forward <tunnel_port>=127.0.0.1:<backend>
  auto listened = co_await client.listen(tunnel_port, "127.0.0.1:" + std::to_string(backend->port()));
  if (!listened) co_return 1;

  Scope scope;
  scope.spawn(server.run());
  scope.spawn(echo_once(*backend));
  auto connected = co_await client.connect();
  if (!connected) {
    std::fprintf(stderr, "connect: %s\n", connected.error().message().c_str());
    co_return 1;
  }
  // On the server's machine: connect to 127.0.0.1:<tunnel_port>; it reaches the client's echo.
  std::string reply;
  for (int attempt = 0; attempt < 100 && reply.empty(); ++attempt) {
    auto user = co_await TcpStream::connect(SocketAddress::loopback_v4(tunnel_port));
    if (user) {
      auto sent = co_await user->write_all(as_bytes("hello through the tunnel"));
      std::uint8_t buf[256];
      auto n = co_await user->read_some(MutableByteSpan(buf), 5s);
      if (sent && n) reply.assign(reinterpret_cast<char*>(buf), *n);
    }
    if (reply.empty()) (void)co_await sleep_for(20ms);  // the listener appears once registered
  }
  std::printf("tunnel reply: %s\n", reply.c_str());
  co_await client.close();
  server.close();
  backend->close();
  co_await scope.join();
  co_return reply == "hello through the tunnel" ? 0 : 1;
}

int main() {
  Loop loop;
  return sync_wait(loop, demo());
}
