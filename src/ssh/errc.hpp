#pragma once
// Errors of the SSH layer. Every peer misbehaviour ends the session with one of these.
#include <system_error>

namespace vtunnel::ssh {

enum class errc {
  truncated = 1,         // a message ended before a field it must contain
  trailing_bytes,        // a message carried bytes after its last field
  limit_exceeded,        // a length from the peer exceeds a named limit
  packet_too_large,      // packet length field above kMaxPacketSize
  bad_padding,           // padding shorter than 4 bytes, longer than the packet, or misaligned
  mac_failure,           // authentication tag did not verify (corruption or tampering)
  bad_version,           // peer identification line missing, too long, or not SSH-2.0
  protocol_error,        // message not allowed in the current state
  unexpected_message,    // message type not expected now (e.g. channel message before auth)
  kex_failed,            // no common algorithm, bad key share, or bad exchange-hash signature
  host_key_mismatch,     // server host key rejected by the configured verifier
  auth_failed,           // authentication refused, or too many attempts
  window_exceeded,       // peer sent more channel data than the window allowed
  unknown_channel,       // channel id that is not open
  too_many_channels,     // channel limit reached
  disconnected_by_peer,  // peer sent SSH_MSG_DISCONNECT
  sequence_wrapped,      // packet sequence number wrapped under strict kex
  closed,                // the session is already closed
  channel_refused,       // the peer refused to open a channel
  invalid_argument,      // a local caller passed something unusable (bug in caller)
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace vtunnel::ssh

template <>
struct std::is_error_code_enum<vtunnel::ssh::errc> : std::true_type {};
