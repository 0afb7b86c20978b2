// ServerHandshake with a PlainHandler: plain GET/HEAD paths the embedder answers (GET /metrics),
// while WebSocket upgrades, /health and refusals behave as without it.
#include <catch2/catch.hpp>

#include <string>

#include "ws/server_handshake.hpp"

using namespace vtunnel;
using namespace vtunnel::ws;

namespace {

struct Answer {
  ServerHandshake::Outcome outcome;
  unsigned status;
  std::string response;
  int calls;
};

Answer serve(std::string_view wire) {
  int calls = 0;
  PlainHandler plain = [&calls](std::string_view path) -> std::optional<PlainResponse> {
    ++calls;
    if (path != "/metrics") return std::nullopt;
    return PlainResponse{200, "text/plain; version=0.0.4; charset=utf-8", "m_total 1\n"};
  };
  ServerHandshake hs(HandshakeLimits{}, plain);
  auto step = hs.feed(as_bytes(wire));
  return {step.outcome, hs.status(), hs.response(), calls};
}

const std::string kUpgradeHeaders =
    " HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

}  // namespace

TEST_CASE("plain handler answers GET and HEAD for its path", "[handshake]") {
  auto get = serve("GET /metrics?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(get.outcome == ServerHandshake::Outcome::respond);
  REQUIRE(get.status == 200);
  REQUIRE(get.calls == 1);
  REQUIRE(get.response ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 10\r\n"
          "Connection: close\r\n\r\nm_total 1\n");
  auto head = serve("HEAD /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(head.status == 200);
  REQUIRE(head.response.find("Content-Length: 10\r\n") != std::string::npos);
  REQUIRE(head.response.substr(head.response.size() - 4) == "\r\n\r\n");  // no body
}

TEST_CASE("plain handler: other paths 404, upgrades upgrade, /health and methods unchanged", "[handshake]") {
  auto other = serve("GET /other HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(other.status == 404);
  REQUIRE(other.calls == 1);
  auto upgrade = serve("GET /metrics" + kUpgradeHeaders);
  REQUIRE(upgrade.outcome == ServerHandshake::Outcome::upgrade);
  REQUIRE(upgrade.status == 101);
  REQUIRE(upgrade.calls == 0);
  auto health = serve("GET /health HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(health.status == 200);
  REQUIRE(health.calls == 0);
  auto post = serve("POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(post.status == 405);
  REQUIRE(post.calls == 0);
}
