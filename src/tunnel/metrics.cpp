#include "tunnel/metrics.hpp"

#include "proxy/proxy_server.hpp"

namespace vtunnel {

std::string render_metrics(const TunnelMetrics& m, const TunnelMetricsSnapshot& now) {
  using metrics::Label;
  using Type = metrics::TextWriter::Type;
  const bool server = now.role == TunnelMetricsSnapshot::Role::server;
  std::string out;
  out.reserve(4096);
  metrics::TextWriter w(out);

  w.gauge("vtunnel_sessions_active",
          server ? "Authenticated client sessions currently open." : "1 while connected to the server, else 0.",
          now.sessions);
  w.counter("vtunnel_sessions_total", "Sessions established (SSH authentication completed).", m.sessions_total);
  if (!server) {
    w.counter("vtunnel_reconnects_total",
              "Connection attempts after the first one (after a failure or a lost session).", m.reconnects_total);
  }
  w.counter("vtunnel_auth_failures_total",
            server ? "Clients that asked to authenticate and were refused."
                   : "Connection attempts that failed on keys (our key refused, or the server's host key "
                     "does not match it).",
            m.auth_failures_total);
  w.counter("vtunnel_handshake_failures_total",
            server ? "Connections upgraded to WebSocket whose SSH handshake failed (auth failures included)."
                   : "Connection attempts that failed (dial, TLS, WebSocket or SSH).",
            m.handshake_failures_total);
  w.gauge("vtunnel_listeners",
          server ? "Tunnel listeners open on 127.0.0.1." : "Forwards the server accepted in the current session.",
          now.listeners);
  if (server) {
    w.gauge("vtunnel_pending_connections", "Connections accepted on a tunnel port, waiting for a client.",
            now.pending_connections);
  }
  w.gauge("vtunnel_tunnel_connections_active", "Tunnel connections currently open (channel open, relaying).",
          m.tunnel_connections.value());
  w.counter("vtunnel_tunnel_connections_total", "Tunnel connections carried (channels opened).",
            m.tunnel_connections_total);
  w.header("vtunnel_tunnel_bytes_total",
           "Bytes relayed through tunnel connections, by direction relative to the forwarded service.",
           Type::counter);
  const Label to_target[] = {{"direction", "to_target"}};
  const Label from_target[] = {{"direction", "from_target"}};
  w.sample("vtunnel_tunnel_bytes_total", to_target, m.bytes_to_target.value());
  w.sample("vtunnel_tunnel_bytes_total", from_target, m.bytes_from_target.value());
  w.counter("vtunnel_channel_open_failures_total",
            server ? "Tunnel channels the client refused or that could not be opened."
                   : "Tunnel channels refused (target unreachable, TLS failed, port not forwarded).",
            m.channel_open_failures_total);
  w.histogram("vtunnel_handshake_duration_seconds",
              server ? "Time from accepting a connection to an authenticated session (WebSocket + SSH)."
                     : "Time from dialling the server to an authenticated session (TCP, TLS, WebSocket, SSH).",
              m.handshake_seconds);
  if (server && now.proxy) {
    w.header("vtunnel_proxy_requests_total", "HTTP proxy (-proxy) requests by outcome.", Type::counter);
    for (std::size_t i = 0; i < proxy::kProxyOutcomeCount; ++i) {
      const auto o = static_cast<proxy::ProxyOutcome>(i);
      const Label labels[] = {{"outcome", proxy::outcome_name(o)}};
      w.sample("vtunnel_proxy_requests_total", labels, now.proxy->of(o));
    }
  }
  return out;
}

}  // namespace vtunnel
