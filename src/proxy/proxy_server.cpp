#include "proxy/proxy_server.hpp"

#include <sys/socket.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/relay.hpp"
#include "core/resolver.hpp"
#include "core/timer.hpp"
#include "proxy/chunked_body.hpp"
#include "proxy/error.hpp"

namespace vtunnel::proxy {

using namespace std::chrono_literals;

namespace {

constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n";
// The head read buffer: the head (at most kMaxRequestHeadBytes) plus whatever body or tunnel
// bytes arrive with it. Reused for the request body afterwards.
constexpr std::size_t kHeadReadBufferBytes = 16 * 1024;
static_assert(kHeadReadBufferBytes > kMaxRequestHeadBytes);
// After an error response the client may still be sending (a huge head): read and discard for
// a moment so closing does not reset the connection before the response is read.
constexpr Duration kRefusalDrainTime = 500ms;
constexpr std::size_t kRefusalDrainBytes = 64 * 1024;
constexpr Duration kAcceptErrorBackoff = 50ms;

std::string message_of(std::error_code ec) { return ec.message(); }

// Sends the error response for `reason`, half-closes, drains briefly, and returns; the caller
// then closes the connection.
Task<void> refuse(TcpStream& client, errc reason) {
  auto w = co_await client.write_all(as_bytes(error_response(reason)));
  if (!w) co_return;
  auto shut = co_await client.shutdown_write();
  if (!shut) co_return;
  std::array<std::uint8_t, 4096> sink;
  auto deadline = Clock::now() + kRefusalDrainTime;
  std::size_t drained = 0;
  while (drained < kRefusalDrainBytes) {
    auto left = deadline - Clock::now();
    if (left <= Duration::zero()) break;
    auto n = co_await client.read_some(sink, left);
    if (!n) break;
    drained += *n;
  }
}

// Tracks how much of a forwarded request body is still to come, by its framing.
class BodyTracker {
 public:
  explicit BodyTracker(const ProxyRequest& req) : framing_(req.body), remaining_(req.content_length) {}
  bool done() const noexcept {
    if (framing_ == BodyFraming::chunked) return chunked_.done();
    return remaining_ == 0;
  }
  // How many leading bytes of `data` are body.
  Result<std::size_t> take(ByteSpan data) {
    switch (framing_) {
      case BodyFraming::none: return std::size_t(0);
      case BodyFraming::content_length: {
        std::size_t n = std::size_t(std::min<std::uint64_t>(remaining_, data.size()));
        remaining_ -= n;
        return n;
      }
      case BodyFraming::chunked: return chunked_.scan(data);
    }
    return std::size_t(0);
  }

