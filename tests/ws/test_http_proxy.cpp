// Proxy URL parsing, proxy selection (flag, environment, NO_PROXY) and the CONNECT exchange
// as bytes in, outcome out.
#include <catch2/catch.hpp>

#include "ws/error.hpp"
#include "ws/http_proxy.hpp"
#include "ws/url.hpp"

using namespace vtunnel;
using namespace vtunnel::ws;

namespace {

WsUrl url(const char* text) { return parse_ws_url(text).value(); }

ProxyConnectHandshake::Step feed(ProxyConnectHandshake& hs, std::string_view text) {
  return hs.feed(ByteSpan(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

ProxyUrl proxy(const char* text) { return parse_proxy_url(text).value(); }

}  // namespace

TEST_CASE("proxy URLs: host, port, credentials", "[proxy-url]") {
  auto p = parse_proxy_url("http://proxy.corp:3128");
  REQUIRE(p.ok());
  CHECK(p->host == "proxy.corp");
  CHECK(p->port == 3128);
  CHECK_FALSE(p->user);
  CHECK(p->redacted() == "http://proxy.corp:3128");

  p = parse_proxy_url("proxy.corp");  // no scheme: http://, port 80 (Go's convention)
  REQUIRE(p.ok());
  CHECK(p->port == 80);

  p = parse_proxy_url("HTTP://u%40corp:p%3Ass%20w@10.0.0.1:8080/");
  REQUIRE(p.ok());
  CHECK(p->host == "10.0.0.1");
  CHECK(p->port == 8080);
  REQUIRE(p->user);
  CHECK(*p->user == "u@corp");
  CHECK(p->password == "p:ss w");
  CHECK(p->redacted() == "http://u@corp:***@10.0.0.1:8080");
  CHECK(p->redacted().find("ss") == std::string::npos);

  p = parse_proxy_url("http://user:a:b@[::1]:3128");  // password up to the last '@', ':' allowed
  REQUIRE(p.ok());
  CHECK(p->host == "::1");
  CHECK(p->password == "a:b");
  CHECK(p->authority() == "[::1]:3128");

  p = parse_proxy_url("http://user@h:1");  // user without password
  REQUIRE(p.ok());
  CHECK(*p->user == "user");
  CHECK(p->password.empty());
}

TEST_CASE("proxy URLs: refused forms", "[proxy-url]") {
  CHECK(parse_proxy_url("https://proxy:443").error() == errc::proxy_scheme_unsupported);
  CHECK(parse_proxy_url("socks5://proxy:1080").error() == errc::proxy_scheme_unsupported);
  for (const char* bad : {"", "http://", "http://:8080", "http://h:0", "http://h:65536", "http://h:x",
                          "http://h:8080/path", "http://h?q", "http://u%zz:p@h", "http://u%4:p@h",
                          "http://[::1", "http://[zz]:1", "http://h h:1", "http://u%3Ax:p@h"}) {
    INFO(bad);
    CHECK(parse_proxy_url(bad).error() == errc::bad_proxy_url);
  }
}

TEST_CASE("NO_PROXY matching", "[no-proxy]") {
  CHECK(no_proxy_matches("*", "anything.example", 443));
  CHECK(no_proxy_matches("example.com", "example.com", 443));
  CHECK(no_proxy_matches("example.com", "tunnel.example.com", 443));
  CHECK(no_proxy_matches("EXAMPLE.com", "Tunnel.Example.COM", 443));
  CHECK_FALSE(no_proxy_matches("example.com", "badexample.com", 443));
  CHECK_FALSE(no_proxy_matches(".example.com", "example.com", 443));  // subdomains only
  CHECK(no_proxy_matches(".example.com", "a.example.com", 443));
  CHECK(no_proxy_matches("*.example.com", "a.example.com", 443));
  CHECK_FALSE(no_proxy_matches("*.example.com", "example.com", 443));
  CHECK(no_proxy_matches("example.com:8443", "example.com", 8443));
  CHECK_FALSE(no_proxy_matches("example.com:8443", "example.com", 443));
  CHECK(no_proxy_matches(" other.org , example.com ", "example.com", 1));  // blanks around entries
  CHECK_FALSE(no_proxy_matches(",,", "example.com", 1));
  CHECK_FALSE(no_proxy_matches("", "example.com", 1));
  // Addresses and ranges.
  CHECK(no_proxy_matches("10.1.2.3", "10.1.2.3", 80));
  CHECK_FALSE(no_proxy_matches("10.1.2.3", "10.1.2.4", 80));
  CHECK(no_proxy_matches("10.0.0.0/8", "10.200.1.1", 80));
  CHECK_FALSE(no_proxy_matches("10.0.0.0/8", "11.0.0.1", 80));
  CHECK(no_proxy_matches("192.168.4.0/22", "192.168.7.255", 80));
  CHECK_FALSE(no_proxy_matches("192.168.4.0/22", "192.168.8.0", 80));
  CHECK(no_proxy_matches("10.1.2.3:3001", "10.1.2.3", 3001));
  CHECK_FALSE(no_proxy_matches("10.1.2.3:3001", "10.1.2.3", 3002));
  CHECK(no_proxy_matches("fd00::/8", "fd12::1", 80));
  CHECK(no_proxy_matches("::1", "::1", 80));
  CHECK(no_proxy_matches("[2001:db8::1]:443", "2001:db8::1", 443));
  CHECK_FALSE(no_proxy_matches("[2001:db8::1]:443", "2001:db8::1", 80));
  CHECK_FALSE(no_proxy_matches("10.0.0.0/8", "ten.example", 80));  // a range never matches a name
  CHECK_FALSE(no_proxy_matches("example.com", "10.0.0.1", 80));
  CHECK_FALSE(no_proxy_matches("10.0.0.0/99", "10.0.0.1", 80));
}

TEST_CASE("proxy selection: flag, environment, NO_PROXY, loopback", "[proxy-select]") {
  ProxyEnvironment env;
  env.https_proxy = "http://secure-proxy:3128";
  env.http_proxy = "http://plain-proxy:8080";

  SECTION("wss uses HTTPS_PROXY, ws uses HTTP_PROXY") {
    auto p = select_proxy(url("wss://tunnel.example.com/"), std::nullopt, env);
    REQUIRE(p.ok());
    REQUIRE(*p);
    CHECK((*p)->host == "secure-proxy");
    p = select_proxy(url("ws://tunnel.example.com:3001/"), std::nullopt, env);
    REQUIRE(*p);
    CHECK((*p)->host == "plain-proxy");
    env.https_proxy.reset();  // no fallback from HTTPS_PROXY to HTTP_PROXY (as Go)
    p = select_proxy(url("wss://tunnel.example.com/"), std::nullopt, env);
    REQUIRE(p.ok());
    CHECK_FALSE(*p);
  }
  SECTION("environment proxies skip loopback targets (Go's rule)") {
    for (const char* u : {"ws://localhost:3001/", "ws://127.0.0.1:3001/", "ws://127.9.9.9:1/", "wss://[::1]:3001/"}) {
      INFO(u);
      auto p = select_proxy(url(u), std::nullopt, env);
      REQUIRE(p.ok());
      CHECK_FALSE(*p);
    }
  }
  SECTION("NO_PROXY excludes targets from environment proxies") {
    env.no_proxy = "internal.corp,10.0.0.0/8";
    auto p = select_proxy(url("wss://tunnel.internal.corp/"), std::nullopt, env);
    CHECK_FALSE(*p);
    p = select_proxy(url("ws://10.9.8.7:3001/"), std::nullopt, env);
    CHECK_FALSE(*p);
    p = select_proxy(url("wss://tunnel.example.com/"), std::nullopt, env);
    CHECK(*p);
    env.no_proxy = "*";
    p = select_proxy(url("wss://tunnel.example.com/"), std::nullopt, env);
    CHECK_FALSE(*p);
  }
  SECTION("an explicit proxy replaces the environment, loopback and NO_PROXY included") {
    env.no_proxy = "*";
    auto p = select_proxy(url("ws://127.0.0.1:3001/"), std::string("http://u:p@127.0.0.1:3128"), env);
    REQUIRE(p.ok());
    REQUIRE(*p);
    CHECK((*p)->port == 3128);
    CHECK(*(*p)->user == "u");
    for (const char* none : {"", "direct", "DIRECT", " "}) {
      INFO(none);
      p = select_proxy(url("wss://tunnel.example.com/"), std::string(none), env);
      REQUIRE(p.ok());
      CHECK_FALSE(*p);
    }
  }
  SECTION("unusable proxy URLs are errors, not silently direct") {
    env.https_proxy = "https://secure-proxy:443";
    CHECK(select_proxy(url("wss://tunnel.example.com/"), std::nullopt, env).error() ==
          errc::proxy_scheme_unsupported);
    CHECK(select_proxy(url("ws://x/"), std::string("https://p:1"), env).error() == errc::proxy_scheme_unsupported);
    CHECK(select_proxy(url("ws://x/"), std::string("http://p:99999"), env).error() == errc::bad_proxy_url);
  }
}

TEST_CASE("ProxyEnvironment reads upper case first, then lower case; empty is unset", "[proxy-select]") {
  ::setenv("HTTPS_PROXY", "http://upper:1", 1);
  ::setenv("https_proxy", "http://lower:1", 1);
  ::setenv("HTTP_PROXY", "", 1);
  ::setenv("http_proxy", "http://lower-http:2", 1);
  ::unsetenv("NO_PROXY");
  ::setenv("no_proxy", "corp", 1);
  const ProxyEnvironment env = ProxyEnvironment::from_process();
  ::unsetenv("HTTPS_PROXY");
  ::unsetenv("https_proxy");
  ::unsetenv("HTTP_PROXY");
  ::unsetenv("http_proxy");
  ::unsetenv("no_proxy");
  CHECK(env.https_proxy == "http://upper:1");
  CHECK(env.http_proxy == "http://lower-http:2");
  CHECK(env.no_proxy == "corp");
}

TEST_CASE("CONNECT request: authority, Host, Basic credentials", "[proxy-connect]") {
  auto hs = ProxyConnectHandshake::create(proxy("http://127.0.0.1:3128"), "tunnel.example.com", 443);
  REQUIRE(hs.ok());
  CHECK(hs->request() == "CONNECT tunnel.example.com:443 HTTP/1.1\r\nHost: tunnel.example.com:443\r\n"
                         "User-Agent: vtunnel\r\n\r\n");
  // RFC 7617's example: Aladdin / open sesame; percent-decoded from the URL.
  hs = ProxyConnectHandshake::create(proxy("http://Aladdin:open%20sesame@p:1"), "::1", 3001);
  REQUIRE(hs.ok());
  CHECK(hs->request() == "CONNECT [::1]:3001 HTTP/1.1\r\nHost: [::1]:3001\r\nUser-Agent: vtunnel\r\n"
                         "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n");
  CHECK(ProxyConnectHandshake::create(proxy("http://p:1"), "bad host", 1).error() == errc::bad_url);
  CHECK(ProxyConnectHandshake::create(proxy("http://p:1"), "x\r\nInjected: 1", 1).error() == errc::bad_url);
}

TEST_CASE("CONNECT answers: 2xx established, bytes past the head kept", "[proxy-connect]") {
  auto hs = ProxyConnectHandshake::create(proxy("http://p:1"), "t", 80).value();
  // Split across reads, including inside the terminating CRLFCRLF.
  auto step = feed(hs, "HTTP/1.1 200 Connection established\r\nVia: x\r");
  CHECK(step.outcome == ProxyConnectHandshake::Outcome::need_more);
  const std::string rest = "\n\r\nSERVER-BYTES";
  step = feed(hs, rest);
  REQUIRE(step.outcome == ProxyConnectHandshake::Outcome::established);
  CHECK(rest.substr(step.consumed) == "SERVER-BYTES");
  CHECK(hs.status() == 200);

  auto hs2 = ProxyConnectHandshake::create(proxy("http://p:1"), "t", 80).value();
  step = feed(hs2, "HTTP/1.0 204 No Content\r\n\r\n");  // any 2xx, HTTP/1.0 too
  CHECK(step.outcome == ProxyConnectHandshake::Outcome::established);
}

TEST_CASE("CONNECT answers: refusals and garbage fail with the status line escaped", "[proxy-connect]") {
  SECTION("407 without credentials") {
    auto hs = ProxyConnectHandshake::create(proxy("http://p:3128"), "t", 80).value();
    auto step = feed(hs, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n");
    REQUIRE(step.outcome == ProxyConnectHandshake::Outcome::failed);
    CHECK(hs.error() == errc::proxy_refused);
    CHECK(hs.status() == 407);
    CHECK_THAT(hs.failure_detail(), Catch::Contains("HTTP/1.1 407 Proxy Authentication Required"));
    CHECK_THAT(hs.failure_detail(), Catch::Contains("wants credentials"));
  }
  SECTION("407 with credentials: rejected, password never in the message") {
    auto hs = ProxyConnectHandshake::create(proxy("http://user:s3cret@p:3128"), "t", 80).value();
    feed(hs, "HTTP/1.1 407 Nope\r\n\r\n");
    CHECK_THAT(hs.failure_detail(), Catch::Contains("credentials rejected"));
    CHECK(hs.failure_detail().find("s3cret") == std::string::npos);
  }
  SECTION("a hostile reason phrase is escaped") {
    auto hs = ProxyConnectHandshake::create(proxy("http://p:1"), "t", 80).value();
    feed(hs, "HTTP/1.1 403 Denied\x1b[31m\xff\r\n\r\n");
    CHECK(hs.error() == errc::proxy_bad_response);  // Beast refuses control characters in the reason
    CHECK(hs.failure_detail().find('\x1b') == std::string::npos);
    CHECK_THAT(hs.failure_detail(), Catch::Contains("403 Denied\\x1b"));
    auto hs2 = ProxyConnectHandshake::create(proxy("http://p:1"), "t", 80).value();
    feed(hs2, "HTTP/1.1 403 Verboten \xff\r\n\r\n");  // obs-text: a valid reason, escaped in the message
    CHECK(hs2.error() == errc::proxy_refused);
    CHECK_THAT(hs2.failure_detail(), Catch::Contains("\"HTTP/1.1 403 Verboten \\xff\""));
  }
  SECTION("1xx and 3xx are not success") {
    for (const char* answer : {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n"}) {
      auto hs = ProxyConnectHandshake::create(proxy("http://p:1"), "t", 80).value();
      CHECK(feed(hs, answer).outcome == ProxyConnectHandshake::Outcome::failed);
      CHECK(hs.error() == errc::proxy_refused);
    }
  }
  SECTION("not HTTP at all") {
    auto hs = ProxyConnectHandshake::create(proxy("http://p:1"), "t", 80).value();
    CHECK(feed(hs, "SSH-2.0-OpenSSH\r\n").outcome == ProxyConnectHandshake::Outcome::failed);
    CHECK(hs.error() == errc::proxy_bad_response);
  }
  SECTION("malformed status line") {
    auto hs = ProxyConnectHandshake::create(proxy("http://p:1"), "t", 80).value();
    CHECK(feed(hs, "HTTP/1.1 2000 OK\r\n\r\n").outcome == ProxyConnectHandshake::Outcome::failed);
    CHECK(hs.error() == errc::proxy_bad_response);
  }
  SECTION("the head is bounded") {
    HandshakeLimits limits;
    limits.max_head_size = 256;
    auto hs = ProxyConnectHandshake::create(proxy("http://p:1"), "t", 80, limits).value();
    CHECK(feed(hs, "HTTP/1.1 200 OK\r\n").outcome == ProxyConnectHandshake::Outcome::need_more);
    const std::string filler = "X-Filler: " + std::string(300, 'a') + "\r\n";
    CHECK(feed(hs, filler).outcome == ProxyConnectHandshake::Outcome::failed);
    CHECK(hs.error() == errc::proxy_bad_response);
    CHECK_THAT(hs.failure_detail(), Catch::Contains("exceeds 256 bytes"));
  }
}
