// Graceful shutdown of Server and Client in one loop: stop accepting, let carried connections
// finish within the grace period.
#include <catch2/catch.hpp>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "tunnel/client.hpp"
#include "tunnel/server.hpp"

using namespace vtunnel;
using namespace std::chrono_literals;

namespace {

Task<void> echo_conn(TcpStream s) {
  std::vector<std::uint8_t> buf(16384);
  for (;;) {
    auto n = co_await s.read_some(buf);
    if (!n) break;
    auto w = co_await s.write_all(ByteSpan(buf.data(), *n));
    if (!w) break;
  }
  (void)co_await s.shutdown_write();
}

Task<void> echo_server(TcpListener& l, Scope& conns) {
  for (;;) {
    auto c = co_await l.accept();
    if (!c) co_return;
    conns.spawn(echo_conn(std::move(*c)));
  }
}

Task<bool> eventually(std::function<bool()> pred, Duration limit = 10s) {
  auto deadline = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > deadline) co_return false;
    (void)co_await sleep_for(10ms);
  }
  co_return true;
}

Task<Result<std::string>> echo_once(TcpStream& c, std::string msg) {
  auto w = co_await c.write_all(as_bytes(msg));
  if (!w) co_return w.error();
  std::string got;
  std::uint8_t buf[4096];
  while (got.size() < msg.size()) {
    auto n = co_await c.read_some(MutableByteSpan(buf), 10s);
    if (!n) co_return n.error();
    got.append(reinterpret_cast<char*>(buf), *n);
  }
  co_return got;
}

std::uint16_t free_port() {
  auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
  return l.value().port();
}

enum class Who { server, client };

Task<void> graceful(Who who) {
  PrivateKey priv = generate_private_key();
  auto backend = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(backend.ok());
  Scope backend_conns, background;
  background.spawn(echo_server(*backend, backend_conns));
  ServerOptions so;
  so.client_key = priv.public_key();
  Server server(so);
  auto addr = server.listen(SocketAddress::loopback_v4(0));
  REQUIRE(addr.ok());
  background.spawn(server.run());
  ClientOptions co;
  co.key = priv;
  Client client("ws://127.0.0.1:" + std::to_string(addr->port()) + "/", co);
  std::uint16_t port = free_port();
  auto l = co_await client.listen(port, "127.0.0.1:" + std::to_string(backend->port()));
  REQUIRE(l.ok());
  auto c = co_await client.connect();
  REQUIRE(c.ok());
  auto ready = co_await eventually([&] { return server.listener_ports().count(port) == 1; });
  REQUIRE(ready);

  auto user = co_await TcpStream::connect(SocketAddress::loopback_v4(port));
  REQUIRE(user.ok());
  auto first = co_await echo_once(*user, "before");
  REQUIRE(first.ok());
  REQUIRE(server.connection_count() == 1);
  REQUIRE(client.connection_count() == 1);

  auto started = Clock::now();
  bool done = false;
  Scope stopping;
  if (who == Who::server) {
    stopping.spawn([](Server& s, bool& d) -> Task<void> {
      co_await s.shutdown(20s);
      d = true;
    }(server, done));
  } else {
    stopping.spawn([](Client& cl, bool& d) -> Task<void> {
      co_await cl.shutdown(20s);
      d = true;
    }(client, done));
  }
  (void)co_await sleep_for(100ms);
  REQUIRE_FALSE(done);  // waits for the open connection
  if (who == Who::server) {
    // nothing new is accepted: the tunnel port and the WebSocket port refuse
    auto refused = co_await TcpStream::connect(SocketAddress::loopback_v4(port));
    REQUIRE_FALSE(refused.ok());
    auto refused_ws = co_await TcpStream::connect(*addr);
    REQUIRE_FALSE(refused_ws.ok());
  }
  // the carried connection still works, both ways, until the user ends it
  auto second = co_await echo_once(*user, "during the grace period");
  REQUIRE(second.ok());
  REQUIRE(*second == "during the grace period");
  auto sh = co_await user->shutdown_write();
  REQUIRE(sh.ok());
  std::uint8_t buf[64];
  auto eof = co_await user->read_some(MutableByteSpan(buf), 10s);
  REQUIRE_FALSE(eof.ok());
  REQUIRE(eof.error() == errc::eof);
  user->close();
  co_await stopping.join();
  REQUIRE(done);
  REQUIRE(Clock::now() - started < 10s);  // ended with the connection, not at the deadline

  if (who == Who::server) {
    co_await client.close();
  } else {
    server.close();
  }
  backend->close();
  backend_conns.cancel();
  co_await background.join();
  co_await backend_conns.join();
}

}  // namespace

TEST_CASE("shutdown: the server stops accepting and lets a carried connection finish", "[tunnel][shutdown]") {
  Loop loop;
  sync_wait(loop, graceful(Who::server));
}

TEST_CASE("shutdown: the client lets a carried connection finish", "[tunnel][shutdown]") {
  Loop loop;
  sync_wait(loop, graceful(Who::client));
}

TEST_CASE("shutdown: the grace period ends an idle connection", "[tunnel][shutdown]") {
  Loop loop;
  sync_wait(loop, []() -> Task<void> {
    PrivateKey priv = generate_private_key();
    auto backend = TcpListener::bind(SocketAddress::loopback_v4(0));
    REQUIRE(backend.ok());
    Scope backend_conns, background;
    background.spawn(echo_server(*backend, backend_conns));
    ServerOptions so;
    so.client_key = priv.public_key();
    Server server(so);
    auto addr = server.listen(SocketAddress::loopback_v4(0));
    REQUIRE(addr.ok());
    background.spawn(server.run());
    ClientOptions co;
    co.key = priv;
    Client client("ws://127.0.0.1:" + std::to_string(addr->port()) + "/", co);
    std::uint16_t port = free_port();
    auto l = co_await client.listen(port, "127.0.0.1:" + std::to_string(backend->port()));
    REQUIRE(l.ok());
    auto c = co_await client.connect();
    REQUIRE(c.ok());
    auto ready = co_await eventually([&] { return server.listener_ports().count(port) == 1; });
    REQUIRE(ready);
    auto user = co_await TcpStream::connect(SocketAddress::loopback_v4(port));
    REQUIRE(user.ok());
    auto first = co_await echo_once(*user, "idle after this");
    REQUIRE(first.ok());
    auto started = Clock::now();
    co_await server.shutdown(300ms);
    auto took = Clock::now() - started;
    REQUIRE(took >= 250ms);
    REQUIRE(took < 5s);
    std::uint8_t buf[64];
    auto end = co_await user->read_some(MutableByteSpan(buf), 10s);
    REQUIRE_FALSE(end.ok());  // closed by the server (EOF or reset), not left hanging
    REQUIRE(end.error() != errc::timed_out);
    co_await client.close();
    backend->close();
    backend_conns.cancel();
    co_await background.join();
    co_await backend_conns.join();
  }());
}
