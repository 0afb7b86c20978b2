#include "proxy/request_head.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include <algorithm>
#include <limits>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "proxy/error.hpp"

namespace vtunnel::proxy {

namespace http = boost::beast::http;

namespace {

std::string_view sv(boost::beast::string_view s) noexcept { return {s.data(), s.size()}; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; };
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(token) for every comma-separated token of a list-valued field.
template <class Fn>
void for_each_token(std::string_view list, Fn fn) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto token = trim(list.substr(0, comma));
    if (!token.empty()) fn(token);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

constexpr std::string_view kHopByHop[] = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
};

HeadParse fail(errc e, std::string detail) {
  HeadParse p;
  p.status = HeadParse::Status::failed;
  p.error = e;
  p.detail = std::move(detail);
  return p;
}

// Splits an absolute-form "http://authority/path?query" into authority and origin-form.
bool split_absolute_uri(std::string_view uri, std::string_view& authority, std::string& origin,
                        errc& error) {
  constexpr std::string_view kScheme = "http://";
  auto sep = uri.find("://");
  if (sep == std::string_view::npos) {
    error = errc::missing_host;  // origin-form ("/path") or asterisk-form: not a proxy request
    return false;
  }
  if (uri.size() < kScheme.size() || !iequals(uri.substr(0, kScheme.size()), kScheme)) {
    error = errc::unsupported_scheme;
    return false;
  }
  uri.remove_prefix(kScheme.size());
  auto end = uri.find_first_of("/?#");
  authority = uri.substr(0, end);
  if (authority.find('@') != std::string_view::npos) {
    error = errc::bad_authority;  // userinfo is not allowed in http URIs (RFC 9110 4.2.4)
    return false;
  }
  std::string_view rest = end == std::string_view::npos ? std::string_view() : uri.substr(end);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  std::string out;
  out.reserve(rest.size() + 1);
  if (rest.empty() || rest.front() != '/') out.push_back('/');
  out.append(rest.data(), rest.size());
  origin = std::move(out);
  return true;
}

}  // namespace

HeadParse parse_request_head(ByteSpan data, std::size_t max_head_bytes) {
  try {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(std::uint32_t(std::min<std::size_t>(max_head_bytes, UINT32_MAX)));
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // bodies are streamed, not held
    parser.eager(false);
    boost::system::error_code ec;
    std::size_t used = parser.put(boost::asio::const_buffer(data.data(), data.size()), ec);
    if (ec == http::error::need_more) {
      if (data.size() >= max_head_bytes) {
        return fail(errc::head_too_large, fmt::format("no end of head within {} bytes", max_head_bytes));
      }
      return {};
    }
    if (ec == http::error::header_limit) {
      return fail(errc::head_too_large, fmt::format("no end of head within {} bytes", max_head_bytes));
    }
    if (ec) return fail(errc::malformed_head, ec.message());
    if (!parser.is_header_done()) return {};

    const auto& msg = parser.get();
    HeadParse out;
    ProxyRequest& req = out.request;
    req.head_size = used;
    req.method = std::string(sv(msg.method_string()));
    std::string_view target = sv(msg.target());

    if (msg.method() == http::verb::connect) {
      req.kind = RequestKind::connect;
      if (target.find_first_of("/@") != std::string_view::npos) {
        return fail(errc::bad_authority, fmt::format("CONNECT target is not host:port: {}", target));
      }
      auto a = parse_authority(target, kDefaultConnectPort);
      if (!a) return fail(errc(a.error().value()), fmt::format("CONNECT target: {}", target));
      req.target = std::move(*a);
      out.status = HeadParse::Status::complete;
      return out;
    }

    req.kind = RequestKind::forward;
    std::string_view authority;
    std::string origin;
    errc uri_error{};
    if (!split_absolute_uri(target, authority, origin, uri_error)) {
      return fail(uri_error, fmt::format("request target: {}", target));
    }
    auto a = parse_authority(authority, kDefaultHttpPort);
    if (!a) return fail(errc(a.error().value()), fmt::format("request target: {}", target));
    req.target = std::move(*a);

    // Body framing.
    bool has_length = false, has_te = false;
    for (const auto& f : msg) {
      if (f.name() == http::field::content_length) has_length = true;
      if (f.name() == http::field::transfer_encoding) has_te = true;
    }
    if (has_length && has_te) {
      return fail(errc::ambiguous_body_length, "Content-Length with Transfer-Encoding");
    }
    if (has_te) {
      std::vector<std::string_view> codings;
      for (const auto& f : msg) {
        if (f.name() == http::field::transfer_encoding) {
          for_each_token(sv(f.value()), [&](std::string_view t) { codings.push_back(t); });
        }
      }
      if (codings.size() != 1 || !iequals(codings[0], "chunked") || msg.version() < 11) {
        return fail(errc::unsupported_transfer_encoding, "only a lone \"chunked\" transfer coding is supported");
      }
      req.body = BodyFraming::chunked;
    } else if (auto len = parser.content_length()) {
      req.content_length = *len;
      req.body = *len > 0 ? BodyFraming::content_length : BodyFraming::none;
    }

    // Fields named by Connection are hop-by-hop too.
    std::vector<std::string> named;
    for (const auto& f : msg) {
      if (f.name() == http::field::connection || iequals(sv(f.name_string()), "proxy-connection")) {
        for_each_token(sv(f.value()), [&](std::string_view t) { named.emplace_back(t); });
      }
    }
    auto is_hop_by_hop = [&](std::string_view name) {
      for (auto h : kHopByHop) {
        if (iequals(name, h)) return true;
      }
      for (const auto& n : named) {
        if (iequals(name, n)) return true;
      }
      return false;
    };

    std::string& head = req.forward_head;
    head.reserve(used + 64);
    head.append(req.method).append(" ").append(origin);
    head.append(msg.version() == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    head.append("Host: ").append(req.target.host_header(kDefaultHttpPort)).append("\r\n");
    for (const auto& f : msg) {
      std::string_view name = sv(f.name_string());
      if (is_hop_by_hop(name) || f.name() == http::field::host) continue;
      std::string_view value = sv(f.value());
      if (value.find_first_of("\r\n") != std::string_view::npos) {
        return fail(errc::malformed_head, fmt::format("line break in field {}", name));
      }
      head.append(name).append(": ").append(value).append("\r\n");
    }
    if (req.body == BodyFraming::chunked) head.append("Transfer-Encoding: chunked\r\n");
    head.append("Connection: close\r\n\r\n");
    out.status = HeadParse::Status::complete;
    return out;
  } catch (const std::exception& e) {
    // Beast reports peer errors through error codes; anything thrown here is a bug or
    // allocation failure, and must not take the process down for one bad request.
    return fail(errc::malformed_head, fmt::format("parser exception: {}", e.what()));
  }
}

}  // namespace vtunnel::proxy
