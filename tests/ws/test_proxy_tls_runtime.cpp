// On the real runtime over loopback: ws::connect through a tiny CONNECT proxy written here
// (ws:// and wss://, Basic auth, 407, silent and oversized answers), and TlsServerStream (our
// wss:// server side) against our TLS client, with a CA made by openssl.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/loop.hpp"
#include "core/relay.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "support/fd_check.hpp"
#include "ws/error.hpp"
#include "ws/tls_server_stream.hpp"
#include "ws/ws_connect.hpp"
#include "ws/ws_handshake.hpp"

using namespace vtunnel;
using namespace std::chrono_literals;

namespace {

const std::string kScripts = std::string(VTUNNEL_SOURCE_DIR) + "/tests/ws/";

struct TestPki {
  std::string dir;
  TestPki() {
    dir = (std::filesystem::temp_directory_path() / "vtunnel-proxy-pki-XXXXXX").string();
    if (!::mkdtemp(dir.data())) throw std::runtime_error("mkdtemp failed");
    const std::string cmd = "sh " + kScripts + "make_test_certs.sh " + dir;
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("making test certificates failed");
  }
  ~TestPki() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

const std::string& pki() {
  static const TestPki p;
  return p.dir;
}

struct TrustOnly {
  explicit TrustOnly(const std::string& file) {
    ::setenv("SSL_CERT_FILE", file.c_str(), 1);
    ::unsetenv("SSL_CERT_DIR");
  }
  ~TrustOnly() { ::unsetenv("SSL_CERT_FILE"); }
};

std::shared_ptr<const ws::TlsServerCredentials> credentials(const std::string& name) {
  std::string why;
  auto c = ws::TlsServerCredentials::load(pki() + "/" + name + ".pem", pki() + "/" + name + ".key", &why);
  INFO(why);
  REQUIRE(c.ok());
  return *c;
}

enum class ProxyMode { relay, require_auth, silent, oversized, extra_bytes };

struct ProxyLog {
  std::string request;  // the head the proxy received
  unsigned answered = 0;
};

// A CONNECT proxy for one connection: reads the head, answers according to `mode`, and on
// success relays to the requested 127.0.0.1 port.
Task<void> tiny_proxy(TcpListener& listener, ProxyMode mode, ProxyLog& log) {
  Result<TcpStream> client = co_await listener.accept();
  REQUIRE(client.ok());
  Bytes buf(4096);
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
    Result<std::size_t> got = co_await client->read_some(buf);
    if (!got) co_return;
    head.append(reinterpret_cast<const char*>(buf.data()), *got);
  }
  log.request = head;
  std::string answer;
  if (mode == ProxyMode::silent) {
    Result<std::size_t> got = co_await client->read_some(buf);  // until the client gives up
    (void)got;
    co_return;
  }
  if (mode == ProxyMode::oversized) {
    answer = "HTTP/1.1 200 OK\r\n";
    while (answer.size() < 9000) answer += "X-Padding: " + std::string(100, 'p') + "\r\n";
    Result<void> sent = co_await client->write_all(as_bytes(answer));
    (void)sent;
    Result<std::size_t> got = co_await client->read_some(buf);
    (void)got;
    co_return;
  }
  if (mode == ProxyMode::require_auth && head.find("\r\nProxy-Authorization: Basic dXNlcjpwQHNz\r\n") == std::string::npos) {
    log.answered = 407;
    answer = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n";
    Result<void> sent = co_await client->write_all(as_bytes(answer));
    (void)sent;
    co_return;
  }
  const std::size_t colon = head.find(':', 8);
  const auto port = static_cast<std::uint16_t>(std::stoi(head.substr(colon + 1)));
  Result<TcpStream> upstream = co_await TcpStream::connect(SocketAddress::loopback_v4(port));
  REQUIRE(upstream.ok());
  log.answered = 200;
  answer = "HTTP/1.1 200 Connection established\r\nProxy-Agent: tiny\r\n\r\n";
  Result<void> sent = co_await client->write_all(as_bytes(answer));
  REQUIRE(sent.ok());
  co_await relay(*client, *upstream);
}

// Accepts one connection, TLS first when `tls` is set, upgrades it and echoes until EOF.
Task<void> ws_echo_server(TcpListener& listener, std::shared_ptr<const ws::TlsServerCredentials> tls,
                          std::string& negotiated) {
  Result<TcpStream> tcp = co_await listener.accept();
  REQUIRE(tcp.ok());
  std::unique_ptr<Stream> transport = std::make_unique<TcpStream>(std::move(*tcp));
  if (tls) {
    auto secured = co_await ws::TlsServerStream::handshake(std::move(transport), tls);
    INFO(secured.message());
    REQUIRE(secured.ok());
    negotiated = secured.stream->protocol_description();
    transport = std::move(secured.stream);
  }
  Result<ws::Accepted> accepted = co_await with_timeout(ws::accept(std::move(transport)), 10s);
  REQUIRE(accepted.ok());
  REQUIRE(accepted->stream);
  Bytes buf(64 * 1024);
  while (true) {
    Result<std::size_t> got = co_await accepted->stream->read_some(buf);
    if (!got) break;
    Result<void> sent = co_await accepted->stream->write_all(ByteSpan(buf.data(), *got));
    if (!sent) break;
  }
  accepted->stream->close();
}

struct ClientOutcome {
  std::error_code error;
  std::string message;
  std::string echoed;
};

Task<ClientOutcome> connect_and_echo(std::string url, ws::WsConnectOptions options, std::string payload) {
  ClientOutcome out;
  ws::HandshakeResult<ws::WsStream> conn = co_await ws::connect(std::move(url), std::move(options));
  if (!conn.ok()) {
    out.error = conn.error;
    out.message = conn.message();
    co_return out;
  }
  Result<void> sent = co_await conn.stream->write_all(as_bytes(payload));
  REQUIRE(sent.ok());
  Bytes buf(4096);
  while (out.echoed.size() < payload.size()) {
    Result<std::size_t> got = co_await conn.stream->read_some(buf);
    if (!got) break;
    out.echoed.append(reinterpret_cast<const char*>(buf.data()), *got);
  }
  Result<void> closed = co_await conn.stream->close_handshake();
  (void)closed;
  co_return out;
}

Task<ClientOutcome> through_proxy(TcpListener& proxy_listener, ProxyMode mode, ProxyLog& log,
                                  TcpListener* server_listener, std::shared_ptr<const ws::TlsServerCredentials> tls,
                                  std::string url, ws::WsConnectOptions options, std::string* negotiated) {
  Scope peers;
  peers.spawn(tiny_proxy(proxy_listener, mode, log));
  if (server_listener) peers.spawn(ws_echo_server(*server_listener, tls, *negotiated));
  ClientOutcome out = co_await connect_and_echo(std::move(url), std::move(options), "through the proxy");
  if (!server_listener || out.error) peers.cancel();
  co_await peers.join();
  co_return out;
}

ws::ProxyUrl proxy_at(std::uint16_t port, const char* userinfo = "") {
  return ws::parse_proxy_url("http://" + std::string(userinfo) + "127.0.0.1:" + std::to_string(port)).value();
}

}  // namespace

