// Server and Client in one loop, over real loopback sockets (WebSocket + SSH + TCP).
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include "core/loop.hpp"
#include "core/relay.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "support/fd_check.hpp"
#include "support/tunnel_fixture.hpp"
#include "tunnel/client.hpp"
#include "tunnel/server.hpp"

using namespace vtunnel;
using namespace vtunnel::test;
using namespace std::chrono_literals;

TEST_CASE("tunnel in one loop: data both ways with half-close, keyed", "[tunnel]") {
  (void)generate_private_key();  // Botan's system RNG keeps /dev/urandom open for the process
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      EchoTunnel t(generate_private_key());
      co_await t.up();

      std::string big(3 << 20, 'x');
      for (std::size_t i = 0; i < big.size(); ++i) big[i] = char('a' + i % 23);
      auto r = co_await round_trip(t.port, big);
      REQUIRE(r.ok());
      REQUIRE(r->size() == big.size());
      REQUIRE(*r == big);

      // Many at once.
      Scope many;
      int ok = 0;
      for (int i = 0; i < 50; ++i) {
        many.spawn([](std::uint16_t p, int id, int& good) -> Task<void> {
          std::string msg = "message " + std::to_string(id);
          auto rr = co_await round_trip(p, msg);
          if (rr && *rr == msg) ++good;
        }(t.port, i, ok));
      }
      co_await many.join();
      REQUIRE(ok == 50);
      co_await t.stop();
    };
    sync_wait(loop, body());
  }
  INFO(test::describe_fds());
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("tunnel in one loop: a connection waits for a client that comes back", "[tunnel]") {
  Loop loop;
  auto body = []() -> Task<void> {
    Keys keys;
    EchoBackend backend;
    RunningServer server(server_options(keys.priv));
    std::uint16_t tunnel_port = free_port();
    ClientOptions co = client_options(keys.priv);
    {
      Client first(server.url(), co);
      co_await bring_up(first, server, tunnel_port, backend.target());
      co_await first.close();
    }
    auto gone = co_await eventually([&] { return !server.has_active_session(); });
    REQUIRE(gone);
    // The listener persists; a user connects while no client is attached.
    Scope user;
    Result<std::string> waited = errc::closed;
    user.spawn([](std::uint16_t p, Result<std::string>& out) -> Task<void> {
      out = co_await round_trip(p, "waited for a client");
    }(tunnel_port, waited));
    (void)co_await sleep_for(300ms);
    Client second(server.url(), co);
    auto l2 = co_await second.listen(tunnel_port, backend.target());
    REQUIRE(l2.ok());
    auto c2 = co_await second.connect();
    REQUIRE(c2.ok());
    co_await user.join();
    REQUIRE(waited.ok());
    REQUIRE(*waited == "waited for a client");
    co_await second.close();
    co_await server.stop();
    co_await backend.stop();
  };
  sync_wait(loop, body());
}

TEST_CASE("tunnel in one loop: wrong key refused; keyless pair works; dead backend closes promptly", "[tunnel]") {
  Loop loop;
  auto body = []() -> Task<void> {
    Keys right, wrong;
    RunningServer server(server_options(right.priv));
    {
      ClientOptions co;
      co.key = wrong.priv;
      co.backoff_min = 50ms;
      co.backoff_max = 100ms;
      Client c(server.url(), co);
      auto r = co_await c.connect();
      REQUIRE_FALSE(r.ok());  // the derived host key differs: our client refuses the server
      REQUIRE(server.session_count() == 0);
      co_await c.close();
    }
    {
      ClientOptions co;  // keyless client against a keyed server
      co.backoff_min = 50ms;
      Client c(server.url(), co);
      auto r = co_await c.connect();
      REQUIRE_FALSE(r.ok());
      co_await c.close();
    }
    co_await server.stop();

    // keyless server + keyless client, forward to a port nobody listens on
    RunningServer open_server(ServerOptions{});
    std::uint16_t dead_port = free_port();
    std::uint16_t tunnel_port = free_port();
    Client c(open_server.url(), ClientOptions{});
    co_await bring_up(c, open_server, tunnel_port, "127.0.0.1:" + std::to_string(dead_port));
    auto start = Clock::now();
    auto rt = co_await round_trip(tunnel_port, "anyone?");
    // closed at once (EOF or reset), not held open
    REQUIRE(Clock::now() - start < 5s);
    if (rt) REQUIRE(rt->empty());
    co_await c.close();
    co_await open_server.stop();
  };
  sync_wait(loop, body());
}

