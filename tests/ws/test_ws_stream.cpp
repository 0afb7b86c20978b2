// WsStream and the handshake drivers over a scripted transport (no event loop needed).
#include <catch2/catch.hpp>

#include <cstring>

#include "ws/frame_test_util.hpp"
#include "ws/server_handshake.hpp"
#include "ws/sync_streams.hpp"
#include "ws/ws_handshake.hpp"
#include "ws/ws_stream.hpp"

using namespace vtunnel;
using namespace vtunnel::ws;
using namespace vtunnel::ws::test;
using vtunnel::test::run_sync;
using vtunnel::test::ScriptedStream;
using vtunnel::test::StreamRef;

namespace {

struct Harness {
  ScriptedStream* transport;
  std::unique_ptr<WsStream> ws;
};

Harness make(Role role, Bytes input, std::size_t read_chunk = 1 << 20, WsStreamOptions options = {}) {
  auto t = std::make_unique<ScriptedStream>();
  t->input = std::move(input);
  t->read_chunk = read_chunk;
  ScriptedStream* raw = t.get();
  return {raw, std::make_unique<WsStream>(std::move(t), role, ByteSpan{}, options)};
}

// Reads until an error; returns the data and that error.
std::pair<std::string, std::error_code> read_all(WsStream& ws, std::size_t buf_size) {
  std::string data;
  Bytes buf(buf_size);
  while (true) {
    Result<std::size_t> got = run_sync(ws.read_some(buf));
    if (!got) return {data, got.error()};
    REQUIRE(*got > 0);
    data.append(reinterpret_cast<const char*>(buf.data()), *got);
  }
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) >> 3);
  return s;
}

}  // namespace

TEST_CASE("WsStream reads binary payloads as one stream, whatever the framing", "[ws_stream]") {
  const std::string a = pattern(10, 1), b = pattern(70000, 2), c = pattern(300, 3), d = pattern(5, 4);
  Bytes wire = make_frame(Opcode::binary, a, std::nullopt);
  append(wire, make_frame(Opcode::binary, b, std::nullopt, false));
  append(wire, make_frame(Opcode::ping, "p1", std::nullopt));
  append(wire, make_frame(Opcode::continuation, c, std::nullopt, true));
  append(wire, make_frame(Opcode::binary, "", std::nullopt));
  append(wire, make_frame(Opcode::pong, "ignored", std::nullopt));
  append(wire, make_frame(Opcode::binary, d, std::nullopt));
  for (std::size_t chunk : {1u, 3u, 1000u, 65536u, 1u << 20}) {
    for (std::size_t buf_size : {1u, 7u, 4096u, 100000u}) {
      if (chunk < 4 && buf_size < 4096) continue;  // slow and adds nothing
      INFO("chunk " << chunk << " buffer " << buf_size);
      auto h = make(Role::client, wire, chunk);
      auto [data, ec] = read_all(*h.ws, buf_size);
      REQUIRE(ec == vtunnel::errc::eof);  // transport EOF between frames
      REQUIRE(data == a + b + c + d);
      auto sent = parse_all(Role::server, h.transport->written);  // masked, as a client must
      REQUIRE(!sent.error);
      REQUIRE(sent.controls.size() == 1);
      REQUIRE(sent.controls[0].opcode == Opcode::pong);
      REQUIRE(sent.controls[0].payload == "p1");
    }
  }
}

TEST_CASE("WsStream server unmasks client frames in place", "[ws_stream]") {
  const std::string a = pattern(200000, 9);
  Bytes wire = make_frame(Opcode::binary, a, kKey);
  auto h = make(Role::server, wire, 7000);
  auto [data, ec] = read_all(*h.ws, 50000);
  REQUIRE(data == a);
  REQUIRE(ec == vtunnel::errc::eof);
}

TEST_CASE("WsStream write_all: one message per call; server gathers, client masks", "[ws_stream]") {
  const std::string p1 = "first ", p2 = pattern(1000, 5), p3 = " last";
  const ByteSpan spans[] = {as_bytes(p1), as_bytes(p2), as_bytes(p3)};
  for (Role role : {Role::server, Role::client}) {
    auto h = make(role, {});
    REQUIRE(run_sync(h.ws->write_all(std::span<const ByteSpan>(spans))).ok());
    REQUIRE(h.transport->writes == 1);  // header and payload in one transport write
    auto sent = parse_all(role == Role::server ? Role::client : Role::server, h.transport->written);
    REQUIRE(!sent.error);
    REQUIRE(sent.headers == 1);
    REQUIRE(sent.messages.size() == 1);
    REQUIRE(sent.messages[0].opcode == Opcode::binary);
    REQUIRE(sent.messages[0].payload == p1 + p2 + p3);
  }
}

