// Interop with Python `websockets` over real loopback sockets: our server against its client,
// our client against its server. Blocking sockets stand in for the runtime's TcpStream.
#include <catch2/catch.hpp>

#include <cstring>

#include "ws/error.hpp"
#include "ws/socket_util.hpp"
#include "ws/subprocess.hpp"
#include "ws/sync_streams.hpp"
#include "ws/ws_connect.hpp"
#include "ws/ws_handshake.hpp"

using namespace vtunnel;
using namespace vtunnel::test;

namespace {

const std::string kPython = "/usr/bin/python3";
const std::string kScripts = std::string(VTUNNEL_SOURCE_DIR) + "/tests/ws/";

Bytes pattern(std::size_t n, unsigned seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((i * 131 + seed) >> 3);
  return b;
}

// Our server: accept one connection from the Python client running `scenario`, echo
// everything until the client closes, and return the client's exit status.
int serve_python_client(const std::string& scenario, std::error_code* read_end = nullptr,
                        unsigned* http_status = nullptr) {
  LoopbackListener listener;
  Subprocess client({kPython, kScripts + "py_ws_client.py", std::to_string(listener.port), scenario});
  const int fd = listener.accept();
  Result<ws::Accepted> accepted = run_sync(ws::accept(std::make_unique<BlockingFdStream>(fd)));
  REQUIRE(accepted.ok());
  if (http_status) *http_status = accepted->http_status;
  if (accepted->stream) {
    ws::WsStream& stream = *accepted->stream;
    Bytes buf(1 << 20);
    while (true) {
      Result<std::size_t> got = run_sync(stream.read_some(buf));
      if (!got) {
        if (read_end) *read_end = got.error();
        break;
      }
      REQUIRE(run_sync(stream.write_all(ByteSpan(buf.data(), *got))).ok());
    }
    stream.close();
  }
  return client.wait();
}

struct PythonServer {
  Subprocess process;
  std::uint16_t port = 0;
  explicit PythonServer(std::vector<std::string> extra = {})
      : process([&] {
          std::vector<std::string> argv{kPython, kScripts + "py_ws_server.py"};
          argv.insert(argv.end(), extra.begin(), extra.end());
          return argv;
        }()) {
    const std::string ready = process.read_line();
    REQUIRE(ready.rfind("READY ", 0) == 0);
    port = static_cast<std::uint16_t>(std::stoi(ready.substr(6)));
  }
};

ws::HandshakeResult<ws::WsStream> connect_ws(std::uint16_t port, const std::string& path) {
  auto url = ws::parse_ws_url("ws://127.0.0.1:" + std::to_string(port) + path);
  REQUIRE(url.ok());
  return run_sync(ws::client_handshake(std::make_unique<BlockingFdStream>(connect_loopback(port)), *url));
}

Bytes read_until_end(ws::WsStream& stream, std::error_code& end) {
  Bytes all;
  Bytes buf(64 * 1024);
  while (true) {
    Result<std::size_t> got = run_sync(stream.read_some(buf));
    if (!got) {
      end = got.error();
      return all;
    }
    all.insert(all.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*got));
  }
}

Bytes read_exactly(ws::WsStream& stream, std::size_t n) {
  Bytes all(n);
  std::size_t have = 0;
  while (have < n) {
    Result<std::size_t> got = run_sync(stream.read_some(MutableByteSpan(all).subspan(have)));
    REQUIRE(got.ok());
    have += *got;
  }
  return all;
}

}  // namespace

TEST_CASE("python client -> our server: echo of many sizes, fragmented and 5 MiB messages", "[interop]") {
  std::error_code end;
  REQUIRE(serve_python_client("echo", &end) == 0);
  REQUIRE(end == vtunnel::errc::eof);  // the client's close frame
}

TEST_CASE("python client -> our server: ping answered", "[interop]") {
  REQUIRE(serve_python_client("ping") == 0);
}

TEST_CASE("python client -> our server: close code echoed", "[interop]") {
  REQUIRE(serve_python_client("close") == 0);
}

TEST_CASE("python client -> our server: text refused with 1003", "[interop]") {
  std::error_code end;
  REQUIRE(serve_python_client("text", &end) == 0);
  REQUIRE(end == ws::errc::text_message);
}

TEST_CASE("python client -> our server: /health", "[interop]") {
  unsigned status = 0;
  REQUIRE(serve_python_client("health", nullptr, &status) == 0);
  REQUIRE(status == 200);
}

