#pragma once
// Sans-I/O parsing of a proxy request head (Boost.Beast's request parser over our bytes).
//
//   CONNECT host[:port] HTTP/1.1      -> RequestKind::connect, port 443 by default
//   GET http://host[:port]/p HTTP/1.1 -> RequestKind::forward, port 80 by default; the head is
//                                        rewritten to origin form for the upstream
//
// Rewriting a forwarded head: the hop-by-hop fields (Connection and every field it names,
// Keep-Alive, Proxy-Authenticate, Proxy-Authorization, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade) are removed; Host is set from the URI; "Connection: close" is
// added because the proxy relays exactly one response and then closes.
// Transfer-Encoding is hop-by-hop, but the body still needs framing on the next hop: the proxy
// chooses it. A Content-Length body keeps its Content-Length; a chunked body (only a lone
// "chunked" coding is accepted, anything else is 501) is forwarded chunk by chunk as received,
// under the proxy's own "Transfer-Encoding: chunked". Content-Length together with
// Transfer-Encoding is refused (request smuggling).
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>

#include "core/bytes.hpp"
#include "proxy/authority.hpp"

namespace vtunnel::proxy {

inline constexpr std::size_t kMaxRequestHeadBytes = 8 * 1024;
inline constexpr std::uint16_t kDefaultConnectPort = 443;
inline constexpr std::uint16_t kDefaultHttpPort = 80;

enum class RequestKind { connect, forward };
enum class BodyFraming { none, content_length, chunked };

struct ProxyRequest {
  RequestKind kind = RequestKind::connect;
  std::string method;         // as sent (for logs)
  Authority target;           // where the request goes; DomainTable key: target.to_string()
  std::string forward_head;   // forward only: the origin-form head to send upstream
  BodyFraming body = BodyFraming::none;
  std::uint64_t content_length = 0;  // when body == content_length
  std::size_t head_size = 0;  // bytes of the input the head took; the rest is body/tunnel data
};

struct HeadParse {
  enum class Status { need_more, complete, failed };
  Status status = Status::need_more;
  ProxyRequest request;       // when complete
  std::error_code error;      // when failed: a proxy::errc (see error_response())
  std::string detail;         // when failed: what was wrong, may quote peer text (escape it)
};

// `data` is every byte received so far on the connection (call again with more when
// need_more). Never throws on peer input.
HeadParse parse_request_head(ByteSpan data, std::size_t max_head_bytes = kMaxRequestHeadBytes);

}  // namespace vtunnel::proxy
