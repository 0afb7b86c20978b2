#include "ws/error.hpp"

#include <string>

namespace vtunnel::ws {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "vtunnel.ws"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::reserved_bits_set: return "WebSocket frame has reserved bits set";
      case errc::reserved_opcode: return "WebSocket frame has a reserved opcode";
      case errc::unmasked_frame: return "WebSocket client sent an unmasked frame";
      case errc::masked_frame: return "WebSocket server sent a masked frame";
      case errc::non_minimal_length: return "WebSocket frame length is not minimally encoded";
      case errc::length_msb_set: return "WebSocket frame 64-bit length has its top bit set";
      case errc::fragmented_control_frame: return "WebSocket control frame is fragmented";
      case errc::control_frame_too_big: return "WebSocket control frame payload exceeds 125 bytes";
      case errc::continuation_without_start: return "WebSocket continuation frame without a message";
      case errc::data_frame_inside_message: return "WebSocket data frame inside a fragmented message";
      case errc::frame_after_close: return "WebSocket frame received after the close frame";
      case errc::bad_close_payload: return "WebSocket close frame payload is malformed";
      case errc::bad_close_code: return "WebSocket close frame carries an invalid status code";
      case errc::bad_utf8: return "WebSocket text is not valid UTF-8";
      case errc::message_too_big: return "WebSocket message exceeds the size limit";
      case errc::head_too_large: return "HTTP head exceeds the size limit";
      case errc::bad_http: return "malformed HTTP head";
      case errc::not_upgrade_request: return "not a WebSocket upgrade request";
      case errc::bad_method: return "WebSocket upgrade must use GET";
      case errc::bad_http_version: return "WebSocket upgrade needs HTTP/1.1";
      case errc::no_upgrade_token: return "Upgrade header does not name websocket";
      case errc::no_connection_upgrade: return "Connection header does not contain upgrade";
      case errc::bad_key: return "Sec-WebSocket-Key is missing or malformed";
      case errc::bad_version: return "Sec-WebSocket-Version is not 13";
      case errc::unexpected_status: return "server did not answer 101 Switching Protocols";
      case errc::bad_accept: return "Sec-WebSocket-Accept is missing or wrong";
      case errc::unrequested_extension: return "server selected an extension or subprotocol that was not offered";
      case errc::bad_url: return "not a valid ws:// or wss:// URL";
      case errc::bad_extra_header: return "extra handshake header is malformed or may not be overridden";
      case errc::closed: return "WebSocket closed";
      case errc::text_message: return "WebSocket text message where only binary data is expected";
      case errc::truncated_frame: return "connection ended inside a WebSocket frame";
      case errc::handshake_eof: return "connection closed during the WebSocket handshake";
      case errc::tls_handshake_failed: return "TLS handshake failed (Botan 2 speaks TLS 1.2 at most)";
      case errc::tls_certificate_rejected: return "TLS server certificate rejected";
      case errc::tls_trust_store: return "cannot load the trusted CA certificates";
      case errc::tls_error: return "TLS error";
      case errc::bad_proxy_url: return "not a valid proxy URL (http://[user:password@]host[:port])";
      case errc::proxy_scheme_unsupported: return "proxy URL scheme not supported (only http:// proxies)";
      case errc::proxy_refused: return "the HTTP proxy refused the CONNECT request";
      case errc::proxy_bad_response: return "the HTTP proxy's answer is not a valid HTTP response";
      case errc::proxy_timeout: return "the HTTP proxy did not answer CONNECT in time";
      case errc::proxy_eof: return "the HTTP proxy closed the connection before answering CONNECT";
      case errc::tls_credentials: return "cannot load the TLS certificate or key";
    }
    return "unknown WebSocket error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

CloseCode close_code_for(std::error_code ec) noexcept {
  if (ec.category() != error_category()) return CloseCode::internal_error;
  switch (static_cast<errc>(ec.value())) {
    case errc::bad_utf8: return CloseCode::invalid_payload;
    case errc::message_too_big: return CloseCode::too_big;
    case errc::closed: return CloseCode::normal;
    case errc::text_message: return CloseCode::unsupported_data;
    default: return CloseCode::protocol_error;
  }
}

bool is_valid_wire_close_code(std::uint16_t code) noexcept {
  if (code >= 3000 && code <= 4999) return true;  // registered / private use
  switch (code) {
    case 1000: case 1001: case 1002: case 1003: case 1007: case 1008:
    case 1009: case 1010: case 1011: case 1012: case 1013: case 1014:
      return true;
    default:
      return false;
  }
}

}  // namespace vtunnel::ws
