#include "tunnel/client.hpp"

#include <botan/auto_rng.h>

#include <algorithm>
#include <random>

#include "core/log.hpp"
#include "core/relay.hpp"
#include "core/resolver.hpp"
#include "core/timer.hpp"
#include "ssh/host_key.hpp"
#include "ssh/session.hpp"
#include "tunnel/backoff.hpp"
#include "tunnel/channel_stream.hpp"
#include "tunnel/host_rewriter.hpp"
#include "tunnel/metrics_endpoint.hpp"
#include "ws/tls_client_stream.hpp"
#include "ws/url.hpp"
#include "ws/ws_connect.hpp"

namespace vtunnel {

struct Client::Session {
  std::uint64_t number = 0;
  std::unique_ptr<Stream> ws;  // declared first: destroyed after ssh
  std::unique_ptr<ssh::Session> ssh;
  vtunnel::Event ended;
};

namespace {

ssh::IncomingChannel incoming_channel(std::uint32_t id) {
  ssh::IncomingChannel ic;
  ic.id = id;
  return ic;
}
constexpr Duration kDefaultKeepalive = std::chrono::seconds(30);

std::string seconds_text(Duration d) {
  return fmt::format("{:.1f}s", std::chrono::duration<double>(d).count());
}

// Rewrites the Host header of what is written to a tls:// target.
class HostRewritingStream final : public Stream {
 public:
  HostRewritingStream(Stream& inner, std::string host) : inner_(inner), rewriter_(std::move(host)) {}
  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override { return inner_.read_some(buf); }
  using Stream::write_all;
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override {
    out_.clear();
    for (ByteSpan b : bufs) rewriter_.feed(b, out_);
    if (out_.empty()) co_return Result<void>{};
    co_return co_await inner_.write_all(ByteSpan(out_.data(), out_.size()));
  }
  Task<Result<void>> shutdown_write() override {
    out_.clear();
    rewriter_.finish(out_);
    if (!out_.empty()) {
      auto w = co_await inner_.write_all(ByteSpan(out_.data(), out_.size()));
      if (!w) co_return w;
    }
    co_return co_await inner_.shutdown_write();
  }
  void close() noexcept override { inner_.close(); }

