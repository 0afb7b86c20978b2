#include "ws/server_handshake.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <algorithm>

#include "ws/accept_key.hpp"
#include "ws/detail/http_tokens.hpp"
#include "ws/error.hpp"

namespace vtunnel::ws {
namespace http = boost::beast::http;
using detail::token_list_contains;

namespace {

constexpr std::string_view kHealthPath = "/health";

// All values of a header that may be repeated, joined as one list.
std::string joined(const http::fields& fields, http::field name) {
  std::string out;
  for (auto it = fields.find(name); it != fields.end() && it->name() == name; ++it) {
    if (!out.empty()) out += ',';
    out.append(it->value().data(), it->value().size());
  }
  return out;
}

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";

std::string text_response(unsigned status, std::string_view reason, std::string_view body,
                          std::string_view extra_headers, bool head_only,
                          std::string_view content_type = kTextPlain) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " ";
  r += reason;
  r += "\r\nContent-Type: ";
  r += content_type;
  r += "\r\nContent-Length: ";
  r += std::to_string(body.size());
  r += "\r\nConnection: close\r\n";
  r += extra_headers;
  r += "\r\n";
  if (!head_only) r += body;
  return r;
}

}  // namespace

ServerHandshake::Step ServerHandshake::feed(ByteSpan input) {
  if (done_ != Outcome::need_more) return {done_, 0};
  const std::size_t before = head_.size();
  const std::size_t room = limits_.max_head_size - before;
  const std::size_t take = std::min(room, input.size());
  head_.append(as_string(input.first(take)));
  const std::size_t end = detail::find_head_end(head_, before >= 3 ? before - 3 : 0);
  if (end == 0) {
    if (!detail::plausible_request_start(head_)) {
      done_ = refuse(400, errc::bad_http);
      return {done_, take};
    }
    if (head_.size() < limits_.max_head_size) return {Outcome::need_more, take};
    done_ = refuse(431, errc::head_too_large);
    return {done_, take};
  }
  done_ = evaluate(std::string_view(head_).substr(0, end));
  head_.clear();
  head_.shrink_to_fit();
  return {done_, end - before};
}

ServerHandshake::Outcome ServerHandshake::refuse(unsigned status, std::error_code why,
                                                 std::string_view extra_headers) {
  status_ = status;
  error_ = why;
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  const std::string body = std::string(reason) + ": " + why.message() + "\n";
  response_ = text_response(status, std::string_view(reason.data(), reason.size()), body, extra_headers, false);
  return Outcome::respond;
}

ServerHandshake::Outcome ServerHandshake::evaluate(std::string_view head) {
  http::request_parser<http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits_.max_head_size));
  parser.eager(false);
  boost::system::error_code ec;
  try {
    parser.put(boost::asio::buffer(head.data(), head.size()), ec);
  } catch (const std::exception&) {  // allocation failure; Beast reports bad input via ec
    return refuse(400, errc::bad_http);
  }
  if (ec || !parser.is_header_done()) return refuse(400, errc::bad_http);
  const auto& req = parser.get();
  target_.assign(req.target().data(), req.target().size());

  const std::string_view path = std::string_view(target_).substr(0, target_.find('?'));
  const bool is_get = req.method() == http::verb::get;
  const bool is_head = req.method() == http::verb::head;
  if (path == kHealthPath) {
    if (!is_get && !is_head) return refuse(405, errc::bad_method, "Allow: GET, HEAD\r\n");
    status_ = 200;
    response_ = text_response(200, "OK", "ok", {}, is_head);
    return Outcome::respond;
  }

  const std::string upgrade = joined(req, http::field::upgrade);
  if (upgrade.empty()) {
    // A plain HTTP request: nothing but WebSocket lives here.
    if (!is_get && !is_head) return refuse(405, errc::not_upgrade_request, "Allow: GET\r\n");
    if (plain_) {
      if (auto answer = plain_(path)) {
        status_ = answer->status;
        const auto reason = http::obsolete_reason(static_cast<http::status>(answer->status));
        response_ = text_response(answer->status, std::string_view(reason.data(), reason.size()), answer->body,
                                  {}, is_head, answer->content_type);
        return Outcome::respond;
      }
    }
    return refuse(404, errc::not_upgrade_request);
  }
  if (!token_list_contains(upgrade, "websocket")) return refuse(400, errc::no_upgrade_token);
  if (!is_get) return refuse(405, errc::bad_method, "Allow: GET\r\n");
  if (req.version() < 11) return refuse(400, errc::bad_http_version);
  if (!token_list_contains(joined(req, http::field::connection), "upgrade")) {
    return refuse(400, errc::no_connection_upgrade);
  }
  if (req.count(http::field::sec_websocket_version) != 1 ||
      req[http::field::sec_websocket_version] != "13") {
    return refuse(426, errc::bad_version, "Sec-WebSocket-Version: 13\r\n");
  }
  const auto key = req[http::field::sec_websocket_key];
  if (req.count(http::field::sec_websocket_key) != 1 ||
      !is_valid_client_key(std::string_view(key.data(), key.size()))) {
    return refuse(400, errc::bad_key);
  }
  // The bytes after the head must be WebSocket frames, not a request body.
  if (req.count(http::field::transfer_encoding) != 0 ||
      (req.count(http::field::content_length) != 0 && req[http::field::content_length] != "0")) {
    return refuse(400, errc::bad_http);
  }

  status_ = 101;
  response_ =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " + compute_accept_key(std::string_view(key.data(), key.size())) + "\r\n\r\n";
  return Outcome::upgrade;
}

}  // namespace vtunnel::ws
