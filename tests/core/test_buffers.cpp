#include <catch2/catch.hpp>

#include <cstring>

#include "core/buffer_pool.hpp"
#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "support/fd_check.hpp"

using namespace vtunnel;
using namespace std::chrono_literals;

TEST_CASE("fixed-buffer writes and provided-buffer receives move data intact", "[core]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      FixedBufferPool pool(4, 64 * 1024);
      ProvidedBufferRing ring(1, 8, 16 * 1024);
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      auto c = co_await TcpStream::connect(l->local_address());
      REQUIRE(c.ok());
      auto s = co_await l->accept();
      REQUIRE(s.ok());

      constexpr std::size_t kTotal = 4 << 20;
      Scope scope;
      scope.spawn([](TcpStream& st, FixedBufferPool& p) -> Task<void> {
        std::size_t sent = 0;
        while (sent < kTotal) {
          auto b = co_await p.acquire();
          REQUIRE(b.ok());
          std::size_t len = std::min(b->size, kTotal - sent);
          for (std::size_t i = 0; i < len; ++i) b->data[i] = std::uint8_t((sent + i) * 31 >> 3);
          std::size_t off = 0;
          while (off < len) {
            auto n = co_await st.write_some_fixed(ByteSpan(b->data + off, len - off), b->index);
            REQUIRE(n.ok());
            off += *n;
          }
          p.release(*b);
          sent += len;
        }
        auto r1_ = co_await st.shutdown_write();
        REQUIRE(r1_.ok());
      }(*c, pool));

      std::size_t got = 0;
      bool same = true;
      for (;;) {
        auto r = co_await ring.recv(*s);
        if (!r) {
          REQUIRE(r.error() == errc::eof);
          break;
        }
        auto d = r->data();
        REQUIRE(d.size() <= ring.buffer_size());
        for (std::size_t i = 0; i < d.size(); ++i) {
          if (d[i] != std::uint8_t((got + i) * 31 >> 3)) same = false;
        }
        got += d.size();
      }
      co_await scope.join();
      REQUIRE(got == kTotal);
      REQUIRE(same);
      REQUIRE(pool.available() == 4);
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("an exhausted provided-buffer ring waits for a recycled buffer", "[core]") {
  Loop loop;
  auto body = []() -> Task<void> {
    ProvidedBufferRing ring(2, 2, 4096);
    auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
    REQUIRE(l.ok());
    auto c = co_await TcpStream::connect(l->local_address());
    REQUIRE(c.ok());
    auto s = co_await l->accept();
    REQUIRE(s.ok());
    std::vector<ProvidedBuffer> held;
    for (int i = 0; i < 2; ++i) {
      auto r2_ = co_await c->write_all(as_bytes("abc"));
      REQUIRE(r2_.ok());
      auto r = co_await ring.recv(*s);
      REQUIRE(r.ok());
      held.push_back(std::move(*r));
    }
    auto r3_ = co_await c->write_all(as_bytes("xyz"));
    REQUIRE(r3_.ok());
    Scope scope;
    std::string third;
    scope.spawn([](ProvidedBufferRing& rg, TcpStream& st, std::string& out) -> Task<void> {
      auto r = co_await rg.recv(st);  // -ENOBUFS first, then waits
      REQUIRE(r.ok());
      out = std::string(as_string(r->data()));
    }(ring, *s, third));
    (void)co_await sleep_for(10ms);
    REQUIRE(third.empty());
    held.clear();  // recycles both buffers
    co_await scope.join();
    REQUIRE(third == "xyz");
  };
  sync_wait(loop, body());
}
