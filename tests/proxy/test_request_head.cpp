// Byte-vector tests of the sans-I/O proxy pieces: head parser, authority, chunked scanner,
// domain table.
#include <catch2/catch.hpp>

#include <string>

#include "proxy/chunked_body.hpp"
#include "proxy/domain_table.hpp"
#include "proxy/error.hpp"
#include "proxy/request_head.hpp"

using namespace vtunnel;
using namespace vtunnel::proxy;
using Status = HeadParse::Status;

namespace {
HeadParse parse(std::string_view s) { return parse_request_head(as_bytes(s)); }
bool has_line(const std::string& head, std::string_view line) {
  return head.find(std::string(line) + "\r\n") != std::string::npos;
}
}  // namespace

TEST_CASE("head: CONNECT authority-form, default port 443, bytes past the head", "[proxy]") {
  std::string in = "CONNECT App.Test:8443 HTTP/1.1\r\nHost: app.test:8443\r\n\r\n\x16\x03\x01";
  auto p = parse(in);
  REQUIRE(p.status == Status::complete);
  REQUIRE(p.request.kind == RequestKind::connect);
  REQUIRE(p.request.target.host == "app.test");
  REQUIRE(p.request.target.port == 8443);
  REQUIRE(p.request.head_size == in.size() - 3);

  auto q = parse("CONNECT example.com HTTP/1.1\r\n\r\n");
  REQUIRE(q.status == Status::complete);
  REQUIRE(q.request.target.to_string() == "example.com:443");
}

TEST_CASE("head: IPv6 literals", "[proxy]") {
  auto p = parse("CONNECT [::1]:9000 HTTP/1.1\r\n\r\n");
  REQUIRE(p.status == Status::complete);
  REQUIRE(p.request.target.host == "::1");
  REQUIRE(p.request.target.port == 9000);
  REQUIRE(p.request.target.to_string() == "[::1]:9000");

  auto g = parse("GET http://[2001:db8::1]/x HTTP/1.1\r\n\r\n");
  REQUIRE(g.status == Status::complete);
  REQUIRE(g.request.target.to_string() == "[2001:db8::1]:80");
  REQUIRE(has_line(g.request.forward_head, "Host: [2001:db8::1]"));

  REQUIRE(parse("CONNECT [::1 HTTP/1.1\r\n\r\n").status == Status::failed);
  REQUIRE(parse("CONNECT [zz::1]:80 HTTP/1.1\r\n\r\n").status == Status::failed);
  REQUIRE(parse("CONNECT ::1:80 HTTP/1.1\r\n\r\n").status == Status::failed);  // unbracketed
}

TEST_CASE("head: split at every byte boundary needs more, then completes", "[proxy]") {
  std::string in = "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
  for (std::size_t cut = 0; cut < in.size(); ++cut) {
    auto p = parse(std::string_view(in).substr(0, cut));
    INFO("cut at " << cut);
    REQUIRE(p.status == Status::need_more);
  }
  auto p = parse(in);
  REQUIRE(p.status == Status::complete);
  REQUIRE(p.request.head_size == in.size());
}

TEST_CASE("head: absolute-form is rewritten to origin-form without hop-by-hop fields", "[proxy]") {
  auto p = parse(
      "POST http://Example.COM/submit?q=1 HTTP/1.1\r\n"
      "Host: wrong.example\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "Proxy-Authorization: Basic c2VjcmV0\r\n"
      "Connection: keep-alive, X-Drop-Me\r\n"
      "Keep-Alive: timeout=5\r\n"
      "TE: trailers\r\n"
      "Trailer: X-T\r\n"
      "Upgrade: h2c\r\n"
      "X-Drop-Me: 1\r\n"
      "X-Keep-Me: 2\r\n"
      "Content-Length: 5\r\n"
      "\r\n"
      "hello");
  REQUIRE(p.status == Status::complete);
  const auto& r = p.request;
  REQUIRE(r.kind == RequestKind::forward);
  REQUIRE(r.target.to_string() == "example.com:80");
  REQUIRE(r.body == BodyFraming::content_length);
  REQUIRE(r.content_length == 5);
  const std::string& h = r.forward_head;
  REQUIRE(h.rfind("POST /submit?q=1 HTTP/1.1\r\n", 0) == 0);
  REQUIRE(has_line(h, "Host: example.com"));
  REQUIRE(has_line(h, "X-Keep-Me: 2"));
  REQUIRE(has_line(h, "Content-Length: 5"));
  REQUIRE(has_line(h, "Connection: close"));
  for (auto gone : {"wrong.example", "Proxy-", "keep-alive", "Keep-Alive", "X-Drop-Me", "TE:", "Trailer", "Upgrade"}) {
    INFO(gone);
    REQUIRE(h.find(gone) == std::string::npos);
  }
  REQUIRE(h.size() >= 4);
  REQUIRE(h.substr(h.size() - 4) == "\r\n\r\n");
}

