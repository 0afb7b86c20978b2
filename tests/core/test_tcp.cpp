#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "support/echo.hpp"
#include "support/fd_check.hpp"

using namespace vtunnel;
using namespace std::chrono_literals;

namespace {

// Deterministic bytes that differ per stream and position.
void fill_pattern(MutableByteSpan out, std::uint64_t stream, std::uint64_t offset) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint64_t x = (offset + i) * 0x9E3779B97F4A7C15ull ^ (stream * 0xD6E8FEB86659FD93ull);
    out[i] = std::uint8_t(x >> 29);
  }
}

// Sends `total` pattern bytes and checks that the same bytes come back.
Task<void> echo_client(SocketAddress addr, std::uint64_t id, std::size_t total, int& ok_count) {
  auto s = co_await TcpStream::connect(addr);
  REQUIRE(s.ok());
  TcpStream stream = std::move(*s);
  Scope scope;
  scope.spawn([](TcpStream& st, std::uint64_t sid, std::size_t n) -> Task<void> {
    std::vector<std::uint8_t> chunk(16 * 1024);
    for (std::size_t off = 0; off < n;) {
      std::size_t len = std::min(chunk.size(), n - off);
      fill_pattern(MutableByteSpan(chunk.data(), len), sid, off);
      auto r1_ = co_await st.write_all(ByteSpan(chunk.data(), len));
      REQUIRE(r1_.ok());
      off += len;
    }
    auto r2_ = co_await st.shutdown_write();
    REQUIRE(r2_.ok());
  }(stream, id, total));
  std::vector<std::uint8_t> buf(64 * 1024), want(64 * 1024);
  std::size_t got = 0;
  bool same = true;
  for (;;) {
    auto n = co_await stream.read_some(buf);
    if (!n) {
      REQUIRE(n.error() == errc::eof);
      break;
    }
    fill_pattern(MutableByteSpan(want.data(), *n), id, got);
    if (std::memcmp(buf.data(), want.data(), *n) != 0) same = false;
    got += *n;
  }
  co_await scope.join();
  REQUIRE(got == total);
  REQUIRE(same);
  ++ok_count;
}

}  // namespace

TEST_CASE("echo: 1,000 concurrent clients with distinct data", "[core]") {
  test::raise_fd_limit();
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<int> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      TcpListener listener = std::move(*l);
      Scope server, conns, clients;
      server.spawn(test::echo_server(listener, conns, 64 * 1024));
      int ok = 0;
      for (int i = 0; i < 1000; ++i) {
        clients.spawn(echo_client(listener.local_address(), std::uint64_t(i), 4096 + std::size_t(i) * 7, ok));
      }
      co_await clients.join();
      server.cancel();
      co_await server.join();
      co_await conns.join();
      co_return ok;
    };
    REQUIRE(sync_wait(loop, body()) == 1000);
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("echo: 64 MiB through one connection, both ways, with half-close", "[core]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<int> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      Scope server, conns;
      server.spawn(test::echo_server(*l, conns, 64 * 1024));
      int ok = 0;
      co_await echo_client(l->local_address(), 99, 64u << 20, ok);
      server.cancel();
      co_await server.join();
      co_await conns.join();
      co_return ok;
    };
    REQUIRE(sync_wait(loop, body()) == 1);
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("echo over IPv6 loopback", "[core]") {
  Loop loop;
  auto body = []() -> Task<int> {
    auto addr = SocketAddress::parse("::1", 0);
    REQUIRE(addr.ok());
    auto l = TcpListener::bind(*addr);
    if (!l) {
      WARN("IPv6 loopback unavailable: " << l.error().message());
      co_return 1;
    }
    REQUIRE(l->local_address().to_string().rfind("[::1]:", 0) == 0);
    Scope server, conns;
    server.spawn(test::echo_server(*l, conns, 64 * 1024));
    int ok = 0;
    co_await echo_client(l->local_address(), 7, 100000, ok);
    server.cancel();
    co_await server.join();
    co_await conns.join();
    co_return ok;
  };
  REQUIRE(sync_wait(loop, body()) == 1);
}

