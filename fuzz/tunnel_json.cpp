// The JSON a peer sends inside SSH: the `listen` global request (client -> server) and the
// `tunnel` channel's extra data (server -> client). Whatever decodes must re-encode to JSON
// that decodes to the same value.
#include <cstdint>
#include <cstdlib>

#include "tunnel/messages.hpp"

using namespace vtunnel;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteSpan in(data, size);
  if (auto r = decode_listen_request(in)) {
    check(r->port >= 1);
    auto again = decode_listen_request(as_bytes(encode_listen_request(*r)));
    check(again && again->port == r->port && again->local_addr == r->local_addr);
  }
  if (auto t = decode_tunnel_channel_data(in)) {
    check(t->port >= 1);
    auto again = decode_tunnel_channel_data(as_bytes(encode_tunnel_channel_data(*t)));
    check(again && again->port == t->port);
  }
  return 0;
}
