#pragma once
// Two ssh::Connection instances wired together in memory: output bytes of one are fed to the
// other in chunks of varying size; events are recorded (data copied) and answered by simple
// policies the test can change.
#include <catch2/catch.hpp>
#include <botan/system_rng.h>

#include <map>
#include <random>
#include <string>

#include "ssh/connection.hpp"

namespace vtunnel::test {

using namespace vtunnel::ssh;

inline std::shared_ptr<const SigningKey> ed25519_key(std::uint8_t fill) {
  Bytes seed(32, fill);
  return std::make_shared<const SigningKey>(std::move(*SigningKey::ed25519_from_seed(seed)));
}

struct Peer {
  explicit Peer(Config c) : conn(std::move(c)) {}
  Connection conn;
  bool auto_accept_channels = true;
  bool auto_consume = true;
  bool auto_reply_pings = true;
  std::vector<Event> raw;  // events with views cleared
  std::map<std::uint32_t, Bytes> received;
  std::map<std::uint32_t, std::size_t> unconsumed;
  std::vector<event::GlobalRequest> requests;
  std::vector<std::pair<bool, std::string>> replies;
  std::vector<std::uint32_t> opened, confirmed, eofs, closes;
  std::vector<event::ChannelOpenFailure> open_failures;
  std::vector<std::string> opened_types;
  std::size_t kex_done = 0;
  bool authenticated = false;
  std::optional<event::Disconnected> disconnected;
  std::size_t windows = 0;
  std::string cipher_in, cipher_out;  // of the last key exchange
  std::size_t largest_data = 0;  // the largest CHANNEL_DATA payload received

  void handle(Event& e) {
    std::visit(
        [&](auto& ev) {
          using T = std::decay_t<decltype(ev)>;
          if constexpr (std::is_same_v<T, event::KexDone>) {
            ++kex_done;
            cipher_in = ev.cipher_in;
            cipher_out = ev.cipher_out;
          }
          else if constexpr (std::is_same_v<T, event::Authenticated>) authenticated = true;
          else if constexpr (std::is_same_v<T, event::GlobalRequest>) {
            requests.push_back({ev.name, ev.want_reply, {}});
            if (ev.want_reply && auto_reply_pings) {
              if (ev.name == "ping") (void)conn.reply_global_request(true, as_bytes("pong"));
              else (void)conn.reply_global_request(false, as_bytes("unknown request"));
            }
          } else if constexpr (std::is_same_v<T, event::GlobalReply>) {
            replies.emplace_back(ev.success, std::string(as_string(ev.data)));
          } else if constexpr (std::is_same_v<T, event::ChannelOpen>) {
            opened.push_back(ev.channel);
            opened_types.push_back(ev.type);
            if (auto_accept_channels) REQUIRE(conn.accept_channel(ev.channel).ok());
          } else if constexpr (std::is_same_v<T, event::ChannelOpenConfirm>) {
            confirmed.push_back(ev.channel);
          } else if constexpr (std::is_same_v<T, event::ChannelOpenFailure>) {
            open_failures.push_back(ev);
          } else if constexpr (std::is_same_v<T, event::ChannelData>) {
            largest_data = std::max(largest_data, ev.data.size());
            auto& r = received[ev.channel];
            r.insert(r.end(), ev.data.begin(), ev.data.end());
            if (auto_consume) REQUIRE(conn.consumed(ev.channel, ev.data.size()).ok());
            else unconsumed[ev.channel] += ev.data.size();
          } else if constexpr (std::is_same_v<T, event::ChannelEof>) {
            eofs.push_back(ev.channel);
          } else if constexpr (std::is_same_v<T, event::ChannelClose>) {
            closes.push_back(ev.channel);
          } else if constexpr (std::is_same_v<T, event::ChannelWindow>) {
            ++windows;
          } else if constexpr (std::is_same_v<T, event::Disconnected>) {
            disconnected = ev;
          }
        },
        e);
  }
  void poll_all() {
    while (auto e = conn.poll()) handle(*e);
  }
};

struct ConnectionPair {
  ConnectionPair(Config client_config, Config server_config, unsigned seed = 1)
      : client(std::move(client_config)), server(std::move(server_config)), rng(seed) {}

  Peer client;
  Peer server;
  std::mt19937 rng;
  std::size_t max_chunk = 70000;
  // Called with the bytes going client->server (true) or server->client (false) before delivery.
  std::function<void(bool, Bytes&)> tamper;

  // Moves bytes one way; returns true if anything moved.
  bool transfer(Peer& from, Peer& to, bool c2s) {
    if (!from.conn.has_output()) return false;
    OutputBuffer out = from.conn.take_output();
    Bytes bytes(out.data().begin(), out.data().end());
    from.conn.recycle(std::move(out.storage));
    if (tamper) tamper(c2s, bytes);
    std::size_t at = 0;
    while (at < bytes.size()) {
      std::size_t n = std::min<std::size_t>(bytes.size() - at, 1 + rng() % max_chunk);
      while (n > 0) {
        std::size_t taken = to.conn.feed(ByteSpan(bytes).subspan(at, n));
        at += taken;
        n -= taken;
        to.poll_all();
        if (taken == 0 && to.conn.closed()) return true;
      }
    }
    to.poll_all();
    return true;
  }

  void pump(int max_rounds = 100000) {
    for (int i = 0; i < max_rounds; ++i) {
      bool a = transfer(client, server, true);
      bool b = transfer(server, client, false);
      if (!a && !b) return;
    }
    FAIL("pump did not settle");
  }
};

// A client/server configuration pair using the vtunnel key scheme: client ed25519 key, server
// host key ed25519 the client pins.
struct Configs {
  Config client, server;
};

inline Configs keyed_configs() {
  auto client_key = ed25519_key(7);
  auto host_key = ed25519_key(9);
  Configs c;
  c.client.role = Role::client;
  c.client.client_key = client_key;
  c.client.verify_host_key = accept_only_host_key(host_key->public_blob());
  c.server.role = Role::server;
  c.server.host_key = host_key;
  c.server.authorized_client_key = client_key->public_blob();
  return c;
}

inline Bytes pattern(std::size_t n, std::uint32_t seed) {
  Bytes b(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : b) {
    x = x * 1664525u + 1013904223u;
    c = std::uint8_t(x >> 24);
  }
  return b;
}

}  // namespace vtunnel::test