 private:
  Stream& inner_;
  HostRewriter rewriter_;
  Bytes out_;
};
}  // namespace

Client::Client(std::string url, ClientOptions options) : url_(std::move(url)), options_(std::move(options)) {
  if (options_.keepalive == Duration::zero()) options_.keepalive = kDefaultKeepalive;
  if (options_.keepalive_timeout <= Duration::zero()) {
    options_.keepalive_timeout = std::clamp<Duration>(options_.keepalive, std::chrono::seconds(2), std::chrono::seconds(15));
  }
  if (options_.backoff_min <= Duration::zero()) options_.backoff_min = std::chrono::milliseconds(100);
  if (options_.backoff_max < options_.backoff_min) options_.backoff_max = options_.backoff_min;
  if (!options_.key && !options_.server_key) {
    log::warn("no client key configured: the server's identity is NOT verified and the server must run "
              "keyless (set -key or VTUNNEL_KEY)");
  } else if (!options_.key) {
    log::warn("no client key configured: the server must run keyless (set -key or VTUNNEL_KEY)");
  }
  if (options_.server_key) {
    log::info("server identity pinned: only host key {} is accepted", host_key_fingerprint(*options_.server_key));
  }
}

Client::~Client() = default;

Result<SocketAddress> Client::start_metrics(SocketAddress address) {
  if (metrics_endpoint_) return std::make_error_code(std::errc::already_connected);
  auto ep = std::make_unique<MetricsEndpoint>([this] { return render_metrics(); });
  auto started = ep->start(address);
  if (!started) return started.error();
  metrics_endpoint_ = std::move(ep);
  return started;
}

std::string Client::render_metrics() const {
  TunnelMetricsSnapshot now;
  now.role = TunnelMetricsSnapshot::Role::client;
  now.sessions = session_ ? 1 : 0;
  now.listeners = static_cast<std::int64_t>(forwards_accepted_);
  return vtunnel::render_metrics(metrics_, now);
}

void Client::add_forward(Forward forward) {
  for (auto& f : forwards_) {
    if (f.remote_port == forward.remote_port) {
      f = std::move(forward);
      return;
    }
  }
  forwards_.push_back(std::move(forward));
}

const Forward* Client::find_forward(std::uint16_t port) const {
  for (const auto& f : forwards_) {
    if (f.remote_port == port) return &f;
  }
  return nullptr;
}

Task<Result<void>> Client::listen(std::uint16_t remote_port, std::string local_addr) {
  auto f = parse_forward(fmt::format("{}={}", remote_port, local_addr));
  if (!f) co_return f.error();
  const bool is_new = find_forward(f->remote_port) == nullptr;
  add_forward(*f);
  if (!session_) co_return Result<void>{};
  // (Payloads are built before the co_await: GCC 12 destroys braced temporaries inside a
  // co_await expression twice.)
  ListenRequest request{f->remote_port, f->local_addr};
  Bytes payload = to_bytes(encode_listen_request(request));
  auto reply = co_await session_->ssh->global_request("listen", std::move(payload), true);
  if (!reply) co_return reply.error();
  if (!reply->success) {
    log::error("server refused forward {}: {}", f->remote_port, log::escaped(as_string(reply->data)));
    co_return std::make_error_code(std::errc::address_in_use);
  }
  if (is_new) ++forwards_accepted_;
  co_return Result<void>{};
}

Task<Result<void>> Client::connect() {
  if (!started_) {
    started_ = true;
    tasks_.spawn(run());
  }
  auto waited = co_await first_attempt_.wait();
  if (!waited) co_return waited.error();
  if (first_error_) co_return first_error_;
  co_return Result<void>{};
}

Task<void> Client::close() {
  closing_ = true;
  tasks_.cancel();
  co_await tasks_.join();
  session_.reset();
  if (metrics_endpoint_) {
    auto ep = std::move(metrics_endpoint_);
    co_await ep->close();
  }
  stopped_.set();
}

Task<void> Client::shutdown(Duration grace) {
  draining_ = true;
  auto deadline = Clock::now() + grace;
  if (carried_ > 0) log::info("shutting down: waiting up to {} for {} connection(s) to finish", seconds_text(grace), carried_);
  while (carried_ > 0 && !closing_ && !grace_aborted_) {
    auto now = Clock::now();
    if (now >= deadline) {
      log::info("shutting down: closing {} connection(s) still open after {}", carried_, seconds_text(grace));
      break;
    }
    auto changed = co_await wait_until(carried_changed_, deadline);
    if (!changed && changed.error() == errc::cancelled) break;
  }
  co_await close();
}

Task<void> Client::wait_closed() {
  auto r = co_await stopped_.wait();
  (void)r;
}

Duration Client::next_backoff(Duration& current) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return jittered_backoff(current, options_.backoff_min, options_.backoff_max, rng);
}

