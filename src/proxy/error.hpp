#pragma once
// Why the proxy refused a request, and the HTTP status each reason is answered with.
#include <system_error>

namespace vtunnel::proxy {

enum class errc {
  head_too_large = 1,      // the request head exceeded kMaxRequestHeadBytes
  malformed_head,          // the HTTP parser rejected the head
  missing_host,            // no host in the request target (origin-form, empty authority)
  bad_authority,           // host or port unusable (userinfo, bad characters, port 0 or > 65535)
  unsupported_scheme,      // absolute-form URI that is not http://
  unsupported_transfer_encoding,  // a transfer coding other than a lone "chunked"
  ambiguous_body_length,   // Content-Length together with Transfer-Encoding
  bad_chunked_body,        // chunked framing error in a forwarded body
  head_timeout,            // the head did not arrive within the deadline
  upstream_failed,         // dial or first write to the target failed
  too_many_connections,    // the concurrent connection bound was reached
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

// The complete response sent for a refused request ("HTTP/1.1 400 Bad Request\r\n\r\n").
const char* error_response(errc e) noexcept;

}  // namespace vtunnel::proxy

template <>
struct std::is_error_code_enum<vtunnel::proxy::errc> : std::true_type {};
