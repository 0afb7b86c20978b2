#pragma once
// ClientHandshake: the client side of the HTTP/1.1 upgrade (RFC 6455 4.1), sans-I/O.
// Build it with the request parameters and 16 random bytes, send request(), then feed the
// bytes read back until the outcome is not need_more. After `upgraded`, input bytes past
// `consumed` are the first WebSocket bytes and must be kept.
#include <array>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ws/accept_key.hpp"
#include "ws/handshake_limits.hpp"

namespace vtunnel::ws {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ClientRequest {
  std::string host_header;  // "example.com", "example.com:8080", "[::1]:8080"
  std::string target = "/";
  HeaderList extra_headers;  // e.g. authorisation; may not replace the handshake's own
};

class ClientHandshake {
 public:
  enum class Outcome : std::uint8_t { need_more, upgraded, failed };
  struct Step {
    Outcome outcome = Outcome::need_more;
    std::size_t consumed = 0;
  };

  // Fails with bad_extra_header if a header is malformed (name not a token, value with CR/LF)
  // or is one the handshake owns (Host, Upgrade, Connection, Sec-WebSocket-Key/-Version/
  // -Accept/-Extensions), and with bad_url if host or target is unusable.
  static Result<ClientHandshake> create(ClientRequest request,
                                        const std::array<std::uint8_t, kClientKeyBytes>& key_bytes,
                                        HandshakeLimits limits = {});

  const std::string& request() const noexcept { return request_; }
  Step feed(ByteSpan input);

  std::error_code error() const noexcept { return error_; }
  // A sentence for the user, e.g. "server answered 404 Not Found" (peer text escaped).
  const std::string& failure_detail() const noexcept { return failure_detail_; }
  unsigned status() const noexcept { return status_; }

 private:
  ClientHandshake() = default;
  Outcome evaluate(std::string_view head);
  Outcome fail(std::error_code why, std::string detail = {});

  HandshakeLimits limits_;
  std::string request_;
  std::string expected_accept_;
  bool offered_subprotocol_ = false;
  std::string head_;
  Outcome done_ = Outcome::need_more;
  unsigned status_ = 0;
  std::error_code error_{};
  std::string failure_detail_;
};

}  // namespace vtunnel::ws
