// The sans-I/O connection state machine, client and server connected in memory.
#include <catch2/catch.hpp>

#include "connection_pair.hpp"
#include "ssh/wire.hpp"
#include <botan/chacha_rng.h>

using namespace vtunnel;
using namespace vtunnel::ssh;
using namespace vtunnel::test;

namespace {
// Sends all of data on a channel, pumping while the window is exhausted.
void send_all(ConnectionPair& p, Peer& from, std::uint32_t channel, ByteSpan data) {
  std::size_t at = 0;
  int stalls = 0;
  while (at < data.size()) {
    auto n = from.conn.send_data(channel, data.subspan(at, std::min<std::size_t>(data.size() - at, 100000)));
    REQUIRE(n.ok());
    at += *n;
    if (*n == 0) REQUIRE(++stalls < 100000);
    p.pump();
  }
}

std::uint32_t open_tunnel(ConnectionPair& p, Peer& opener, Peer& acceptor) {
  auto id = opener.conn.open_channel("tunnel", as_bytes(R"({"port":8080})"));
  REQUIRE(id.ok());
  p.pump();
  REQUIRE(opener.confirmed.size() >= 1);
  REQUIRE(opener.confirmed.back() == *id);
  REQUIRE(!acceptor.opened.empty());
  return *id;
}
}  // namespace

TEST_CASE("handshake: ed25519 publickey auth, pinned host key, strict kex") {
  auto c = keyed_configs();
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  REQUIRE(p.client.kex_done == 1);
  REQUIRE(p.server.kex_done == 1);
  REQUIRE(p.client.authenticated);
  REQUIRE(p.server.authenticated);
  REQUIRE(p.client.conn.strict_kex());
  REQUIRE(p.server.conn.strict_kex());
  REQUIRE(p.client.conn.peer_version().starts_with("SSH-2.0-vtunnel_"));
  // AES-128-GCM is the fastest AEAD with AES-NI: our client's first choice, so our pair uses it.
  REQUIRE(p.client.cipher_out == "aes128-gcm@openssh.com");
  REQUIRE(p.client.cipher_in == "aes128-gcm@openssh.com");
  REQUIRE(p.server.cipher_out == "aes128-gcm@openssh.com");
  REQUIRE(p.client.conn.session_id().size() == 32);
  REQUIRE(std::equal(p.client.conn.session_id().begin(), p.client.conn.session_id().end(),
                     p.server.conn.session_id().begin(), p.server.conn.session_id().end()));
  REQUIRE_FALSE(p.client.disconnected);
  REQUIRE_FALSE(p.server.disconnected);
}

TEST_CASE("handshake works with every cipher and data flows") {
  for (const auto& spec : supported_ciphers()) {
    INFO(spec.name);
    auto c = keyed_configs();
    c.client.ciphers = {std::string(spec.name)};
    ConnectionPair p(std::move(c.client), std::move(c.server), 7);
    p.pump();
    REQUIRE(p.client.authenticated);
    std::uint32_t id = open_tunnel(p, p.server, p.client);
    Bytes data = pattern(300000, 3);
    send_all(p, p.server, id, data);
    REQUIRE(p.client.received[p.client.opened.back()] == data);
  }
}

TEST_CASE("keyless mode: ecdsa host key, none auth, client accepts any key") {
  Botan::ChaCha_RNG rng(Botan::system_rng());
  Config client;
  client.role = Role::client;
  client.verify_host_key = accept_any_host_key();
  Config server;
  server.role = Role::server;
  server.host_key = std::make_shared<const SigningKey>(SigningKey::generate_ecdsa_p256(rng));
  ConnectionPair p(std::move(client), std::move(server));
  p.pump();
  REQUIRE(p.client.authenticated);
  REQUIRE(p.server.authenticated);
}

TEST_CASE("client with a key also gets into a keyless server (none is tried first)") {
  auto c = keyed_configs();
  c.server.authorized_client_key.reset();
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  REQUIRE(p.client.authenticated);
}

TEST_CASE("keyless client is refused by a keyed server") {
  auto c = keyed_configs();
  c.client.client_key.reset();
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  REQUIRE_FALSE(p.client.authenticated);
  REQUIRE(p.client.disconnected);
  REQUIRE(p.client.disconnected->error == errc::auth_failed);
  REQUIRE(p.server.disconnected->error == errc::disconnected_by_peer);
}

TEST_CASE("wrong client key is refused") {
  auto c = keyed_configs();
  c.client.client_key = ed25519_key(8);
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  REQUIRE_FALSE(p.server.authenticated);
  REQUIRE(p.client.disconnected->error == errc::auth_failed);
}

