#pragma once
// vtunnel::Server: accepts client sessions (SSH over WebSocket), opens the TCP listeners they
// ask for on 127.0.0.1, and carries every connection accepted there to the active client as a
// `tunnel` channel (PROTOCOL.md).
//
//   Server server(options);
//   auto bound = server.listen(SocketAddress::parse("0.0.0.0", 3001).value());  // HTTP + WS
//   co_await server.run();            // until close()
//
// Embedding: hand an upgraded WebSocket (any Stream) to handle_conn(). Listeners persist
// across client sessions; a connection that arrives while no client is attached (or before
// the new client has asked for that port again) waits up to pending_wait, then is closed.
// One active session at a time: the newest authenticated one.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/stream.hpp"
#include "core/sync.hpp"
#include "proxy/proxy_server.hpp"
#include "tunnel/keys.hpp"
#include "tunnel/messages.hpp"
#include "tunnel/metrics.hpp"

namespace vtunnel {

namespace ssh {
class SigningKey;
class Channel;
}
namespace proxy {
class ProxyServer;
}
namespace ws {
class TlsServerCredentials;
}
class MetricsEndpoint;

struct ServerOptions {
  std::optional<PublicKey> client_key;  // none: keyless mode (any client, loud warning)
  // The server's own ed25519 host key, for clients that pin it (-server-key). None: the key
  // derived from client_key (the Go original's scheme), or a random one in keyless mode.
  std::optional<PrivateKey> host_key;
  Duration keepalive = std::chrono::seconds(30);  // <= 0: no pings
  // A session whose ping is not answered within this is considered dead and closed.
  // Zero: the keepalive interval, kept within 2-15 s.
  Duration keepalive_timeout = Duration::zero();
  Duration pending_wait = std::chrono::seconds(35);
  Duration handshake_timeout = std::chrono::seconds(20);  // WebSocket head + SSH handshake
  std::size_t max_listeners = 1024;             // per server (a session cannot open more)
  std::size_t max_pending_per_listener = 4096;  // connections waiting for a client, per port
  // Concurrent unauthenticated connections (WebSocket head or SSH handshake not done yet);
  // connections accepted beyond it are closed at once.
  std::size_t max_handshaking = 256;
  std::size_t max_channels = kMaxTunnelChannels;  // open tunnel channels per session
  // Set: the listener speaks TLS (wss://, https://.../health); handshake_timeout covers TLS too.
  std::shared_ptr<const ws::TlsServerCredentials> tls;
  bool metrics_on_main_port = true;  // GET /metrics on the listen() port (off: 404 there)
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the HTTP + WebSocket listener (GET /health -> 200 ok, any other path upgrades).
  Result<SocketAddress> listen(SocketAddress address);
  // Serves until close(): the HTTP listener (if any), tunnel listeners, sessions.
  Task<void> run();
  // Stops accepting, ends every session and connection; run() then returns.
  void close() noexcept;
  // Graceful stop: no new WebSocket or tunnel connections (connections waiting for a client are
  // closed), connections already carried get up to `grace` to finish, then close().
  Task<void> shutdown(Duration grace);

  // Runs one client session over an upgraded WebSocket; returns when the session ends.
  Task<void> handle_conn(std::unique_ptr<Stream> websocket);

  // The HTTP CONNECT / plain-HTTP proxy (src/proxy), routing mapped domains into the tunnel.
  // 127.0.0.1 is the documented address; others log a warning. Stopped by close_proxy() or
  // when run() ends.
  Result<SocketAddress> start_proxy(SocketAddress address);
  Task<void> close_proxy();

  // Proxy routing table (PROTOCOL.md): `listen` with a non-local local_addr adds
  // local_addr -> 127.0.0.1:port automatically.
  void set_domain_mapping(std::string domain, std::string target);
  void remove_domain_mapping(const std::string& domain);
  std::optional<std::string> lookup_domain(const std::string& domain) const;
  const std::map<std::string, std::string>& domain_table() const noexcept { return domains_; }

  // New connections use these TLS credentials from now on (SIGHUP reload); connections
  // already accepted keep theirs. Null turns TLS off for new connections.
  void set_tls_credentials(std::shared_ptr<const ws::TlsServerCredentials> tls) { options_.tls = std::move(tls); }
  // Prometheus text exposition of metrics() (README "Metrics"); served as GET /metrics on the
  // main port unless options.metrics_on_main_port is false, and by start_metrics().
  std::string render_metrics() const;
  const TunnelMetrics& metrics() const noexcept { return metrics_; }
  // A separate listener for GET /metrics (closed by close_metrics() or when run() ends).
  Result<SocketAddress> start_metrics(SocketAddress address);
  Task<void> close_metrics();

  // For tests and metrics.
  std::size_t session_count() const noexcept { return sessions_; }
  bool has_active_session() const noexcept { return active_ != nullptr; }
  std::set<std::uint16_t> listener_ports() const;
  std::size_t connection_count() const noexcept { return carried_; }  // tunnel connections being carried
  std::size_t failed_handshakes() const noexcept { return failed_handshakes_; }
  std::error_code last_handshake_error() const noexcept { return last_handshake_error_; }
  // The SSH host key's fingerprint (SHA256:..., as ssh-keygen -l prints it).
  std::string host_key_fingerprint() const;

 private:
  struct Session;
  struct PortListener;
  Task<void> serve_http(TcpListener listener);
  Task<void> handle_http(TcpStream conn);
  Task<void> run_session(std::unique_ptr<Stream> websocket, TimePoint accepted_at);
  Task<void> accept_tunnel_connections(std::uint16_t port);
  Task<void> carry_connection(std::uint16_t port, TcpStream conn);
  Task<bool> open_tunnel(std::uint16_t port, std::shared_ptr<Session>& session, ssh::Channel& channel);
  Task<void> keepalive(std::shared_ptr<Session> session);
  Task<void> refuse_client_channels(std::shared_ptr<Session> session);
  std::string handle_listen(const std::shared_ptr<Session>& session, ByteSpan payload, bool& ok);
  void notify_sessions_changed() noexcept { sessions_changed_.wake_all(); }

  ServerOptions options_;
  std::shared_ptr<const ssh::SigningKey> host_key_;
  std::optional<Bytes> authorized_blob_;
  std::optional<TcpListener> http_listener_;
  Scope tasks_;                       // HTTP accept loop, sessions, tunnel listeners, connections
  vtunnel::Event closed_;
  bool closing_ = false;
  std::map<std::uint16_t, std::unique_ptr<PortListener>> listeners_;
  std::shared_ptr<Session> active_;
  WaitQueue sessions_changed_;        // a session became active or registered a port
  std::size_t sessions_ = 0;
  std::size_t handshaking_ = 0;
  std::uint64_t next_session_id_ = 1;
  bool draining_ = false;             // shutdown(): accept nothing new
  TcpListener* http_accepting_ = nullptr;  // serve_http's listener while it runs
  std::size_t carried_ = 0;
  WaitQueue carried_changed_;
  std::size_t failed_handshakes_ = 0;
  std::error_code last_handshake_error_;
  std::map<std::string, std::string> domains_;
  std::unique_ptr<proxy::ProxyServer> proxy_;
  TunnelMetrics metrics_;
  proxy::ProxyStats proxy_stats_;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;
};

}  // namespace vtunnel
