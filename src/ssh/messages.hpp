#pragma once
// SSH message numbers (RFC 4250 §4.1) and disconnect / channel-open-failure reason codes.
#include <cstdint>

namespace vtunnel::ssh::msg {

inline constexpr std::uint8_t kDisconnect = 1;
inline constexpr std::uint8_t kIgnore = 2;
inline constexpr std::uint8_t kUnimplemented = 3;
inline constexpr std::uint8_t kDebug = 4;
inline constexpr std::uint8_t kServiceRequest = 5;
inline constexpr std::uint8_t kServiceAccept = 6;
inline constexpr std::uint8_t kExtInfo = 7;
inline constexpr std::uint8_t kKexInit = 20;
inline constexpr std::uint8_t kNewKeys = 21;
inline constexpr std::uint8_t kKexEcdhInit = 30;
inline constexpr std::uint8_t kKexEcdhReply = 31;
inline constexpr std::uint8_t kUserauthRequest = 50;
inline constexpr std::uint8_t kUserauthFailure = 51;
inline constexpr std::uint8_t kUserauthSuccess = 52;
inline constexpr std::uint8_t kUserauthBanner = 53;
inline constexpr std::uint8_t kUserauthPkOk = 60;
inline constexpr std::uint8_t kGlobalRequest = 80;
inline constexpr std::uint8_t kRequestSuccess = 81;
inline constexpr std::uint8_t kRequestFailure = 82;
inline constexpr std::uint8_t kChannelOpen = 90;
inline constexpr std::uint8_t kChannelOpenConfirmation = 91;
inline constexpr std::uint8_t kChannelOpenFailure = 92;
inline constexpr std::uint8_t kChannelWindowAdjust = 93;
inline constexpr std::uint8_t kChannelData = 94;
inline constexpr std::uint8_t kChannelExtendedData = 95;
inline constexpr std::uint8_t kChannelEof = 96;
inline constexpr std::uint8_t kChannelClose = 97;
inline constexpr std::uint8_t kChannelRequest = 98;
inline constexpr std::uint8_t kChannelSuccess = 99;
inline constexpr std::uint8_t kChannelFailure = 100;

// Messages that may be sent while a key exchange is in progress (RFC 4253 §7.1).
constexpr bool allowed_during_kex(std::uint8_t type) noexcept {
  return (type >= kDisconnect && type <= kDebug) || (type >= kKexInit && type <= 49);
}

}  // namespace vtunnel::ssh::msg

namespace vtunnel::ssh {

// SSH_MSG_DISCONNECT reason codes (RFC 4253 §11.1).
enum class DisconnectReason : std::uint32_t {
  protocol_error = 2,
  key_exchange_failed = 3,
  mac_error = 5,
  service_not_available = 7,
  host_key_not_verifiable = 9,
  by_application = 11,
  too_many_connections = 12,
  no_more_auth_methods_available = 14,
};

// SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 §5.1).
enum class OpenFailure : std::uint32_t {
  administratively_prohibited = 1,
  connect_failed = 2,
  unknown_channel_type = 3,
  resource_shortage = 4,
};

}  // namespace vtunnel::ssh
