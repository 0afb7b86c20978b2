#include <catch2/catch.hpp>

#include <string>

#include "ws/accept_key.hpp"
#include "ws/client_handshake.hpp"
#include "ws/error.hpp"
#include "ws/server_handshake.hpp"

using namespace vtunnel;
using namespace vtunnel::ws;

namespace {

constexpr std::string_view kSampleKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 1.3
// RFC 6455 1.3 prints this value; the 'Y' is right (SHA-1 of key + GUID, base64).
constexpr std::string_view kSampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string upgrade_request(std::string_view extra = {}, std::string_view target = "/tunnel") {
  return "GET " + std::string(target) +
         " HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n"
         "Sec-WebSocket-Version: 13\r\n" + std::string(extra) + "\r\n";
}

struct ServerResult {
  ServerHandshake::Outcome outcome;
  std::string response;
  unsigned status;
  std::error_code error;
  std::string leftover;
};

ServerResult serve(std::string_view wire, std::size_t chunk = 1 << 20) {
  ServerHandshake hs;
  ServerResult r{};
  std::size_t pos = 0;
  while (true) {
    const std::size_t n = std::min(chunk, wire.size() - pos);
    const auto step = hs.feed(as_bytes(wire.substr(pos, n)));
    REQUIRE(step.consumed <= n);
    if (step.outcome != ServerHandshake::Outcome::need_more) {
      r.leftover = std::string(wire.substr(pos + step.consumed));
      r.outcome = step.outcome;
      break;
    }
    REQUIRE(step.consumed == n);
    pos += n;
    if (pos == wire.size()) {
      r.outcome = step.outcome;
      return r;
    }
  }
  r.response = hs.response();
  r.status = hs.status();
  r.error = hs.error();
  return r;
}

bool has_line(const std::string& response, std::string_view line) {
  return response.find("\r\n" + std::string(line) + "\r\n") != std::string::npos;
}

}  // namespace

TEST_CASE("accept key: RFC 6455 sample", "[handshake]") {
  REQUIRE(compute_accept_key(kSampleKey) == kSampleAccept);
  REQUIRE(is_valid_client_key(kSampleKey));
  REQUIRE_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));      // 23 chars
  REQUIRE_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ"));       // unpadded
  REQUIRE_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZ!=="));     // bad character
  REQUIRE_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZSBh"));     // 18 bytes
  REQUIRE_FALSE(is_valid_client_key(""));
  std::array<std::uint8_t, 16> sample{};
  std::memcpy(sample.data(), "the sample nonce", 16);
  REQUIRE(encode_client_key(sample) == kSampleKey);
}

