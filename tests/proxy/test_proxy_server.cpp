// ProxyServer over real loopback sockets, driven by raw clients and origins in the same loop,
// so every byte on both sides of the proxy can be checked.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "proxy/proxy_server.hpp"
#include "support/fd_check.hpp"

using namespace vtunnel;
using namespace vtunnel::proxy;
using namespace std::chrono_literals;

namespace {

constexpr Duration kTestReadTimeout = 5s;  // no test waits longer than this for a byte

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

// True once `in` holds a whole request: head plus a Content-Length or chunked body.
bool request_complete(const std::string& in) {
  auto end = in.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string head = lower(in.substr(0, end + 4));
  std::string body = in.substr(end + 4);
  if (auto p = head.find("\r\ncontent-length: "); p != std::string::npos) {
    return body.size() >= std::stoull(head.substr(p + 18));
  }
  if (head.find("transfer-encoding: chunked") != std::string::npos) {
    bool last = body.rfind("0\r\n", 0) == 0 || body.find("\r\n0\r\n") != std::string::npos;
    return last && body.size() >= 4 && body.substr(body.size() - 4) == "\r\n\r\n";
  }
  return true;
}

struct OriginRecord {
  std::string received;
  int connections = 0;
};

// Serves one connection: reads one request, answers `response`, closes.
Task<void> origin_once(TcpListener& l, OriginRecord& rec, std::string response) {
  auto c = co_await l.accept();
  if (!c) co_return;
  ++rec.connections;
  std::vector<std::uint8_t> buf(64 * 1024);
  std::string in;
  while (!request_complete(in)) {
    auto n = co_await c->read_some(buf, kTestReadTimeout);
    if (!n) break;
    in.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  rec.received = in;
  auto w = co_await c->write_all(as_bytes(response));
  (void)w;
}

Task<void> echo_once(TcpListener& l) {
  auto c = co_await l.accept();
  if (!c) co_return;
  std::vector<std::uint8_t> buf(16 * 1024);
  for (;;) {
    auto n = co_await c->read_some(buf, kTestReadTimeout);
    if (!n) break;
    auto w = co_await c->write_all(ByteSpan(buf.data(), *n));
    if (!w) break;
  }
  (void)co_await c->shutdown_write();
}

Task<std::string> read_to_eof(TcpStream& s) {
  std::string out;
  std::vector<std::uint8_t> buf(16 * 1024);
  for (;;) {
    auto n = co_await s.read_some(buf, kTestReadTimeout);
    if (!n) break;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  co_return out;
}

// Reads until `out` holds at least `want` bytes (or EOF/timeout).
Task<std::string> read_at_least(TcpStream& s, std::size_t want) {
  std::string out;
  std::vector<std::uint8_t> buf(16 * 1024);
  while (out.size() < want) {
    auto n = co_await s.read_some(buf, kTestReadTimeout);
    if (!n) break;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  co_return out;
}

Task<TcpStream> connect_to(std::uint16_t port) {
  auto c = co_await TcpStream::connect(SocketAddress::loopback_v4(port));
  REQUIRE(c.ok());
  co_return std::move(*c);
}

// Sends `request` (in pieces of `piece` bytes when nonzero) and returns everything read back.
// With `half_close`, the client shuts its write side after the request.
Task<std::string> roundtrip(std::uint16_t port, std::string request, std::size_t piece = 0,
                            bool half_close = false) {
  TcpStream c = co_await connect_to(port);
  if (piece == 0) piece = request.size();
  for (std::size_t off = 0; off < request.size(); off += piece) {
    auto w = co_await c.write_all(as_bytes(std::string_view(request).substr(off, piece)));
    if (!w) break;
    auto s = co_await sleep_for(5ms);
    (void)s;
  }
  if (half_close) {
    auto sh = co_await c.shutdown_write();
    REQUIRE(sh.ok());
  }
  co_return co_await read_to_eof(c);
}

Result<TcpListener> listen_any() { return TcpListener::bind(SocketAddress::loopback_v4(0)); }

std::uint16_t closed_port() {
  auto l = listen_any();
  REQUIRE(l.ok());
  return l->port();  // closed when l goes away
}

// Runs `body(proxy)` with a started ProxyServer and closes it afterwards; checks fds.
template <class Body>
void with_proxy(ProxyOptions options, Body body) {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto run = [](ProxyOptions opts, Body b) -> Task<void> {
      ProxyServer proxy(opts);
      auto started = proxy.start(SocketAddress::loopback_v4(0));
      REQUIRE(started.ok());
      REQUIRE(proxy.port() != 0);
      co_await b(proxy);
      co_await proxy.close();
      REQUIRE(proxy.active_connections() == 0);
    };
    sync_wait(loop, run(options, std::move(body)));
  }
  REQUIRE(test::open_fd_count() == fds);
}

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

}  // namespace

TEST_CASE("proxy: CONNECT to an unmapped loopback address goes direct; early bytes forwarded", "[proxy]") {
  with_proxy({}, [](ProxyServer& proxy) -> Task<void> {
    auto l = listen_any();
    REQUIRE(l.ok());
    Scope origin;
    origin.spawn(echo_once(*l));
    TcpStream c = co_await connect_to(proxy.port());
    std::string req = "CONNECT 127.0.0.1:" + std::to_string(l->port()) + " HTTP/1.1\r\nHost: x\r\n\r\nEARLY";
    auto w = co_await c.write_all(as_bytes(req));
    REQUIRE(w.ok());
    std::string established = "HTTP/1.1 200 Connection Established\r\n\r\n";
    std::string got = co_await read_at_least(c, established.size() + 5);
    REQUIRE(got == established + "EARLY");
    auto w2 = co_await c.write_all(as_bytes("more"));
    REQUIRE(w2.ok());
    auto sh = co_await c.shutdown_write();  // half-close travels through; the echo answers
    REQUIRE(sh.ok());
    std::string rest = co_await read_to_eof(c);
    REQUIRE(rest == "more");
    co_await origin.join();
  });
}

TEST_CASE("proxy: CONNECT to a mapped domain goes to the mapped port", "[proxy]") {
  with_proxy({}, [](ProxyServer& proxy) -> Task<void> {
    auto l = listen_any();
    REQUIRE(l.ok());
    REQUIRE(proxy.domains().set("App.Test:443", "127.0.0.1:" + std::to_string(l->port())).ok());
    Scope origin;
    origin.spawn(echo_once(*l));
    std::string got = co_await roundtrip(proxy.port(), "CONNECT app.test:443 HTTP/1.1\r\n\r\nping", 0, true);
    REQUIRE(got == "HTTP/1.1 200 Connection Established\r\n\r\nping");
    co_await origin.join();
    // Removed mapping: app.test does not resolve, so the dial fails.
    REQUIRE(proxy.domains().remove("app.test"));
  });
}

TEST_CASE("proxy: CONNECT to an IPv6 literal; mappings through the server's API", "[proxy]") {
  with_proxy({}, [](ProxyServer& proxy) -> Task<void> {
    auto v6 = SocketAddress::parse("::1", 0);
    REQUIRE(v6.ok());
    auto l = TcpListener::bind(*v6);
    if (!l) {
      WARN("IPv6 loopback unavailable: " << l.error().message());
      co_return;
    }
    Scope origin;
    origin.spawn(echo_once(*l));
    std::string p = std::to_string(l->port());
    std::string got = co_await roundtrip(proxy.port(), "CONNECT [::1]:" + p + " HTTP/1.1\r\n\r\nsix", 0, true);
    REQUIRE(got == "HTTP/1.1 200 Connection Established\r\n\r\nsix");
    co_await origin.join();

    origin.spawn(echo_once(*l));
    REQUIRE(proxy.set_domain_mapping("six.test:443", "[::1]:" + p).ok());
    REQUIRE_FALSE(proxy.set_domain_mapping("bad name:443", "[::1]:" + p).ok());
    std::string got2 = co_await roundtrip(proxy.port(), "CONNECT SIX.test HTTP/1.1\r\n\r\nmapped", 0, true);
    REQUIRE(got2 == "HTTP/1.1 200 Connection Established\r\n\r\nmapped");
    co_await origin.join();
    proxy.remove_domain_mapping("six.test:443");
    REQUIRE(proxy.domains().size() == 0);
  });
}

TEST_CASE("proxy: CONNECT failures get exactly 502 Bad Gateway", "[proxy]") {
  with_proxy({}, [](ProxyServer& proxy) -> Task<void> {
    std::uint16_t dead = closed_port();
    std::string got = co_await roundtrip(proxy.port(), "CONNECT 127.0.0.1:" + std::to_string(dead) + " HTTP/1.1\r\n\r\n");
    REQUIRE(got == "HTTP/1.1 502 Bad Gateway\r\n\r\n");
    // A mapping to a dead port fails the same way.
    REQUIRE(proxy.domains().set("dead.test:443", "127.0.0.1:" + std::to_string(dead)).ok());
    std::string got2 = co_await roundtrip(proxy.port(), "CONNECT dead.test:443 HTTP/1.1\r\n\r\n");
    REQUIRE(got2 == "HTTP/1.1 502 Bad Gateway\r\n\r\n");
  });
}

TEST_CASE("proxy: plain GET, mapped, rewritten to origin-form without hop-by-hop fields", "[proxy]") {
  with_proxy({}, [](ProxyServer& proxy) -> Task<void> {
    auto l = listen_any();
    REQUIRE(l.ok());
    REQUIRE(proxy.domains().set("web.test:80", "127.0.0.1:" + std::to_string(l->port())).ok());
    OriginRecord rec;
    Scope origin;
    origin.spawn(origin_once(*l, rec, kOk));
    std::string got = co_await roundtrip(proxy.port(),
        "GET http://web.test/path?q=1 HTTP/1.1\r\n"
        "Host: web.test\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "Proxy-Authorization: Basic eDp5\r\n"
        "Connection: X-Secret\r\n"
        "X-Secret: hop\r\n"
        "Keep-Alive: 300\r\n"
        "TE: trailers\r\n"
        "Upgrade: websocket\r\n"
        "X-End-To-End: yes\r\n\r\n");
    co_await origin.join();
    REQUIRE(got == kOk);
    const std::string& h = rec.received;
    REQUIRE(h.rfind("GET /path?q=1 HTTP/1.1\r\n", 0) == 0);
    REQUIRE(h.find("Host: web.test\r\n") != std::string::npos);
    REQUIRE(h.find("X-End-To-End: yes\r\n") != std::string::npos);
    REQUIRE(h.find("Connection: close\r\n") != std::string::npos);
    for (auto gone : {"Proxy-", "X-Secret", "Keep-Alive", "TE:", "Upgrade", "keep-alive"}) {
      INFO(gone);
      REQUIRE(h.find(gone) == std::string::npos);
    }
  });
}

TEST_CASE("proxy: plain GET unmapped goes direct; refused upstream is 502", "[proxy]") {
  with_proxy({}, [](ProxyServer& proxy) -> Task<void> {
    auto l = listen_any();
    REQUIRE(l.ok());
    OriginRecord rec;
    Scope origin;
    origin.spawn(origin_once(*l, rec, kOk));
    std::string port = std::to_string(l->port());
    std::string got = co_await roundtrip(proxy.port(), "GET http://127.0.0.1:" + port + "/ HTTP/1.1\r\n\r\n");
    co_await origin.join();
    REQUIRE(got == kOk);
    REQUIRE(rec.received == "GET / HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nConnection: close\r\n\r\n");
    std::string bad = co_await roundtrip(proxy.port(), "GET http://127.0.0.1:" + std::to_string(closed_port()) + "/ HTTP/1.1\r\n\r\n");
    REQUIRE(bad == "HTTP/1.1 502 Bad Gateway\r\n\r\n");
  });
}

TEST_CASE("proxy: request bodies arrive intact (Content-Length and chunked, split writes)", "[proxy]") {
  with_proxy({}, [](ProxyServer& proxy) -> Task<void> {
    std::string payload;
    for (int i = 0; i < 100000; ++i) payload.push_back(char('a' + i % 26));
    for (int chunked = 0; chunked < 2; ++chunked) {
      auto l = listen_any();
      REQUIRE(l.ok());
      OriginRecord rec;
      Scope origin;
      origin.spawn(origin_once(*l, rec, kOk));
      std::string head = "POST http://127.0.0.1:" + std::to_string(l->port()) + "/upload HTTP/1.1\r\n";
      std::string body;
      if (chunked) {
        head += "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n";
        body = "10;name=v\r\n" + payload.substr(0, 16) + "\r\n" + fmt::format("{:x}\r\n", payload.size() - 16) +
               payload.substr(16) + "\r\n0\r\nX-Sum: 42\r\n\r\n";
      } else {
        head += "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n";
        body = payload;
      }
      // Bytes after the body are not part of the request and must not reach the origin.
      std::string got = co_await roundtrip(proxy.port(), head + body + "GET /pipelined", 7001);
      co_await origin.join();
      INFO("chunked " << chunked);
      REQUIRE(got == kOk);
      auto end = rec.received.find("\r\n\r\n");
      REQUIRE(end != std::string::npos);
      std::string fwd_head = rec.received.substr(0, end + 4);
      REQUIRE(rec.received.substr(end + 4) == body);
      if (chunked) {
        REQUIRE(fwd_head.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
        REQUIRE(fwd_head.find("Trailer") == std::string::npos);
      } else {
        REQUIRE(fwd_head.find("Content-Length: 100000\r\n") != std::string::npos);
      }
    }
  });
}

TEST_CASE("proxy: malformed, hostless, oversized and smuggling heads get 4xx and a close", "[proxy]") {
  with_proxy({}, [](ProxyServer& proxy) -> Task<void> {
    const std::string k400 = "HTTP/1.1 400 Bad Request\r\n\r\n";
    std::string r1 = co_await roundtrip(proxy.port(), "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    REQUIRE(r1 == k400);
    std::string r2 = co_await roundtrip(proxy.port(), std::string("\x16\x03\x01\x00\xff garbage\x00\r\n\r\n", 17));
    REQUIRE(r2 == k400);
    std::string r3 = co_await roundtrip(proxy.port(), "POST http://127.0.0.1:1/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    REQUIRE(r3 == k400);
    std::string r4 = co_await roundtrip(proxy.port(), "POST http://127.0.0.1:1/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
    REQUIRE(r4 == "HTTP/1.1 501 Not Implemented\r\n\r\n");
    // 20 KiB of header: refused once 8 KiB are in, and the client still reads the answer.
    std::string big = "GET http://127.0.0.1:1/ HTTP/1.1\r\nX-Big: " + std::string(20 * 1024, 'x') + "\r\n\r\n";
    std::string r5 = co_await roundtrip(proxy.port(), big, 1000);
    REQUIRE(r5 == "HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n");
    // The server is still fine.
    std::string r6 = co_await roundtrip(proxy.port(), "CONNECT 127.0.0.1:" + std::to_string(closed_port()) + " HTTP/1.1\r\n\r\n");
    REQUIRE(r6 == "HTTP/1.1 502 Bad Gateway\r\n\r\n");
  });
}

TEST_CASE("proxy: a slow head is cut off at the head deadline", "[proxy]") {
  ProxyOptions options;
  options.head_timeout = 400ms;
  with_proxy(options, [](ProxyServer& proxy) -> Task<void> {
    TcpStream c = co_await connect_to(proxy.port());
    auto start = Clock::now();
    // Slowloris: one byte every 50 ms keeps every single read short but the head never ends.
    std::string drip = "GET http://127.0.0.1:1/ HTTP/1.1\r\nX-Slow: ";
    std::size_t sent = 0;
    bool write_failed = false;
    while (Clock::now() - start < 1500ms) {
      auto w = co_await c.write_all(as_bytes(std::string_view(drip).substr(sent % drip.size(), 1)));
      if (!w) {
        write_failed = true;
        break;
      }
      ++sent;
      auto s = co_await sleep_for(50ms);
      (void)s;
      if (proxy.active_connections() == 0) break;
    }
    auto elapsed = Clock::now() - start;
    std::string got = co_await read_to_eof(c);
    (void)write_failed;
    REQUIRE(got == "HTTP/1.1 408 Request Timeout\r\n\r\n");
    REQUIRE(elapsed >= 400ms);
    REQUIRE(elapsed < 2500ms);  // deadline + the refusal drain, with slack for slow machines
    REQUIRE(sent > 4);
  });
}

TEST_CASE("proxy: upstream that closes without answering gives 502", "[proxy]") {
  with_proxy({}, [](ProxyServer& proxy) -> Task<void> {
    auto l = listen_any();
    REQUIRE(l.ok());
    Scope origin;
    origin.spawn([](TcpListener& lst) -> Task<void> {
      auto c = co_await lst.accept();
      (void)c;  // closed at once
    }(*l));
    std::string got = co_await roundtrip(proxy.port(), "GET http://127.0.0.1:" + std::to_string(l->port()) + "/ HTTP/1.1\r\n\r\n");
    co_await origin.join();
    REQUIRE(got == "HTTP/1.1 502 Bad Gateway\r\n\r\n");
  });
}

TEST_CASE("proxy: idle timeout ends a silent tunnel and a silent plain request (502)", "[proxy]") {
  ProxyOptions options;
  options.idle_timeout = 300ms;
  with_proxy(options, [](ProxyServer& proxy) -> Task<void> {
    auto l = listen_any();
    REQUIRE(l.ok());
    // An upstream that accepts and then says nothing, holding each connection for 3 s.
    Scope silent;
    auto hold = [](TcpListener& lst) -> Task<void> {
      auto c = co_await lst.accept();
      if (!c) co_return;
      auto s = co_await sleep_for(3s);
      (void)s;
    };
    silent.spawn(hold(*l));
    silent.spawn(hold(*l));
    std::string port = std::to_string(l->port());
    auto start = Clock::now();
    std::string tunnel = co_await roundtrip(proxy.port(), "CONNECT 127.0.0.1:" + port + " HTTP/1.1\r\n\r\n");
    auto tunnel_time = Clock::now() - start;
    REQUIRE(tunnel == "HTTP/1.1 200 Connection Established\r\n\r\n");
    REQUIRE(tunnel_time >= 300ms);
    REQUIRE(tunnel_time < 2s);
    start = Clock::now();
    std::string plain = co_await roundtrip(proxy.port(), "GET http://127.0.0.1:" + port + "/ HTTP/1.1\r\n\r\n");
    auto plain_time = Clock::now() - start;
    REQUIRE(plain == "HTTP/1.1 502 Bad Gateway\r\n\r\n");
    REQUIRE(plain_time >= 300ms);
    REQUIRE(plain_time < 2s);
    silent.cancel();
    co_await silent.join();
  });
}

TEST_CASE("proxy: the connection bound refuses extra clients with 503", "[proxy]") {
  ProxyOptions options;
  options.max_connections = 2;
  with_proxy(options, [](ProxyServer& proxy) -> Task<void> {
    TcpStream a = co_await connect_to(proxy.port());
    TcpStream b = co_await connect_to(proxy.port());
    for (int i = 0; i < 100 && proxy.active_connections() < 2; ++i) {
      auto s = co_await sleep_for(5ms);
      (void)s;
    }
    REQUIRE(proxy.active_connections() == 2);
    std::string got = co_await roundtrip(proxy.port(), "CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n");
    REQUIRE(got == "HTTP/1.1 503 Service Unavailable\r\n\r\n");
    a.close();
    for (int i = 0; i < 100 && proxy.active_connections() > 1; ++i) {
      auto s = co_await sleep_for(5ms);
      (void)s;
    }
    REQUIRE(proxy.active_connections() == 1);
    std::string again = co_await roundtrip(proxy.port(), "CONNECT 127.0.0.1:" + std::to_string(closed_port()) + " HTTP/1.1\r\n\r\n");
    REQUIRE(again == "HTTP/1.1 502 Bad Gateway\r\n\r\n");
  });
}

TEST_CASE("proxy: close() ends open tunnels and the listener", "[proxy]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      ProxyServer proxy;
      REQUIRE(proxy.start(SocketAddress::loopback_v4(0)).ok());
      std::uint16_t port = proxy.port();
      auto l = listen_any();
      REQUIRE(l.ok());
      auto l2 = listen_any();
      REQUIRE(l2.ok());
      Scope origin;
      origin.spawn(echo_once(*l));
      TcpStream c = co_await connect_to(port);
      auto w = co_await c.write_all(as_bytes("CONNECT 127.0.0.1:" + std::to_string(l->port()) + " HTTP/1.1\r\n\r\n"));
      REQUIRE(w.ok());
      std::string est = co_await read_at_least(c, 39);
      REQUIRE(est == "HTTP/1.1 200 Connection Established\r\n\r\n");
      TcpStream idle = co_await connect_to(port);  // mid-head
      auto start = Clock::now();
      co_await proxy.close();
      REQUIRE(Clock::now() - start < 1s);
      REQUIRE(proxy.active_connections() == 0);
      std::string rest = co_await read_to_eof(c);
      REQUIRE(rest.empty());
      std::string rest2 = co_await read_to_eof(idle);
      REQUIRE(rest2.empty());
      auto refused = co_await TcpStream::connect(SocketAddress::loopback_v4(port));
      REQUIRE_FALSE(refused.ok());
      co_await origin.join();
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("proxy: start() address forms", "[proxy]") {
  Loop loop;
  auto body = []() -> Task<void> {
    ProxyServer a;
    REQUIRE(a.start("127.0.0.1:0").ok());
    REQUIRE(a.local_address().ip() == "127.0.0.1");
    REQUIRE_FALSE(a.start("127.0.0.1:0").ok());  // already running
    co_await a.close();
    ProxyServer b;
    REQUIRE_FALSE(b.start("not-an-ip:80").ok());
    REQUIRE_FALSE(b.start("127.0.0.1:99999").ok());
    REQUIRE_FALSE(b.start("").ok());
    ProxyServer c;
    REQUIRE(c.start("0").ok());  // port only: loopback
    REQUIRE(c.local_address().ip() == "127.0.0.1");
    co_await c.close();
  };
  sync_wait(loop, body());
}