TEST_CASE("head: origin path defaults and ports", "[proxy]") {
  auto a = parse("GET http://example.com HTTP/1.1\r\n\r\n");
  REQUIRE(a.status == Status::complete);
  REQUIRE(a.request.forward_head.rfind("GET / HTTP/1.1\r\n", 0) == 0);
  auto b = parse("GET http://example.com:81?x HTTP/1.0\r\n\r\n");
  REQUIRE(b.status == Status::complete);
  REQUIRE(b.request.forward_head.rfind("GET /?x HTTP/1.0\r\n", 0) == 0);
  REQUIRE(has_line(b.request.forward_head, "Host: example.com:81"));
  REQUIRE(b.request.body == BodyFraming::none);
}

TEST_CASE("head: chunked bodies keep chunked framing; other codings and ambiguity refused", "[proxy]") {
  auto c = parse("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  REQUIRE(c.status == Status::complete);
  REQUIRE(c.request.body == BodyFraming::chunked);
  REQUIRE(has_line(c.request.forward_head, "Transfer-Encoding: chunked"));

  auto g = parse("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
  REQUIRE(g.status == Status::failed);
  REQUIRE(g.error == errc::unsupported_transfer_encoding);

  auto both = parse("POST http://h/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
  REQUIRE(both.status == Status::failed);

  auto two = parse("POST http://h/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n");
  REQUIRE(two.status == Status::failed);
  REQUIRE(two.error == errc::malformed_head);
}

TEST_CASE("head: no host, bad scheme, userinfo, bad ports", "[proxy]") {
  auto origin = parse("GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n");
  REQUIRE(origin.status == Status::failed);
  REQUIRE(origin.error == errc::missing_host);
  REQUIRE(std::string(error_response(errc::missing_host)) == "HTTP/1.1 400 Bad Request\r\n\r\n");

  auto empty = parse("GET http:///x HTTP/1.1\r\n\r\n");
  REQUIRE(empty.status == Status::failed);
  REQUIRE(empty.error == errc::missing_host);

  REQUIRE(parse("GET https://example.com/ HTTP/1.1\r\n\r\n").error == errc::unsupported_scheme);
  REQUIRE(parse("GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n").error == errc::bad_authority);
  REQUIRE(parse("CONNECT user@example.com:443 HTTP/1.1\r\n\r\n").error == errc::bad_authority);
  REQUIRE(parse("CONNECT example.com:0 HTTP/1.1\r\n\r\n").error == errc::bad_authority);
  REQUIRE(parse("CONNECT example.com:65536 HTTP/1.1\r\n\r\n").error == errc::bad_authority);
  REQUIRE(parse("CONNECT example.com:44x HTTP/1.1\r\n\r\n").error == errc::bad_authority);
  REQUIRE(parse("CONNECT example.com/path HTTP/1.1\r\n\r\n").error == errc::bad_authority);
  REQUIRE(parse("CONNECT :443 HTTP/1.1\r\n\r\n").error == errc::missing_host);
  REQUIRE(parse("CONNECT exa%mple.com:443 HTTP/1.1\r\n\r\n").error == errc::bad_authority);
}

TEST_CASE("head: too large is refused at the named limit, not before", "[proxy]") {
  std::string big = "GET http://h/ HTTP/1.1\r\nX: " + std::string(kMaxRequestHeadBytes, 'a') + "\r\n\r\n";
  auto p = parse(big);
  REQUIRE(p.status == Status::failed);
  REQUIRE(p.error == errc::head_too_large);
  REQUIRE(std::string(error_response(errc::head_too_large)).rfind("HTTP/1.1 431 ", 0) == 0);
  // A head that never ends is refused once the limit's worth of bytes is buffered.
  auto endless = parse(std::string("GET http://h/ HTTP/1.1\r\nX: ") + std::string(kMaxRequestHeadBytes, 'b'));
  REQUIRE(endless.status == Status::failed);
  REQUIRE(endless.error == errc::head_too_large);
  // Just under the limit is fine.
  std::string ok = "GET http://h/ HTTP/1.1\r\nX: ";
  ok += std::string(kMaxRequestHeadBytes - ok.size() - 4, 'c') + "\r\n\r\n";
  REQUIRE(ok.size() == kMaxRequestHeadBytes);
  REQUIRE(parse(ok).status == Status::complete);
}

TEST_CASE("head: garbage and binary input fail cleanly", "[proxy]") {
  for (std::string_view g : {
           std::string_view("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),  // a TLS ClientHello
           std::string_view("GARBAGE\r\n\r\n"),
           std::string_view("GET  HTTP/1.1\r\n\r\n"),
           std::string_view("GET http://h/ HTTP/9.9\r\n\r\n"),
           std::string_view("GET http://h/ HTTP/1.1\r\nBad Header\r\n\r\n"),
           std::string_view("GET http://h/ HTTP/1.1\r\nX: a\0b\r\n\r\n", 32),
           std::string_view("\r\n\r\n\r\n"),
       }) {
    auto p = parse(g);
    INFO(std::string(g));
    REQUIRE(p.status == Status::failed);
    REQUIRE(p.error == errc::malformed_head);
    REQUIRE(std::string(error_response(errc::malformed_head)) == "HTTP/1.1 400 Bad Request\r\n\r\n");
  }
}

TEST_CASE("chunked scanner: finds the end of the body across splits, forwards trailers", "[proxy]") {
  std::string body = "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
  std::string after = "NEXT REQUEST";
  std::string all = body + after;
  for (std::size_t step = 1; step <= all.size(); ++step) {
    ChunkedBodyScanner s;
    std::size_t consumed = 0;
    for (std::size_t off = 0; off < all.size() && !s.done(); off += step) {
      auto piece = as_bytes(std::string_view(all).substr(off, step));
      auto n = s.scan(piece);
      REQUIRE(n.ok());
      consumed += *n;
    }
    INFO("step " << step);
    REQUIRE(s.done());
    REQUIRE(consumed == body.size());
  }
}

TEST_CASE("chunked scanner: framing errors and limits", "[proxy]") {
  for (std::string_view bad : {"x\r\n", "5\r\nhelloX\r\n", "5\nhello\r\n", "\r\n", "0\r\nX\n",
                               "FFFFFFFFFFFFFFFFF\r\n", "-1\r\n"}) {
    ChunkedBodyScanner s;
    INFO(std::string(bad));
    auto n = s.scan(as_bytes(bad));
    REQUIRE_FALSE(n.ok());
    REQUIRE(n.error() == errc::bad_chunked_body);
  }
  ChunkedBodyScanner ext;
  std::string long_ext = "1;" + std::string(kMaxChunkLineBytes, 'e');
  REQUIRE_FALSE(ext.scan(as_bytes(long_ext)).ok());
  ChunkedBodyScanner tr;
  std::string long_trailer = "0\r\nX: " + std::string(kMaxTrailerBytes, 't');
  REQUIRE_FALSE(tr.scan(as_bytes(long_trailer)).ok());
  ChunkedBodyScanner big;  // a 2^60-byte chunk is fine to announce; it is streamed
  auto n = big.scan(as_bytes("1000000000000000\r\nabc"));
  REQUIRE(n.ok());
  REQUIRE(*n == 21);
  REQUIRE_FALSE(big.done());
}

TEST_CASE("domain table: normalised keys, default port, remove, bad input", "[proxy]") {
  DomainTable t;
  REQUIRE(t.set("GitLab.Example.com:443", "127.0.0.1:8083").ok());
  REQUIRE(t.set("plain.test:80", "127.0.0.1:8084").ok());
  REQUIRE(t.set("v6.test", "[::1]:8085").ok());
  REQUIRE(t.lookup("gitlab.example.com:443") == std::optional<std::string>("127.0.0.1:8083"));
  REQUIRE(t.lookup("GITLAB.EXAMPLE.COM") == std::optional<std::string>("127.0.0.1:8083"));
  REQUIRE_FALSE(t.lookup("gitlab.example.com:80").has_value());
  REQUIRE(t.lookup(Authority{"plain.test", 80}) == std::optional<std::string>("127.0.0.1:8084"));
  REQUIRE(t.lookup("v6.test:443") == std::optional<std::string>("[::1]:8085"));
  REQUIRE(t.set("gitlab.example.com", "127.0.0.1:9999").ok());  // replaces
  REQUIRE(t.lookup("gitlab.example.com:443") == std::optional<std::string>("127.0.0.1:9999"));
  REQUIRE(t.size() == 3);
  REQUIRE(t.remove("Gitlab.example.com:443"));
  REQUIRE_FALSE(t.remove("gitlab.example.com:443"));
  REQUIRE_FALSE(t.lookup("gitlab.example.com:443").has_value());
  REQUIRE_FALSE(t.set("bad host:443", "127.0.0.1:1").ok());
  REQUIRE_FALSE(t.set("ok.test:443", "127.0.0.1").ok());  // target needs a port
  REQUIRE_FALSE(t.set("ok.test:443", "").ok());
  REQUIRE_FALSE(t.lookup("bad host").has_value());
  REQUIRE(t.size() == 2);
}

TEST_CASE("head and chunked scanner: mutated inputs never crash or over-consume", "[proxy]") {
  // A deterministic stand-in for the fuzz target: mutate valid heads and bodies byte by byte
  // and check the invariants (run under ASan/UBSan in the sanitizer build).
  const std::string seeds[] = {
      "CONNECT app.test:443 HTTP/1.1\r\nHost: app.test:443\r\n\r\nxyz",
      "POST http://h:81/p?q HTTP/1.1\r\nConnection: a, b\r\na: 1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "GET http://[::1]:8080/ HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
  };
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  int complete = 0, failed = 0;
  for (const auto& seed : seeds) {
    for (int round = 0; round < 3000; ++round) {
      std::string s = seed;
      int edits = 1 + int(next() % 4);
      for (int e = 0; e < edits; ++e) {
        std::size_t pos = next() % s.size();
        switch (next() % 3) {
          case 0: s[pos] = char(next()); break;
          case 1: s.erase(pos, 1 + next() % 3); break;
          default: s.insert(pos, 1, "\r\n: ;[]@/0\x00\xff"[next() % 12]); break;
        }
        if (s.empty()) s.push_back('X');  // not s = "X": GCC 12 -Wrestrict false positive
      }
      auto p = parse(s);
      if (p.status == Status::complete) {
        ++complete;
        REQUIRE(p.request.head_size <= s.size());
        REQUIRE(p.request.target.port != 0);
        REQUIRE_FALSE(p.request.target.host.empty());
        if (p.request.kind == RequestKind::forward) {
          // The rewritten head is itself a well-formed head that parses the same way.
          REQUIRE(p.request.forward_head.find("\r\n\r\n") == p.request.forward_head.size() - 4);
        }
        ChunkedBodyScanner scanner;
        auto rest = as_bytes(std::string_view(s).substr(p.request.head_size));
        auto n = scanner.scan(rest);
        if (n.ok()) REQUIRE(*n <= rest.size());
      } else if (p.status == Status::failed) {
        ++failed;
        REQUIRE(p.error);
      }
    }
  }
  REQUIRE(complete > 100);
  REQUIRE(failed > 100);
}
