// vtunnel: the command line. `vtunnel server|client|keygen`, with the Go original's flags and
// environment variables (Go flag syntax), plus a few of our own (see -h of each command).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "core/log.hpp"
#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/signals.hpp"
#include "core/socket.hpp"
#include "flags.hpp"
#include "tunnel/client.hpp"
#include "tunnel/keys.hpp"
#include "tunnel/messages.hpp"
#include "tunnel/metrics_endpoint.hpp"
#include "tunnel/server.hpp"
#include "ws/http_proxy.hpp"
#include "ws/tls_server_stream.hpp"
#include "ws/url.hpp"

#ifndef VTUNNEL_VERSION
#define VTUNNEL_VERSION "0.0.0"
#endif

using namespace vtunnel;

namespace {

constexpr int kExitUsage = 2;  // as Go's flag package
constexpr int kExitFailure = 1;

void print_main_usage(std::FILE* out) {
  std::fprintf(out,
               "vtunnel %s: reverse tunnel over WebSocket (SSH inside)\n\n"
               "Usage:\n"
               "  vtunnel server [flags]   run the server (exposes the client's services on 127.0.0.1)\n"
               "  vtunnel client [flags]   run the client (connects out, forwards to local services)\n"
               "  vtunnel keygen           generate a key pair\n"
               "  vtunnel version          print the version\n\n"
               "Run 'vtunnel <command> -h' for the flags of a command.\n",
               VTUNNEL_VERSION);
}

// Parses flags; returns -1 to continue, else the exit code.
int parse_flags(cli::FlagSet& flags, const std::vector<std::string>& args) {
  std::string error;
  switch (flags.parse(args, error)) {
    case cli::FlagSet::Outcome::ok:
      if (!flags.rest().empty()) {
        std::fprintf(stderr, "unexpected argument: %s\n%s", flags.rest()[0].c_str(), flags.usage().c_str());
        return kExitUsage;
      }
      return -1;
    case cli::FlagSet::Outcome::help:
      std::fputs(flags.usage().c_str(), stdout);
      return 0;
    case cli::FlagSet::Outcome::error:
      std::fprintf(stderr, "%s\n%s", error.c_str(), flags.usage().c_str());
      return kExitUsage;
  }
  return kExitUsage;
}

bool apply_log_flags(const std::string& level, const std::string& format) {
  std::string lvl = level;
  if (lvl.empty()) {
    if (const char* env = std::getenv("VTUNNEL_LOG")) lvl = env;
  }
  if (!lvl.empty()) {
    log::Level l{};
    if (!log::parse_level(lvl, l)) {
      std::fprintf(stderr, "invalid log level \"%s\" (trace, debug, info, warn, error, off)\n", lvl.c_str());
      return false;
    }
    log::set_level(l);
  }
  if (format == "json") {
    log::set_format(log::Format::json);
  } else if (format != "text") {
    std::fprintf(stderr, "invalid log format \"%s\" (text, json)\n", format.c_str());
    return false;
  }
  return true;
}

// -metrics: "off", or an address for a separate listener. False (and a message) if invalid.
bool parse_metrics_flag(const std::string& text, std::optional<SocketAddress>& out) {
  out.reset();
  if (text.empty() || text == "off") return true;
  auto a = parse_metrics_address(text);
  if (!a) {
    std::fprintf(stderr, "invalid -metrics %s: expected off, IP:PORT (e.g. 127.0.0.1:9100) or PORT\n", text.c_str());
    return false;
  }
  out = *a;
  return true;
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : fallback;
}

// Runs `main_task` until it finishes or SIGINT/SIGTERM arrives, then `on_signal` and waits.
template <class Stop>
int run_until_signal(Loop& loop, SignalSet& signals, Task<int> main_task, Stop on_signal) {
  return sync_wait(loop, [](SignalSet& sigs, Task<int> work, Stop stop) -> Task<int> {
    int code = 0;
    vtunnel::Event finished;
    bool signalled = false;
    Scope scope;
    scope.spawn([](Task<int> w, int& out, vtunnel::Event& fin) -> Task<void> {
      out = co_await std::move(w);
      fin.set();
    }(std::move(work), code, finished));
    scope.spawn([](SignalSet& s, bool& sig, vtunnel::Event& fin) -> Task<void> {
      auto signo = co_await s.wait();
      if (!signo) co_return;
      log::info("received {}, shutting down", *signo == SIGINT ? "SIGINT" : "SIGTERM");
      sig = true;
      fin.set();
    }(sigs, signalled, finished));
    auto done = co_await finished.wait();
    (void)done;
    if (signalled) co_await stop();
    scope.cancel();
    co_await scope.join();
    co_return signalled ? 0 : code;
  }(signals, std::move(main_task), std::move(on_signal)));
}

int cmd_keygen(const std::vector<std::string>& args) {
  cli::FlagSet flags("vtunnel keygen");
  if (int rc = parse_flags(flags, args); rc >= 0) return rc;
  PrivateKey key = generate_private_key();
  std::printf("Private key (client): %s\n", format_private_key(key).c_str());
  std::printf("Public key (server):  %s\n", format_public_key(key.public_key()).c_str());
  return 0;
}

// Re-reads the certificate and key on every SIGHUP: new connections get the new ones; a file
// that does not load is logged and the old credentials stay.
Task<void> reload_tls_on_sighup(Server& server, SignalSet& hup, std::string cert, std::string key) {
  for (;;) {
    auto signo = co_await hup.wait();
    if (!signo) co_return;
    std::string why;
    auto creds = ws::TlsServerCredentials::load(cert, key, &why);
    if (!creds) {
      log::error("SIGHUP: cannot reload the TLS certificate, keeping the current one: {}", why);
      continue;
    }
    server.set_tls_credentials(*creds);
    log::info("SIGHUP: reloaded TLS certificate {} (new connections use it)", (*creds)->description());
  }
}

int cmd_server(const std::vector<std::string>& args) {
  long port = 3001;
  long proxy_port = 0;
  std::string client_key = env_or("VTUNNEL_CLIENT_KEY", "");
  std::string bind_address;
  std::string proxy_bind = "127.0.0.1";
  std::string metrics_flag;
  std::chrono::milliseconds keepalive{30'000};
  std::string tls_cert, tls_key;
  std::string log_level, log_format = "text";
  cli::FlagSet flags("vtunnel server");
  flags.add_int("port", &port, "WebSocket listen port");
  flags.add_int("proxy", &proxy_port, "HTTP CONNECT proxy port (0 = disabled)");
  flags.add_string("client-key", &client_key, "Client public key (vt-pub-...). Also $VTUNNEL_CLIENT_KEY.");
  flags.add_string("proxy-bind", &proxy_bind,
                   "address for the HTTP proxy; anything but loopback makes an open proxy (warning)");
  flags.add_string("bind", &bind_address, "address for the WebSocket listener (default: all interfaces)");
  flags.add_duration("keepalive", &keepalive, "ping the client this often; 0 disables");
  flags.add_string("tls-cert", &tls_cert,
                   "PEM certificate chain: serve wss:// (TLS 1.2) instead of ws://; needs -tls-key; SIGHUP re-reads both");
  flags.add_string("tls-key", &tls_key, "PEM (PKCS#8, unencrypted) private key of -tls-cert");
  flags.add_string("metrics", &metrics_flag,
                   "Prometheus metrics: unset = GET /metrics on the -port listener; IP:PORT (e.g. "
                   "127.0.0.1:9100) = a separate listener instead; off = disabled");
  flags.add_string("log-level", &log_level, "trace, debug, info, warn, error or off (default info; also $VTUNNEL_LOG)");
  flags.add_string("log-format", &log_format, "text or json");
  if (int rc = parse_flags(flags, args); rc >= 0) return rc;
  if (!apply_log_flags(log_level, log_format)) return kExitUsage;
  if (tls_cert.empty() != tls_key.empty()) {
    std::fprintf(stderr, "-tls-cert and -tls-key go together\n");
    return kExitUsage;
  }
  if (port < 1 || port > 65535) {
    std::fprintf(stderr, "invalid -port %ld: must be 1-65535\n", port);
    return kExitUsage;
  }
  if (proxy_port < 0 || proxy_port > 65535) {
    std::fprintf(stderr, "invalid -proxy %ld: must be 0 (off) or 1-65535\n", proxy_port);
    return kExitUsage;
  }
  std::optional<SocketAddress> metrics_address;
  if (!parse_metrics_flag(metrics_flag, metrics_address)) return kExitUsage;
  ServerOptions options;
  options.metrics_on_main_port = metrics_flag.empty();
  if (!client_key.empty()) {
    auto key = parse_public_key(client_key);
    if (!key) {
      std::fprintf(stderr, "invalid -client-key: %s\n", key.error().message().c_str());
      return kExitUsage;
    }
    options.client_key = *key;
  }
  options.keepalive = keepalive;
  if (!tls_cert.empty()) {
    std::string why;
    auto creds = ws::TlsServerCredentials::load(tls_cert, tls_key, &why);
    if (!creds) {
      std::fprintf(stderr, "vtunnel server: TLS: %s\n", why.c_str());
      return kExitFailure;
    }
    options.tls = *creds;
    log::info("TLS certificate {}", (*creds)->description());
  }
  SocketAddress address;
  if (bind_address.empty()) {
    auto any6 = SocketAddress::parse("::", std::uint16_t(port));
    address = *any6;
  } else {
    auto a = SocketAddress::parse(bind_address, std::uint16_t(port));
    if (!a) {
      std::fprintf(stderr, "invalid -bind %s: expected an IP address\n", bind_address.c_str());
      return kExitUsage;
    }
    address = *a;
  }
  SocketAddress proxy_address;
  if (proxy_port != 0) {
    auto a = SocketAddress::parse(proxy_bind, std::uint16_t(proxy_port));
    if (!a) {
      std::fprintf(stderr, "invalid -proxy-bind %s: expected an IP address\n", proxy_bind.c_str());
      return kExitUsage;
    }
    proxy_address = *a;
  }

  // SIGHUP reloads the certificate; blocked (read from a signalfd) only when there is one, so
  // that without TLS it keeps its default meaning. Before the Loop starts any thread.
  const bool reload_on_hup = !tls_cert.empty();
  if (reload_on_hup) SignalSet::block({SIGHUP});
  std::optional<SignalSet> hup;
  if (reload_on_hup) hup.emplace({SIGHUP});
  SignalSet signals({SIGINT, SIGTERM});
  Loop loop;
  Server server(std::move(options));
  auto bound = server.listen(address);
  if (!bound && bind_address.empty()) {
    address = SocketAddress::parse("0.0.0.0", std::uint16_t(port)).value();  // no IPv6 here
    bound = server.listen(address);
  }
  if (!bound) {
    std::fprintf(stderr, "vtunnel server: listen tcp %s: %s\n", address.to_string().c_str(),
                 bound.error().message().c_str());
    return kExitFailure;
  }
  log::info("vtunnel server {} listening on {} ({}; GET /health{})", VTUNNEL_VERSION, bound->to_string(),
            reload_on_hup ? "WebSocket over TLS: wss://" : "WebSocket: ws://",
            metrics_flag.empty() ? ", GET /metrics" : "");
  if (proxy_port != 0) {
    auto proxy = server.start_proxy(proxy_address);
    if (!proxy) {
      std::fprintf(stderr, "vtunnel server: proxy: listen tcp %s: %s\n", proxy_address.to_string().c_str(),
                   proxy.error().message().c_str());
      return kExitFailure;
    }
  }
  if (metrics_address) {
    auto m = server.start_metrics(*metrics_address);
    if (!m) {
      std::fprintf(stderr, "vtunnel server: metrics: listen tcp %s: %s\n", metrics_address->to_string().c_str(),
                   m.error().message().c_str());
      sync_wait(loop, server.close_proxy());  // started above: end it before the loop goes
      return kExitFailure;
    }
  }
  return run_until_signal(loop, signals,
                          [](Server& s, SignalSet* reload, std::string cert, std::string key) -> Task<int> {
                            Scope reloader;
                            if (reload) reloader.spawn(reload_tls_on_sighup(s, *reload, cert, key));
                            co_await s.run();
                            reloader.cancel();
                            co_await reloader.join();
                            co_return 0;
                          }(server, hup ? &*hup : nullptr, tls_cert, tls_key),
                          [&server]() -> Task<void> {
                            server.close();
                            co_return;
                          });
}

int cmd_client(const std::vector<std::string>& args) {
  std::string server_url;
  std::string key_text = env_or("VTUNNEL_KEY", "");
  std::vector<std::string> forward_specs;
  std::vector<std::string> header_specs;
  std::chrono::milliseconds keepalive{0};
  std::chrono::milliseconds backoff_min{1000}, backoff_max{5000};
  std::string proxy_url;
  std::string metrics_flag;
  std::string log_level, log_format = "text";
  cli::FlagSet flags("vtunnel client");
  flags.add_string("server", &server_url, "WebSocket server URL, ws://host:port/ or wss://... (required)");
  flags.add_string("key", &key_text, "Private key (vt-priv-...). Also $VTUNNEL_KEY.");
  flags.add_list("forward", &forward_specs, "Port forward remotePort=localAddr (repeatable, at least 1 required)");
  flags.add_list("header", &header_specs, "extra WebSocket handshake header \"Name: value\" (repeatable)");
  flags.add_duration("keepalive", &keepalive, "keepalive ping interval; 0 = default 30s, negative disables");
  flags.add_duration("backoff-min", &backoff_min, "first reconnect delay");
  flags.add_duration("backoff-max", &backoff_max, "longest reconnect delay");
  flags.add_string("proxy-url", &proxy_url,
                   "HTTP proxy to reach the server through (CONNECT), http://[user:pass@]host:port; \"\" or direct: "
                   "none. Default: $HTTPS_PROXY (wss://) or $HTTP_PROXY (ws://), minus $NO_PROXY and loopback");
  flags.add_string("metrics", &metrics_flag,
                   "serve Prometheus metrics (GET /metrics) on IP:PORT, e.g. 127.0.0.1:9101 (default off)");
  flags.add_string("log-level", &log_level, "trace, debug, info, warn, error or off (default info; also $VTUNNEL_LOG)");
  flags.add_string("log-format", &log_format, "text or json");
  if (int rc = parse_flags(flags, args); rc >= 0) return rc;
  if (!apply_log_flags(log_level, log_format)) return kExitUsage;
  if (server_url.empty()) {
    std::fprintf(stderr, "missing -server (e.g. -server ws://tunnel.example.com:3001/)\n");
    return kExitUsage;
  }
  auto parsed_url = ws::parse_ws_url(server_url);
  if (!parsed_url) {
    std::fprintf(stderr, "invalid -server %s: %s\n", server_url.c_str(), parsed_url.error().message().c_str());
    return kExitUsage;
  }
  std::optional<std::string> explicit_proxy;
  if (flags.was_set("proxy-url")) explicit_proxy = proxy_url;
  auto proxy = ws::select_proxy(*parsed_url, explicit_proxy, ws::ProxyEnvironment::from_process());
  if (!proxy) {
    // The URL may hold a password: name only where it came from.
    std::fprintf(stderr, "invalid proxy URL in %s: %s\n",
                 explicit_proxy ? "-proxy-url" : (parsed_url->secure ? "$HTTPS_PROXY" : "$HTTP_PROXY"),
                 proxy.error().message().c_str());
    return kExitUsage;
  }
  if (forward_specs.empty()) {
    std::fprintf(stderr, "missing -forward (at least one, e.g. -forward 9000=localhost:3000)\n");
    return kExitUsage;
  }
  std::optional<SocketAddress> metrics_address;
  if (!parse_metrics_flag(metrics_flag, metrics_address)) return kExitUsage;
  ClientOptions options;
  if (!key_text.empty()) {
    auto key = parse_private_key(key_text);
    if (!key) {
      std::fprintf(stderr, "invalid -key: %s\n", key.error().message().c_str());
      return kExitUsage;
    }
    options.key = *key;
  }
  for (const auto& h : header_specs) {
    auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      std::fprintf(stderr, "invalid -header \"%s\": expected \"Name: value\"\n", h.c_str());
      return kExitUsage;
    }
    std::string value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(value.begin());
    options.headers.emplace_back(h.substr(0, colon), value);
  }
  options.proxy = *proxy;
  if (options.proxy) {
    log::info("reaching {} through HTTP proxy {}{}", log::escaped(server_url), options.proxy->redacted(),
              explicit_proxy ? "" : (parsed_url->secure ? " (from $HTTPS_PROXY)" : " (from $HTTP_PROXY)"));
  }
  options.keepalive = keepalive;
  options.backoff_min = backoff_min;
  options.backoff_max = backoff_max;
  std::vector<Forward> forwards;
  for (const auto& spec : forward_specs) {
    auto f = parse_forward(spec);
    if (!f) {
      std::fprintf(stderr, "invalid -forward \"%s\": %s\n", spec.c_str(), f.error().message().c_str());
      return kExitUsage;
    }
    forwards.push_back(*f);
  }

  SignalSet signals({SIGINT, SIGTERM});
  Loop loop;
  Client client(server_url, std::move(options));
  for (auto& f : forwards) client.add_forward(f);
  if (metrics_address) {
    auto m = client.start_metrics(*metrics_address);
    if (!m) {
      std::fprintf(stderr, "vtunnel client: metrics: listen tcp %s: %s\n", metrics_address->to_string().c_str(),
                   m.error().message().c_str());
      return kExitFailure;
    }
  }
  return run_until_signal(loop, signals,
                          [](Client& c) -> Task<int> {
                            auto first = co_await c.connect();
                            (void)first;  // failures are logged; the client keeps retrying
                            co_await c.wait_closed();
                            co_return kExitFailure;  // only an unusable URL ends the loop by itself
                          }(client),
                          [&client]() -> Task<void> { co_await client.close(); });
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists, so every thread inherits the mask and signalfd sees them.
  SignalSet::block({SIGINT, SIGTERM});
  std::vector<std::string> args(argv + 1, argv + argc);
  // vtunnel-server and vtunnel-client are this program fixed to one command.
  std::string self = argv[0];
  self = self.substr(self.find_last_of('/') + 1);
  if (self == "vtunnel-server") args.insert(args.begin(), "server");
  if (self == "vtunnel-client") args.insert(args.begin(), "client");
  if (args.empty()) {
    print_main_usage(stderr);
    return kExitUsage;
  }
  std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "server") return cmd_server(args);
    if (command == "client") return cmd_client(args);
    if (command == "keygen") return cmd_keygen(args);
    if (command == "version" || command == "-version" || command == "--version") {
      std::printf("vtunnel %s\n", VTUNNEL_VERSION);
      return 0;
    }
    if (command == "-h" || command == "-help" || command == "--help" || command == "help") {
      print_main_usage(stdout);
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vtunnel: %s\n", e.what());
    return kExitFailure;
  }
  std::fprintf(stderr, "unknown command \"%s\"\n\n", command.c_str());
  print_main_usage(stderr);
  return kExitUsage;
}
