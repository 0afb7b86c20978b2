// Graceful shutdown of Server and Client in one loop: stop accepting, let carried connections
// finish within the grace period.
#include <catch2/catch.hpp>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "support/tunnel_fixture.hpp"
#include "tunnel/client.hpp"
#include "tunnel/server.hpp"

using namespace vtunnel;
using namespace vtunnel::test;
using namespace std::chrono_literals;

namespace {

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

enum class Who { server, client };

Task<void> graceful(Who who) {
  EchoTunnel t(generate_private_key());
  co_await t.up();
  Server& server = t.server;
  Client& client = t.client;
  const std::uint16_t port = t.port;

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
    auto refused_ws = co_await TcpStream::connect(t.server.address);
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
  co_await t.stop();
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
    EchoTunnel t(generate_private_key());
    co_await t.up();
    auto user = co_await TcpStream::connect(SocketAddress::loopback_v4(t.port));
    REQUIRE(user.ok());
    auto first = co_await echo_once(*user, "idle after this");
    REQUIRE(first.ok());
    auto started = Clock::now();
    co_await t.server.shutdown(300ms);
    auto took = Clock::now() - started;
    REQUIRE(took >= 250ms);
    REQUIRE(took < 5s);
    std::uint8_t buf[64];
    auto end = co_await user->read_some(MutableByteSpan(buf), 10s);
    REQUIRE_FALSE(end.ok());  // closed by the server (EOF or reset), not left hanging
    REQUIRE(end.error() != errc::timed_out);
    co_await t.stop();
  }());
}
