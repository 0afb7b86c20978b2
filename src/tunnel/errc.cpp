#include "tunnel/errc.hpp"

#include <string>

namespace vtunnel {
namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "vtunnel.tunnel"; }
  std::string message(int ev) const override {
    switch (static_cast<tunnel_errc>(ev)) {
      case tunnel_errc::bad_private_key_prefix: return "private key must start with \"vt-priv-\"";
      case tunnel_errc::bad_public_key_prefix: return "public key must start with \"vt-pub-\"";
      case tunnel_errc::bad_key_encoding: return "key is not valid base64 (standard alphabet, no padding)";
      case tunnel_errc::bad_key_length: return "key must decode to exactly 32 bytes";
      case tunnel_errc::bad_forward_spec: return "forward must be remotePort=localAddr, e.g. 9000=localhost:3000";
      case tunnel_errc::bad_json: return "malformed JSON request";
      case tunnel_errc::bad_port: return "port must be between 1 and 65535";
      case tunnel_errc::message_too_large: return "request too large";
      case tunnel_errc::key_file_permissions:
        return "key file is accessible by group or others; restrict it with chmod 600";
      case tunnel_errc::key_file_format: return "key file must hold one vt-priv-... key (and nothing else)";
    }
    return "unknown tunnel error";
  }
};
}  // namespace

const std::error_category& tunnel_category() noexcept {
  static const Category c;
  return c;
}
}  // namespace vtunnel
