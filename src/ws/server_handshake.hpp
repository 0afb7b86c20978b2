#pragma once
// ServerHandshake: the server side of the HTTP/1.1 upgrade (RFC 6455 4.2), sans-I/O.
//
// Feed it the bytes read from a new connection until it stops asking for more. It buffers at
// most limits.max_head_size bytes of head, then decides:
//   upgrade    send response() (101) and speak WebSocket; input bytes after `consumed` are
//              the first WebSocket bytes and must be kept
//   respond    send response() and close: GET /health (200 "ok"), or a refusal (400, 404, 405,
//              426, 431) whose reason error() gives for the log
// The server upgrades any path but /health and does not check Origin (PROTOCOL.md).
// A PlainHandler lets the embedder answer plain (non-upgrade) GET/HEAD requests for other
// paths itself (GET /metrics); WebSocket upgrades are never routed to it.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "core/bytes.hpp"
#include "ws/handshake_limits.hpp"

namespace vtunnel::ws {

struct PlainResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};
// Called with the request path (no query) of a plain GET/HEAD; nullopt: 404 as without it.
using PlainHandler = std::function<std::optional<PlainResponse>(std::string_view path)>;

class ServerHandshake {
 public:
  enum class Outcome : std::uint8_t { need_more, upgrade, respond };
  struct Step {
    Outcome outcome = Outcome::need_more;
    std::size_t consumed = 0;  // bytes of this input that belonged to the head
  };

  explicit ServerHandshake(HandshakeLimits limits = {}, PlainHandler plain = {})
      : limits_(limits), plain_(std::move(plain)) {}

  // Call again with new bytes only while the outcome is need_more.
  Step feed(ByteSpan input);

  // The complete HTTP response to send (valid once the outcome is not need_more).
  const std::string& response() const noexcept { return response_; }
  unsigned status() const noexcept { return status_; }
  // Why the request was refused; empty for an upgrade and for /health.
  std::error_code error() const noexcept { return error_; }
  // The request target, for the log (peer text: escape it).
  const std::string& target() const noexcept { return target_; }

 private:
  Outcome evaluate(std::string_view head);
  Outcome refuse(unsigned status, std::error_code why, std::string_view extra_headers = {});

  HandshakeLimits limits_;
  PlainHandler plain_;
  std::string head_;
  std::string response_;
  std::string target_;
  unsigned status_ = 0;
  std::error_code error_{};
  Outcome done_ = Outcome::need_more;
};

}  // namespace vtunnel::ws