Task<void> Client::run() {
  auto parsed = ws::parse_ws_url(url_);
  if (!parsed) {
    log::error("invalid server URL {}: {}", log::escaped(url_), parsed.error().message());
    first_error_ = parsed.error();
    first_attempt_.set();
    stopped_.set();
    co_return;
  }
  Duration backoff = options_.backoff_min;
  bool first = true;
  for (;;) {
    if (closing_ || draining_) co_return;
    if (!first) metrics_.reconnects_total.inc();
    first = false;
    auto established = co_await establish();
    if (!established) {
      if (established.error() == errc::cancelled) co_return;
      metrics_.handshake_failures_total.inc();
      if (!first_attempt_.is_set()) {
        first_error_ = established.error();
        first_attempt_.set();
      }
      Duration delay = next_backoff(backoff);
      log::warn("cannot connect to {}: {}; retrying in {}", url_,
                last_failure_.empty() ? established.error().message() : last_failure_, seconds_text(delay));
      auto slept = co_await sleep_for(delay);
      if (!slept) co_return;
      continue;
    }
    auto session = std::move(*established);
    session->number = ++sessions_established_;
    session_ = session;
    first_error_ = {};
    first_attempt_.set();
    auto started = Clock::now();
    co_await serve_session(session);
    session_.reset();
    forwards_accepted_ = 0;
    if (closing_ || draining_) co_return;
    // A session that lived a while earns a fresh backoff.
    if (Clock::now() - started > std::chrono::seconds(10)) backoff = options_.backoff_min;
    Duration delay = next_backoff(backoff);
    log::warn("disconnected from {}; reconnecting in {}", url_, seconds_text(delay));
    auto slept = co_await sleep_for(delay);
    if (!slept) co_return;
  }
}

Task<Result<std::shared_ptr<Client::Session>>> Client::establish() {
  const TimePoint started = Clock::now();
  ws::WsConnectOptions wopts;
  wopts.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options_.connect_timeout);
  wopts.headers = options_.headers;
  wopts.proxy = options_.proxy;
  last_failure_.clear();
  auto ws = co_await ws::connect(url_, wopts);
  if (!ws.ok()) {
    if (ws.error == errc::cancelled) co_return errc::cancelled;
    log::debug("WebSocket connect: {}", ws.message());
    last_failure_ = ws.message();
    co_return ws.error ? ws.error : std::make_error_code(std::errc::connection_aborted);
  }
  ssh::Config config;
  config.role = ssh::Role::client;
  config.max_channels = kMaxTunnelChannels;
  config.user = "vtunnel";
  // The host key we expect: the pinned one, else the one derived from our key. The verifier keeps
  // what the server presented, for an error that names both fingerprints.
  std::optional<Bytes> expected;
  const char* expected_from = "";
  if (options_.server_key) {
    expected = ssh_ed25519_blob(*options_.server_key);
    expected_from = "pinned with -server-key";
  } else if (options_.key) {
    expected = ssh_ed25519_blob(derive_host_key(options_.key->public_key()).public_key());
    expected_from = "derived from the client key";
  }
  if (options_.key) {
    auto signing = ssh::SigningKey::ed25519_from_seed(ByteSpan(options_.key->seed().data(), 32));
    config.client_key = std::make_shared<const ssh::SigningKey>(std::move(signing.value()));
  }
  auto presented = std::make_shared<Bytes>();
  if (expected) {
    config.verify_host_key = [check = ssh::accept_only_host_key(*expected), presented](std::string_view algorithm,
                                                                                         ByteSpan blob) {
      presented->assign(blob.begin(), blob.end());
      return check(algorithm, blob);
    };
  } else {
    config.verify_host_key = ssh::accept_any_host_key();
  }
  auto session = std::make_shared<Session>();
  session->ws = std::move(ws.stream);
  auto handshake = co_await with_timeout(ssh::Session::client_handshake(*session->ws, config), options_.connect_timeout);
  if (!handshake) {
    if (handshake.error() == ssh::errc::auth_failed || handshake.error() == ssh::errc::host_key_mismatch) {
      metrics_.auth_failures_total.inc();
    }
    session->ws->close();
    if (handshake.error() == ssh::errc::host_key_mismatch && expected) {
      log::error("server host key mismatch: expected {} ({}), received {}; not authenticating{}",
                 fingerprint_sha256(*expected), expected_from, fingerprint_sha256(*presented),
                 options_.server_key ? ""
                                     : " (a server with its own -host-key needs clients started with "
                                       "-server-key vt-pub-...)");
    }
    co_return handshake.error();
  }
  session->ssh = std::move(*handshake);
  metrics_.sessions_total.inc();
  metrics_.handshake_seconds.observe(std::chrono::duration<double>(Clock::now() - started).count());
  log::info("connected to {}", url_);
  co_return session;
}