TEST_CASE("WsStream splits writes above max_outgoing_message", "[ws_stream]") {
  WsStreamOptions options;
  options.max_outgoing_message = 1000;
  auto h = make(Role::client, {}, 1 << 20, options);
  const std::string big = pattern(2500, 7);
  REQUIRE(run_sync(h.ws->write_all(as_bytes(big))).ok());
  auto sent = parse_all(Role::server, h.transport->written);
  REQUIRE(sent.messages.size() == 3);
  REQUIRE(sent.messages[0].payload.size() == 1000);
  REQUIRE(sent.messages[2].payload.size() == 500);
  REQUIRE(sent.messages[0].payload + sent.messages[1].payload + sent.messages[2].payload == big);
}

TEST_CASE("WsStream write_message_in_place uses the caller's headroom", "[ws_stream]") {
  for (Role role : {Role::server, Role::client}) {
    auto h = make(role, {});
    const std::string payload = pattern(70000, 11);
    Bytes buffer(WsStream::kHeadroom + payload.size());
    std::memcpy(buffer.data() + WsStream::kHeadroom, payload.data(), payload.size());
    REQUIRE(run_sync(h.ws->write_message_in_place(buffer, WsStream::kHeadroom)).ok());
    REQUIRE(h.transport->writes == 1);
    REQUIRE(h.transport->written.size() == payload.size() + frame_header_size(payload.size(), role == Role::client));
    auto sent = parse_all(role == Role::server ? Role::client : Role::server, h.transport->written);
    REQUIRE(sent.messages.at(0).payload == payload);
  }
}

TEST_CASE("WsStream write_all_in_place: header in the headroom, masked in place, split, one write", "[ws_stream]") {
  WsStreamOptions options;
  options.max_outgoing_message = 100000;
  for (Role role : {Role::server, Role::client}) {
    for (std::size_t headroom : {std::size_t{0}, std::size_t{3}, WsStream::kHeadroom}) {
      INFO("headroom " << headroom);
      auto h = make(role, {}, 1 << 20, options);
      const std::string payload = pattern(250000, 13);
      Bytes buffer(headroom + payload.size());
      std::memcpy(buffer.data() + headroom, payload.data(), payload.size());
      REQUIRE(run_sync(h.ws->write_all_in_place(buffer, headroom)).ok());
      REQUIRE(h.transport->writes == 1);  // every frame in one gathered transport write
      auto sent = parse_all(role == Role::server ? Role::client : Role::server, h.transport->written);
      REQUIRE(!sent.error);
      REQUIRE(sent.messages.size() == 3);
      REQUIRE(sent.messages[0].payload.size() == 100000);
      REQUIRE(sent.messages[0].payload + sent.messages[1].payload + sent.messages[2].payload == payload);
    }
  }
}

TEST_CASE("WsStream reads large frames then small ones (header-only reads between large frames)", "[ws_stream]") {
  const std::string big1 = pattern(300000, 21), big2 = pattern(70000, 22), small = pattern(100, 23),
                    big3 = pattern(200000, 24), tiny = pattern(3, 25);
  for (Role role : {Role::server, Role::client}) {
    const std::optional<MaskKey> key = role == Role::server ? std::optional<MaskKey>(kKey) : std::nullopt;
    Bytes wire = make_frame(Opcode::binary, big1, key);
    append(wire, make_frame(Opcode::binary, big2, key));
    append(wire, make_frame(Opcode::ping, "p", key));
    append(wire, make_frame(Opcode::binary, small, key));
    append(wire, make_frame(Opcode::binary, small, key));
    append(wire, make_frame(Opcode::binary, big3, key));
    append(wire, make_frame(Opcode::binary, tiny, key));
    for (std::size_t chunk : {1000u, 65536u, 1u << 20}) {
      for (std::size_t buf_size : {7u, 65536u, 400000u}) {
        INFO("chunk " << chunk << " buffer " << buf_size);
        auto h = make(role, wire, chunk);
        auto [data, ec] = read_all(*h.ws, buf_size);
        REQUIRE(ec == vtunnel::errc::eof);
        REQUIRE(data == big1 + big2 + small + small + big3 + tiny);
      }
    }
  }
}

