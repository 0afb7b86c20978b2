#include "tunnel/metrics_endpoint.hpp"

#include <cstdio>
#include <memory>
#include <optional>
#include <utility>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/timer.hpp"
#include "ws/handshake_limits.hpp"

namespace vtunnel {

namespace {

constexpr std::string_view kMetricsPath = "/metrics";
constexpr std::string_view kNotFound =
    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n"
    "Connection: close\r\n\r\nnot found\n";
constexpr Duration kAcceptErrorBackoff = std::chrono::milliseconds(100);

// Counts a connection for the lifetime of its task.
struct Slot {
  std::size_t* n;
  explicit Slot(std::size_t& c) : n(&c) { ++*n; }
  Slot(Slot&& o) noexcept : n(std::exchange(o.n, nullptr)) {}
  Slot(const Slot&) = delete;
  ~Slot() {
    if (n) --*n;
  }
};

std::optional<ws::PlainResponse> metrics_answer(std::string_view path, const MetricsRender& render) {
  if (path != kMetricsPath) return std::nullopt;
  ws::PlainResponse r;
  r.content_type = std::string(metrics::kContentType);
  r.body = render();
  return r;
}

}  // namespace

Result<SocketAddress> parse_metrics_address(std::string_view text) {
  std::string_view host = "127.0.0.1";
  std::string_view port_text = text;
  if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || port_text.empty() || port_text.size() > 5) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  unsigned port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return std::make_error_code(std::errc::invalid_argument);
    port = port * 10 + unsigned(c - '0');
  }
  if (port > 65535) return std::make_error_code(std::errc::invalid_argument);
  return SocketAddress::parse(host, std::uint16_t(port));
}

ws::PlainHandler metrics_plain_handler(MetricsRender render) {
  return [render = std::move(render)](std::string_view path) { return metrics_answer(path, render); };
}

MetricsEndpoint::~MetricsEndpoint() {
  if (running_) std::fprintf(stderr, "vtunnel: MetricsEndpoint destroyed while running (close() not awaited)\n");
}

Result<SocketAddress> MetricsEndpoint::start(SocketAddress address) {
  if (running_) return std::make_error_code(std::errc::already_connected);
  auto l = TcpListener::bind(address);
  if (!l) return l.error();
  listener_ = std::move(*l);
  running_ = true;
  acceptor_.spawn(accept_loop());
  log::info("metrics: serving http://{}/metrics", listener_.local_address().to_string());
  return listener_.local_address();
}

Task<void> MetricsEndpoint::close() {
  running_ = false;
  listener_.close();
  acceptor_.cancel();
  connections_.cancel();
  co_await acceptor_.join();
  co_await connections_.join();
}

Task<void> MetricsEndpoint::accept_loop() {
  for (;;) {
    auto conn = co_await listener_.accept();
    if (!conn) {
      if (conn.error() == errc::closed || conn.error() == errc::cancelled) co_return;
      log::warn("metrics: accept failed: {}", conn.error().message());
      auto slept = co_await sleep_for(kAcceptErrorBackoff);  // e.g. EMFILE: do not spin
      if (!slept) co_return;
      continue;
    }
    if (active_ >= kMaxMetricsConnections) {
      log::debug("metrics: {} scrapes in progress (the limit): dropping a connection", active_);
      continue;  // closed by the destructor
    }
    connections_.spawn(serve(std::move(*conn)));
  }
}

Task<void> MetricsEndpoint::serve(TcpStream conn) {
  Slot slot(active_);
  ws::PlainHandler plain = [this](std::string_view path) -> std::optional<ws::PlainResponse> {
    return metrics_answer(path, render_);  // (ServerHandshake answers /health itself)
  };
  ws::ServerHandshake request(ws::HandshakeLimits{}, std::move(plain));
  Bytes buffer(4096);
  const TimePoint deadline = Clock::now() + kMetricsHeadTimeout;
  for (;;) {
    auto left = deadline - Clock::now();
    if (left <= Duration::zero()) co_return;
    auto n = co_await conn.read_some(MutableByteSpan(buffer.data(), buffer.size()), left);
    if (!n) co_return;  // EOF, timeout, reset, cancelled: nothing to answer
    auto step = request.feed(ByteSpan(buffer.data(), *n));
    if (step.outcome == ws::ServerHandshake::Outcome::need_more) continue;
    // An upgrade request gets the 404 a plain request for an unknown path gets.
    std::string_view answer =
        step.outcome == ws::ServerHandshake::Outcome::respond ? std::string_view(request.response()) : kNotFound;
    auto w = co_await conn.write_all(as_bytes(answer));
    if (!w) co_return;
    auto shut = co_await conn.shutdown_write();
    (void)shut;
    co_return;
  }
}

}  // namespace vtunnel