 private:
  BodyFraming framing_;
  std::uint64_t remaining_;
  ChunkedBodyScanner chunked_;
};

// One forwarded request: the body going up and the response coming down run at once (a
// server may answer before the body ends, or wait for "100 Continue"); an idle watchdog
// covers both.
struct ForwardState {
  TcpStream& client;
  TcpStream& upstream;
  const ProxyOptions& options;
  std::string who;
  Scope transfers;
  TimePoint last_activity = Clock::now();
  std::uint64_t response_bytes = 0;
  bool idle_fired = false;
};

Task<void> upload_body(ForwardState& st, BodyTracker& body, MutableByteSpan buffer) {
  while (!body.done()) {
    auto n = co_await st.client.read_some(buffer);
    if (!n) {
      if (n.error() != vtunnel::errc::cancelled) {
        log::info("proxy: {}: request body ended early: {}", st.who, message_of(n.error()));
        st.transfers.cancel();
      }
      co_return;
    }
    st.last_activity = Clock::now();
    auto take = body.take(ByteSpan(buffer.data(), *n));
    if (!take) {
      log::warn("proxy: {}: {}", st.who, message_of(take.error()));
      st.transfers.cancel();
      co_return;
    }
    auto w = co_await st.upstream.write_all(ByteSpan(buffer.data(), *take));
    if (!w) {
      if (w.error() != vtunnel::errc::cancelled) st.transfers.cancel();
      co_return;
    }
    st.last_activity = Clock::now();
  }
}

Task<void> download_response(ForwardState& st) {
  auto buffer = std::make_unique_for_overwrite<std::uint8_t[]>(st.options.relay_buffer_size);
  MutableByteSpan span(buffer.get(), st.options.relay_buffer_size);
  for (;;) {
    auto n = co_await st.upstream.read_some(span);
    if (!n) break;  // EOF (the normal end: we sent "Connection: close"), error or cancel
    st.last_activity = Clock::now();
    auto w = co_await st.client.write_all(ByteSpan(span.data(), *n));
    if (!w) break;
    st.response_bytes += *n;
    st.last_activity = Clock::now();
  }
  st.transfers.cancel();  // one response, then the connection closes
}

Task<void> forward_watchdog(ForwardState& st) {
  for (;;) {
    auto slept = co_await sleep_until(st.last_activity + st.options.idle_timeout);
    if (!slept) co_return;
    if (Clock::now() - st.last_activity >= st.options.idle_timeout) {
      st.idle_fired = true;
      st.transfers.cancel();
      co_return;
    }
  }
}

// Returns why the request was refused after the upstream was reached, if it was.
Task<std::optional<errc>> forward_request(TcpStream& client, TcpStream& upstream, const ProxyRequest& req,
                           MutableByteSpan buffer, std::size_t buffered, const ProxyOptions& options,
                           std::string who) {
  BodyTracker body(req);
  ByteSpan extra(buffer.data() + req.head_size, buffered - req.head_size);
  auto take = body.take(extra);
  if (!take) {
    log::warn("proxy: {}: {}", who, message_of(take.error()));
    co_await refuse(client, errc::bad_chunked_body);
    co_return errc::bad_chunked_body;
  }
  ByteSpan parts[2] = {as_bytes(req.forward_head), extra.first(*take)};
  auto w = co_await upstream.write_all(std::span<const ByteSpan>(parts));
  if (!w) {
    log::warn("proxy: {}: writing to upstream {}: {}", who, log::escaped(req.target.to_string()),
              message_of(w.error()));
    co_await refuse(client, errc::upstream_failed);
    co_return errc::upstream_failed;
  }

  ForwardState st{client, upstream, options, who, {}, Clock::now(), 0, false};
  // Extra bytes past the body (a pipelined request) are not forwarded: one request per
  // connection.
  if (!body.done()) st.transfers.spawn(upload_body(st, body, buffer));
  st.transfers.spawn(download_response(st));
  Scope watchdog;
  if (options.idle_timeout > Duration::zero()) watchdog.spawn(forward_watchdog(st));
  co_await st.transfers.join();
  watchdog.cancel();
  co_await watchdog.join();

  if (st.idle_fired) log::info("proxy: {}: idle for {} s, closed", who,
                               std::chrono::duration_cast<std::chrono::seconds>(options.idle_timeout).count());
  if (st.response_bytes == 0 && client.is_open()) {
    StopState* stop = co_await current_stop_state();
    if (!stop || !stop->stop_requested()) {
      log::warn("proxy: {}: upstream {} closed without a response", who, log::escaped(req.target.to_string()));
      co_await refuse(client, errc::upstream_failed);
      co_return errc::upstream_failed;
    }
  }
  co_return std::nullopt;
}

Task<void> tunnel(TcpStream& client, TcpStream& upstream, ByteSpan extra, const ProxyOptions& options,
                  std::string who) {
  auto w = co_await client.write_all(as_bytes(kEstablished));
  if (!w) co_return;
  if (!extra.empty()) {
    auto w2 = co_await upstream.write_all(extra);
    if (!w2) co_return;
  }
  RelayOptions ro;
  ro.buffer_size = options.relay_buffer_size;
  ro.idle_timeout = options.idle_timeout;
  auto stats = co_await relay(client, upstream, ro);
  const char* how = stats.end == RelayEnd::completed ? "done"
                    : stats.end == RelayEnd::idle    ? "idle timeout"
                    : stats.end == RelayEnd::error   ? "error"
                                                     : "cancelled";
  log::debug("proxy: {}: tunnel {} ({} bytes up, {} down{}{})", who, how, stats.a_to_b + extra.size(),
             stats.b_to_a, stats.error ? ": " : "", stats.error ? stats.error.message() : "");
}

ProxyOutcome outcome_of(errc e) noexcept {
  switch (e) {
    case errc::head_too_large: return ProxyOutcome::head_too_large;
    case errc::unsupported_transfer_encoding: return ProxyOutcome::not_implemented;
    case errc::head_timeout: return ProxyOutcome::timeout;
    case errc::upstream_failed: return ProxyOutcome::upstream_failed;
    case errc::too_many_connections: return ProxyOutcome::overloaded;
    case errc::malformed_head:
    case errc::missing_host:
    case errc::bad_authority:
    case errc::unsupported_scheme:
    case errc::ambiguous_body_length:
    case errc::bad_chunked_body:
      break;
  }
  return ProxyOutcome::bad_request;
}

bool is_loopback(const SocketAddress& a) {
  std::string ip = a.ip();
  return ip.rfind("127.", 0) == 0 || ip == "::1";
}

}  // namespace

std::string_view outcome_name(ProxyOutcome outcome) noexcept {
  switch (outcome) {
    case ProxyOutcome::ok: return "ok";
    case ProxyOutcome::bad_request: return "bad_request";
    case ProxyOutcome::head_too_large: return "head_too_large";
    case ProxyOutcome::not_implemented: return "not_implemented";
    case ProxyOutcome::timeout: return "timeout";
    case ProxyOutcome::upstream_failed: return "upstream_failed";
    case ProxyOutcome::overloaded: return "overloaded";
  }
  return "unknown";
}

// Counts a connection against max_connections from accept until its task ends.
class ProxyServer::ConnectionSlot {
 public:
  explicit ConnectionSlot(std::size_t& active) noexcept : active_(&active) { ++*active_; }
  ConnectionSlot(ConnectionSlot&& o) noexcept : active_(std::exchange(o.active_, nullptr)) {}
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(ConnectionSlot&&) = delete;
  ~ConnectionSlot() {
    if (active_) --*active_;
  }

