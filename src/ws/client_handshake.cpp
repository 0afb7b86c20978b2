#include "ws/client_handshake.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <algorithm>

#include "core/log.hpp"
#include "ws/detail/http_tokens.hpp"
#include "ws/error.hpp"

namespace vtunnel::ws {
namespace http = boost::beast::http;
using detail::iequals;
using detail::token_list_contains;

namespace {

constexpr std::string_view kReservedHeaders[] = {
    "Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
    "Sec-WebSocket-Accept", "Sec-WebSocket-Extensions", "Content-Length", "Transfer-Encoding",
};

std::string joined(const http::fields& fields, http::field name) {
  std::string out;
  for (auto it = fields.find(name); it != fields.end() && it->name() == name; ++it) {
    if (!out.empty()) out += ',';
    out.append(it->value().data(), it->value().size());
  }
  return out;
}

bool is_valid_target(std::string_view target) noexcept {
  if (target.empty() || target.front() != '/') return false;
  return std::all_of(target.begin(), target.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7F && c != '#';
  });
}

}  // namespace

Result<ClientHandshake> ClientHandshake::create(ClientRequest request,
                                                const std::array<std::uint8_t, kClientKeyBytes>& key_bytes,
                                                HandshakeLimits limits) {
  if (request.host_header.empty() || !detail::is_safe_header_value(request.host_header) ||
      request.host_header.find_first_of(" \t") != std::string::npos) {
    return errc::bad_url;
  }
  if (!is_valid_target(request.target)) return errc::bad_url;
  ClientHandshake hs;
  hs.limits_ = limits;
  const std::string key = encode_client_key(key_bytes);
  hs.expected_accept_ = compute_accept_key(key);
  std::string& r = hs.request_;
  r = "GET " + request.target + " HTTP/1.1\r\nHost: " + request.host_header +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
      "\r\nSec-WebSocket-Version: 13\r\n";
  for (const auto& [name, value] : request.extra_headers) {
    if (!detail::is_http_token(name) || !detail::is_safe_header_value(value)) return errc::bad_extra_header;
    for (std::string_view reserved : kReservedHeaders) {
      if (iequals(name, reserved)) return errc::bad_extra_header;
    }
    if (iequals(name, "Sec-WebSocket-Protocol")) hs.offered_subprotocol_ = true;
    r += name + ": " + value + "\r\n";
  }
  r += "\r\n";
  if (r.size() > limits.max_head_size) return errc::head_too_large;
  return hs;
}

ClientHandshake::Outcome ClientHandshake::fail(std::error_code why, std::string detail) {
  error_ = why;
  failure_detail_ = detail.empty() ? why.message() : std::move(detail);
  return Outcome::failed;
}

ClientHandshake::Step ClientHandshake::feed(ByteSpan input) {
  if (done_ != Outcome::need_more) return {done_, 0};
  const std::size_t before = head_.size();
  const std::size_t take = std::min(limits_.max_head_size - before, input.size());
  head_.append(as_string(input.first(take)));
  const std::size_t end = detail::find_head_end(head_, before >= 3 ? before - 3 : 0);
  if (end == 0 || !detail::plausible_response_start(head_)) {
    if (!detail::plausible_response_start(head_)) {
      done_ = fail(errc::bad_http, "server's answer is not an HTTP response (wrong port or protocol?)");
      return {done_, take};
    }
    if (head_.size() < limits_.max_head_size) return {Outcome::need_more, take};
    done_ = fail(errc::head_too_large, "server's HTTP response head exceeds " +
                                           std::to_string(limits_.max_head_size) + " bytes");
    return {done_, take};
  }
  done_ = evaluate(std::string_view(head_).substr(0, end));
  head_.clear();
  head_.shrink_to_fit();
  return {done_, end - before};
}

ClientHandshake::Outcome ClientHandshake::evaluate(std::string_view head) {
  http::response_parser<http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits_.max_head_size));
  parser.eager(false);
  boost::system::error_code ec;
  try {
    parser.put(boost::asio::buffer(head.data(), head.size()), ec);
  } catch (const std::exception&) {
    return fail(errc::bad_http);
  }
  if (ec || !parser.is_header_done()) {
    return fail(errc::bad_http, "server's answer is not a valid HTTP response (" + ec.message() + ")");
  }
  const auto& res = parser.get();
  status_ = res.result_int();
  if (status_ != 101) {
    const auto reason = res.reason();
    std::string detail = "server answered " + std::to_string(status_) + " " +
                         log::escaped(std::string_view(reason.data(), reason.size()), 80) +
                         " instead of 101 Switching Protocols";
    if (status_ == 426) detail += " (it wants Sec-WebSocket-Version " + log::escaped(std::string(res[http::field::sec_websocket_version]), 20) + ")";
    return fail(errc::unexpected_status, std::move(detail));
  }
  if (res.version() != 11) return fail(errc::bad_http_version);
  if (!token_list_contains(joined(res, http::field::upgrade), "websocket")) return fail(errc::no_upgrade_token);
  if (!token_list_contains(joined(res, http::field::connection), "upgrade")) {
    return fail(errc::no_connection_upgrade);
  }
  const auto accept = res[http::field::sec_websocket_accept];
  if (res.count(http::field::sec_websocket_accept) != 1 ||
      std::string_view(accept.data(), accept.size()) != expected_accept_) {
    return fail(errc::bad_accept);
  }
  if (res.count(http::field::sec_websocket_extensions) != 0 ||
      (!offered_subprotocol_ && res.count(http::field::sec_websocket_protocol) != 0)) {
    return fail(errc::unrequested_extension);
  }
  return Outcome::upgraded;
}

}  // namespace vtunnel::ws
