// A hostile or broken peer ends the session with a reason: a DISCONNECT goes out and one
// Disconnected event comes up. Nothing crashes or throws.
#include <catch2/catch.hpp>

#include <botan/chacha_rng.h>

#include <algorithm>

#include "connection_pair.hpp"
#include "ssh/wire.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;
using namespace vtunnel::test;

namespace {

Config server_config() { return keyed_configs().server; }

// Feeds raw bytes to a fresh server and polls it.
Peer& feed_server(Peer& server, ByteSpan bytes) {
  std::size_t at = 0;
  while (at < bytes.size() && !server.conn.closed()) {
    std::size_t n = server.conn.feed(bytes.subspan(at));
    at += n;
    server.poll_all();
    if (n == 0) break;
  }
  server.poll_all();
  return server;
}

Bytes clear_packet(ByteSpan payload) {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  PacketEncoder enc(rng);
  Bytes out;
  enc.encode(payload, out);
  return out;
}

Bytes client_kexinit(bool strict) {
  Bytes p;
  Writer w(p);
  w.u8(msg::kKexInit).raw(Bytes(16, 1));
  w.string(strict ? "curve25519-sha256,kex-strict-c-v00@openssh.com" : "curve25519-sha256");
  w.string("ssh-ed25519").string("aes128-gcm@openssh.com").string("aes128-gcm@openssh.com");
  w.string("hmac-sha2-256").string("hmac-sha2-256").string("none").string("none");
  w.string("").string("").boolean(false).u32(0);
  return p;
}

// Runs the pair one transfer at a time until pred() holds.
template <class Pred>
void drive_until(ConnectionPair& p, Pred pred) {
  for (int i = 0; i < 1000 && !pred(); ++i) {
    bool a = p.transfer(p.client, p.server, true);
    if (pred()) return;
    bool b = p.transfer(p.server, p.client, false);
    if (!a && !b) break;
  }
  REQUIRE(pred());
}

std::unique_ptr<ConnectionPair> authenticated_pair() {
  auto c = keyed_configs();
  c.client.channel_window = 1000;
  auto p = std::make_unique<ConnectionPair>(std::move(c.client), std::move(c.server));
  p->pump();
  REQUIRE(p->client.authenticated);
  return p;
}

}  // namespace

