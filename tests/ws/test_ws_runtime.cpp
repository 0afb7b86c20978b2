// WsStream, accept and connect on the real runtime: io_uring loop, TcpListener / TcpStream
// over loopback, deadlines with with_timeout, and Python websockets as the other end.
#include <catch2/catch.hpp>

#include <cstring>

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

const std::string kPython = "/usr/bin/python3";
const std::string kScripts = std::string(VTUNNEL_SOURCE_DIR) + "/tests/ws/";

std::uint8_t pattern_at(std::size_t i) { return static_cast<std::uint8_t>((i * 2654435761u) >> 13); }

// Accepts one connection, upgrades it (5 s deadline) and echoes until the peer closes.
Task<void> serve_echo(TcpListener& listener, unsigned& status, std::error_code& end) {
  Result<TcpStream> tcp = co_await listener.accept();
  REQUIRE(tcp.ok());
  Result<ws::Accepted> accepted =
      co_await with_timeout(ws::accept(std::make_unique<TcpStream>(std::move(*tcp))), 5s);
  REQUIRE(accepted.ok());
  status = accepted->http_status;
  if (!accepted->stream) co_return;
  ws::WsStream& stream = *accepted->stream;
  Bytes buf(256 * 1024);
  while (true) {
    Result<std::size_t> got = co_await stream.read_some(buf);
    if (!got) {
      end = got.error();
      break;
    }
    Result<void> sent = co_await stream.write_all(ByteSpan(buf.data(), *got));
    if (!sent) {
      end = sent.error();
      break;
    }
  }
  stream.close();
}

Task<void> write_pattern(ws::WsStream& stream, std::size_t total, std::size_t chunk) {
  Bytes buf(chunk);
  for (std::size_t off = 0; off < total;) {
    const std::size_t n = std::min(chunk, total - off);
    for (std::size_t i = 0; i < n; ++i) buf[i] = pattern_at(off + i);
    Result<void> sent = co_await stream.write_all(ByteSpan(buf.data(), n));
    REQUIRE(sent.ok());
    off += n;
  }
  Result<void> shut = co_await stream.shutdown_write();  // close frame 1000: the server's EOF
  REQUIRE(shut.ok());
}

// Writes `total` bytes while reading the echo concurrently; returns the bytes that matched.
Task<std::size_t> echo_client(std::string url, std::size_t total) {
  ws::HandshakeResult<ws::WsStream> conn = co_await ws::connect(url);
  INFO(conn.message());
  REQUIRE(conn.ok());
  Scope writers;
  writers.spawn(write_pattern(*conn.stream, total, 100 * 1000));
  Bytes buf(64 * 1024);
  std::size_t matched = 0;
  while (true) {
    Result<std::size_t> got = co_await conn.stream->read_some(buf);
    if (!got) {
      REQUIRE(got.error() == errc::eof);
      break;
    }
    for (std::size_t i = 0; i < *got; ++i) {
      if (buf[i] == pattern_at(matched)) ++matched;
    }
  }
  co_await writers.join();
  REQUIRE(conn.stream->peer_close()->code == 1000);
  co_return matched;
}

Task<std::size_t> echo_pair(TcpListener& listener, std::size_t total, unsigned& status, std::error_code& end) {
  Scope server;
  server.spawn(serve_echo(listener, status, end));
  const std::size_t matched =
      co_await echo_client("ws://127.0.0.1:" + std::to_string(listener.port()) + "/tunnel", total);
  co_await server.join();
  co_return matched;
}

}  // namespace

TEST_CASE("runtime: our client and server, 8 MiB echoed while writing and reading at once", "[runtime]") {
  Loop loop;
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(listener.ok());
  unsigned status = 0;
  std::error_code end;
  const std::size_t total = 8 * 1024 * 1024;
  REQUIRE(sync_wait(loop, echo_pair(*listener, total, status, end)) == total);
  REQUIRE(status == 101);
  REQUIRE(end == errc::eof);
}

