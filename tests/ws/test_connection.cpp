// Connection: control frames answered, close handshake, failures closed with the right status.
#include <catch2/catch.hpp>

#include "ws/connection.hpp"
#include "ws/frame_test_util.hpp"

using namespace vtunnel;
using namespace vtunnel::ws;
using namespace vtunnel::ws::test;

namespace {

// Parses everything `conn` queued as frames sent by conn.role().
Outcome sent_frames(Connection& conn) {
  Bytes out(conn.pending_output().begin(), conn.pending_output().end());
  conn.consume_output(out.size());
  return parse_all(conn.role() == Role::client ? Role::server : Role::client, out);
}

std::string read_data(Connection& conn, Bytes& wire, ReadStep::Kind& last) {
  std::string data;
  MutableByteSpan input(wire);
  while (true) {
    ReadStep step = conn.read(input);
    input = input.subspan(step.consumed);
    last = step.kind;
    if (step.kind != ReadStep::Kind::data) return data;
    data += as_string(step.payload);
  }
}

}  // namespace

TEST_CASE("ping is answered with a pong carrying its payload; pong is ignored", "[connection]") {
  Connection conn(Role::client);
  Bytes wire = make_frame(Opcode::binary, "ab", std::nullopt);
  append(wire, make_frame(Opcode::ping, "are you there", std::nullopt));
  append(wire, make_frame(Opcode::pong, "unsolicited", std::nullopt));
  append(wire, make_frame(Opcode::binary, "cd", std::nullopt));
  ReadStep::Kind last{};
  REQUIRE(read_data(conn, wire, last) == "abcd");
  REQUIRE(last == ReadStep::Kind::need_more);
  auto sent = sent_frames(conn);
  REQUIRE(!sent.error);  // masked, as a client must
  REQUIRE(sent.controls.size() == 1);
  REQUIRE(sent.controls[0].opcode == Opcode::pong);
  REQUIRE(sent.controls[0].payload == "are you there");
  REQUIRE(conn.pending_output().empty());
}

TEST_CASE("only the newest unsent pong is kept", "[connection]") {
  Connection conn(Role::server);
  Bytes wire;
  for (int i = 0; i < 100; ++i) append(wire, make_frame(Opcode::ping, std::to_string(i), kKey));
  ReadStep::Kind last{};
  read_data(conn, wire, last);
  auto sent = sent_frames(conn);
  REQUIRE(sent.controls.size() == 1);
  REQUIRE(sent.controls[0].payload == "99");
}

TEST_CASE("a pong already being sent is not rewritten", "[connection]") {
  Connection conn(Role::server);
  Bytes wire = make_frame(Opcode::ping, "one", kKey);
  ReadStep::Kind last{};
  read_data(conn, wire, last);
  const std::size_t first_size = conn.pending_output().size();
  Bytes out(conn.pending_output().begin(), conn.pending_output().end());
  conn.consume_output(1);  // partly sent
  wire = make_frame(Opcode::ping, "two", kKey);
  read_data(conn, wire, last);
  out.resize(1);
  out.insert(out.end(), conn.pending_output().begin(), conn.pending_output().end());
  REQUIRE(out.size() > first_size);
  auto sent = parse_all(Role::client, out);
  REQUIRE(sent.controls.size() == 2);
  REQUIRE(sent.controls[1].payload == "two");
}

TEST_CASE("peer-initiated close is echoed", "[connection]") {
  Connection conn(Role::server);
  Bytes payload{0x03, 0xE9, 'b', 'y', 'e'};
  Bytes wire = make_frame(Opcode::close, payload, kKey);
  ReadStep::Kind last{};
  read_data(conn, wire, last);
  REQUIRE(last == ReadStep::Kind::closed);
  REQUIRE(conn.state() == Connection::State::closed);
  REQUIRE(conn.peer_close()->code == 1001);
  REQUIRE(conn.peer_close()->reason == "bye");
  auto sent = sent_frames(conn);
  REQUIRE(sent.controls.size() == 1);
  REQUIRE(sent.controls[0].opcode == Opcode::close);
  REQUIRE(sent.controls[0].close.code == 1001);
  REQUIRE_FALSE(conn.can_send_data());
}

TEST_CASE("an empty close is echoed empty", "[connection]") {
  Connection conn(Role::client);
  Bytes wire = make_frame(Opcode::close, "", std::nullopt);
  ReadStep::Kind last{};
  read_data(conn, wire, last);
  REQUIRE(conn.peer_close()->code == 1005);
  auto sent = sent_frames(conn);
  REQUIRE(sent.controls.at(0).payload.empty());
}

TEST_CASE("locally initiated close waits for the peer's close", "[connection]") {
  Connection conn(Role::client);
  conn.close(1000, "done");
  REQUIRE(conn.state() == Connection::State::closing);
  REQUIRE_FALSE(conn.can_send_data());
  auto sent = sent_frames(conn);
  REQUIRE(sent.controls.at(0).close.code == 1000);
  REQUIRE(sent.controls.at(0).close.reason == "done");
  // Data already in flight from the peer is still delivered, pings no longer answered.
  Bytes wire = make_frame(Opcode::binary, "late", std::nullopt);
  append(wire, make_frame(Opcode::ping, "x", std::nullopt));
  append(wire, make_frame(Opcode::close, Bytes{0x03, 0xE8}, std::nullopt));
  ReadStep::Kind last{};
  REQUIRE(read_data(conn, wire, last) == "late");
  REQUIRE(last == ReadStep::Kind::closed);
  REQUIRE(conn.state() == Connection::State::closed);
  REQUIRE(conn.pending_output().empty());  // our close was already sent: no second one
}

TEST_CASE("protocol errors close with the matching status", "[connection]") {
  struct Case {
    Bytes wire;
    std::uint16_t code;
  };
  const std::vector<Case> cases = {
      {make_frame(Opcode::binary, "unmasked", std::nullopt), 1002},
      {make_frame(Opcode::text, "\xFF", kKey), 1007},
      {make_frame(Opcode::binary, std::string(2000, 'x'), kKey), 1009},
  };
  for (const auto& c : cases) {
    Connection conn(Role::server, ParserLimits{1000});
    Bytes wire = c.wire;
    ReadStep::Kind last{};
    read_data(conn, wire, last);
    REQUIRE(last == ReadStep::Kind::failed);
    REQUIRE(conn.error());
    auto sent = sent_frames(conn);
    REQUIRE(sent.controls.at(0).opcode == Opcode::close);
    REQUIRE(sent.controls.at(0).close.code == c.code);
  }
}

TEST_CASE("client data frames get a fresh mask each", "[connection]") {
  Connection client(Role::client);
  auto a = client.data_frame();
  auto b = client.data_frame();
  REQUIRE(a.mask.has_value());
  REQUIRE(a.mask != b.mask);
  Connection server(Role::server);
  REQUIRE_FALSE(server.data_frame().mask.has_value());
}
