#pragma once
// Errors of the tunnel layer: configuration the user typed (keys, forwards) and messages a
// peer sent. Messages say what to fix.
#include <system_error>

namespace vtunnel {

enum class tunnel_errc {
  bad_private_key_prefix = 1,
  bad_public_key_prefix,
  bad_key_encoding,
  bad_key_length,
  bad_forward_spec,
  bad_json,
  bad_port,
  message_too_large,
  key_file_permissions,
  key_file_format,
};

const std::error_category& tunnel_category() noexcept;
inline std::error_code make_error_code(tunnel_errc e) noexcept { return {static_cast<int>(e), tunnel_category()}; }

}  // namespace vtunnel

template <>
struct std::is_error_code_enum<vtunnel::tunnel_errc> : std::true_type {};
