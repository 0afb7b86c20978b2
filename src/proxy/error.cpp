#include "proxy/error.hpp"

#include <string>

namespace vtunnel::proxy {

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "proxy"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::head_too_large: return "request head too large";
      case errc::malformed_head: return "malformed request head";
      case errc::missing_host: return "no host in the request target";
      case errc::bad_authority: return "bad host or port in the request target";
      case errc::unsupported_scheme: return "only http:// URIs can be proxied without CONNECT";
      case errc::unsupported_transfer_encoding: return "unsupported transfer coding";
      case errc::ambiguous_body_length: return "both Content-Length and Transfer-Encoding";
      case errc::bad_chunked_body: return "malformed chunked body";
      case errc::head_timeout: return "request head not received in time";
      case errc::upstream_failed: return "could not reach the upstream";
      case errc::too_many_connections: return "too many proxy connections";
    }
    return "unknown proxy error";
  }
};
}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

const char* error_response(errc e) noexcept {
  switch (e) {
    case errc::head_too_large: return "HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n";
    case errc::unsupported_transfer_encoding: return "HTTP/1.1 501 Not Implemented\r\n\r\n";
    case errc::head_timeout: return "HTTP/1.1 408 Request Timeout\r\n\r\n";
    case errc::upstream_failed: return "HTTP/1.1 502 Bad Gateway\r\n\r\n";
    case errc::too_many_connections: return "HTTP/1.1 503 Service Unavailable\r\n\r\n";
    case errc::malformed_head:
    case errc::missing_host:
    case errc::bad_authority:
    case errc::unsupported_scheme:
    case errc::ambiguous_body_length:
    case errc::bad_chunked_body:
      break;
  }
  return "HTTP/1.1 400 Bad Request\r\n\r\n";
}

}  // namespace vtunnel::proxy