TEST_CASE("our client -> python server: echo, 3 MiB split into messages", "[interop]") {
  PythonServer server;
  auto conn = connect_ws(server.port, "/echo");
  REQUIRE(conn.ok());
  for (std::size_t size : {1u, 125u, 126u, 65536u, 3u * 1024 * 1024}) {
    const Bytes data = pattern(size, static_cast<unsigned>(size));
    REQUIRE(run_sync(conn.stream->write_all(data)).ok());
    REQUIRE(read_exactly(*conn.stream, size) == data);
  }
  // Several spans in one write: one message.
  const Bytes a = pattern(10, 1), b = pattern(20000, 2);
  const ByteSpan spans[] = {a, b};
  REQUIRE(run_sync(conn.stream->write_all(std::span<const ByteSpan>(spans))).ok());
  Bytes both(a.size() + b.size());
  std::copy(b.begin(), b.end(), std::copy(a.begin(), a.end(), both.begin()));
  REQUIRE(read_exactly(*conn.stream, both.size()) == both);
  REQUIRE(run_sync(conn.stream->close_handshake(1000, "done")).ok());
  REQUIRE(conn.stream->peer_close()->code == 1000);
  REQUIRE(server.process.wait() == 0);
}

TEST_CASE("our client -> python server: fragmented and large messages, close 4000", "[interop]") {
  PythonServer server;
  auto conn = connect_ws(server.port, "/fragmented");
  REQUIRE(conn.ok());
  std::error_code end;
  const Bytes got = read_until_end(*conn.stream, end);
  REQUIRE(end == vtunnel::errc::eof);
  Bytes expected = to_bytes("frag-ment-ed");
  Bytes big(3 * 1024 * 1024);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>((i * 131 + 7) >> 3);
  expected.insert(expected.end(), big.begin(), big.end());
  REQUIRE(got.size() == expected.size());
  REQUIRE(got == expected);
  REQUIRE(conn.stream->peer_close()->code == 4000);
  REQUIRE(conn.stream->peer_close()->reason == "bye");
  conn.stream->close();
  REQUIRE(server.process.wait() == 0);
}

TEST_CASE("our client -> python server: its ping gets our pong", "[interop]") {
  PythonServer server;
  auto conn = connect_ws(server.port, "/ping");
  REQUIRE(conn.ok());
  REQUIRE(read_exactly(*conn.stream, 13) == to_bytes("pong received"));
  REQUIRE(run_sync(conn.stream->close_handshake()).ok());
  REQUIRE(server.process.wait() == 0);
}

TEST_CASE("our client -> python server: server-initiated close", "[interop]") {
  PythonServer server;
  auto conn = connect_ws(server.port, "/close");
  REQUIRE(conn.ok());
  std::error_code end;
  read_until_end(*conn.stream, end);
  REQUIRE(end == vtunnel::errc::eof);
  REQUIRE(conn.stream->peer_close()->code == 4001);
  REQUIRE(conn.stream->peer_close()->reason == "server says bye");
  conn.stream->close();
  REQUIRE(server.process.wait() == 0);
}

TEST_CASE("our client -> python server: a refused handshake reads clearly", "[interop]") {
  PythonServer server;
  auto conn = connect_ws(server.port, "/missing");
  REQUIRE_FALSE(conn.ok());
  REQUIRE(conn.error == ws::errc::unexpected_status);
  REQUIRE(conn.message() == "server answered 404 Not Found instead of 101 Switching Protocols");
}

TEST_CASE("connect(): ws:// URL, dial, upgrade, echo", "[interop][connect]") {
  PythonServer server;
  ws::WsConnectOptions options;
  options.timeout = {};  // no Loop here: blocking sockets
  options.headers = {{"X-Tunnel-Client", "vtunnel-test"}};
  auto conn = run_sync(ws::connect("ws://127.0.0.1:" + std::to_string(server.port) + "/echo", options,
                                   blocking_loopback_dial));
  INFO(conn.message());
  REQUIRE(conn.ok());
  const Bytes data = pattern(1000, 3);
  REQUIRE(run_sync(conn.stream->write_all(data)).ok());
  REQUIRE(read_exactly(*conn.stream, data.size()) == data);
  REQUIRE(run_sync(conn.stream->close_handshake()).ok());
  REQUIRE(server.process.wait() == 0);
}

TEST_CASE("connect(): bad URL and refused connection read clearly", "[connect]") {
  ws::WsConnectOptions no_deadline;
  no_deadline.timeout = {};  // no Loop here: blocking sockets
  auto bad = run_sync(ws::connect("http://example.com/", no_deadline, blocking_loopback_dial));
  REQUIRE(bad.error == ws::errc::bad_url);
  REQUIRE(bad.message() == "not a valid ws:// or wss:// URL: http://example.com/");
  LoopbackListener closed_port_finder;
  const std::uint16_t port = closed_port_finder.port;
  ::close(closed_port_finder.fd);
  closed_port_finder.fd = ::socket(AF_INET, SOCK_STREAM, 0);  // keep the destructor harmless
  auto refused = run_sync(ws::connect("ws://127.0.0.1:" + std::to_string(port) + "/", no_deadline, blocking_loopback_dial));
  REQUIRE(refused.error == std::errc::connection_refused);
  REQUIRE(refused.message().rfind("cannot connect to 127.0.0.1:" + std::to_string(port) + ": ", 0) == 0);
}
