#include "tunnel/server.hpp"

#include <botan/auto_rng.h>

#include <algorithm>

#include "core/log.hpp"
#include "core/relay.hpp"
#include "core/resolver.hpp"
#include "core/timer.hpp"
#include "proxy/proxy_server.hpp"
#include "ssh/host_key.hpp"
#include "ssh/session.hpp"
#include "tunnel/channel_stream.hpp"
#include "tunnel/messages.hpp"
#include "tunnel/metrics_endpoint.hpp"
#include "ws/tls_server_stream.hpp"
#include "ws/ws_handshake.hpp"

namespace vtunnel {

struct Server::Session {
  std::uint64_t id = 0;
  std::string peer;
  std::unique_ptr<Stream> ws;          // declared first: destroyed after ssh
  std::unique_ptr<ssh::Session> ssh;
  std::set<std::uint16_t> ports;       // ports this session asked for
};

struct Server::PortListener {
  TcpListener listener;
  std::size_t pending = 0;  // connections waiting for a client
};

namespace {
bool is_local_host(std::string_view host) {
  return host == "localhost" || host == "127.0.0.1" || host == "::1";
}

// Decrements a counter when the scope ends.
struct CountGuard {
  std::size_t* n;
  explicit CountGuard(std::size_t& c) : n(&c) { ++*n; }
  CountGuard(const CountGuard&) = delete;
  ~CountGuard() { release(); }
  void release() {
    if (n) --*n;
    n = nullptr;
  }
};

std::string seconds_text(Duration d) {
  return fmt::format("{:.0f}s", std::chrono::duration<double>(d).count());
}

// TLS first when the server has credentials, then the WebSocket handshake (one deadline, the
// caller's, for both). A failed TLS handshake ends only this connection.
Task<Result<ws::Accepted>> secure_and_accept(std::unique_ptr<Stream> transport,
                                             std::shared_ptr<const ws::TlsServerCredentials> tls,
                                             ws::AcceptOptions options, std::string peer) {
  if (tls) {
    auto secured = co_await ws::TlsServerStream::handshake(std::move(transport), std::move(tls));
    if (!secured.ok()) {
      log::info("{}: {}", peer, secured.message());
      co_return secured.error ? secured.error : std::make_error_code(std::errc::protocol_error);
    }
    transport = std::move(secured.stream);
  }
  co_return co_await ws::accept(std::move(transport), std::move(options));
}
}  // namespace

Server::Server(ServerOptions options) : options_(std::move(options)) {
  if (options_.keepalive_timeout <= Duration::zero()) {
    options_.keepalive_timeout = std::clamp<Duration>(options_.keepalive, std::chrono::seconds(2), std::chrono::seconds(15));
  }
  if (options_.host_key) {
    const auto& seed = options_.host_key->seed();
    auto key = ssh::SigningKey::ed25519_from_seed(ByteSpan(seed.data(), seed.size()));
    host_key_ = std::make_shared<const ssh::SigningKey>(std::move(key.value()));
    log::info("server identity: own host key {} ({}); clients pin it with -server-key",
              format_public_key(options_.host_key->public_key()), host_key_fingerprint());
  }
  if (options_.client_key) {
    if (!host_key_) {
      PrivateKey host = derive_host_key(*options_.client_key);
      auto key = ssh::SigningKey::ed25519_from_seed(ByteSpan(host.seed().data(), host.seed().size()));
      host_key_ = std::make_shared<const ssh::SigningKey>(std::move(key.value()));
    }
    authorized_blob_ = ssh_ed25519_blob(*options_.client_key);
  } else {
    if (!host_key_) {
      Botan::AutoSeeded_RNG rng;
      host_key_ = std::make_shared<const ssh::SigningKey>(ssh::SigningKey::generate_ecdsa_p256(rng));
    }
    log::warn("no client key configured: ANY client can connect and open ports on this server "
              "(set -client-key or VTUNNEL_CLIENT_KEY)");
  }
}

std::string Server::host_key_fingerprint() const { return fingerprint_sha256(host_key_->public_blob()); }

Server::~Server() = default;

Result<SocketAddress> Server::start_proxy(SocketAddress address) {
  if (proxy_) return std::make_error_code(std::errc::already_connected);
  proxy::ProxyOptions popts;
  popts.stats = &proxy_stats_;
  auto p = std::make_unique<proxy::ProxyServer>(popts);
  auto started = p->start(address);
  if (!started) return started.error();
  for (const auto& [domain, target] : domains_) (void)p->set_domain_mapping(domain, target);
  SocketAddress bound = p->local_address();
  proxy_ = std::move(p);
  log::info("HTTP proxy listening on {} (HTTPS_PROXY=http://{})", bound.to_string(), bound.to_string());
  return bound;
}

Task<void> Server::close_proxy() {
  if (!proxy_) co_return;
  auto p = std::move(proxy_);
  co_await p->close();
}

Result<SocketAddress> Server::start_metrics(SocketAddress address) {
  if (metrics_endpoint_) return std::make_error_code(std::errc::already_connected);
  auto ep = std::make_unique<MetricsEndpoint>([this] { return render_metrics(); });
  auto started = ep->start(address);
  if (!started) return started.error();
  metrics_endpoint_ = std::move(ep);
  return started;
}

Task<void> Server::close_metrics() {
  if (!metrics_endpoint_) co_return;
  auto ep = std::move(metrics_endpoint_);
  co_await ep->close();
}

std::string Server::render_metrics() const {
  TunnelMetricsSnapshot now;
  now.role = TunnelMetricsSnapshot::Role::server;
  now.sessions = static_cast<std::int64_t>(sessions_);
  now.listeners = static_cast<std::int64_t>(listeners_.size());
  for (const auto& [port, pl] : listeners_) now.pending_connections += static_cast<std::int64_t>(pl->pending);
  now.proxy = &proxy_stats_;
  return vtunnel::render_metrics(metrics_, now);
}

Result<SocketAddress> Server::listen(SocketAddress address) {
  auto l = TcpListener::bind(address);
  if (!l) return l.error();
  SocketAddress bound = l->local_address();
  http_listener_ = std::move(*l);
  return bound;
}

Task<void> Server::run() {
  if (http_listener_) {
    tasks_.spawn(serve_http(std::move(*http_listener_)));
    http_listener_.reset();
  }
  auto stopped = co_await closed_.wait();
  (void)stopped;
  tasks_.cancel();
  co_await tasks_.join();
  co_await close_proxy();
  co_await close_metrics();
  listeners_.clear();
  active_.reset();
}

void Server::close() noexcept {
  if (closing_) return;
  closing_ = true;
  closed_.set();
  carried_changed_.wake_all();  // a shutdown() waiting out its grace period
  tasks_.cancel();
  for (auto& [port, pl] : listeners_) pl->listener.close();
}

Task<void> Server::shutdown(Duration grace) {
  if (closing_) co_return;
  if (!draining_) {
    draining_ = true;
    if (http_accepting_) http_accepting_->close();
    for (auto& [port, pl] : listeners_) pl->listener.close();
    notify_sessions_changed();  // connections waiting for a client give up
    if (carried_ > 0) {
      log::info("shutting down: waiting up to {} for {} connection(s) to finish", seconds_text(grace), carried_);
    }
  }
  auto deadline = Clock::now() + grace;
  while (carried_ > 0 && !closing_) {
    auto now = Clock::now();
    if (now >= deadline) {
      log::info("shutting down: closing {} connection(s) still open after {}", carried_, seconds_text(grace));
      break;
    }
    auto changed = co_await wait_until(carried_changed_, deadline);
    if (!changed && changed.error() == errc::cancelled) break;
  }
  close();
}

std::set<std::uint16_t> Server::listener_ports() const {
  std::set<std::uint16_t> out;
  for (auto& [port, pl] : listeners_) out.insert(port);
  return out;
}

void Server::set_domain_mapping(std::string domain, std::string target) {
  if (proxy_) (void)proxy_->set_domain_mapping(domain, target);  // logs it
  domains_[std::move(domain)] = std::move(target);
}

void Server::remove_domain_mapping(const std::string& domain) {
  if (proxy_) proxy_->remove_domain_mapping(domain);
  domains_.erase(domain);
}

std::optional<std::string> Server::lookup_domain(const std::string& domain) const {
  auto it = domains_.find(domain);
  if (it == domains_.end()) return std::nullopt;
  return it->second;
}

// ---- HTTP + WebSocket ------------------------------------------------------------------------

Task<void> Server::serve_http(TcpListener listener) {
  http_accepting_ = &listener;
  struct Forget {
    TcpListener*& p;
    ~Forget() { p = nullptr; }
  } forget{http_accepting_};
  for (;;) {
    auto conn = co_await listener.accept();
    if (!conn) {
      if (conn.error() == errc::cancelled || conn.error() == errc::closed || closing_) co_return;
      log::warn("accept on {}: {}", listener.local_address().to_string(), conn.error().message());
      auto pause = co_await sleep_for(std::chrono::milliseconds(100));  // e.g. EMFILE: do not spin
      if (!pause) co_return;
      continue;
    }
    if (handshaking_ >= options_.max_handshaking) {
      log::debug("too many unauthenticated connections ({}, limit max_handshaking); dropping one", handshaking_);
      continue;  // closed by the destructor
    }
    (void)conn->set_no_delay(true);
    tasks_.spawn(handle_http(std::move(*conn)));
  }
}

Task<void> Server::handle_http(TcpStream conn) {
  const TimePoint accepted_at = Clock::now();
  CountGuard handshaking(handshaking_);
  auto peer = conn.peer_address();
  std::string peer_text = peer ? peer->to_string() : "?";
  ws::AcceptOptions opts;
  if (options_.metrics_on_main_port) opts.plain = metrics_plain_handler([this] { return render_metrics(); });
  auto accepted = co_await with_timeout(
      secure_and_accept(std::make_unique<TcpStream>(std::move(conn)), options_.tls, std::move(opts), peer_text),
      options_.handshake_timeout);
  if (!accepted) {
    log::debug("{}: WebSocket handshake failed: {}", peer_text, accepted.error().message());
    co_return;
  }
  if (!accepted->stream) {
    if (accepted->refusal) {
      log::info("{}: refused HTTP request for {}: {}", peer_text, log::escaped(accepted->target),
                accepted->refusal.message());
    }
    co_return;
  }
  handshaking.release();
  co_await run_session(std::move(accepted->stream), accepted_at);
}

// ---- sessions ---------------------------------------------------------------------------------

Task<void> Server::handle_conn(std::unique_ptr<Stream> websocket) {
  co_await run_session(std::move(websocket), Clock::now());
}

Task<void> Server::run_session(std::unique_ptr<Stream> websocket, TimePoint accepted_at) {
  if (closing_) co_return;
  ssh::Config config;
  config.role = ssh::Role::server;
  config.host_key = host_key_;
  config.authorized_client_key = authorized_blob_;
  config.max_channels = options_.max_channels;
  auto session = std::make_shared<Session>();
  session->id = next_session_id_++;
  session->ws = std::move(websocket);
  CountGuard unauthenticated(handshaking_);  // counted against max_handshaking until auth
  auto handshake = co_await with_timeout(ssh::Session::server_handshake(*session->ws, config),
                                         options_.handshake_timeout);
  unauthenticated.release();
  if (!handshake) {
    metrics_.handshake_failures_total.inc();
    if (handshake.error() == ssh::errc::auth_failed) metrics_.auth_failures_total.inc();
    ++failed_handshakes_;
    last_handshake_error_ = handshake.error();
    log::info("session {}: SSH handshake failed: {}", session->id, handshake.error().message());
    session->ws->close();
    co_return;
  }
  session->ssh = std::move(*handshake);
  ++sessions_;
  metrics_.sessions_total.inc();
  metrics_.handshake_seconds.observe(std::chrono::duration<double>(Clock::now() - accepted_at).count());
  std::weak_ptr<Session> weak = session;
  session->ssh->set_global_request_handler([this, weak](std::string_view name, ByteSpan data) {
    ssh::GlobalReplyData reply;
    auto s = weak.lock();
    if (!s) return reply;
    if (name == "listen") {
      bool ok = false;
      std::string text = handle_listen(s, data, ok);
      reply.success = ok;
      if (!ok) reply.data = to_bytes(text);
    } else if (name == "ping") {
      reply.success = true;
      reply.data = to_bytes("pong");
    } else {
      log::debug("session {}: unknown global request {}", s->id, log::escaped(name));
    }
    return reply;
  });
  if (active_) log::info("session {} replaces session {} as the active client", session->id, active_->id);
  active_ = session;
  log::info("session {}: client authenticated ({}, user \"{}\", {})", session->id,
            options_.client_key ? "public key" : "keyless mode", log::escaped(session->ssh->peer_user(), 64),
            log::escaped(session->ssh->core().peer_version(), 100));
  notify_sessions_changed();

  vtunnel::Event ended;
  Scope session_tasks;
  session_tasks.spawn([](std::shared_ptr<Session> s, vtunnel::Event& done) -> Task<void> {
    auto why = co_await s->ssh->wait_closed();
    if (why && why != errc::cancelled) log::info("session {}: ended: {}", s->id, why.message());
    done.set();
  }(session, ended));
  session_tasks.spawn(refuse_client_channels(session));
  if (options_.keepalive > Duration::zero()) {
    session_tasks.spawn([](Server* self, std::shared_ptr<Session> s, vtunnel::Event& done) -> Task<void> {
      co_await self->keepalive(s);
      done.set();
    }(this, session, ended));
  }
  auto waited = co_await ended.wait();
  (void)waited;
  session_tasks.cancel();
  co_await session_tasks.join();
  if (active_ == session) active_.reset();
  notify_sessions_changed();
  co_await session->ssh->close();
  --sessions_;
  log::info("session {}: closed", session->id);
}

Task<void> Server::keepalive(std::shared_ptr<Session> session) {
  for (;;) {
    auto slept = co_await sleep_for(options_.keepalive);
    if (!slept) co_return;  // cancelled: the session is ending anyway
    auto reply = co_await with_timeout(session->ssh->global_request("ping", {}, true), options_.keepalive_timeout);
    if (!reply) {
      if (reply.error() == errc::cancelled) co_return;
      log::warn("session {}: no answer to keepalive ping within {} ({}); closing it", session->id,
                seconds_text(options_.keepalive_timeout), reply.error().message());
      co_return;
    }
  }
}

Task<void> Server::refuse_client_channels(std::shared_ptr<Session> session) {
  for (;;) {
    auto incoming = co_await session->ssh->next_channel();
    if (!incoming) co_return;
    log::info("session {}: refusing a {} channel opened by the client", session->id, log::escaped(incoming->type));
    (void)session->ssh->reject(*incoming, ssh::OpenFailure::administratively_prohibited,
                               "vtunnel server does not accept channels from clients");
  }
}

std::string Server::handle_listen(const std::shared_ptr<Session>& session, ByteSpan payload, bool& ok) {
  ok = false;
  if (draining_) return "server is shutting down";
  auto req = decode_listen_request(payload);
  if (!req) return fmt::format("invalid listen request: {}", req.error().message());
  std::uint16_t port = req->port;
  if (!listeners_.count(port)) {
    if (listeners_.size() >= options_.max_listeners) {
      return fmt::format("listen tcp 127.0.0.1:{}: too many listeners (limit {})", port, options_.max_listeners);
    }
    auto l = TcpListener::bind(SocketAddress::loopback_v4(port));
    if (!l) {
      log::warn("session {}: cannot listen on 127.0.0.1:{}: {}", session->id, port, l.error().message());
      return fmt::format("listen tcp 127.0.0.1:{}: bind: {}", port, l.error().message());
    }
    auto pl = std::make_unique<PortListener>();
    pl->listener = std::move(*l);
    listeners_.emplace(port, std::move(pl));
    tasks_.spawn(accept_tunnel_connections(port));
    log::info("listening on 127.0.0.1:{} for session {}{}", port, session->id,
              req->local_addr.empty() ? "" : fmt::format(" (client target {})", log::escaped(req->local_addr)));
  } else {
    log::info("session {}: reusing listener on 127.0.0.1:{}", session->id, port);
  }
  session->ports.insert(port);
  std::string host;
  std::uint16_t target_port = 0;
  if (!req->local_addr.empty() && split_host_port(req->local_addr, host, target_port) && !is_local_host(host)) {
    set_domain_mapping(req->local_addr, fmt::format("127.0.0.1:{}", port));
  }
  notify_sessions_changed();
  ok = true;
  return {};
}

// ---- tunnel connections ----------------------------------------------------------------------

Task<void> Server::accept_tunnel_connections(std::uint16_t port) {
  PortListener& pl = *listeners_.at(port);
  for (;;) {
    auto conn = co_await pl.listener.accept();
    if (!conn) {
      if (conn.error() == errc::cancelled || conn.error() == errc::closed || closing_) co_return;
      log::warn("accept on 127.0.0.1:{}: {}", port, conn.error().message());
      auto pause = co_await sleep_for(std::chrono::milliseconds(100));
      if (!pause) co_return;
      continue;
    }
    if (pl.pending >= options_.max_pending_per_listener) {
      log::warn("127.0.0.1:{}: {} connections already waiting for a client; dropping one", port, pl.pending);
      continue;
    }
    (void)conn->set_no_delay(true);
    tasks_.spawn(carry_connection(port, std::move(*conn)));
  }
}

// Waits (up to pending_wait) for a session that forwards `port` and opens a tunnel channel on
// it. A task of its own: its frame (retries, messages) is gone once the connection is carried.
Task<bool> Server::open_tunnel(std::uint16_t port, std::shared_ptr<Session>& session, ssh::Channel& channel) {
  PortListener& pl = *listeners_.at(port);
  CountGuard pending(pl.pending);
  auto deadline = Clock::now() + options_.pending_wait;
  for (;;) {
    if (closing_ || draining_) co_return false;
    if (active_ && active_->ports.count(port) && active_->ssh->is_open()) {
      session = active_;
      Bytes extra = to_bytes(encode_tunnel_channel_data(TunnelChannelData{port}));
      auto opened = co_await session->ssh->open_channel("tunnel", std::move(extra));
      if (opened) {
        channel = std::move(*opened);
        co_return true;
      }
      if (opened.error() == errc::cancelled) co_return false;
      if (opened.error() == ssh::errc::too_many_channels) {
        log::warn("127.0.0.1:{}: session {} already has {} channels (max_channels); closing the connection", port,
                  session->id, options_.max_channels);
        co_return false;
      }
      if (session->ssh->is_open()) {
        metrics_.channel_open_failures_total.inc();
        log::info("127.0.0.1:{}: client refused the connection: {}", port,
                  log::escaped(session->ssh->last_open_failure_message()));
        co_return false;
      }
      session.reset();  // that session died meanwhile: try the active one (maybe newer) at once
      continue;
    }
    auto now = Clock::now();
    if (now >= deadline) {
      log::info("127.0.0.1:{}: no client took the connection within {}; closing it", port,
                seconds_text(options_.pending_wait));
      co_return false;
    }
    auto changed = co_await wait_until(sessions_changed_, deadline);
    if (!changed && changed.error() == errc::cancelled) co_return false;
  }
}

Task<void> Server::carry_connection(std::uint16_t port, TcpStream conn) {
  std::shared_ptr<Session> session;
  ssh::Channel channel;
  bool opened = co_await open_tunnel(port, session, channel);
  if (!opened) co_return;
  metrics::GaugeGuard open(metrics_.tunnel_connections);
  metrics_.tunnel_connections_total.inc();
  struct Notify {  // destroyed after `carried`: the count is already down when waiters run
    WaitQueue& q;
    ~Notify() { q.wake_all(); }
  } notify{carried_changed_};
  CountGuard carried(carried_);
  ChannelStream tunnel(std::move(channel), session);
  RelayOptions ro;
  ro.count_a_to_b = &metrics_.bytes_to_target;
  ro.count_b_to_a = &metrics_.bytes_from_target;
  auto stats = co_await relay(conn, tunnel, ro);
  log::debug("127.0.0.1:{}: connection done ({} bytes in, {} out)", port, stats.a_to_b, stats.b_to_a);
}

}  // namespace vtunnel
