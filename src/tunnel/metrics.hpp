#pragma once
// The tunnel's metrics: what Server and Client count, and how it is written in the Prometheus
// text format (README "Metrics" has the reference table). The same names on both sides, so a
// dashboard can put server and client next to each other; a few exist on one side only.
//
// Bytes are counted per relay chunk at the TCP side of the process, named by direction
// relative to the forwarded service (the target the client dials):
//   to_target    bytes from the user's connection towards the service (server: read from the
//                connection accepted on 127.0.0.1:port; client: written to the target)
//   from_target  bytes from the service back to the user
#include <cstdint>
#include <string>

#include "core/metrics.hpp"

namespace vtunnel {

namespace proxy {
struct ProxyStats;
}

struct TunnelMetrics {
  metrics::Counter sessions_total;         // sessions established (authenticated)
  metrics::Counter reconnects_total;       // client: connection attempts after the first
  metrics::Counter auth_failures_total;    // server: clients refused; client: keys do not match
  metrics::Counter handshake_failures_total;  // server: SSH handshakes failed; client: attempts failed
  metrics::Gauge tunnel_connections;       // open tunnel connections (channel open, relaying)
  metrics::Counter tunnel_connections_total;
  metrics::Counter bytes_to_target;
  metrics::Counter bytes_from_target;
  metrics::Counter channel_open_failures_total;  // tunnel channels that could not be opened
  metrics::Histogram handshake_seconds{metrics::kDefaultSecondsBuckets};
};

// The values read from the owner's state when scraped.
struct TunnelMetricsSnapshot {
  enum class Role { server, client };
  Role role = Role::server;
  std::int64_t sessions = 0;   // current sessions (client: 0 or 1)
  std::int64_t listeners = 0;  // server: tunnel listeners; client: forwards the server accepted
  std::int64_t pending_connections = 0;       // server: connections waiting for a client
  const proxy::ProxyStats* proxy = nullptr;   // server: the -proxy counters
};

// The whole exposition (every family, HELP and TYPE lines included).
std::string render_metrics(const TunnelMetrics& m, const TunnelMetricsSnapshot& now);

}  // namespace vtunnel
