// Post-authentication attack surface: an authenticated peer sends arbitrary messages (as
// payloads of correctly encrypted packets). Input: a sequence of [u16 length][payload], each
// sent to the client (or to the server when the length's top bit is set).
#include <cstdint>
#include <memory>

#include "ssh/connection.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;

namespace {
std::shared_ptr<const SigningKey> key(std::uint8_t fill) {
  return std::make_shared<const SigningKey>(std::move(*SigningKey::ed25519_from_seed(Bytes(32, fill))));
}

void move_bytes(Connection& from, Connection& to) {
  if (!from.has_output()) return;
  OutputBuffer out = from.take_output();
  ByteSpan d = out.data();
  for (std::size_t at = 0; at < d.size();) {
    std::size_t n = to.feed(d.subspan(at));
    at += n;
    while (auto e = to.poll()) {
      if (auto* o = std::get_if<event::ChannelOpen>(&*e)) (void)to.accept_channel(o->channel);
      if (auto* g = std::get_if<event::GlobalRequest>(&*e))
        if (g->want_reply) (void)to.reply_global_request(true, as_bytes("pong"));
      if (auto* dt = std::get_if<event::ChannelData>(&*e)) (void)to.consumed(dt->channel, dt->data.size());
    }
    if (n == 0) break;
  }
  from.recycle(std::move(out.storage));
}

void pump(Connection& a, Connection& b) {
  for (int i = 0; i < 64 && (a.has_output() || b.has_output()); ++i) {
    move_bytes(a, b);
    move_bytes(b, a);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto client_key = key(7);
  static const auto host = key(9);
  Config cc;
  cc.role = Role::client;
  cc.client_key = client_key;
  cc.verify_host_key = accept_only_host_key(host->public_blob());
  cc.channel_window = 4096;
  Config sc;
  sc.role = Role::server;
  sc.host_key = host;
  sc.authorized_client_key = client_key->public_blob();
  Connection client(cc), server(sc);
  pump(client, server);
  if (!client.authenticated()) __builtin_trap();
  (void)client.open_channel("direct-tcpip");
  pump(client, server);

  ByteSpan in(data, size);
  std::size_t at = 0;
  while (at + 2 <= in.size() && !client.closed() && !server.closed()) {
    std::uint16_t header = load_be16(in.data() + at);
    at += 2;
    std::size_t len = std::min<std::size_t>(header & 0x7fff, in.size() - at);
    if (len == 0) continue;
    Connection& sender = (header & 0x8000) ? client : server;
    sender.send_unchecked_message_for_testing(in.subspan(at, len));
    at += len;
    pump(client, server);
  }
  return 0;
}