Task<void> Client::serve_session(std::shared_ptr<Session> session) {
  session->ssh->set_global_request_handler([](std::string_view name, ByteSpan) {
    ssh::GlobalReplyData reply;
    if (name == "ping") {
      reply.success = true;
      reply.data = to_bytes("pong");
    }
    return reply;
  });
  Scope tasks;
  tasks.spawn([](std::shared_ptr<Session> s) -> Task<void> {
    auto why = co_await s->ssh->wait_closed();
    if (why && why != errc::cancelled) log::warn("session ended: {}", why.message());
    s->ended.set();
  }(session));
  for (const auto& f : forwards_) tasks.spawn(send_listen(session, f));
  tasks.spawn(accept_channels(session));
  if (options_.keepalive > Duration::zero()) tasks.spawn(keepalive(session));
  auto ended = co_await session->ended.wait();
  (void)ended;
  tasks.cancel();
  co_await tasks.join();
  co_await session->ssh->close();
}

Task<void> Client::send_listen(std::shared_ptr<Session> session, Forward forward) {
  Duration backoff = options_.backoff_min;
  ListenRequest request{forward.remote_port, forward.local_addr};
  for (;;) {
    Bytes payload = to_bytes(encode_listen_request(request));
    auto reply = co_await session->ssh->global_request("listen", std::move(payload), true);
    if (!reply) co_return;  // the session ended (or we are closing)
    if (reply->success) {
      ++forwards_accepted_;
      log::info("forwarding server 127.0.0.1:{} -> {}", forward.remote_port, log::escaped(forward.local_addr));
      co_return;
    }
    Duration delay = next_backoff(backoff);
    log::error("server refused forward {} -> {}: {}; retrying in {}", forward.remote_port,
               log::escaped(forward.local_addr), log::escaped(as_string(reply->data)), seconds_text(delay));
    auto slept = co_await sleep_for(delay);
    if (!slept) co_return;
  }
}

Task<void> Client::keepalive(std::shared_ptr<Session> session) {
  for (;;) {
    auto slept = co_await sleep_for(options_.keepalive);
    if (!slept) co_return;
    auto reply = co_await with_timeout(session->ssh->global_request("ping", {}, true), options_.keepalive_timeout);
    if (!reply) {
      if (reply.error() == errc::cancelled) co_return;
      log::warn("server did not answer keepalive ping within {} ({}); reconnecting",
                seconds_text(options_.keepalive_timeout), reply.error().message());
      session->ended.set();
      co_return;
    }
  }
}

Task<void> Client::accept_channels(std::shared_ptr<Session> session) {
  Scope tunnels;
  for (;;) {
    auto incoming = co_await session->ssh->next_channel();
    if (!incoming) break;
    if (incoming->type != "tunnel") {
      metrics_.channel_open_failures_total.inc();
      (void)session->ssh->reject(*incoming, ssh::OpenFailure::unknown_channel_type, "unknown channel type");
      continue;
    }
    if (draining_) {
      (void)session->ssh->reject(*incoming, ssh::OpenFailure::connect_failed, "client is shutting down");
      continue;
    }
    auto data = decode_tunnel_channel_data(incoming->extra);
    if (!data) {
      metrics_.channel_open_failures_total.inc();
      (void)session->ssh->reject(*incoming, ssh::OpenFailure::connect_failed,
                                 fmt::format("invalid tunnel request: {}", data.error().message()));
      continue;
    }
    const Forward* f = find_forward(data->port);
    if (!f) {
      log::warn("server opened a tunnel for port {}, which is not forwarded", data->port);
      metrics_.channel_open_failures_total.inc();
      (void)session->ssh->reject(*incoming, ssh::OpenFailure::connect_failed, "no forward for port");
      continue;
    }
    tunnels.spawn(carry(session, incoming->id, *f));
  }
  tunnels.cancel();
  co_await tunnels.join();
}