 private:
  std::size_t* active_;
};

ProxyServer::~ProxyServer() {
  if (running_) {
    std::fprintf(stderr, "vtunnel: ProxyServer destroyed while running (close() not awaited)\n");
  }
}

Result<void> ProxyServer::start(SocketAddress address) {
  if (running_) return std::make_error_code(std::errc::already_connected);
  auto l = TcpListener::bind(address);
  if (!l) {
    log::error("proxy: cannot listen on {}: {}", address.to_string(), l.error().message());
    return l.error();
  }
  listener_ = std::move(*l);
  running_ = true;
  if (!is_loopback(listener_.local_address())) {
    log::warn("proxy: listening on {}, not loopback: anyone who can reach it can use this open proxy",
              listener_.local_address().to_string());
  } else {
    log::info("proxy: listening on {}", listener_.local_address().to_string());
  }
  acceptor_.spawn(accept_loop());
  return {};
}

Result<void> ProxyServer::start(std::string_view address) {
  std::string_view host = "127.0.0.1";
  std::string_view port_text = address;
  if (auto colon = address.rfind(':'); colon != std::string_view::npos) {
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5) return std::make_error_code(std::errc::invalid_argument);
  unsigned port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return std::make_error_code(std::errc::invalid_argument);
    port = port * 10 + unsigned(c - '0');
  }
  if (port > 65535) return std::make_error_code(std::errc::invalid_argument);
  auto a = SocketAddress::parse(host, std::uint16_t(port));
  if (!a) return a.error();
  return start(*a);
}

Result<void> ProxyServer::set_domain_mapping(std::string_view domain, std::string_view target) {
  auto r = domains_.set(domain, target);
  if (r) {
    log::info("proxy: mapping {} -> {}", log::escaped(domain), log::escaped(target));
  } else {
    log::warn("proxy: not mapping {} -> {}: {}", log::escaped(domain), log::escaped(target), r.error().message());
  }
  return r;
}

void ProxyServer::remove_domain_mapping(std::string_view domain) {
  if (domains_.remove(domain)) log::info("proxy: unmapped {}", log::escaped(domain));
}

Task<void> ProxyServer::close() {
  if (running_) log::info("proxy: closing ({} connections)", active_);
  running_ = false;
  listener_.close();
  acceptor_.cancel();
  connections_.cancel();
  co_await acceptor_.join();
  co_await connections_.join();
}

