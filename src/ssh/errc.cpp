#include "ssh/errc.hpp"

#include <string>

namespace vtunnel::ssh {
namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ssh"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::truncated: return "SSH message truncated (peer sent a malformed message)";
      case errc::trailing_bytes: return "SSH message has unexpected trailing bytes";
      case errc::limit_exceeded: return "SSH peer exceeded a size or count limit";
      case errc::packet_too_large: return "SSH packet too large (peer is not speaking SSH or is hostile)";
      case errc::bad_padding: return "SSH packet padding invalid (corrupt stream or wrong keys)";
      case errc::mac_failure: return "SSH packet authentication failed (data corrupted or tampered with in transit)";
      case errc::bad_version: return "SSH identification invalid (peer is not an SSH-2.0 endpoint)";
      case errc::protocol_error: return "SSH protocol violation by peer";
      case errc::unexpected_message: return "SSH message not allowed in this state";
      case errc::kex_failed: return "SSH key exchange failed (no common algorithm or invalid key material)";
      case errc::host_key_mismatch: return "SSH server host key not accepted (check the server/client key pair; possible man-in-the-middle)";
      case errc::auth_failed: return "SSH authentication failed (check that the server has this client's public key)";
      case errc::window_exceeded: return "SSH peer sent more channel data than the window allows";
      case errc::unknown_channel: return "SSH message for an unknown channel";
      case errc::too_many_channels: return "SSH channel limit reached";
      case errc::disconnected_by_peer: return "SSH peer disconnected";
      case errc::sequence_wrapped: return "SSH packet sequence number wrapped during strict key exchange";
      case errc::closed: return "SSH session closed";
      case errc::channel_refused: return "SSH channel open refused by peer";
      case errc::invalid_argument: return "invalid argument to SSH session";
    }
    return "unknown SSH error";
  }
};
}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace vtunnel::ssh