TEST_CASE("version exchange: non-SSH peer, too many banner lines, endless line") {
  SECTION("HTTP request to the server") {
    Peer s(server_config());
    feed_server(s, as_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(s.disconnected->error == errc::bad_version);
  }
  SECTION("SSH-1.5") {
    Peer s(server_config());
    feed_server(s, as_bytes("SSH-1.5-old\r\n"));
    REQUIRE(s.disconnected->error == errc::bad_version);
  }
  SECTION("line without end") {
    Peer s(server_config());
    feed_server(s, Bytes(300, 'S'));
    REQUIRE(s.disconnected->error == errc::bad_version);
  }
  SECTION("client: banner lines are accepted up to a limit") {
    auto c = keyed_configs();
    Peer client(std::move(c.client));
    std::string banner;
    for (int i = 0; i < 5; ++i) banner += "welcome line\r\n";
    client.conn.feed(as_bytes(banner + "SSH-2.0-OpenSSH_9.2\r\n"));
    client.poll_all();
    REQUIRE_FALSE(client.disconnected);
    REQUIRE(client.conn.peer_version() == "SSH-2.0-OpenSSH_9.2");

    Peer client2(keyed_configs().client);
    std::string flood;
    for (int i = 0; i < 100; ++i) flood += "spam\r\n";
    client2.conn.feed(as_bytes(flood));
    client2.poll_all();
    REQUIRE(client2.disconnected->error == errc::bad_version);
  }
}

TEST_CASE("packet length above the limit ends the session before any allocation") {
  Peer s(server_config());
  Bytes bytes = to_bytes("SSH-2.0-evil\r\n");
  const std::uint8_t huge[] = {0x7f, 0xff, 0xff, 0xf0, 0x00};
  bytes.insert(bytes.end(), std::begin(huge), std::end(huge));
  feed_server(s, bytes);
  REQUIRE(s.disconnected->error == errc::packet_too_large);
  REQUIRE(s.conn.has_output());  // our version, KEXINIT and the DISCONNECT
}

TEST_CASE("strict kex: KEXINIT must be the first packet") {
  Bytes bytes = to_bytes("SSH-2.0-evil\r\n");
  const std::uint8_t ignore[] = {msg::kIgnore, 0, 0, 0, 0};
  Bytes ig = clear_packet(ignore);
  SECTION("with strict kex: fatal") {
    Peer s(server_config());
    bytes.insert(bytes.end(), ig.begin(), ig.end());
    Bytes k = clear_packet(client_kexinit(true));
    bytes.insert(bytes.end(), k.begin(), k.end());
    feed_server(s, bytes);
    REQUIRE(s.disconnected);
    REQUIRE(s.disconnected->error == errc::protocol_error);
  }
  SECTION("without strict kex: tolerated") {
    Peer s(server_config());
    bytes.insert(bytes.end(), ig.begin(), ig.end());
    Bytes k = clear_packet(client_kexinit(false));
    bytes.insert(bytes.end(), k.begin(), k.end());
    feed_server(s, bytes);
    REQUIRE_FALSE(s.disconnected);
    REQUIRE_FALSE(s.conn.strict_kex());
  }
  SECTION("with strict kex: IGNORE during the initial exchange is fatal") {
    Peer s(server_config());
    Bytes k = clear_packet(client_kexinit(true));
    bytes.insert(bytes.end(), k.begin(), k.end());
    bytes.insert(bytes.end(), ig.begin(), ig.end());
    feed_server(s, bytes);
    REQUIRE(s.conn.strict_kex());
    REQUIRE(s.disconnected->error == errc::unexpected_message);
  }
  SECTION("non-kex message before the first NEWKEYS") {
    Peer s(server_config());
    Bytes k = clear_packet(client_kexinit(false));
    bytes.insert(bytes.end(), k.begin(), k.end());
    Bytes sr;
    Writer(sr).u8(msg::kServiceRequest).string("ssh-userauth");
    Bytes srp = clear_packet(sr);
    bytes.insert(bytes.end(), srp.begin(), srp.end());
    feed_server(s, bytes);
    REQUIRE(s.disconnected->error == errc::unexpected_message);
  }
  SECTION("second KEXINIT during the exchange") {
    Peer s(server_config());
    Bytes k = clear_packet(client_kexinit(false));
    bytes.insert(bytes.end(), k.begin(), k.end());
    bytes.insert(bytes.end(), k.begin(), k.end());
    feed_server(s, bytes);
    REQUIRE(s.disconnected->error == errc::unexpected_message);
  }
  SECTION("malformed KEXINIT") {
    Peer s(server_config());
    Bytes k = client_kexinit(false);
    k.resize(40);
    Bytes kp = clear_packet(k);
    bytes.insert(bytes.end(), kp.begin(), kp.end());
    feed_server(s, bytes);
    REQUIRE(s.disconnected);
    REQUIRE(s.disconnected->error == errc::truncated);
  }
}

TEST_CASE("connection messages before authentication are refused") {
  auto c = keyed_configs();
  ConnectionPair p(std::move(c.client), std::move(c.server));
  drive_until(p, [&] { return p.client.kex_done == 1; });
  Bytes req;
  Writer(req).u8(msg::kGlobalRequest).string("listen").boolean(true);
  p.client.conn.send_unchecked_message_for_testing(req);
  p.pump();
  REQUIRE_FALSE(p.server.authenticated);
  REQUIRE(p.server.disconnected->error == errc::unexpected_message);
  REQUIRE(p.client.disconnected->error == errc::disconnected_by_peer);
}

TEST_CASE("authentication attempts are bounded") {
  auto c = keyed_configs();
  ConnectionPair p(std::move(c.client), std::move(c.server));
  drive_until(p, [&] { return p.client.kex_done == 1; });
  auto wrong = ed25519_key(99);
  for (int i = 0; i < 10; ++i) {
    Bytes req;
    Writer(req)
        .u8(msg::kUserauthRequest)
        .string("vtunnel")
        .string("ssh-connection")
        .string("publickey")
        .boolean(true)
        .string("ssh-ed25519")
        .string(wrong->public_blob())
        .string(Bytes(83, 0));
    p.client.conn.send_unchecked_message_for_testing(req);
  }
  p.pump();
  REQUIRE_FALSE(p.server.authenticated);
  REQUIRE(p.server.disconnected->error == errc::auth_failed);
}

TEST_CASE("the right key with a bad signature is refused") {
  auto c = keyed_configs();
  auto blob = c.server.authorized_client_key.value();
  c.client.client_key.reset();  // the client itself sends only "none"
  c.server.max_auth_attempts = 1;
  ConnectionPair p(std::move(c.client), std::move(c.server));
  drive_until(p, [&] { return p.client.kex_done == 1; });
  Bytes req;
  Writer(req)
      .u8(msg::kUserauthRequest)
      .string("vtunnel")
      .string("ssh-connection")
      .string("publickey")
      .boolean(true)
      .string("ssh-ed25519")
      .string(blob)
      .string(Bytes(83, 0));
  p.client.conn.send_unchecked_message_for_testing(req);
  p.pump();
  REQUIRE_FALSE(p.server.authenticated);
  REQUIRE(p.server.disconnected->error == errc::auth_failed);
}

TEST_CASE("unauthenticated traffic budget") {
  auto c = keyed_configs();
  c.server.max_unauthenticated_packets = 50;
  ConnectionPair p(std::move(c.client), std::move(c.server));
  drive_until(p, [&] { return p.client.kex_done == 1; });
  const std::uint8_t ignore[] = {msg::kIgnore, 0, 0, 0, 0};
  for (int i = 0; i < 60; ++i) p.client.conn.send_unchecked_message_for_testing(ignore);
  p.pump();
  REQUIRE(p.server.disconnected->error == errc::limit_exceeded);
}

TEST_CASE("channel violations after authentication") {
  auto owner = authenticated_pair();
  ConnectionPair& p = *owner;
  auto sid = p.server.conn.open_channel("tunnel");
  REQUIRE(sid.ok());
  p.pump();
  std::uint32_t cid = p.client.opened.back();
  auto data_msg = [&](std::uint32_t recipient, std::size_t n) {
    Bytes m;
    Writer(m).u8(msg::kChannelData).u32(recipient).string(Bytes(n, 'x'));
    return m;
  };
  SECTION("window overrun") {
    p.server.conn.send_unchecked_message_for_testing(data_msg(cid, 1001));
    p.pump();
    REQUIRE(p.client.disconnected->error == errc::window_exceeded);
    REQUIRE(p.server.disconnected->error == errc::disconnected_by_peer);
  }
  SECTION("window overrun across packets") {
    p.client.auto_consume = false;
    p.server.conn.send_unchecked_message_for_testing(data_msg(cid, 600));
    p.server.conn.send_unchecked_message_for_testing(data_msg(cid, 600));
    p.pump();
    REQUIRE(p.client.received[cid].size() == 600);
    REQUIRE(p.client.disconnected->error == errc::window_exceeded);
  }
  SECTION("unknown channel id") {
    p.server.conn.send_unchecked_message_for_testing(data_msg(cid + 1000, 10));
    p.pump();
    REQUIRE(p.client.disconnected->error == errc::unknown_channel);
  }
  SECTION("data after EOF") {
    REQUIRE(p.server.conn.send_eof(*sid).ok());
    p.server.conn.send_unchecked_message_for_testing(data_msg(cid, 10));
    p.pump();
    REQUIRE(p.client.disconnected->error == errc::protocol_error);
  }
  SECTION("window adjust overflow") {
    Bytes m;
    Writer(m).u8(msg::kChannelWindowAdjust).u32(cid).u32(0xffffffffu);
    p.server.conn.send_unchecked_message_for_testing(m);
    p.pump();
    REQUIRE(p.client.disconnected->error == errc::protocol_error);
  }
  SECTION("truncated channel message") {
    const std::uint8_t m[] = {msg::kChannelData, 0, 0};
    p.server.conn.send_unchecked_message_for_testing(m);
    p.pump();
    REQUIRE(p.client.disconnected->error == errc::protocol_error);
  }
  SECTION("global reply nobody asked for") {
    const std::uint8_t m[] = {msg::kRequestSuccess};
    p.server.conn.send_unchecked_message_for_testing(m);
    p.pump();
    REQUIRE(p.client.disconnected->error == errc::unexpected_message);
  }
  SECTION("unknown message type gets UNIMPLEMENTED and the session goes on") {
    const std::uint8_t m[] = {150, 1, 2, 3};
    p.server.conn.send_unchecked_message_for_testing(m);
    p.pump();
    REQUIRE_FALSE(p.client.disconnected);
    REQUIRE_FALSE(p.server.disconnected);
    REQUIRE(*p.server.conn.send_data(*sid, as_bytes("still alive")) == 11);
    p.pump();
    REQUIRE(as_string(p.client.received[cid]) == "still alive");
  }
  SECTION("channel requests wanting a reply get a failure, the session goes on") {
    Bytes m;
    Writer(m).u8(msg::kChannelRequest).u32(cid).string("exec").boolean(true).string("ls");
    p.server.conn.send_unchecked_message_for_testing(m);
    p.pump();
    REQUIRE_FALSE(p.client.disconnected);
    REQUIRE_FALSE(p.server.disconnected);
  }
}

TEST_CASE("channel limit answers resource shortage") {
  auto c = keyed_configs();
  c.server.max_channels = 2;
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  for (int i = 0; i < 3; ++i) REQUIRE(p.client.conn.open_channel("direct-tcpip").ok());
  p.pump();
  REQUIRE(p.client.confirmed.size() == 2);
  REQUIRE(p.client.open_failures.size() == 1);
  REQUIRE(p.client.open_failures[0].reason == 4);
  REQUIRE_FALSE(p.client.disconnected);
}

TEST_CASE("a flipped bit in transit is a MAC failure and ends the session") {
  for (const auto& spec : supported_ciphers()) {
    INFO(spec.name);
    auto c = keyed_configs();
    c.client.ciphers = {std::string(spec.name)};
    ConnectionPair p(std::move(c.client), std::move(c.server));
    p.pump();
    auto id = p.client.conn.open_channel("direct-tcpip");
    REQUIRE(id.ok());
    p.pump();
    bool flipped = false;
    p.tamper = [&](bool c2s, Bytes& bytes) {
      if (c2s && !flipped) {
        bytes.back() ^= 0x01;  // inside the last packet's tag
        flipped = true;
      }
    };
    REQUIRE(*p.client.conn.send_data(*id, as_bytes("payload")) == 7);
    p.pump();
    REQUIRE(p.server.disconnected->error == errc::mac_failure);
    REQUIRE(p.client.disconnected->error == errc::disconnected_by_peer);
  }
}

TEST_CASE("random garbage and mutated handshakes never crash") {
  std::mt19937 rng(42);
  // A valid client opening (version + KEXINIT), then mutated copies of it.
  auto c = keyed_configs();
  Peer client(std::move(c.client));
  OutputBuffer opening = client.conn.take_output();
  Bytes valid(opening.data().begin(), opening.data().end());
  for (int i = 0; i < 3000; ++i) {
    Peer s(server_config());
    Bytes b = valid;
    int flips = 1 + int(rng() % 8);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = std::uint8_t(rng());
    if (i % 3 == 0) {
      b.resize(20 + rng() % 64);
      for (std::size_t k = 18; k < b.size(); ++k) b[k] = std::uint8_t(rng());
    }
    feed_server(s, b);
    // Either still waiting/negotiating or cleanly disconnected.
    if (s.conn.closed()) REQUIRE(s.disconnected);
  }
}

TEST_CASE("channel data sent by a peer inside its own rekey is accepted (asyncssh does this)") {
  auto owner = authenticated_pair();
  ConnectionPair& p = *owner;
  auto sid = p.server.conn.open_channel("tunnel");
  REQUIRE(sid.ok());
  p.pump();
  std::uint32_t cid = p.client.opened.back();
  p.server.conn.start_rekey();
  REQUIRE(p.server.conn.kex_in_progress());
  Bytes m;
  Writer(m).u8(msg::kChannelData).u32(cid).string("inside kex");
  p.server.conn.send_unchecked_message_for_testing(m);
  p.pump();
  REQUIRE_FALSE(p.client.disconnected);
  REQUIRE(as_string(p.client.received[cid]) == "inside kex");
  REQUIRE(p.client.kex_done == 2);
}

TEST_CASE("first_kex_packet_follows with a wrong guess: the guessed packet is skipped") {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  Peer s(server_config());
  Bytes kexinit;
  Writer w(kexinit);
  w.u8(msg::kKexInit).raw(Bytes(16, 1));
  // Our first choice is one the server does not have, so the guess is wrong.
  w.string("diffie-hellman-group14-sha256,curve25519-sha256").string("ssh-ed25519");
  w.string("aes128-gcm@openssh.com").string("aes128-gcm@openssh.com");
  w.string("hmac-sha2-256").string("hmac-sha2-256").string("none").string("none");
  w.string("").string("").boolean(true).u32(0);
  Bytes guessed;
  Writer(guessed).u8(msg::kKexEcdhInit).string(Bytes(256, 0x55));  // a DH "e", not a curve point
  auto agreement = make_key_agreement("curve25519-sha256", rng);
  Bytes real;
  Writer(real).u8(msg::kKexEcdhInit).string((*agreement)->public_value());

  Bytes bytes = to_bytes("SSH-2.0-guesser\r\n");
  for (const Bytes& m : {kexinit, guessed, real}) {
    Bytes pkt = clear_packet(m);
    bytes.insert(bytes.end(), pkt.begin(), pkt.end());
  }
  feed_server(s, bytes);
  REQUIRE_FALSE(s.disconnected);

  // The server answered the real key share: version, KEXINIT, KEX_ECDH_REPLY, NEWKEYS.
  OutputBuffer out = s.conn.take_output();
  ByteSpan d = out.data();
  auto eol = std::find(d.begin(), d.end(), std::uint8_t{'\n'});
  PacketDecoder dec;
  dec.feed(d.subspan(std::size_t(eol - d.begin()) + 1));
  std::vector<std::uint8_t> types;
  for (;;) {
    auto p = dec.next();
    REQUIRE(p.ok());
    if (!*p) break;
    types.push_back((**p)[0]);
  }
  REQUIRE(types == std::vector<std::uint8_t>{msg::kKexInit, msg::kKexEcdhReply, msg::kNewKeys});
}

TEST_CASE("extended data is discarded but its window is given back") {
  auto owner = authenticated_pair();  // client window 1000
  ConnectionPair& p = *owner;
  auto sid = p.server.conn.open_channel("tunnel");
  REQUIRE(sid.ok());
  p.pump();
  std::uint32_t cid = p.client.opened.back();
  for (int i = 0; i < 10; ++i) {  // 10 x 900 bytes through a 1000-byte window
    Bytes m;
    Writer(m).u8(msg::kChannelExtendedData).u32(cid).u32(1).string(Bytes(900, 'e'));
    p.server.conn.send_unchecked_message_for_testing(m);
    p.pump();
    REQUIRE_FALSE(p.client.disconnected);
  }
  REQUIRE(p.client.received[cid].empty());
  // Every discarded byte was granted back (the injected packets bypassed the server's own
  // window accounting, so its window shows the grants on top of the initial 1000).
  REQUIRE(p.server.conn.send_window(*sid) == 1000 + 9000);
  REQUIRE(*p.server.conn.send_data(*sid, Bytes(1000, 'd')) == 1000);
  p.pump();
  REQUIRE(p.client.received[cid].size() == 1000);
}
