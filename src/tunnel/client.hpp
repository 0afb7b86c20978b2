#pragma once
// vtunnel::Client: connects to a vtunnel server (SSH over WebSocket), asks it to listen on the
// forwarded ports, and carries every `tunnel` channel the server opens to the local target.
// Reconnect is always on: exponential backoff (with jitter) from backoff_min to backoff_max,
// every listen replayed after each reconnect. Keepalive pings detect a dead server (no answer
// within keepalive_timeout) and reconnect.
//
//   Client client("ws://server:3001/", options);
//   client.add_forward(*parse_forward("9000=localhost:3000"));
//   auto first = co_await client.connect();   // first session (the client keeps retrying anyway)
//   ...
//   co_await client.close();
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/loop.hpp"
#include "core/result.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/sync.hpp"
#include "tunnel/keys.hpp"
#include "tunnel/messages.hpp"
#include "ws/http_proxy.hpp"
#include "tunnel/metrics.hpp"

namespace vtunnel {

namespace ssh {
struct IncomingChannel;
}
class MetricsEndpoint;

struct ClientOptions {
  std::optional<PrivateKey> key;  // none: keyless ("none" auth, any host key; loud warning)
  // Pinned server identity (the server's -host-key): only this host key is accepted, instead of
  // the key derived from `key`. A mismatch ends the attempt before authentication.
  std::optional<PublicKey> server_key;
  // Ping interval: 0 means the default (30 s), negative disables (as the Go original).
  Duration keepalive = Duration::zero();
  // No answer to a ping within this: the server is dead, reconnect. Zero: the keepalive
  // interval, kept within 2-15 s.
  Duration keepalive_timeout = Duration::zero();
  std::vector<std::pair<std::string, std::string>> headers;  // extra WebSocket handshake headers
  Duration backoff_min = std::chrono::seconds(1);
  Duration backoff_max = std::chrono::seconds(5);
  Duration connect_timeout = std::chrono::seconds(20);  // dial + TLS + WebSocket + SSH
  Duration dial_timeout = std::chrono::seconds(10);     // each forward target
  // Reach the server through this HTTP proxy (CONNECT); none: direct. The CLI picks it with
  // ws::select_proxy (-proxy-url, HTTPS_PROXY / HTTP_PROXY, NO_PROXY).
  std::optional<ws::ProxyUrl> proxy;
};

class Client {
 public:
  Client(std::string url, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Registers a forward (replayed on every reconnect). If a session is up, the listen request
  // is sent now and the server's answer returned; a refusal is retried with backoff.
  Task<Result<void>> listen(std::uint16_t remote_port, std::string local_addr);
  void add_forward(Forward forward);

  // Starts the connection loop and waits for the first attempt: ok once a session is up, else
  // that attempt's error (the loop keeps retrying in the background until close()).
  Task<Result<void>> connect();
  // Ends the session and the loop, closes every tunnel connection, and waits for all of it.
  Task<void> close();
  // Resolves when close() has finished or the loop ended for good (invalid URL).
  Task<void> wait_closed();
  // Graceful stop: no reconnect, new tunnel channels refused, connections being carried get up
  // to `grace` to finish; then close().
  Task<void> shutdown(Duration grace);
  // Ends a running shutdown()'s grace period now (e.g. a second SIGINT).
  void abort_grace() noexcept {
    grace_aborted_ = true;
    carried_changed_.wake_all();
  }

  bool connected() const noexcept { return session_ != nullptr; }
  std::size_t sessions_established() const noexcept { return sessions_established_; }
  std::size_t connection_count() const noexcept { return carried_; }

  // Prometheus text exposition of metrics() (README "Metrics").
  std::string render_metrics() const;
  const TunnelMetrics& metrics() const noexcept { return metrics_; }
  // Serves GET /metrics on its own listener until close().
  Result<SocketAddress> start_metrics(SocketAddress address);

 private:
  struct Session;
  Task<void> run();
  Task<Result<std::shared_ptr<Session>>> establish();
  Task<void> serve_session(std::shared_ptr<Session> session);
  Task<void> send_listen(std::shared_ptr<Session> session, Forward forward);
  Task<void> keepalive(std::shared_ptr<Session> session);
  Task<void> accept_channels(std::shared_ptr<Session> session);
  Task<void> carry(std::shared_ptr<Session> session, std::uint32_t channel_id, Forward forward);
  Task<std::unique_ptr<Stream>> dial_target(Session& session, std::uint32_t channel_id, const Forward& forward);
  Duration next_backoff(Duration& current);
  const Forward* find_forward(std::uint16_t port) const;

  std::string url_;
  ClientOptions options_;
  std::vector<Forward> forwards_;
  Scope tasks_;
  bool started_ = false;
  bool closing_ = false;
  bool draining_ = false;
  bool grace_aborted_ = false;
  std::size_t carried_ = 0;
  WaitQueue carried_changed_;
  vtunnel::Event first_attempt_;
  std::error_code first_error_;
  vtunnel::Event stopped_;
  std::shared_ptr<Session> session_;
  std::size_t sessions_established_ = 0;
  std::string last_failure_;  // why the last connect attempt failed (for the retry log line)
  std::size_t forwards_accepted_ = 0;  // by the server, in the current session
  TunnelMetrics metrics_;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;
};

}  // namespace vtunnel
