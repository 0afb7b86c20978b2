#pragma once
// WebSocket errors. Every RFC 6455 violation a peer can commit has its own code, and each code
// maps to the close status we send before giving up on the connection (close_code_for).
#include <cstdint>
#include <system_error>

namespace vtunnel::ws {

enum class errc {
  // Frame layer: protocol errors (close status 1002).
  reserved_bits_set = 1,        // RSV1-3 set, but no extension was negotiated
  reserved_opcode,              // opcode 3-7 or 11-15
  unmasked_frame,               // server received a frame without a mask (clients must mask)
  masked_frame,                 // client received a masked frame (servers must not mask)
  non_minimal_length,           // 16-bit length < 126, or 64-bit length < 65536
  length_msb_set,               // 64-bit length with the most significant bit set
  fragmented_control_frame,     // close/ping/pong without FIN
  control_frame_too_big,        // close/ping/pong payload > 125 bytes
  continuation_without_start,   // continuation frame with no message in progress
  data_frame_inside_message,    // text/binary frame while a fragmented message is open
  frame_after_close,            // any frame after the peer's close frame
  bad_close_payload,            // close payload of 1 byte
  bad_close_code,               // close code that may not appear on the wire
  // Payload content.
  bad_utf8,                     // text message or close reason is not UTF-8 (1007)
  message_too_big,              // message size above the configured limit (1009)
  // Handshake, server side (request) and client side (response).
  head_too_large,               // HTTP head above the limit
  bad_http,                     // the HTTP head does not parse
  not_upgrade_request,          // a plain HTTP request, answered with an HTTP status
  bad_method,                   // WebSocket upgrade without GET
  bad_http_version,             // WebSocket upgrade below HTTP/1.1
  no_upgrade_token,             // Upgrade header lacks "websocket"
  no_connection_upgrade,        // Connection header lacks "upgrade"
  bad_key,                      // Sec-WebSocket-Key missing or not base64 of 16 bytes
  bad_version,                  // Sec-WebSocket-Version missing or not 13
  unexpected_status,            // the server answered something else than 101
  bad_accept,                   // Sec-WebSocket-Accept missing or wrong
  unrequested_extension,        // the server chose an extension or subprotocol we did not offer
  // Client configuration.
  bad_url,                      // not a ws:// or wss:// URL we can dial
  bad_extra_header,             // an extra handshake header that is malformed or reserved
  // Connection level.
  closed,                       // the close handshake finished (not a failure of the peer)
  text_message,                 // a text message on a connection that carries bytes (1003)
  truncated_frame,              // the transport ended inside a frame (no close frame)
  handshake_eof,                // the peer closed the connection during the HTTP handshake
  // TLS client.
  tls_handshake_failed,         // the TLS handshake failed (alert, no common parameters, ...)
  tls_certificate_rejected,     // the server's certificate chain or name did not verify
  tls_trust_store,              // the trusted CA store could not be loaded
  tls_error,                    // a TLS error after the handshake (bad record, fatal alert)
  // HTTP proxy (CONNECT) on the way to the server.
  bad_proxy_url,                // not an http://[user:pass@]host[:port] proxy URL
  proxy_scheme_unsupported,     // https://, socks5://, ... proxies
  proxy_refused,                // the proxy answered CONNECT with something else than 2xx
  proxy_bad_response,           // the proxy's answer is not an HTTP response, or too large
  proxy_eof,                    // the proxy closed the connection before answering
  proxy_timeout,                // the proxy did not answer CONNECT in time
  // TLS server.
  tls_credentials,              // the server certificate or key cannot be loaded
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

// Close status codes (RFC 6455 section 7.4.1).
enum class CloseCode : std::uint16_t {
  normal = 1000,
  going_away = 1001,
  protocol_error = 1002,
  unsupported_data = 1003,
  no_status = 1005,        // never sent: "the close frame had no code"
  abnormal = 1006,         // never sent: "no close frame at all"
  invalid_payload = 1007,  // e.g. bad UTF-8
  policy_violation = 1008,
  too_big = 1009,
  internal_error = 1011,
};

// The close status to send when the connection fails with `ec` (1002 for anything not listed).
CloseCode close_code_for(std::error_code ec) noexcept;

// True if `code` may appear in a close frame on the wire (RFC 6455 7.4.1 / 7.4.2).
bool is_valid_wire_close_code(std::uint16_t code) noexcept;

}  // namespace vtunnel::ws

template <>
struct std::is_error_code_enum<vtunnel::ws::errc> : std::true_type {};