TEST_CASE("proxy: ws:// through CONNECT, with Basic credentials", "[proxy][runtime]") {
  Loop loop;
  auto proxy = TcpListener::bind(SocketAddress::loopback_v4(0));
  auto server = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(proxy.ok());
  REQUIRE(server.ok());
  ws::WsConnectOptions options;
  options.timeout = 20s;
  options.proxy = proxy_at(proxy->port(), "user:p%40ss@");  // password "p@ss"
  ProxyLog log;
  std::string negotiated;
  const std::string url = "ws://127.0.0.1:" + std::to_string(server->port()) + "/t";
  ClientOutcome out = sync_wait(loop, through_proxy(*proxy, ProxyMode::require_auth, log, &*server, nullptr, url,
                                                    options, &negotiated));
  INFO(out.message);
  REQUIRE_FALSE(out.error);
  CHECK(out.echoed == "through the proxy");
  CHECK(log.answered == 200);
  const std::string authority = "127.0.0.1:" + std::to_string(server->port());
  CHECK(log.request.rfind("CONNECT " + authority + " HTTP/1.1\r\n", 0) == 0);
  CHECK(log.request.find("\r\nHost: " + authority + "\r\n") != std::string::npos);
}

TEST_CASE("proxy: wss:// through CONNECT to our TLS server stream, certificate verified", "[proxy][tls][runtime]") {
  TrustOnly trust(pki() + "/ca.pem");
  Loop loop;
  auto proxy = TcpListener::bind(SocketAddress::loopback_v4(0));
  auto server = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(proxy.ok());
  REQUIRE(server.ok());
  ws::WsConnectOptions options;
  options.timeout = 20s;
  options.proxy = proxy_at(proxy->port());
  ProxyLog log;
  std::string negotiated;
  const std::string url = "wss://localhost:" + std::to_string(server->port()) + "/t";
  ClientOutcome out = sync_wait(
      loop, through_proxy(*proxy, ProxyMode::relay, log, &*server, credentials("good"), url, options, &negotiated));
  INFO(out.message);
  REQUIRE_FALSE(out.error);
  CHECK(out.echoed == "through the proxy");
  CHECK(log.request.rfind("CONNECT localhost:" + std::to_string(server->port()) + " HTTP/1.1\r\n", 0) == 0);
  CHECK(log.request.find("Proxy-Authorization") == std::string::npos);
  CHECK_THAT(negotiated, Catch::StartsWith("TLS v1.2"));
  CHECK_THAT(negotiated, Catch::Contains("ECDHE"));
  CHECK((negotiated.find("GCM") != std::string::npos || negotiated.find("CHACHA20") != std::string::npos));
}