TEST_CASE("WsStream: the peer's close reads EOF, is echoed, and stops writes", "[ws_stream]") {
  Bytes wire = make_frame(Opcode::binary, "tail", std::nullopt);
  append(wire, make_frame(Opcode::close, Bytes{0x0F, 0xA0, 'b', 'y', 'e'}, std::nullopt));  // 4000
  auto h = make(Role::client, wire);
  auto [data, ec] = read_all(*h.ws, 100);
  REQUIRE(data == "tail");
  REQUIRE(ec == vtunnel::errc::eof);
  REQUIRE(h.ws->peer_close()->code == 4000);
  REQUIRE(h.ws->peer_close()->reason == "bye");
  auto sent = parse_all(Role::server, h.transport->written);
  REQUIRE(sent.controls.at(0).opcode == Opcode::close);
  REQUIRE(sent.controls.at(0).close.code == 4000);
  REQUIRE(run_sync(h.ws->write_all(as_bytes("late"))).error() == ws::errc::closed);
}

TEST_CASE("WsStream shutdown_write sends close 1000 and keeps reading", "[ws_stream]") {
  Bytes wire = make_frame(Opcode::binary, "still coming", kKey);
  append(wire, make_frame(Opcode::close, Bytes{0x03, 0xE8}, kKey));
  auto h = make(Role::server, wire);
  REQUIRE(run_sync(h.ws->shutdown_write()).ok());
  auto sent = parse_all(Role::client, h.transport->written);
  REQUIRE(sent.controls.at(0).close.code == 1000);
  REQUIRE(run_sync(h.ws->write_all(as_bytes("x"))).error() == ws::errc::closed);
  auto [data, ec] = read_all(*h.ws, 100);
  REQUIRE(data == "still coming");
  REQUIRE(ec == vtunnel::errc::eof);
  REQUIRE(parse_all(Role::client, h.transport->written).controls.size() == 1);  // no second close
}

TEST_CASE("WsStream close_handshake sends the code, drains, closes", "[ws_stream]") {
  Bytes wire = make_frame(Opcode::binary, "drained", std::nullopt);
  append(wire, make_frame(Opcode::close, Bytes{0x03, 0xE8}, std::nullopt));
  auto h = make(Role::client, wire);
  REQUIRE(run_sync(h.ws->close_handshake(4001, "shutting down")).ok());
  REQUIRE(h.transport->closed);
  auto sent = parse_all(Role::server, h.transport->written);
  REQUIRE(sent.controls.at(0).close.code == 4001);
  REQUIRE(sent.controls.at(0).close.reason == "shutting down");
  REQUIRE(h.ws->peer_close()->code == 1000);
}

TEST_CASE("WsStream fails protocol errors with the right close status", "[ws_stream]") {
  struct Case {
    Role role;
    Bytes wire;
    std::error_code error;
    std::uint16_t code;
  };
  const std::vector<Case> cases = {
      {Role::server, make_frame(Opcode::binary, "x", std::nullopt), ws::errc::unmasked_frame, 1002},
      {Role::client, make_frame(Opcode::text, "hello", std::nullopt), ws::errc::text_message, 1003},
      {Role::client, make_frame(Opcode::text, "\xC3", std::nullopt), ws::errc::bad_utf8, 1007},
  };
  for (const auto& c : cases) {
    auto h = make(c.role, c.wire);
    auto [data, ec] = read_all(*h.ws, 100);
    REQUIRE(ec == c.error);
    auto sent = parse_all(c.role == Role::server ? Role::client : Role::server, h.transport->written);
    REQUIRE(sent.controls.at(0).close.code == c.code);
  }
  // Too big for the configured limit: refused at the header, before the payload arrives.
  WsStreamOptions options;
  options.limits.max_message_size = 100;
  Bytes big = make_frame(Opcode::binary, std::string(101, 'x'), std::nullopt);
  big.resize(4);
  auto h = make(Role::client, big, 1 << 20, options);
  REQUIRE(read_all(*h.ws, 100).second == ws::errc::message_too_big);
  REQUIRE(parse_all(Role::server, h.transport->written).controls.at(0).close.code == 1009);
}

TEST_CASE("WsStream: transport EOF inside a frame is an error, between frames EOF", "[ws_stream]") {
  Bytes wire = make_frame(Opcode::binary, "complete", std::nullopt);
  Bytes cut = make_frame(Opcode::binary, "incomplete", std::nullopt);
  cut.resize(cut.size() - 3);
  append(wire, cut);
  auto h = make(Role::client, wire, 5);
  auto [data, ec] = read_all(*h.ws, 100);
  REQUIRE(data == "completeincompl");
  REQUIRE(ec == ws::errc::truncated_frame);
}

TEST_CASE("WsStream reports transport write failures", "[ws_stream]") {
  auto h = make(Role::server, {});
  h.transport->fail_write_at = 0;
  REQUIRE(run_sync(h.ws->write_all(as_bytes("x"))).error() == std::errc::connection_reset);
}