namespace {

Task<std::string> raw_http(std::uint16_t port, std::string request) {
  Result<TcpStream> tcp = co_await TcpStream::connect(SocketAddress::loopback_v4(port));
  REQUIRE(tcp.ok());
  Result<void> sent = co_await tcp->write_all(as_bytes(request));
  REQUIRE(sent.ok());
  std::string answer;
  Bytes buf(4096);
  while (true) {
    Result<std::size_t> got = co_await tcp->read_some(buf);
    if (!got) break;
    answer += as_string(ByteSpan(buf.data(), *got));
  }
  co_return answer;
}

Task<std::string> health_pair(TcpListener& listener, unsigned& status) {
  Scope server;
  std::error_code end;
  server.spawn(serve_echo(listener, status, end));
  std::string answer = co_await raw_http(listener.port(), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  co_await server.join();
  co_return answer;
}

}  // namespace

TEST_CASE("runtime: GET /health answers 200 ok and closes", "[runtime]") {
  Loop loop;
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(listener.ok());
  unsigned status = 0;
  const std::string answer = sync_wait(loop, health_pair(*listener, status));
  REQUIRE(status == 200);
  REQUIRE(answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  REQUIRE(answer.substr(answer.size() - 6) == "\r\n\r\nok");
}

namespace {

// A client that sends half a request head and waits: accept must give up at its deadline.
Task<Result<ws::Accepted>> accept_with_deadline(TcpListener& listener) {
  Result<TcpStream> tcp = co_await listener.accept();
  REQUIRE(tcp.ok());
  co_return co_await with_timeout(ws::accept(std::make_unique<TcpStream>(std::move(*tcp))), 200ms);
}

Task<bool> slow_client_sees_close(std::uint16_t port) {
  Result<TcpStream> tcp = co_await TcpStream::connect(SocketAddress::loopback_v4(port));
  REQUIRE(tcp.ok());
  Result<void> sent = co_await tcp->write_all(as_bytes("GET / HT"));
  REQUIRE(sent.ok());
  Bytes buf(100);
  Result<std::size_t> got = co_await tcp->read_some(buf);
  co_return !got.ok();  // closed by the server, nothing answered
}

Task<std::error_code> slow_pair(TcpListener& listener) {
  Scope client;
  bool closed = false;
  client.spawn([](std::uint16_t port, bool& out) -> Task<void> {
    out = co_await slow_client_sees_close(port);
  }(listener.port(), closed));
  Result<ws::Accepted> accepted = co_await accept_with_deadline(listener);
  co_await client.join();
  REQUIRE(closed);
  co_return accepted.error();
}

// A server that accepts TCP and never answers the upgrade.
Task<void> mute_server(TcpListener& listener, Event& done) {
  Result<TcpStream> tcp = co_await listener.accept();
  REQUIRE(tcp.ok());
  Result<void> waited = co_await done.wait();
  (void)waited;
}

Task<ws::HandshakeResult<ws::WsStream>> connect_to_mute(TcpListener& listener) {
  Scope server;
  Event done;
  server.spawn(mute_server(listener, done));
  ws::WsConnectOptions options;
  options.timeout = 300ms;
  ws::HandshakeResult<ws::WsStream> conn =
      co_await ws::connect("ws://127.0.0.1:" + std::to_string(listener.port()) + "/", options);
  done.set();
  co_await server.join();
  co_return conn;
}

}  // namespace

TEST_CASE("runtime: accept gives up on a slow head at its deadline", "[runtime]") {
  Loop loop;
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(listener.ok());
  REQUIRE(sync_wait(loop, slow_pair(*listener)) == errc::timed_out);
}

TEST_CASE("runtime: connect gives up on a mute server at its deadline", "[runtime]") {
  Loop loop;
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(listener.ok());
  const auto start = Clock::now();
  ws::HandshakeResult<ws::WsStream> conn = sync_wait(loop, connect_to_mute(*listener));
  REQUIRE(Clock::now() - start < 5s);
  REQUIRE(conn.error == errc::timed_out);
  REQUIRE(conn.message().find("timed out after 300 ms") != std::string::npos);
}

TEST_CASE("runtime: python websockets client against our server", "[runtime][interop]") {
  Loop loop;
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(listener.ok());
  for (const std::string scenario : {"echo", "ping", "close"}) {
    INFO(scenario);
    Subprocess client({kPython, kScripts + "py_ws_client.py", std::to_string(listener->port()), scenario});
    unsigned status = 0;
    std::error_code end;
    sync_wait(loop, serve_echo(*listener, status, end));
    REQUIRE(status == 101);
    REQUIRE(end == errc::eof);
    REQUIRE(client.wait() == 0);
  }
}

namespace {
Task<std::size_t> fragmented_from_python(std::uint16_t port) {
  ws::HandshakeResult<ws::WsStream> conn = co_await ws::connect("ws://localhost:" + std::to_string(port) + "/fragmented");
  INFO(conn.message());
  REQUIRE(conn.ok());
  std::size_t total = 0;
  Bytes buf(128 * 1024);
  while (true) {
    Result<std::size_t> got = co_await conn.stream->read_some(buf);
    if (!got) break;
    total += *got;
  }
  REQUIRE(conn.stream->peer_close()->code == 4000);
  co_return total;
}
}  // namespace

TEST_CASE("runtime: our client (resolving localhost) against python websockets", "[runtime][interop]") {
  Loop loop;
  Subprocess server({kPython, kScripts + "py_ws_server.py"});
  const std::string ready = server.read_line();
  REQUIRE(ready.rfind("READY ", 0) == 0);
  const auto port = static_cast<std::uint16_t>(std::stoi(ready.substr(6)));
  REQUIRE(sync_wait(loop, fragmented_from_python(port)) == 12 + 3 * 1024 * 1024);
  REQUIRE(server.wait() == 0);
}