TEST_CASE("server upgrades the RFC sample request, split anywhere, keeping later bytes", "[handshake]") {
  const std::string frames = "\x82\x85\x01\x02\x03\x04hello";  // belongs to the WebSocket
  const std::string wire = upgrade_request() + frames;
  for (std::size_t chunk : {1u, 2u, 3u, 4u, 7u, 64u, 1000u}) {
    INFO("chunk " << chunk);
    auto r = serve(wire, chunk);
    REQUIRE(r.outcome == ServerHandshake::Outcome::upgrade);
    REQUIRE(r.status == 101);
    REQUIRE(!r.error);
    REQUIRE(r.response.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
    REQUIRE(has_line(r.response, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    REQUIRE(has_line(r.response, "Upgrade: websocket"));
    REQUIRE(has_line(r.response, "Connection: Upgrade"));
    REQUIRE(r.response.size() >= 4);
    REQUIRE(r.response.substr(r.response.size() - 4) == "\r\n\r\n");
    // Bytes after the head in the same chunk are not consumed (they are frames).
    if (chunk >= wire.size()) REQUIRE(r.leftover == frames);
  }
}

TEST_CASE("server accepts token lists and case variations", "[handshake]") {
  const std::string wire =
      "GET /any/path?x=1 HTTP/1.1\r\nHost: h\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
      "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Extensions: permessage-deflate\r\nX-Extra: y\r\n\r\n";
  auto r = serve(wire);
  REQUIRE(r.outcome == ServerHandshake::Outcome::upgrade);
  REQUIRE(r.response.find("Extensions") == std::string::npos);  // offer declined
  // Connection split over two header lines.
  auto r2 = serve("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
                  "Connection: upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n");
  REQUIRE(r2.outcome == ServerHandshake::Outcome::upgrade);
}

TEST_CASE("server answers /health with 200 ok", "[handshake]") {
  auto r = serve("GET /health HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(r.outcome == ServerHandshake::Outcome::respond);
  REQUIRE(r.status == 200);
  REQUIRE(!r.error);
  REQUIRE(r.response.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  REQUIRE(has_line(r.response, "Content-Length: 2"));
  REQUIRE(has_line(r.response, "Connection: close"));
  REQUIRE(r.response.substr(r.response.size() - 6) == "\r\n\r\nok");
  REQUIRE(serve("GET /health?probe=1 HTTP/1.0\r\n\r\n").status == 200);
  // Even with upgrade headers, /health is not upgraded.
  REQUIRE(serve(upgrade_request({}, "/health")).status == 200);
  auto head = serve("HEAD /health HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(head.status == 200);
  REQUIRE(head.response.substr(head.response.size() - 4) == "\r\n\r\n");
  auto post = serve("POST /health HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(post.status == 405);
  REQUIRE(has_line(post.response, "Allow: GET, HEAD"));
}

TEST_CASE("server refuses bad requests with the right status", "[handshake]") {
  struct Case {
    const char* name;
    std::string wire;
    unsigned status;
    errc error;
  };
  const std::string key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  const std::string version = "Sec-WebSocket-Version: 13\r\n";
  const std::vector<Case> cases = {
      {"plain GET", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 404, errc::not_upgrade_request},
      {"plain POST", "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 405, errc::not_upgrade_request},
      {"upgrade to h2c", "GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n" + key + version + "\r\n", 400, errc::no_upgrade_token},
      {"POST upgrade", "POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + key + version + "\r\n", 405, errc::bad_method},
      {"HTTP/1.0", "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + key + version + "\r\n", 400, errc::bad_http_version},
      {"no Connection", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n" + key + version + "\r\n", 400, errc::no_connection_upgrade},
      {"Connection keep-alive", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n" + key + version + "\r\n", 400, errc::no_connection_upgrade},
      {"Connection upgraded (not a token match)", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgraded\r\n" + key + version + "\r\n", 400, errc::no_connection_upgrade},
      {"no version", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + key + "\r\n", 426, errc::bad_version},
      {"version 8", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + key + "Sec-WebSocket-Version: 8\r\n\r\n", 426, errc::bad_version},
      {"no key", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + version + "\r\n", 400, errc::bad_key},
      {"short key", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAA\r\n" + version + "\r\n", 400, errc::bad_key},
      {"two keys", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + key + key + version + "\r\n", 400, errc::bad_key},
      {"body", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + key + version + "Content-Length: 5\r\n\r\n", 400, errc::bad_http},
      {"garbage", "GET / HTTP/1.1\r\n\x01\x02\r\n\r\n", 400, errc::bad_http},
      {"TLS hello (refused before the head ends)", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9), 400, errc::bad_http},
      {"bare LF line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400, errc::bad_http},
      {"space in header name", "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, errc::bad_http},
      {"head too large", "GET / HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n", 431, errc::head_too_large},
  };
  for (const auto& c : cases) {
    for (std::size_t chunk : {1u, 1000u, 100000u}) {
      INFO(c.name << ", chunk " << chunk);
      auto r = serve(c.wire, chunk);
      REQUIRE(r.outcome == ServerHandshake::Outcome::respond);
      REQUIRE(r.status == c.status);
      REQUIRE(r.error == make_error_code(c.error));
      REQUIRE(r.response.rfind("HTTP/1.1 " + std::to_string(c.status) + " ", 0) == 0);
      REQUIRE(has_line(r.response, "Connection: close"));
      if (c.status == 426) REQUIRE(has_line(r.response, "Sec-WebSocket-Version: 13"));
    }
  }
}

TEST_CASE("server head limit: exactly at the limit passes, one byte over fails", "[handshake]") {
  std::string base = upgrade_request("X-Pad: \r\n");
  std::string pad(kDefaultMaxHeadSize - base.size(), 'p');
  std::string at_limit = upgrade_request("X-Pad: " + pad + "\r\n");
  REQUIRE(at_limit.size() == kDefaultMaxHeadSize);
  REQUIRE(serve(at_limit).outcome == ServerHandshake::Outcome::upgrade);
  REQUIRE(serve(upgrade_request("X-Pad: " + pad + "p\r\n")).status == 431);
}

TEST_CASE("server handshake waits for the whole head", "[handshake]") {
  ServerHandshake hs;
  const std::string wire = upgrade_request();
  auto step = hs.feed(as_bytes(std::string_view(wire).substr(0, wire.size() - 1)));
  REQUIRE(step.outcome == ServerHandshake::Outcome::need_more);
  REQUIRE(hs.feed({}).outcome == ServerHandshake::Outcome::need_more);
  step = hs.feed(as_bytes("\nrest"));
  REQUIRE(step.outcome == ServerHandshake::Outcome::upgrade);
  REQUIRE(step.consumed == 1);
}

namespace {

ClientHandshake make_client(HeaderList extra = {}) {
  std::array<std::uint8_t, 16> sample{};
  std::memcpy(sample.data(), "the sample nonce", 16);
  auto hs = ClientHandshake::create({"server.example.com", "/chat", std::move(extra)}, sample);
  REQUIRE(hs.ok());
  return std::move(*hs);
}

std::string ok_response(std::string_view extra = {}) {
  return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" + std::string(extra) + "\r\n";
}

}  // namespace

TEST_CASE("client request carries the handshake headers and extras", "[handshake]") {
  auto hs = make_client({{"Authorization", "Bearer t"}, {"X-Client", "vtunnel"}});
  const std::string& r = hs.request();
  REQUIRE(r.rfind("GET /chat HTTP/1.1\r\n", 0) == 0);
  REQUIRE(has_line(r, "Host: server.example.com"));
  REQUIRE(has_line(r, "Upgrade: websocket"));
  REQUIRE(has_line(r, "Connection: Upgrade"));
  REQUIRE(has_line(r, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="));
  REQUIRE(has_line(r, "Sec-WebSocket-Version: 13"));
  REQUIRE(has_line(r, "Authorization: Bearer t"));
  REQUIRE(has_line(r, "X-Client: vtunnel"));
  REQUIRE(r.substr(r.size() - 4) == "\r\n\r\n");
  // The server side of ours accepts it.
  auto served = serve(r);
  REQUIRE(served.outcome == ServerHandshake::Outcome::upgrade);
  // ...and our client accepts that answer.
  auto step = hs.feed(as_bytes(served.response));
  REQUIRE(step.outcome == ClientHandshake::Outcome::upgraded);
}

TEST_CASE("client rejects bad extra headers", "[handshake]") {
  std::array<std::uint8_t, 16> key{};
  for (const auto& [name, value] : HeaderList{{"Host", "evil"}, {"sec-websocket-key", "x"},
                                              {"Connection", "close"}, {"X-Inject", "a\r\nHost: b"},
                                              {"Bad Name", "v"}, {"", "v"}}) {
    INFO(name);
    auto hs = ClientHandshake::create({"h", "/", {{name, value}}}, key);
    REQUIRE(hs.error() == errc::bad_extra_header);
  }
  REQUIRE(ClientHandshake::create({"h", "no-slash", {}}, key).error() == errc::bad_url);
  REQUIRE(ClientHandshake::create({"h", "/a b", {}}, key).error() == errc::bad_url);
  REQUIRE(ClientHandshake::create({"h\r\nX: y", "/", {}}, key).error() == errc::bad_url);
}

TEST_CASE("client accepts a valid 101, split anywhere, keeping later bytes", "[handshake]") {
  const std::string frames = "\x81\x02hi";
  const std::string wire = ok_response() + frames;
  for (std::size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    auto hs = make_client();
    std::size_t pos = 0;
    ClientHandshake::Step step;
    while (true) {
      const std::size_t n = std::min(chunk, wire.size() - pos);
      step = hs.feed(as_bytes(std::string_view(wire).substr(pos, n)));
      if (step.outcome != ClientHandshake::Outcome::need_more) break;
      pos += n;
    }
    REQUIRE(step.outcome == ClientHandshake::Outcome::upgraded);
    REQUIRE(wire.substr(pos + step.consumed) == frames);
  }
}

TEST_CASE("client rejects bad responses with clear errors", "[handshake]") {
  struct Case {
    const char* name;
    std::string wire;
    errc error;
    const char* detail;
  };
  const std::vector<Case> cases = {
      {"404", "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n", errc::unexpected_status,
       "server answered 404 Not Found instead of 101 Switching Protocols"},
      {"200", "HTTP/1.1 200 OK\r\n\r\n", errc::unexpected_status, "server answered 200 OK"},
      {"426", "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 8\r\n\r\n", errc::unexpected_status,
       "(it wants Sec-WebSocket-Version 8)"},
      {"hostile reason", "HTTP/1.1 403 Go\xff\"away\r\n\r\n", errc::unexpected_status, "Go\\xff\\x22away"},
      {"control byte in reason", "HTTP/1.1 403 Go\x1b[31maway\r\n\r\n", errc::bad_http, ""},
      {"wrong accept", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", errc::bad_accept, ""},
      {"no accept", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
       errc::bad_accept, ""},
      {"no upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", errc::no_upgrade_token, ""},
      {"no connection", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", errc::no_connection_upgrade, ""},
      {"extension", ok_response("Sec-WebSocket-Extensions: permessage-deflate\r\n"), errc::unrequested_extension, ""},
      {"subprotocol", ok_response("Sec-WebSocket-Protocol: chat\r\n"), errc::unrequested_extension, ""},
      {"not HTTP", "SSH-2.0-OpenSSH_9.2\r\n\r\n", errc::bad_http, "not an HTTP response"},
      {"not HTTP, early", "SSH-2.0-", errc::bad_http, "not an HTTP response"},
      {"bad status line", "HTTP/1.1 abc\r\n\r\n", errc::bad_http, "not a valid HTTP response"},
      {"huge head", "HTTP/1.1 101 Switching Protocols\r\nX: " + std::string(10000, 'x'), errc::head_too_large,
       "exceeds 8192 bytes"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto hs = make_client();
    auto step = hs.feed(as_bytes(c.wire));
    REQUIRE(step.outcome == ClientHandshake::Outcome::failed);
    REQUIRE(hs.error() == make_error_code(c.error));
    REQUIRE(hs.failure_detail().find(c.detail) != std::string::npos);
  }
}

TEST_CASE("client accepts a subprotocol it offered", "[handshake]") {
  auto hs = make_client({{"Sec-WebSocket-Protocol", "chat"}});
  REQUIRE(hs.feed(as_bytes(ok_response("Sec-WebSocket-Protocol: chat\r\n"))).outcome ==
          ClientHandshake::Outcome::upgraded);
}
