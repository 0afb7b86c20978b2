// Interop with gorilla/websocket (the Go original's WebSocket library) on the io_uring
// runtime: its client against our server, our client against its server.
#include <catch2/catch.hpp>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "ws/error.hpp"
#include "ws/subprocess.hpp"
#include "ws/ws_connect.hpp"
#include "ws/ws_handshake.hpp"

using namespace vtunnel;
using namespace std::chrono_literals;
using vtunnel::test::Subprocess;

namespace {

const std::string kGoPeer = GO_WS_PEER;

Task<std::error_code> serve_echo_once(TcpListener& listener) {
  Result<TcpStream> tcp = co_await listener.accept();
  REQUIRE(tcp.ok());
  Result<ws::Accepted> accepted = co_await with_timeout(ws::accept(std::make_unique<TcpStream>(std::move(*tcp))), 5s);
  REQUIRE(accepted.ok());
  REQUIRE(accepted->stream);
  Bytes buf(256 * 1024);
  std::error_code end;
  while (true) {
    Result<std::size_t> got = co_await accepted->stream->read_some(buf);
    if (!got) {
      end = got.error();
      break;
    }
    Result<void> sent = co_await accepted->stream->write_all(ByteSpan(buf.data(), *got));
    if (!sent) {
      end = sent.error();
      break;
    }
  }
  co_return end;
}

Bytes pattern(std::size_t n, unsigned seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((i * 131 + seed) >> 3);
  return b;
}

Task<bool> echo_against_gorilla(std::uint16_t port) {
  ws::HandshakeResult<ws::WsStream> conn = co_await ws::connect("ws://127.0.0.1:" + std::to_string(port) + "/tunnel");
  INFO(conn.message());
  REQUIRE(conn.ok());
  ws::WsStream& stream = *conn.stream;
  for (std::size_t size : {1u, 126u, 65536u, 3u * 1024 * 1024}) {
    const Bytes data = pattern(size, static_cast<unsigned>(size));
    Result<void> sent = co_await stream.write_all(data);
    REQUIRE(sent.ok());
    Bytes back(size);
    std::size_t have = 0;
    while (have < size) {
      Result<std::size_t> got = co_await stream.read_some(MutableByteSpan(back).subspan(have));
      REQUIRE(got.ok());
      have += *got;
    }
    REQUIRE(back == data);
  }
  Result<void> closed = co_await stream.close_handshake(1000, std::string("done"));
  REQUIRE(closed.ok());
  co_return stream.peer_close() && stream.peer_close()->code == 1000;
}

}  // namespace

TEST_CASE("gorilla client -> our server: echo up to 4 MiB, ping, close 4002 echoed", "[interop][gorilla]") {
  Loop loop;
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(listener.ok());
  Subprocess client({kGoPeer, "client", std::to_string(listener->port())});
  const std::error_code end = sync_wait(loop, serve_echo_once(*listener));
  REQUIRE(end == errc::eof);  // its close frame
  REQUIRE(client.wait() == 0);
}

TEST_CASE("our client -> gorilla server: echo up to 3 MiB, close handshake", "[interop][gorilla]") {
  Loop loop;
  Subprocess server({kGoPeer, "server"});
  const std::string ready = server.read_line();
  REQUIRE(ready.rfind("READY ", 0) == 0);
  const auto port = static_cast<std::uint16_t>(std::stoi(ready.substr(6)));
  REQUIRE(sync_wait(loop, echo_against_gorilla(port)));
  REQUIRE(server.wait() == 0);
}
