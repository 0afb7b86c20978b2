#pragma once
// vtunnel's own payloads inside SSH (PROTOCOL.md): the `listen` global request, the `tunnel`
// channel's extra data, and the client's -forward spec. Decoders take peer bytes: sizes are
// checked against kMaxRequestJson before parsing, and nothing throws.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace vtunnel {

inline constexpr std::size_t kMaxRequestJson = 4096;
// Tunnel connections one session carries at once (each is an SSH channel; an idle one costs
// a few hundred bytes, no relay buffer). The Go original has no limit.
inline constexpr std::size_t kMaxTunnelChannels = 65536;

struct ListenRequest {
  std::uint16_t port = 0;
  std::string local_addr;  // empty: omitted on the wire
};

// {"port":N,"local_addr":"host:port"} — the same bytes Go's encoding/json produces.
std::string encode_listen_request(const ListenRequest& r);
Result<ListenRequest> decode_listen_request(ByteSpan json);

struct TunnelChannelData {
  std::uint16_t port = 0;
};
std::string encode_tunnel_channel_data(const TunnelChannelData& d);
Result<TunnelChannelData> decode_tunnel_channel_data(ByteSpan json);

// -forward remotePort=localAddr, localAddr = host:port or tls://host:port.
struct Forward {
  std::uint16_t remote_port = 0;
  std::string local_addr;  // as given (sent in `listen`)
  std::string host;        // dial target
  std::uint16_t port = 0;
  bool tls = false;
};
Result<Forward> parse_forward(std::string_view spec);

}  // namespace vtunnel