TEST_CASE("unexpected host key is refused before authentication") {
  auto c = keyed_configs();
  c.client.verify_host_key = accept_only_host_key(ed25519_key(10)->public_blob());
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  REQUIRE(p.client.disconnected->error == errc::host_key_mismatch);
  REQUIRE_FALSE(p.server.authenticated);
  REQUIRE(p.server.disconnected->error == errc::disconnected_by_peer);
}

TEST_CASE("no common cipher fails the key exchange with a clear error") {
  auto c = keyed_configs();
  c.client.ciphers = {"aes128-gcm@openssh.com"};
  c.server.ciphers = {"chacha20-poly1305@openssh.com"};
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  REQUIRE(p.client.disconnected->error == errc::kex_failed);
  REQUIRE(p.client.disconnected->message.find("cipher") != std::string::npos);
}

TEST_CASE("global requests: replies in order, reply data right after the message type") {
  auto c = keyed_configs();
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  REQUIRE(p.client.conn.send_global_request("ping", {}, true).ok());
  REQUIRE(p.client.conn.send_global_request("listen", as_bytes(R"({"port":80})"), true).ok());
  REQUIRE(p.client.conn.send_global_request("ping", {}, false).ok());
  p.server.auto_reply_pings = false;
  p.pump();
  REQUIRE(p.server.requests.size() == 3);
  REQUIRE(p.server.requests[0].name == "ping");
  REQUIRE(p.server.requests[1].name == "listen");
  REQUIRE_FALSE(p.server.requests[2].want_reply);
  REQUIRE(p.server.conn.reply_global_request(true, as_bytes("pong")).ok());
  REQUIRE(p.server.conn.reply_global_request(false, as_bytes("port in use")).ok());
  REQUIRE(p.server.conn.reply_global_request(true).error() == errc::invalid_argument);
  p.pump();
  REQUIRE(p.client.replies.size() == 2);
  REQUIRE(p.client.replies[0] == std::pair<bool, std::string>{true, "pong"});
  REQUIRE(p.client.replies[1] == std::pair<bool, std::string>{false, "port in use"});

  // Server-initiated keepalive.
  REQUIRE(p.server.conn.send_global_request("ping", {}, true).ok());
  p.pump();
  REQUIRE(p.server.replies.size() == 1);
  REQUIRE(p.server.replies[0].second == "pong");
}

TEST_CASE("channels: both directions, EOF, close, id reuse") {
  auto c = keyed_configs();
  c.client.channel_window = 64 * 1024;  // small windows force many WINDOW_ADJUSTs
  c.server.channel_window = 64 * 1024;
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  std::uint32_t sid = open_tunnel(p, p.server, p.client);
  std::uint32_t cid = p.client.opened.back();
  REQUIRE(p.client.opened_types.back() == "tunnel");
  Bytes down = pattern(3 * 1024 * 1024 + 17, 1), up = pattern(2 * 1024 * 1024 + 5, 2);
  send_all(p, p.server, sid, down);
  send_all(p, p.client, cid, up);
  REQUIRE(p.client.received[cid] == down);
  REQUIRE(p.server.received[sid] == up);

  REQUIRE(p.server.conn.send_eof(sid).ok());
  p.pump();
  REQUIRE(p.client.eofs == std::vector<std::uint32_t>{cid});
  // Half-close: the other direction still works.
  send_all(p, p.client, cid, as_bytes("after eof"));
  REQUIRE(as_string(ByteSpan(p.server.received[sid]).last(9)) == "after eof");
  REQUIRE(p.server.conn.send_data(sid, as_bytes("x")).error() == errc::closed);

  REQUIRE(p.client.conn.close_channel(cid).ok());
  p.pump();
  REQUIRE(p.server.closes == std::vector<std::uint32_t>{sid});
  REQUIRE(p.client.closes == std::vector<std::uint32_t>{cid});
  REQUIRE(p.client.conn.channel_count() == 0);
  REQUIRE(p.server.conn.channel_count() == 0);
  REQUIRE(p.client.conn.send_data(cid, as_bytes("x")).error() == errc::unknown_channel);

  std::uint32_t again = open_tunnel(p, p.client, p.server);
  REQUIRE(again == cid);  // freed id is reused
}

TEST_CASE("channel open refused with reason and text") {
  auto c = keyed_configs();
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  p.server.auto_accept_channels = false;
  auto id = p.client.conn.open_channel("direct-tcpip");
  REQUIRE(id.ok());
  p.pump();
  REQUIRE(p.server.opened.size() == 1);
  REQUIRE(p.server.conn.reject_channel(p.server.opened[0], OpenFailure::administratively_prohibited,
                                       "server refuses client channels").ok());
  p.pump();
  REQUIRE(p.client.open_failures.size() == 1);
  REQUIRE(p.client.open_failures[0].channel == *id);
  REQUIRE(p.client.open_failures[0].reason == 1);
  REQUIRE(p.client.open_failures[0].message == "server refuses client channels");
  REQUIRE(p.client.conn.channel_count() == 0);
}