TEST_CASE("proxy: 407, silence and an oversized answer are clear errors", "[proxy][runtime]") {
  Loop loop;
  auto proxy = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(proxy.ok());
  ws::WsConnectOptions options;
  options.timeout = 20s;
  options.proxy = proxy_at(proxy->port());
  ProxyLog log;
  std::string negotiated;
  const std::string url = "ws://127.0.0.1:9/t";  // never dialled: the proxy refuses first

  SECTION("407 without credentials") {
    ClientOutcome out = sync_wait(
        loop, through_proxy(*proxy, ProxyMode::require_auth, log, nullptr, nullptr, url, options, &negotiated));
    CHECK(out.error == ws::errc::proxy_refused);
    CHECK_THAT(out.message, Catch::Contains("\"HTTP/1.1 407 Proxy Authentication Required\""));
    CHECK_THAT(out.message, Catch::Contains("127.0.0.1:" + std::to_string(proxy->port())));
  }
  SECTION("407 with wrong credentials; the password is not in the message") {
    options.proxy = proxy_at(proxy->port(), "user:wrong-secret@");
    ClientOutcome out = sync_wait(
        loop, through_proxy(*proxy, ProxyMode::require_auth, log, nullptr, nullptr, url, options, &negotiated));
    CHECK(out.error == ws::errc::proxy_refused);
    CHECK_THAT(out.message, Catch::Contains("credentials rejected"));
    CHECK(out.message.find("wrong-secret") == std::string::npos);
    CHECK(log.request.find("Proxy-Authorization: Basic dXNlcjp3cm9uZy1zZWNyZXQ=") != std::string::npos);
  }
  SECTION("a proxy that never answers hits the CONNECT deadline") {
    options.proxy_answer_timeout = 300ms;
    ClientOutcome out =
        sync_wait(loop, through_proxy(*proxy, ProxyMode::silent, log, nullptr, nullptr, url, options, &negotiated));
    CHECK(out.error == ws::errc::proxy_timeout);
    CHECK_THAT(out.message, Catch::Contains("did not answer CONNECT within 300 ms"));
  }
  SECTION("an answer head above 8 KiB") {
    ClientOutcome out = sync_wait(
        loop, through_proxy(*proxy, ProxyMode::oversized, log, nullptr, nullptr, url, options, &negotiated));
    CHECK(out.error == ws::errc::proxy_bad_response);
    CHECK_THAT(out.message, Catch::Contains("exceeds 8192 bytes"));
  }
  SECTION("no proxy listening") {
    const std::uint16_t dead = proxy->port();
    proxy->close();
    options.proxy = proxy_at(dead);
    ClientOutcome out = sync_wait(loop, connect_and_echo(url, options, "x"));
    CHECK(out.error);
    CHECK_THAT(out.message, Catch::StartsWith("cannot connect to proxy 127.0.0.1:" + std::to_string(dead)));
  }
}

