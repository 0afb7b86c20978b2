#pragma once
// MetricsEndpoint: a small HTTP listener for Prometheus scrapes, shared by the server
// (`-metrics ADDR`) and the client (`-metrics ADDR`). It answers GET/HEAD /metrics with the
// text exposition from its render function and GET /health with "ok"; everything else is 404
// (WebSocket upgrades included: nothing but metrics lives here). One request per connection,
// the head within kMetricsHeadTimeout, at most kMaxMetricsConnections at once.
//
// metrics_plain_handler() gives the same /metrics answer to a WebSocket listener's handshake
// (ws::AcceptOptions::plain): the server's default, /metrics on its main port.
//
// All calls on the loop thread. close() must be awaited before destruction if start() worked.
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "core/loop.hpp"
#include "core/result.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/task.hpp"
#include "ws/server_handshake.hpp"

namespace vtunnel {

inline constexpr Duration kMetricsHeadTimeout = std::chrono::seconds(10);
inline constexpr std::size_t kMaxMetricsConnections = 32;

using MetricsRender = std::function<std::string()>;

// "IP:PORT", "[IPv6]:PORT", or "PORT" alone (127.0.0.1). Numeric addresses only.
Result<SocketAddress> parse_metrics_address(std::string_view text);

// Answers GET/HEAD /metrics with render(); other paths are not handled (nullopt).
ws::PlainHandler metrics_plain_handler(MetricsRender render);

class MetricsEndpoint {
 public:
  explicit MetricsEndpoint(MetricsRender render) : render_(std::move(render)) {}
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;
  ~MetricsEndpoint();

  Result<SocketAddress> start(SocketAddress address);
  Task<void> close();
  const SocketAddress& local_address() const noexcept { return listener_.local_address(); }

 private:
  Task<void> accept_loop();
  Task<void> serve(TcpStream conn);

  MetricsRender render_;
  TcpListener listener_;
  Scope acceptor_;
  Scope connections_;
  std::size_t active_ = 0;
  bool running_ = false;
};

}  // namespace vtunnel