TEST_CASE("accept upgrades and keeps the bytes after the head", "[ws_accept]") {
  const std::string request =
      "GET /tunnel HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  Bytes input = to_bytes(request);
  append(input, make_frame(Opcode::binary, "early bytes", kKey));
  auto t = std::make_unique<ScriptedStream>();
  t->input = input;
  ScriptedStream* raw = t.get();
  Result<Accepted> accepted = run_sync(accept(std::move(t)));
  REQUIRE(accepted.ok());
  REQUIRE(accepted->http_status == 101);
  REQUIRE(accepted->target == "/tunnel");
  REQUIRE(accepted->stream);
  REQUIRE(as_string(raw->written).find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string_view::npos);
  auto [data, ec] = read_all(*accepted->stream, 100);
  REQUIRE(data == "early bytes");
}

TEST_CASE("accept answers /health and refusals, then closes", "[ws_accept]") {
  struct Case {
    std::string request;
    unsigned status;
    std::error_code refusal;
  };
  const std::vector<Case> cases = {
      {"GET /health HTTP/1.1\r\nHost: h\r\n\r\n", 200, {}},
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 404, ws::errc::not_upgrade_request},
  };
  for (const auto& c : cases) {
    ScriptedStream transport;
    transport.input = to_bytes(c.request);
    ScriptedStream* raw = &transport;
    Result<Accepted> accepted = run_sync(accept(std::make_unique<StreamRef>(transport)));
    REQUIRE(accepted.ok());
    REQUIRE_FALSE(accepted->stream);
    REQUIRE(accepted->http_status == c.status);
    REQUIRE(accepted->refusal == c.refusal);
    REQUIRE(raw->closed);
    REQUIRE(as_string(raw->written).rfind("HTTP/1.1 " + std::to_string(c.status), 0) == 0);
  }
  auto t = std::make_unique<ScriptedStream>();
  t->input = to_bytes("GET / HTTP/1.1\r\n");  // the peer hangs up mid-head
  REQUIRE(run_sync(accept(std::move(t))).error() == ws::errc::handshake_eof);
}

namespace {
// Answers the client's request like a server would, the moment the head is complete.
void respond_as_server(ScriptedStream& s, std::string_view extra_after_head) {
  ServerHandshake hs;
  auto step = hs.feed(s.written);
  if (step.outcome == ServerHandshake::Outcome::need_more) return;
  append(s.input, to_bytes(hs.response()));
  append(s.input, to_bytes(extra_after_head));
  s.on_write = nullptr;
}
}  // namespace

TEST_CASE("client_handshake against our server side, bytes after the head kept", "[ws_connect]") {
  auto url = parse_ws_url("ws://example.com:8080/tunnel?x=1");
  REQUIRE(url.ok());
  auto t = std::make_unique<ScriptedStream>();
  const Bytes early = make_frame(Opcode::binary, "hello client", std::nullopt);
  t->on_write = [&](ScriptedStream& s) { respond_as_server(s, as_string(early)); };
  ScriptedStream* raw = t.get();
  ClientOptions options;
  options.headers = {{"Authorization", "Bearer abc"}};
  auto result = run_sync(client_handshake(std::move(t), *url, options));
  REQUIRE(result.ok());
  const std::string_view request = as_string(raw->written);
  REQUIRE(request.rfind("GET /tunnel?x=1 HTTP/1.1\r\n", 0) == 0);
  REQUIRE(request.find("\r\nHost: example.com:8080\r\n") != std::string_view::npos);
  REQUIRE(request.find("\r\nAuthorization: Bearer abc\r\n") != std::string_view::npos);
  auto [data, ec] = read_all(*result.stream, 100);
  REQUIRE(data == "hello client");
}

TEST_CASE("client_handshake reports what the server answered", "[ws_connect]") {
  auto url = parse_ws_url("ws://example.com/");
  ScriptedStream transport;
  transport.input = to_bytes("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  ScriptedStream* raw = &transport;
  auto result = run_sync(client_handshake(std::make_unique<StreamRef>(transport), *url));
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.error == ws::errc::unexpected_status);
  REQUIRE(result.message() == "server answered 404 Not Found instead of 101 Switching Protocols");
  REQUIRE(raw->closed);

  auto t = std::make_unique<ScriptedStream>();  // silence, then EOF
  auto eof = run_sync(client_handshake(std::move(t), *url));
  REQUIRE(eof.error == ws::errc::handshake_eof);
  REQUIRE(eof.message().find("no WebSocket handshake answer") != std::string::npos);
}