TEST_CASE("connect to a closed port fails with connection refused", "[core]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    std::uint16_t port;
    {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      port = l->port();
    }
    auto r = sync_wait(loop, TcpStream::connect(SocketAddress::loopback_v4(port)));
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.error() == std::errc::connection_refused);
    REQUIRE(r.error().message() == "Connection refused");
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("connect times out against a listener whose backlog is full", "[core]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<int> {
      ListenOptions opts;
      opts.backlog = 0;
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0), opts);
      REQUIRE(l.ok());
      std::vector<TcpStream> held;
      ConnectOptions co;
      co.timeout = 200ms;
      // The kernel drops SYNs once the accept queue is full, so a connect eventually hangs.
      for (int i = 0; i < 16; ++i) {
        auto start = Clock::now();
        auto s = co_await TcpStream::connect(l->local_address(), co);
        if (!s) {
          REQUIRE(s.error() == errc::timed_out);
          REQUIRE(Clock::now() - start < 5s);
          co_return i;
        }
        held.push_back(std::move(*s));
      }
      co_return -1;
    };
    REQUIRE(sync_wait(loop, body()) >= 1);
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("reads and accepts can time out or be cancelled, and the objects stay usable", "[core]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      // accept with a deadline and nobody connecting
      auto a = co_await with_timeout(l->accept(), 30ms);
      REQUIRE(a.error() == errc::timed_out);

      auto c = co_await TcpStream::connect(l->local_address());
      REQUIRE(c.ok());
      auto s = co_await l->accept();
      REQUIRE(s.ok());
      std::uint8_t buf[16];
      // linked-timeout read
      auto r1 = co_await c->read_some(MutableByteSpan(buf), 30ms);
      REQUIRE(r1.error() == errc::timed_out);
      // generic deadline over a read
      auto r2 = co_await with_timeout(c->read_some(MutableByteSpan(buf)), 30ms);
      REQUIRE(r2.error() == errc::timed_out);
      // scope cancellation of a pending read
      Scope scope;
      std::error_code seen;
      scope.spawn([](TcpStream& st, std::error_code& out) -> Task<void> {
        std::uint8_t b[4];
        auto r = co_await st.read_some(MutableByteSpan(b));
        out = r.error();
      }(*c, seen));
      (void)co_await sleep_for(5ms);
      scope.cancel();
      co_await scope.join();
      REQUIRE(seen == errc::cancelled);
      // still works
      auto r3_ = co_await s->write_all(as_bytes("hello"));
      REQUIRE(r3_.ok());
      auto r3 = co_await c->read_some(MutableByteSpan(buf));
      REQUIRE(r3.ok());
      REQUIRE(as_string(ByteSpan(buf, *r3)) == "hello");
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("closing a stream with a pending read ends the read", "[core]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      auto c = co_await TcpStream::connect(l->local_address());
      REQUIRE(c.ok());
      auto s = co_await l->accept();
      REQUIRE(s.ok());
      Scope scope;
      bool failed = false;
      scope.spawn([](TcpStream& st, bool& f) -> Task<void> {
        std::uint8_t b[4];
        auto r = co_await st.read_some(MutableByteSpan(b));
        f = !r.ok();
      }(*c, failed));
      (void)co_await sleep_for(5ms);
      c->close();
      co_await scope.join();
      REQUIRE(failed);
      // closing a listener with a pending accept ends the accept
      Scope acc;
      std::error_code accept_error;
      acc.spawn([](TcpListener& li, std::error_code& e) -> Task<void> {
        auto r = co_await li.accept();
        e = r.error();
      }(*l, accept_error));
      (void)co_await sleep_for(5ms);
      l->close();
      co_await acc.join();
      REQUIRE(accept_error == errc::closed);
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("a peer reset mid-transfer is an error value", "[core]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      auto c = co_await TcpStream::connect(l->local_address());
      REQUIRE(c.ok());
      auto s = co_await l->accept();
      REQUIRE(s.ok());
      auto r4_ = co_await c->write_all(as_bytes("some data the server never reads"));
      REQUIRE(r4_.ok());
      (void)co_await sleep_for(5ms);
      // Unread data + close = RST; SO_LINGER 0 makes it explicit.
      linger lg{1, 0};
      ::setsockopt(s->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      s->close();
      std::uint8_t buf[64];
      auto r = co_await c->read_some(MutableByteSpan(buf));
      REQUIRE_FALSE(r.ok());
      REQUIRE(r.error() == std::errc::connection_reset);
      // Writing to a reset connection: an error (EPIPE/ECONNRESET), never SIGPIPE.
      std::vector<std::uint8_t> big(1 << 20, 0xab);
      auto w = co_await c->write_all(big);
      REQUIRE_FALSE(w.ok());
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("gather writes send every span in order", "[core]") {
  Loop loop;
  auto body = []() -> Task<std::string> {
    auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
    REQUIRE(l.ok());
    auto c = co_await TcpStream::connect(l->local_address());
    REQUIRE(c.ok());
    auto s = co_await l->accept();
    REQUIRE(s.ok());
    std::vector<std::string> parts;
    for (int i = 0; i < 200; ++i) parts.push_back(std::to_string(i) + ",");
    parts.push_back(std::string(3 << 20, 'x'));  // large: forces short sends
    parts.push_back("end");
    std::vector<ByteSpan> spans;
    std::string expected;
    for (auto& p : parts) {
      spans.push_back(as_bytes(p));
      expected += p;
    }
    Scope scope;
    std::string got;
    scope.spawn([](TcpStream& st, std::string& out) -> Task<void> {
      std::vector<std::uint8_t> b(65536);
      for (;;) {
        auto n = co_await st.read_some(b);
        if (!n) break;
        out.append(reinterpret_cast<char*>(b.data()), *n);
      }
    }(*s, got));
    auto r5_ = co_await c->write_all(std::span<const ByteSpan>(spans));
    REQUIRE(r5_.ok());
    auto r6_ = co_await c->shutdown_write();
    REQUIRE(r6_.ok());
    co_await scope.join();
    REQUIRE(got.size() == expected.size());
    co_return got == expected ? std::string("same") : std::string("different");
  };
  REQUIRE(sync_wait(loop, body()) == "same");
}
