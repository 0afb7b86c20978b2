#pragma once
// Small helpers for HTTP header values shared by both handshake sides.
#include <string_view>

namespace vtunnel::ws::detail {

// True if the comma-separated token list `list` (RFC 7230 #rule: OWS around elements, empty
// elements allowed) contains `token`, compared case-insensitively.
bool token_list_contains(std::string_view list, std::string_view token) noexcept;

bool iequals(std::string_view a, std::string_view b) noexcept;

// Offset just past the first "\r\n\r\n" in `text` at or after `from`, or 0 if there is none.
std::size_t find_head_end(std::string_view text, std::size_t from) noexcept;

// False if `start` (the first bytes of a request head) cannot begin a request line, i.e. the
// method is not a token: lets a server refuse TLS or binary garbage without waiting for more.
bool plausible_request_start(std::string_view start) noexcept;
// False if `start` cannot begin a status line ("HTTP/").
bool plausible_response_start(std::string_view start) noexcept;

// RFC 7230 token (header names).
bool is_http_token(std::string_view s) noexcept;
// A header value we may send: visible ASCII, obs-text, space and tab; no CR, LF or NUL.
bool is_safe_header_value(std::string_view s) noexcept;

}  // namespace vtunnel::ws::detail