namespace {

Task<ws::HandshakeResult<ws::TlsServerStream>> accept_tls(TcpListener& listener,
                                                          std::shared_ptr<const ws::TlsServerCredentials> tls) {
  Result<TcpStream> tcp = co_await listener.accept();
  REQUIRE(tcp.ok());
  co_return co_await ws::TlsServerStream::handshake(std::make_unique<TcpStream>(std::move(*tcp)), std::move(tls));
}

Task<std::string> send_raw_and_read(std::uint16_t port, std::string bytes) {
  Result<TcpStream> tcp = co_await TcpStream::connect(SocketAddress::loopback_v4(port));
  REQUIRE(tcp.ok());
  Result<void> sent = co_await tcp->write_all(as_bytes(bytes));
  REQUIRE(sent.ok());
  std::string answer;
  Bytes buf(4096);
  while (true) {
    Result<std::size_t> got = co_await with_timeout(tcp->read_some(buf), 10s);
    if (!got) break;
    answer.append(reinterpret_cast<const char*>(buf.data()), *got);
  }
  co_return answer;
}

Task<ws::HandshakeResult<ws::TlsServerStream>> raw_against_tls(TcpListener& listener,
                                                               std::shared_ptr<const ws::TlsServerCredentials> tls,
                                                               std::string bytes, std::string& answer) {
  Scope client;
  client.spawn([](std::uint16_t port, std::string b, std::string& out) -> Task<void> {
    out = co_await send_raw_and_read(port, std::move(b));
  }(listener.port(), std::move(bytes), answer));
  auto result = co_await accept_tls(listener, std::move(tls));
  if (result.stream) result.stream->close();
  co_await client.join();
  co_return result;
}

}  // namespace

TEST_CASE("TLS server: plain HTTP and garbage end the handshake with a clear reason", "[tls][runtime]") {
  Loop loop;
  auto listener = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(listener.ok());
  std::string answer;
  auto r = sync_wait(loop, raw_against_tls(*listener, credentials("good"), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", answer));
  const int fds_before = test::open_fd_count();  // after Botan's RNG opened /dev/urandom
  CHECK_FALSE(r.ok());
  CHECK(r.error == ws::errc::tls_handshake_failed);
  CHECK_THAT(r.detail, Catch::Contains("plain HTTP"));
  CHECK(answer.empty());

  r = sync_wait(loop, raw_against_tls(*listener, credentials("good"), std::string(64, '\x00'), answer));
  CHECK(r.error == ws::errc::tls_handshake_failed);
  CHECK_THAT(r.detail, Catch::Contains("not TLS"));

  // A handshake record with a garbage body: Botan's own complaint, still only this connection.
  // A handshake record holding a ClientHello whose body is garbage.
  r = sync_wait(loop, raw_against_tls(*listener, credentials("good"),
                                      std::string("\x16\x03\x01\x00\x08\x01\x00\x00\x04" "abcd", 13), answer));
  CHECK(r.error == ws::errc::tls_handshake_failed);
  CHECK_THAT(r.detail, Catch::StartsWith("TLS handshake failed"));
  CHECK(test::open_fd_count() == fds_before);
}

TEST_CASE("TLS server credentials: load errors say what is wrong", "[tls]") {
  std::string why;
  auto c = ws::TlsServerCredentials::load(pki() + "/missing.pem", pki() + "/good.key", &why);
  CHECK(c.error() == ws::errc::tls_credentials);
  CHECK_THAT(why, Catch::Contains("missing.pem"));

  c = ws::TlsServerCredentials::load(pki() + "/good.pem", pki() + "/wrong.key", &why);
  CHECK(c.error() == ws::errc::tls_credentials);
  CHECK_THAT(why, Catch::Contains("does not belong to the certificate"));

  c = ws::TlsServerCredentials::load(pki() + "/good.key", pki() + "/good.key", &why);  // a key as cert
  CHECK(c.error() == ws::errc::tls_credentials);
  CHECK_THAT(why, Catch::Contains("no PEM certificate"));

  c = ws::TlsServerCredentials::load(pki() + "/good.pem", pki() + "/good.pem", &why);  // a cert as key
  CHECK(c.error() == ws::errc::tls_credentials);
  CHECK_THAT(why, Catch::Contains("PKCS#8"));

  c = ws::TlsServerCredentials::load(pki() + "/good.pem", pki() + "/good.key", &why);
  REQUIRE(c.ok());
  CHECK_THAT((*c)->description(), Catch::StartsWith("CN=good (SHA-256 "));
}