TEST_CASE("flow control: a slow consumer stalls only its own channel") {
  auto c = keyed_configs();
  c.client.channel_window = 128 * 1024;
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  std::uint32_t slow = open_tunnel(p, p.server, p.client);
  std::uint32_t slow_client = p.client.opened.back();
  std::uint32_t fast = open_tunnel(p, p.server, p.client);
  std::uint32_t fast_client = p.client.opened.back();
  p.client.auto_consume = false;

  Bytes big = pattern(1024 * 1024, 5);
  auto n = p.server.conn.send_data(slow, big);
  REQUIRE(n.ok());
  REQUIRE(*n == 128 * 1024);  // exactly the window, never more
  p.pump();
  REQUIRE(p.server.conn.send_window(slow) == 0);
  REQUIRE(*p.server.conn.send_data(slow, big) == 0);
  REQUIRE(p.client.received[slow_client].size() == 128 * 1024);

  // The other channel is unaffected.
  auto m = p.server.conn.send_data(fast, ByteSpan(big).first(100000));
  REQUIRE(*m == 100000);
  p.pump();
  REQUIRE(p.client.received[fast_client].size() == 100000);

  // Consuming reopens the window.
  REQUIRE(p.client.conn.consumed(slow_client, 64 * 1024).ok());
  REQUIRE(p.client.conn.consumed(slow_client, 128 * 1024).error() == errc::invalid_argument);
  p.pump();
  REQUIRE(p.server.conn.send_window(slow) == 64 * 1024);
}

TEST_CASE("peer max packet is respected") {
  auto c = keyed_configs();
  c.client.channel_max_packet = 1000;
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  std::uint32_t id = open_tunnel(p, p.server, p.client);
  // A client with max packet 1000 would disconnect on anything larger (checked below).
  Bytes data = pattern(50000, 9);
  send_all(p, p.server, id, data);
  REQUIRE(p.client.received[p.client.opened.back()] == data);
  REQUIRE_FALSE(p.client.disconnected);
}

TEST_CASE("our own peers use large channel packets and windows") {
  auto c = keyed_configs();
  REQUIRE(c.client.channel_max_packet > 32 * 1024);  // the defaults are the large values
  REQUIRE(c.client.channel_window > 2 * 1024 * 1024);
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  std::uint32_t id = open_tunnel(p, p.server, p.client);
  REQUIRE(p.server.conn.send_window(id) == Config{}.channel_window);
  Bytes data = pattern(3 * 1024 * 1024 + 5, 12);
  auto n = p.server.conn.send_data(id, data);  // fits the window: queued at once
  REQUIRE(n.ok());
  REQUIRE(*n == data.size());
  p.pump();
  REQUIRE(p.client.received[p.client.opened.back()] == data);
  REQUIRE(p.client.largest_data == Config{}.channel_max_packet);
  REQUIRE_FALSE(p.client.disconnected);
}

TEST_CASE("a peer announcing 32 KiB packets (Go, OpenSSH) never gets a larger one") {
  auto c = keyed_configs();
  c.client.channel_max_packet = 32 * 1024;  // what Go and OpenSSH announce
  c.client.channel_window = 2 * 1024 * 1024;
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  std::uint32_t id = open_tunnel(p, p.server, p.client);
  REQUIRE(p.server.conn.send_window(id) == 2 * 1024 * 1024);
  Bytes data = pattern(5 * 1024 * 1024 + 3, 13);
  // One send_data call of everything: the window, not the caller, bounds what is queued.
  auto n = p.server.conn.send_data(id, data);
  REQUIRE(n.ok());
  REQUIRE(*n == 2 * 1024 * 1024);
  p.pump();
  send_all(p, p.server, id, ByteSpan(data).subspan(*n));
  REQUIRE(p.client.received[p.client.opened.back()] == data);
  REQUIRE(p.client.largest_data == 32 * 1024);
  REQUIRE_FALSE(p.client.disconnected);
}