// Connects to the forward's target (with TLS when asked); on failure rejects the channel and
// returns null. A task of its own: its frame is gone once the connection is carried.
Task<std::unique_ptr<Stream>> Client::dial_target(Session& session, std::uint32_t channel_id, const Forward& forward) {
  ssh::IncomingChannel incoming;
  incoming.id = channel_id;
  ConnectOptions copts;
  copts.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options_.dial_timeout);
  auto tcp = co_await connect_host(forward.host, forward.port, copts);
  if (!tcp) {
    log::warn("port {}: cannot reach {}: {}", forward.remote_port, log::escaped(forward.local_addr), tcp.error().message());
    metrics_.channel_open_failures_total.inc();
    (void)session.ssh->reject(incoming, ssh::OpenFailure::connect_failed,
                               fmt::format("dial {}: {}", forward.local_addr, tcp.error().message()));
    co_return nullptr;
  }
  std::unique_ptr<Stream> target = std::make_unique<TcpStream>(std::move(*tcp));
  if (forward.tls) {
    ws::TlsClientOptions topts;
    topts.server_name = forward.host;
    topts.port = forward.port;
    auto tls = co_await with_timeout(
        [](std::unique_ptr<Stream> t, ws::TlsClientOptions o) -> Task<Result<std::unique_ptr<Stream>>> {
          auto h = co_await ws::TlsClientStream::handshake(std::move(t), std::move(o));
          if (!h.ok()) {
            log::warn("TLS to {}:{}: {}", o.server_name, o.port, h.message());
            co_return h.error ? h.error : std::make_error_code(std::errc::protocol_error);
          }
          co_return std::unique_ptr<Stream>(std::move(h.stream));
        }(std::move(target), topts),
        options_.dial_timeout);
    if (!tls) {
      metrics_.channel_open_failures_total.inc();
      (void)session.ssh->reject(incoming, ssh::OpenFailure::connect_failed,
                                 fmt::format("tls {}: {}", forward.local_addr, tls.error().message()));
      co_return nullptr;
    }
    target = std::move(*tls);
  }
  co_return target;
}

// Only the id of the incoming channel is kept: its type and open data were checked already.
Task<void> Client::carry(std::shared_ptr<Session> session, std::uint32_t channel_id, Forward forward) {
  struct Notify {  // destroyed after `carried`: the count is already down when waiters run
    WaitQueue& q;
    ~Notify() { q.wake_all(); }
  } notify{carried_changed_};
  ++carried_;
  struct Uncount {
    std::size_t& n;
    ~Uncount() { --n; }
  } carried{carried_};
  // Dial before confirming the channel: if the target is down the user's connection is closed
  // at once, not accepted and then dropped.
  std::unique_ptr<Stream> target = co_await dial_target(*session, channel_id, forward);
  if (!target) co_return;
  auto channel = session->ssh->accept(incoming_channel(channel_id));
  if (!channel) co_return;
  metrics::GaugeGuard open(metrics_.tunnel_connections);
  metrics_.tunnel_connections_total.inc();
  ChannelStream tunnel(std::move(*channel), session);
  RelayOptions ro;
  ro.count_a_to_b = &metrics_.bytes_to_target;
  ro.count_b_to_a = &metrics_.bytes_from_target;
  std::unique_ptr<HostRewritingStream> rewriting;  // on the heap: only TLS targets need it
  if (forward.tls) rewriting = std::make_unique<HostRewritingStream>(*target, forward.host);
  Stream& to = rewriting ? static_cast<Stream&>(*rewriting) : *target;
  RelayStats stats = co_await relay(tunnel, to, ro);
  log::debug("port {}: connection to {} done ({} bytes out, {} in)", forward.remote_port,
             log::escaped(forward.local_addr), stats.a_to_b, stats.b_to_a);
}

}  // namespace vtunnel