TEST_CASE("tunnel in one loop: the proxy routes mapped domains into the tunnel", "[tunnel][proxy]") {
  Loop loop;
  auto body = []() -> Task<void> {
    Keys keys;
    EchoBackend backend(SocketAddress::parse("127.0.0.9", 0).value());
    RunningServer server(server_options(keys.priv));
    auto proxy_addr = server.start_proxy(SocketAddress::loopback_v4(0));
    REQUIRE(proxy_addr.ok());
    std::uint16_t tunnel_port = free_port();
    Client client(server.url(), client_options(keys.priv));
    // A non-local local_addr is mapped automatically (as the Go original does).
    std::string target = backend.target();
    auto l = co_await client.listen(tunnel_port, target);
    REQUIRE(l.ok());
    auto c = co_await client.connect();
    REQUIRE(c.ok());
    auto mapped = co_await eventually([&] { return server.lookup_domain(target).has_value(); });
    REQUIRE(mapped);
    REQUIRE(*server.lookup_domain(target) == "127.0.0.1:" + std::to_string(tunnel_port));
    // A name nothing answers for directly: only the tunnel can serve it.
    server.set_domain_mapping("unreachable.test:443", "127.0.0.1:" + std::to_string(tunnel_port));
    auto p = co_await TcpStream::connect(*proxy_addr);
    REQUIRE(p.ok());
    auto w = co_await p->write_all(as_bytes("CONNECT unreachable.test:443 HTTP/1.1\r\nHost: unreachable.test:443\r\n\r\nearly bytes"));
    REQUIRE(w.ok());
    std::string got;
    std::string want = "HTTP/1.1 200 Connection Established\r\n\r\nearly bytes";
    std::uint8_t buf[4096];
    while (got.size() < want.size()) {
      auto n = co_await p->read_some(MutableByteSpan(buf), 10s);
      if (!n) break;
      got.append(reinterpret_cast<char*>(buf), *n);
    }
    REQUIRE(got == want);  // the echo backend, reached through the tunnel
    p->close();
    co_await client.close();
    co_await server.stop();
    co_await backend.stop();
  };
  sync_wait(loop, body());
}

