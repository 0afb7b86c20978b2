// Metrics of Server and Client in one loop: the counters follow known traffic exactly, and the
// exposition is served on the main port (GET /metrics), on a separate MetricsEndpoint, and not
// at all when switched off.
#include <catch2/catch.hpp>

#include <functional>
#include <string>

#include "core/loop.hpp"
#include "core/metrics.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "support/fd_check.hpp"
#include "support/tunnel_fixture.hpp"
#include "tunnel/client.hpp"
#include "tunnel/metrics_endpoint.hpp"
#include "tunnel/server.hpp"

using namespace vtunnel;
using namespace vtunnel::test;
using namespace std::chrono_literals;

namespace {

Task<Result<std::string>> http_get(SocketAddress to, std::string path) {
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  return exchange(to, std::move(req));
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("metrics in one loop: counters follow the traffic; /metrics on the main port and an endpoint",
          "[tunnel][metrics]") {
  (void)generate_private_key();  // Botan's system RNG keeps /dev/urandom open for the process
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      PrivateKey priv = generate_private_key();
      EchoBackend backend;
      RunningServer server(server_options(priv));
      auto metrics_addr = server.start_metrics(SocketAddress::loopback_v4(0));
      REQUIRE(metrics_addr.ok());

      std::uint16_t tunnel_port = free_port();
      Client client(server.url(), client_options(priv));
      client.add_forward(*parse_forward(std::to_string(tunnel_port) + "=" + backend.target()));
      auto client_metrics = client.start_metrics(SocketAddress::loopback_v4(0));
      REQUIRE(client_metrics.ok());
      auto connected = co_await client.connect();
      REQUIRE(connected.ok());
      auto ready = co_await listening(server, tunnel_port);
      REQUIRE(ready);

      const int kConnections = 5;
      const std::size_t kBytes = 100'000;
      std::uint64_t sent = 0;
      for (int i = 0; i < kConnections; ++i) {
        std::string msg(kBytes + std::size_t(i), char('a' + i));
        auto r = co_await exchange(SocketAddress::loopback_v4(tunnel_port), msg);
        REQUIRE(r.ok());
        REQUIRE(*r == msg);
        sent += msg.size();
      }
      const TunnelMetrics& sm = server.metrics();
      const TunnelMetrics& cm = client.metrics();
      auto settled = co_await eventually([&] {
        return sm.tunnel_connections.value() == 0 && cm.tunnel_connections.value() == 0 &&
               sm.bytes_from_target.value() == sent && cm.bytes_from_target.value() == sent;
      });
      REQUIRE(settled);
      CHECK(sm.tunnel_connections_total.value() == kConnections);
      CHECK(cm.tunnel_connections_total.value() == kConnections);
      CHECK(sm.bytes_to_target.value() == sent);
      CHECK(cm.bytes_to_target.value() == sent);
      CHECK(sm.sessions_total.value() == 1);
      CHECK(cm.sessions_total.value() == 1);
      CHECK(cm.reconnects_total.value() == 0);
      CHECK(sm.handshake_seconds.count() == 1);
      CHECK(cm.handshake_seconds.count() == 1);
      CHECK(sm.channel_open_failures_total.value() == 0);

      // The exposition, three ways: main port, server endpoint, client endpoint.
      for (auto where : {server.address, *metrics_addr}) {
        auto got = co_await http_get(where, "/metrics");
        REQUIRE(got.ok());
        INFO(*got);
        CHECK(got->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
        CHECK(got->find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
        CHECK(has_line(*got, "vtunnel_sessions_active 1"));
        CHECK(has_line(*got, "vtunnel_listeners 1"));
        CHECK(has_line(*got, "vtunnel_tunnel_connections_total 5"));
        CHECK(has_line(*got, "vtunnel_tunnel_bytes_total{direction=\"to_target\"} " + std::to_string(sent)));
        CHECK(has_line(*got, "vtunnel_proxy_requests_total{outcome=\"ok\"} 0"));
        CHECK(has_line(*got, "vtunnel_handshake_duration_seconds_count 1"));
        CHECK(has_line(*got, "# TYPE vtunnel_handshake_duration_seconds histogram"));
      }
      {
        auto got = co_await http_get(*client_metrics, "/metrics");
        REQUIRE(got.ok());
        INFO(*got);
        CHECK(has_line(*got, "vtunnel_sessions_active 1"));
        CHECK(has_line(*got, "vtunnel_listeners 1"));
        CHECK(has_line(*got, "vtunnel_reconnects_total 0"));
        CHECK(has_line(*got, "vtunnel_tunnel_bytes_total{direction=\"from_target\"} " + std::to_string(sent)));
        CHECK(got->find("vtunnel_proxy_requests_total") == std::string::npos);  // server only
      }
      // The endpoint: /health answers, other paths and WebSocket upgrades get 404.
      auto health = co_await http_get(*metrics_addr, "/health");
      REQUIRE(health.ok());
      CHECK(health->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
      auto other = co_await http_get(*metrics_addr, "/other");
      REQUIRE(other.ok());
      CHECK(other->rfind("HTTP/1.1 404 ", 0) == 0);
      auto upgrade = co_await exchange(*metrics_addr,
                                       "GET /metrics HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
      REQUIRE(upgrade.ok());
      CHECK(upgrade->rfind("HTTP/1.1 404 ", 0) == 0);
      // The main port still upgrades other paths and answers /health.
      auto main_health = co_await http_get(server.address, "/health");
      REQUIRE(main_health.ok());
      CHECK(main_health->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);

      co_await client.close();
      auto gone = co_await eventually([&] { return server.session_count() == 0; });
      REQUIRE(gone);
      auto after = co_await http_get(*metrics_addr, "/metrics");
      REQUIRE(after.ok());
      CHECK(has_line(*after, "vtunnel_sessions_active 0"));
      CHECK(has_line(*after, "vtunnel_sessions_total 1"));
      co_await server.stop();
      co_await backend.stop();
    };
    sync_wait(loop, body());
  }
  CHECK(test::open_fd_count() == fds);
}

TEST_CASE("metrics in one loop: auth failures, refused channels, reconnects, -metrics off", "[tunnel][metrics]") {
  Loop loop;
  auto body = []() -> Task<void> {
    PrivateKey right = generate_private_key();
    PrivateKey wrong = generate_private_key();
    ServerOptions so = server_options(right);
    so.metrics_on_main_port = false;
    RunningServer server(so);
    std::string url = server.url();

    auto off = co_await http_get(server.address, "/metrics");
    REQUIRE(off.ok());
    CHECK(off->rfind("HTTP/1.1 404 ", 0) == 0);

    {  // keyless client vs keyed server: it asks to authenticate and is refused
      ClientOptions co;
      co.backoff_min = 50ms;
      co.backoff_max = 100ms;
      Client c(url, co);
      auto r = co_await c.connect();
      REQUIRE_FALSE(r.ok());
      auto counted = co_await eventually([&] { return server.metrics().auth_failures_total.value() >= 1; });
      CHECK(counted);
      auto retried = co_await eventually([&] { return c.metrics().reconnects_total.value() >= 1; });
      CHECK(retried);
      CHECK(c.metrics().handshake_failures_total.value() >= 1);
      co_await c.close();
    }
    {  // wrong key: our client refuses the server's host key (derived from the key pair)
      ClientOptions co;
      co.key = wrong;
      co.backoff_min = 50ms;
      Client c(url, co);
      auto r = co_await c.connect();
      REQUIRE_FALSE(r.ok());
      CHECK(c.metrics().auth_failures_total.value() >= 1);
      co_await c.close();
    }
    CHECK(server.metrics().handshake_failures_total.value() >= server.metrics().auth_failures_total.value());
    CHECK(server.metrics().sessions_total.value() == 0);

    // A forward to a port nobody listens on: the client refuses the channel, both count it.
    std::uint16_t dead_port = free_port();
    std::uint16_t tunnel_port = free_port();
    ClientOptions co;
    co.key = right;
    Client c(url, co);
    c.add_forward(*parse_forward(std::to_string(tunnel_port) + "=127.0.0.1:" + std::to_string(dead_port)));
    auto r = co_await c.connect();
    REQUIRE(r.ok());
    auto ready = co_await listening(server, tunnel_port);
    REQUIRE(ready);
    auto rt = co_await round_trip(tunnel_port, "anyone?");
    (void)rt;
    auto refused = co_await eventually([&] {
      return server.metrics().channel_open_failures_total.value() == 1 && c.metrics().channel_open_failures_total.value() == 1;
    });
    CHECK(refused);
    CHECK(server.metrics().tunnel_connections_total.value() == 0);
    std::string text = server.render_metrics();
    CHECK(has_line(text, "vtunnel_channel_open_failures_total 1"));
    co_await c.close();
    co_await server.stop();
  };
  sync_wait(loop, body());
}

TEST_CASE("metrics: -metrics addresses parse", "[tunnel][metrics]") {
  CHECK(parse_metrics_address("127.0.0.1:9100").value().to_string() == "127.0.0.1:9100");
  CHECK(parse_metrics_address("9100").value().to_string() == "127.0.0.1:9100");
  CHECK(parse_metrics_address("[::1]:9100").value().port() == 9100);
  CHECK_FALSE(parse_metrics_address("localhost:9100").ok());
  CHECK_FALSE(parse_metrics_address("127.0.0.1:").ok());
  CHECK_FALSE(parse_metrics_address("127.0.0.1:99999").ok());
  CHECK_FALSE(parse_metrics_address(":9100").ok());
  CHECK_FALSE(parse_metrics_address("").ok());
}