TEST_CASE("rekey in the middle of channel traffic, both directions, no data lost or reordered") {
  for (std::uint64_t limit : {64u * 1024u, 300u * 1024u}) {
    for (const char* cipher : {"aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes256-ctr"}) {
      INFO(cipher << " limit " << limit);
      auto c = keyed_configs();
      c.client.rekey_bytes = limit;
      c.client.ciphers = {cipher};
      ConnectionPair p(std::move(c.client), std::move(c.server), unsigned(limit));
      p.pump();
      std::uint32_t sid = open_tunnel(p, p.server, p.client);
      std::uint32_t cid = p.client.opened.back();
      Bytes down = pattern(2 * 1024 * 1024, 11), up = pattern(1024 * 1024 + 3, 12);
      // Interleave sends so kex messages land between data packets of both sides.
      std::size_t d = 0, u = 0;
      int guard = 0;
      while (d < down.size() || u < up.size()) {
        REQUIRE(++guard < 100000);
        if (d < down.size()) d += *p.server.conn.send_data(sid, ByteSpan(down).subspan(d, std::min<std::size_t>(40000, down.size() - d)));
        if (u < up.size()) u += *p.client.conn.send_data(cid, ByteSpan(up).subspan(u, std::min<std::size_t>(30000, up.size() - u)));
        if (guard % 7 == 0) p.server.conn.start_rekey();  // server-initiated too
        p.pump();
      }
      p.pump();
      REQUIRE(p.client.received[cid] == down);
      REQUIRE(p.server.received[sid] == up);
      REQUIRE(p.client.kex_done > 5);
      REQUIRE(p.client.kex_done == p.server.kex_done);
      REQUIRE_FALSE(p.client.disconnected);
      REQUIRE_FALSE(p.server.disconnected);
    }
  }
}

TEST_CASE("simultaneous rekey from both sides") {
  auto c = keyed_configs();
  ConnectionPair p(std::move(c.client), std::move(c.server));
  p.pump();
  std::uint32_t sid = open_tunnel(p, p.server, p.client);
  p.client.conn.start_rekey();
  p.server.conn.start_rekey();
  REQUIRE(*p.server.conn.send_data(sid, as_bytes("queued during kex")) == 17);
  REQUIRE(p.server.conn.send_global_request("ping", {}, true).ok());
  p.pump();
  REQUIRE(p.client.kex_done == 2);
  REQUIRE(p.server.kex_done == 2);
  REQUIRE(as_string(p.client.received[p.client.opened.back()]) == "queued during kex");
  REQUIRE(p.server.replies.size() == 1);
}

TEST_CASE("channel data placed straight in the output: filled, shortened, dropped, across rekeys") {
  for (std::uint32_t peer_packet : {32u * 1024u, 255u * 1024u}) {
    INFO("peer max packet " << peer_packet);
    auto c = keyed_configs();
    c.client.channel_max_packet = peer_packet;
    c.client.channel_window = 1024 * 1024;
    c.client.rekey_bytes = 300 * 1024;  // key exchanges land between the packets
    ConnectionPair p(std::move(c.client), std::move(c.server));
    p.pump();
    std::uint32_t id = open_tunnel(p, p.server, p.client);
    Bytes data = pattern(3 * 1024 * 1024 + 11, 21);
    std::size_t sent = 0, dropped = 0, paused = 0;
    int guard = 0;
    while (sent < data.size()) {
      REQUIRE(++guard < 100000);
      if (guard % 10 == 0) p.server.conn.start_rekey();  // our own KEXINIT: sending pauses
      const std::size_t window = p.server.conn.send_window(id);
      MutableByteSpan room = p.server.conn.begin_channel_data(id, 200 * 1024);
      if (room.empty()) {
        if (window > 0) ++paused;  // a key exchange holds data back
        p.pump();
        continue;
      }
      REQUIRE(room.size() <= std::min<std::size_t>({window, peer_packet, 200 * 1024}));
      // Every third packet is dropped unfilled, every other one is shortened.
      if (guard % 3 == 0) {
        p.server.conn.finish_channel_data(id, 0);
        ++dropped;
      } else {
        std::size_t n = std::min(room.size(), data.size() - sent);
        if (guard % 2 == 0) n = std::max<std::size_t>(1, n / 3);
        std::copy_n(data.begin() + std::ptrdiff_t(sent), n, room.begin());
        p.server.conn.finish_channel_data(id, n);
        sent += n;
        REQUIRE(p.server.conn.send_window(id) == window - n);
      }
      if (guard % 4 == 0) p.pump();
    }
    p.pump();
    REQUIRE(p.client.received[p.client.opened.back()] == data);
    REQUIRE(p.client.largest_data <= peer_packet);
    REQUIRE(dropped > 0);
    REQUIRE(paused > 0);
    REQUIRE(p.client.kex_done > 2);
    REQUIRE_FALSE(p.client.disconnected);
    REQUIRE_FALSE(p.server.disconnected);
  }
}