TEST_CASE("tunnel in one loop: many idle connections over one session hold no relay buffers", "[tunnel]") {
  (void)generate_private_key();
  // Four sockets per connection in this process (user, server side, client side, backend).
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  ::getrlimit(RLIMIT_NOFILE, &rl);
  int conns = 1000;
  if (rl.rlim_cur != RLIM_INFINITY) conns = std::min(conns, int((rl.rlim_cur - 200) / 4));
  REQUIRE(conns >= 100);
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = [conns]() -> Task<void> {
      EchoTunnel t(generate_private_key());
      co_await t.up();

      // Opens every connection with a 1-byte echo and keeps it open.
      std::vector<TcpStream> users;
      for (int i = 0; i < conns; ++i) {
        auto c = co_await TcpStream::connect(SocketAddress::loopback_v4(t.port));
        REQUIRE(c.ok());
        std::uint8_t b = std::uint8_t('a' + i % 26);
        auto w = co_await c->write_all(ByteSpan(&b, 1));
        REQUIRE(w.ok());
        std::uint8_t back = 0;
        auto n = co_await c->read_some(MutableByteSpan(&back, 1), 10s);
        REQUIRE(n.ok());
        REQUIRE(back == b);
        users.push_back(std::move(*c));
      }
      (void)co_await sleep_for(20ms);
      // Server and client relays share this loop's buffers: none is held by an idle relay.
      auto st = relay_buffer_stats();
      INFO("in use " << st.in_use << ", cached " << st.cached << ", acquired " << st.acquired << ", ring receives "
                     << st.ring_receives << ", direct sends " << st.direct_sends);
      REQUIRE(st.in_use == 0);
      // 4 hops per echo: TCP receives into a buffer, channel data goes straight to the socket
      // of a parked relay (or through a buffer when the socket was full).
      REQUIRE(st.acquired + st.ring_receives + st.direct_sends >= std::uint64_t(4 * conns));
      REQUIRE(st.direct_sends > 0);

      // Every connection still works after idling, and half-close still comes through.
      for (int i = 0; i < conns; i += 7) {
        std::string msg = "again " + std::to_string(i);
        auto w = co_await users[std::size_t(i)].write_all(as_bytes(msg));
        REQUIRE(w.ok());
        auto sh = co_await users[std::size_t(i)].shutdown_write();
        REQUIRE(sh.ok());
        std::string got;
        std::uint8_t buf[256];
        for (;;) {
          auto n = co_await users[std::size_t(i)].read_some(MutableByteSpan(buf), 10s);
          if (!n) {
            REQUIRE(n.error() == errc::eof);
            break;
          }
          got.append(reinterpret_cast<char*>(buf), *n);
        }
        REQUIRE(got == msg);
      }
      users.clear();
      auto drained = co_await eventually([] { return relay_buffer_stats().in_use == 0; });
      REQUIRE(drained);
      co_await t.stop();
    };
    sync_wait(loop, body());
  }
  INFO(test::describe_fds());
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("tunnel in one loop: channel data to a socket that fills up arrives whole and in order", "[tunnel]") {
  // Channel data goes straight from the decrypt buffer to the backend socket while the relay
  // waits; once that socket is full the rest is buffered and written by the relay. Bytes sent
  // directly and buffered bytes must interleave in order.
  Loop loop;
  auto body = []() -> Task<void> {
    auto backend = TcpListener::bind(SocketAddress::loopback_v4(0));
    REQUIRE(backend.ok());
    constexpr std::size_t kTotal = 6 << 20;
    std::size_t received = 0;
    bool intact = true;
    Scope background;
    background.spawn([](TcpListener& l, std::size_t& got, bool& ok) -> Task<void> {
      auto c = co_await l.accept();
      if (!c) co_return;
      int small = 16 * 1024;
      ::setsockopt(c->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
      (void)co_await sleep_for(200ms);  // the socket fills: direct sends fall short
      std::vector<std::uint8_t> buf(7000);
      for (int round = 0;; ++round) {
        auto n = co_await c->read_some(buf, 10s);
        if (!n) break;
        for (std::size_t i = 0; i < *n; ++i, ++got)
          if (buf[i] != std::uint8_t(got % 251)) ok = false;
        if (round % 64 == 0) (void)co_await sleep_for(1ms);  // slow, so it fills again
      }
      auto w = co_await c->write_all(as_bytes(std::string("done")));
      (void)w;
    }(*backend, received, intact));

    auto key = generate_private_key();
    RunningServer server(server_options(key));
    Client client(server.url(), client_options(key));
    std::uint16_t tunnel_port = free_port();
    co_await bring_up(client, server, tunnel_port, "127.0.0.1:" + std::to_string(backend->port()));

    const auto before = relay_buffer_stats();
    std::vector<std::uint8_t> data(kTotal);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = std::uint8_t(i % 251);
    auto r = co_await round_trip(tunnel_port, std::string(data.begin(), data.end()));
    REQUIRE(r.ok());
    CHECK(*r == "done");
    CHECK(received == kTotal);
    CHECK(intact);
    const auto after = relay_buffer_stats();
    INFO("direct sends " << after.direct_sends - before.direct_sends << ", pool buffers "
                         << after.acquired - before.acquired << ", direct receives "
                         << after.direct_receives - before.direct_receives);
    CHECK(after.direct_sends > before.direct_sends);  // the direct path was taken ...
    CHECK(after.acquired > before.acquired);          // ... and so was the buffered one
    // Upstream, the backlog in the public socket is read straight into channel packets.
    CHECK(after.direct_receives > before.direct_receives);

    co_await client.close();
    co_await server.stop();
    backend->close();
    co_await background.join();
  };
  sync_wait(loop, body());
}
