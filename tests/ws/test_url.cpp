#include <catch2/catch.hpp>

#include "ws/error.hpp"
#include "ws/url.hpp"

using namespace vtunnel;
using namespace vtunnel::ws;

TEST_CASE("ws and wss URLs parse", "[url]") {
  auto u = parse_ws_url("ws://example.com/tunnel?token=abc");
  REQUIRE(u.ok());
  REQUIRE_FALSE(u->secure);
  REQUIRE(u->host == "example.com");
  REQUIRE(u->port == 80);
  REQUIRE(u->target == "/tunnel?token=abc");
  REQUIRE(u->host_header == "example.com");

  u = parse_ws_url("WSS://Example.com:8443");
  REQUIRE(u.ok());
  REQUIRE(u->secure);
  REQUIRE(u->port == 8443);
  REQUIRE(u->target == "/");
  REQUIRE(u->host_header == "Example.com:8443");

  u = parse_ws_url("wss://[::1]:443/x");
  REQUIRE(u.ok());
  REQUIRE(u->host == "::1");
  REQUIRE(u->host_header == "[::1]");

  u = parse_ws_url("ws://127.0.0.1:9000?q");
  REQUIRE(u.ok());
  REQUIRE(u->target == "/?q");
  REQUIRE(u->host_header == "127.0.0.1:9000");
}

TEST_CASE("bad URLs are refused", "[url]") {
  for (const char* bad : {"http://example.com/", "example.com", "ws://", "ws://:80/", "ws://host:/",
                          "ws://host:0/", "ws://host:65536/", "ws://host:12a/", "ws://user@host/",
                          "ws://host/#frag", "ws://host/a b", "ws://[::1/", "ws://[]/", "ws://[zz]/",
                          "ws://ho st/", "ws://host:123456/", "ws://[::1]x/"}) {
    INFO(bad);
    REQUIRE(parse_ws_url(bad).error() == errc::bad_url);
  }
}
