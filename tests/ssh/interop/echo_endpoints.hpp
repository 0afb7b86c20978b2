#pragma once
// Endpoints shared by the interop tests: an echo transfer driven from our client, and a server
// that pongs pings and echoes the channels it accepts (direct-tcpip by default).
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "../connection_pair.hpp"
#include "ssh/connection.hpp"

namespace vtunnel::test::interop {
using namespace vtunnel::ssh;

// Data stream of a cycle length that is not a power of two, so any reordering shows.
inline const Bytes& cycle() {
  static const Bytes c = pattern(1024 * 1024 + 7, 77);
  return c;
}
inline std::uint8_t expected_at(std::size_t offset) { return cycle()[offset % cycle().size()]; }

// Tracks one bidirectional echo transfer over channel `ch`.
struct EchoTransfer {
  Connection& conn;
  std::uint32_t ch;
  std::size_t total;
  std::size_t sent = 0, received = 0;
  bool eof_sent = false, close_sent = false, closed = false, mismatch = false;

  void push() {
    while (sent < total && !eof_sent) {
      std::size_t at = sent % cycle().size();
      std::size_t n = std::min(total - sent, cycle().size() - at);
      auto took = conn.send_data(ch, ByteSpan(cycle()).subspan(at, n));
      REQUIRE(took.ok());
      if (*took == 0) break;
      sent += *took;
    }
    if (sent == total && !eof_sent) {
      REQUIRE(conn.send_eof(ch).ok());
      eof_sent = true;
    }
    if (received == total && !close_sent && !closed) {
      REQUIRE(conn.close_channel(ch).ok());
      close_sent = true;
    }
  }
  void on_data(ByteSpan d) {
    for (std::size_t i = 0; i < d.size(); ++i)
      if (d[i] != expected_at(received + i)) mismatch = true;
    received += d.size();
    REQUIRE(conn.consumed(ch, d.size()).ok());
  }
};

// Our server side for external clients: answers "ping" with "pong", refuses other global
// requests, accepts direct-tcpip channels and echoes them (with back-pressure).
struct EchoingServer {
  Connection conn;
  struct Echo {
    Bytes pending;
    bool eof = false, eof_sent = false;
  };
  std::map<std::uint32_t, Echo> echoes;
  std::size_t closed_channels = 0, kex_done = 0, pings = 0, eofs = 0;
  std::set<std::string> accepted_types{"direct-tcpip"};
  std::vector<std::string> open_extras;
  std::vector<std::pair<bool, std::string>> replies;
  std::vector<event::ChannelOpenFailure> open_failures;
  bool authenticated = false;
  std::optional<event::Disconnected> disconnected;

  explicit EchoingServer(Config c) : conn(std::move(c)) {}

  void on_event(ssh::Event& e) {
    if (std::get_if<event::KexDone>(&e)) ++kex_done;
    else if (std::get_if<event::Authenticated>(&e)) authenticated = true;
    else if (auto* g = std::get_if<event::GlobalRequest>(&e)) {
      if (g->want_reply) {
        if (g->name == "ping") {
          ++pings;
          REQUIRE(conn.reply_global_request(true, as_bytes("pong")).ok());
        } else {
          REQUIRE(conn.reply_global_request(false).ok());
        }
      }
    } else if (auto* o = std::get_if<event::ChannelOpen>(&e)) {
      if (accepted_types.count(o->type)) {
        open_extras.emplace_back(as_string(o->extra));
        REQUIRE(conn.accept_channel(o->channel).ok());
        echoes[o->channel];
      } else {
        REQUIRE(conn.reject_channel(o->channel, OpenFailure::unknown_channel_type, "unknown channel type").ok());
      }
    } else if (auto* d = std::get_if<event::ChannelData>(&e)) {
      auto& p = echoes[d->channel].pending;
      p.insert(p.end(), d->data.begin(), d->data.end());
    } else if (auto* f = std::get_if<event::ChannelEof>(&e)) {
      echoes[f->channel].eof = true;
      ++eofs;
    } else if (auto* cl = std::get_if<event::ChannelClose>(&e)) {
      echoes.erase(cl->channel);
      ++closed_channels;
    } else if (auto* r = std::get_if<event::GlobalReply>(&e)) {
      replies.emplace_back(r->success, std::string(as_string(r->data)));
    } else if (auto* of = std::get_if<event::ChannelOpenFailure>(&e)) {
      open_failures.push_back(*of);
    } else if (auto* dc = std::get_if<event::Disconnected>(&e)) {
      disconnected = *dc;
    }
  }
  void push() {
    for (auto& [id, echo] : echoes) {
      if (!echo.pending.empty()) {
        auto n = conn.send_data(id, echo.pending);
        if (n.ok() && *n > 0) {
          echo.pending.erase(echo.pending.begin(), echo.pending.begin() + std::ptrdiff_t(*n));
          REQUIRE(conn.consumed(id, *n).ok());
        }
      }
      if (echo.eof && echo.pending.empty() && !echo.eof_sent) {
        echo.eof_sent = true;
        REQUIRE(conn.send_eof(id).ok());
        REQUIRE(conn.close_channel(id).ok());
      }
    }
  }
};

}  // namespace vtunnel::test::interop
