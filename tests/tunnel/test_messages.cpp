#include <catch2/catch.hpp>

#include "tunnel/errc.hpp"
#include "tunnel/messages.hpp"

using namespace vtunnel;

TEST_CASE("listen request encodes like Go's encoding/json and decodes strictly", "[tunnel]") {
  REQUIRE(encode_listen_request({9000, "localhost:3000"}) == R"({"port":9000,"local_addr":"localhost:3000"})");
  REQUIRE(encode_listen_request({8083, ""}) == R"({"port":8083})");
  REQUIRE(encode_listen_request({1, "a\"b"}) == R"({"port":1,"local_addr":"a\"b"})");

  auto r = decode_listen_request(as_bytes(R"({"port":8083,"local_addr":"gitlab.example.com:443"})"));
  REQUIRE(r.ok());
  REQUIRE(r->port == 8083);
  REQUIRE(r->local_addr == "gitlab.example.com:443");
  auto r2 = decode_listen_request(as_bytes(R"({"local_addr":"x:1","port":1,"extra":true})"));
  REQUIRE(r2.ok());

  REQUIRE(decode_listen_request(as_bytes("")).error() == tunnel_errc::bad_json);
  REQUIRE(decode_listen_request(as_bytes("{")).error() == tunnel_errc::bad_json);
  REQUIRE(decode_listen_request(as_bytes("[1]")).error() == tunnel_errc::bad_json);
  REQUIRE(decode_listen_request(as_bytes(R"({"port":"80"})")).error() == tunnel_errc::bad_port);
  REQUIRE(decode_listen_request(as_bytes(R"({"port":0})")).error() == tunnel_errc::bad_port);
  REQUIRE(decode_listen_request(as_bytes(R"({"port":65536})")).error() == tunnel_errc::bad_port);
  REQUIRE(decode_listen_request(as_bytes(R"({"port":-1})")).error() == tunnel_errc::bad_port);
  REQUIRE(decode_listen_request(as_bytes(R"({"port":1.5})")).error() == tunnel_errc::bad_port);
  REQUIRE(decode_listen_request(as_bytes(R"({"port":1,"local_addr":5})")).error() == tunnel_errc::bad_json);
  std::string huge = R"({"port":1,"local_addr":")" + std::string(5000, 'a') + "\"}";
  REQUIRE(decode_listen_request(as_bytes(huge)).error() == tunnel_errc::message_too_large);
  std::string deep(3000, '[');
  REQUIRE(decode_listen_request(as_bytes(deep)).error() == tunnel_errc::bad_json);
}

TEST_CASE("tunnel channel data", "[tunnel]") {
  REQUIRE(encode_tunnel_channel_data({9000}) == R"({"port":9000})");
  REQUIRE(decode_tunnel_channel_data(as_bytes(R"({"port":9000})"))->port == 9000);
  REQUIRE_FALSE(decode_tunnel_channel_data(as_bytes("not json")).ok());
}

TEST_CASE("forward specs", "[tunnel]") {
  auto f = parse_forward("9000=localhost:3000");
  REQUIRE(f.ok());
  REQUIRE((f->remote_port == 9000 && f->host == "localhost" && f->port == 3000 && !f->tls));
  REQUIRE(f->local_addr == "localhost:3000");
  auto t = parse_forward("8085=tls://www.google.com:443");
  REQUIRE(t.ok());
  REQUIRE((t->tls && t->host == "www.google.com" && t->port == 443));
  REQUIRE(t->local_addr == "tls://www.google.com:443");
  auto v6 = parse_forward("1=[::1]:22");
  REQUIRE(v6.ok());
  REQUIRE(v6->host == "::1");

  for (const char* bad : {"", "9000", "=localhost:1", "9000=", "abc=localhost:1", "9000=localhost",
                          "9000=localhost:0", "9000=:80", "9000=tls://", "9000=localhost:99999",
                          "99999999999999999999=localhost:1"}) {
    INFO(bad);
    REQUIRE_FALSE(parse_forward(bad).ok());
  }
  REQUIRE(parse_forward("0=localhost:1").error() == tunnel_errc::bad_port);
  REQUIRE(parse_forward("70000=localhost:1").error() == tunnel_errc::bad_port);
}