Task<void> ProxyServer::accept_loop() {
  for (;;) {
    auto c = co_await listener_.accept();
    if (!c) {
      if (c.error() == vtunnel::errc::closed || c.error() == vtunnel::errc::cancelled) co_return;
      log::warn("proxy: accept failed: {}", c.error().message());
      auto slept = co_await sleep_for(kAcceptErrorBackoff);  // e.g. EMFILE: do not spin
      if (!slept) co_return;
      continue;
    }
    if (active_ >= options_.max_connections) {
      log::warn("proxy: {} connections open (the limit): refusing one", active_);
      count(ProxyOutcome::overloaded);
      const char* resp = error_response(errc::too_many_connections);
      // Best effort and never blocking: a fresh socket's buffer takes these few bytes.
      (void)::send(c->fd(), resp, std::strlen(resp), MSG_DONTWAIT | MSG_NOSIGNAL);
      continue;  // the stream closes here
    }
    connections_.spawn(serve(std::move(*c), ConnectionSlot(active_)));
  }
}

Task<void> ProxyServer::serve(TcpStream client, ConnectionSlot slot) {
  (void)slot;
  std::string who = "?";
  if (auto peer = client.peer_address()) who = peer->to_string();

  auto buffer = std::make_unique_for_overwrite<std::uint8_t[]>(kHeadReadBufferBytes);
  MutableByteSpan span(buffer.get(), kHeadReadBufferBytes);
  std::size_t used = 0;
  HeadParse parsed;
  const TimePoint deadline = Clock::now() + options_.head_timeout;
  for (;;) {
    auto left = deadline - Clock::now();
    if (left <= Duration::zero()) left = Duration(1);  // the read below times out at once
    auto n = co_await client.read_some(span.subspan(used), left);
    if (!n) {
      if (n.error() == vtunnel::errc::timed_out) {
        log::info("proxy: {}: request head not complete after {} ms ({} bytes), closing", who,
                  std::chrono::duration_cast<std::chrono::milliseconds>(options_.head_timeout).count(), used);
        count(ProxyOutcome::timeout);
        co_await refuse(client, errc::head_timeout);
      } else if (n.error() != vtunnel::errc::eof && n.error() != vtunnel::errc::cancelled) {
        log::debug("proxy: {}: reading request head: {}", who, n.error().message());
      }
      co_return;
    }
    used += *n;
    parsed = parse_request_head(ByteSpan(span.data(), used));
    if (parsed.status == HeadParse::Status::complete) break;
    if (parsed.status == HeadParse::Status::failed) {
      log::warn("proxy: {}: refused: {}: {}", who, parsed.error.message(), log::escaped(parsed.detail));
      count(outcome_of(errc(parsed.error.value())));
      co_await refuse(client, errc(parsed.error.value()));
      co_return;
    }
    if (used == span.size()) {  // unreachable: the parser's limit is smaller than the buffer
      count(ProxyOutcome::head_too_large);
      co_await refuse(client, errc::head_too_large);
      co_return;
    }
  }

  const ProxyRequest& req = parsed.request;
  std::string route_host = req.target.host;
  std::uint16_t route_port = req.target.port;
  const char* via = "direct";
  if (auto mapped = domains_.lookup(req.target)) {
    auto a = parse_authority(*mapped, 0);  // validated by DomainTable::set
    if (a) {
      route_host = a->host;
      route_port = a->port;
      via = "tunnel";
    }
  }
  log::info("proxy: {}: {} {} via {} ({}:{})", who, log::escaped(req.method),
            log::escaped(req.target.to_string()), via, log::escaped(route_host), route_port);

  ConnectOptions co;
  co.timeout = options_.connect_timeout;
  auto up = co_await with_timeout(connect_host(route_host, route_port, co), options_.connect_timeout);
  if (!up) {
    if (up.error() == vtunnel::errc::cancelled) co_return;
    log::warn("proxy: {}: cannot reach {}: {}", who, log::escaped(req.target.to_string()), up.error().message());
    count(ProxyOutcome::upstream_failed);
    co_await refuse(client, errc::upstream_failed);
    co_return;
  }
  TcpStream upstream = std::move(*up);

  if (req.kind == RequestKind::connect) {
    count(ProxyOutcome::ok);
    co_await tunnel(client, upstream, ByteSpan(span.data() + req.head_size, used - req.head_size), options_, who);
  } else {
    auto refused = co_await forward_request(client, upstream, req, span, used, options_, who);
    count(refused ? outcome_of(*refused) : ProxyOutcome::ok);
  }
}

}  // namespace vtunnel::proxy
