#include <catch2/catch.hpp>

#include "tunnel/host_rewriter.hpp"

using namespace vtunnel;

namespace {
// Feeds `input` in pieces of `piece` bytes and returns everything the rewriter emitted.
std::string run(std::string_view input, std::size_t piece, std::string host = "example.com") {
  HostRewriter r(std::move(host));
  Bytes out;
  for (std::size_t i = 0; i < input.size(); i += piece) r.feed(as_bytes(input.substr(i, piece)), out);
  r.finish(out);
  return std::string(as_string(out));
}
}  // namespace

TEST_CASE("HostRewriter rewrites Host in every request head, however the bytes are split", "[tunnel]") {
  std::string in =
      "GET / HTTP/1.1\r\nHost: 127.0.0.1:8085\r\nAccept: */*\r\n\r\n"
      "POST /x HTTP/1.1\r\nhost: 127.0.0.1:8085\r\nContent-Length: 11\r\n\r\nHost: body!"
      "GET /again HTTP/1.1\r\nHOST:127.0.0.1\r\n\r\n";
  std::string want =
      "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
      "POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\nHost: body!"
      "GET /again HTTP/1.1\r\nHost: example.com\r\n\r\n";
  for (std::size_t piece : {1, 2, 3, 7, 16, 64, 4096}) {
    INFO("piece " << piece);
    REQUIRE(run(in, piece) == want);
  }
}

TEST_CASE("HostRewriter passes through what it does not understand, byte for byte", "[tunnel]") {
  // chunked body: the first head is rewritten, then everything passes unchanged
  std::string chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHost:\r\n0\r\n\r\n";
  REQUIRE(run(chunked, 3) == "POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHost:\r\n0\r\n\r\n");
  // not HTTP at all
  std::string binary("\x16\x03\x01\x02\x00Host: x\r\n\r\n", 17);
  REQUIRE(run(binary, 1) == binary);
  std::string lower = "get / HTTP/1.1\r\nHost: a\r\n\r\n";
  REQUIRE(run(lower, 5) == lower);
  // a head larger than the limit
  std::string huge = "GET / HTTP/1.1\r\nX: " + std::string(HostRewriter::kMaxHead, 'a') + "\r\nHost: a\r\n\r\n";
  REQUIRE(run(huge, 1000) == huge);
  // an incomplete head at the end goes out unchanged
  REQUIRE(run("GET / HTTP/1.1\r\nHost: a\r\n", 4) == "GET / HTTP/1.1\r\nHost: a\r\n");
}

TEST_CASE("HostRewriter emits nothing until a head is complete, then everything", "[tunnel]") {
  HostRewriter r("h");
  Bytes out;
  r.feed(as_bytes("GET / HTTP/1.1\r\nHo"), out);
  REQUIRE(out.empty());
  r.feed(as_bytes("st: x\r\n\r\n"), out);
  REQUIRE(as_string(out) == "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
}
