#include "ws/ws_connect.hpp"

#include <algorithm>

#include "core/log.hpp"
#include "core/resolver.hpp"
#include "core/timer.hpp"
#include "ws/error.hpp"
#include "ws/url.hpp"

namespace vtunnel::ws {

Task<Result<std::unique_ptr<Stream>>> dial_tcp(std::string host, std::uint16_t port, ConnectOptions options) {
  Result<TcpStream> tcp = co_await connect_host(std::move(host), port, options);
  if (!tcp) co_return tcp.error();
  co_return std::unique_ptr<Stream>(std::make_unique<TcpStream>(std::move(*tcp)));
}

Task<HandshakeResult<WsStream>> connect(std::string url, WsConnectOptions options) {
  const ConnectOptions tcp = options.tcp;
  Dialer dial = [tcp](std::string host, std::uint16_t port) { return dial_tcp(std::move(host), port, tcp); };
  co_return co_await connect(std::move(url), std::move(options), std::move(dial));
}

namespace {

// A stream that first returns bytes already read from its transport (what a proxy sent past
// its answer to CONNECT), then reads the transport itself.
class PrefixedStream final : public Stream {
 public:
  PrefixedStream(std::unique_ptr<Stream> inner, Bytes prefix) : inner_(std::move(inner)), prefix_(std::move(prefix)) {}
  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override {
    if (pos_ < prefix_.size() && !buf.empty()) {
      const std::size_t n = std::min(buf.size(), prefix_.size() - pos_);
      std::copy_n(prefix_.data() + pos_, n, buf.data());
      pos_ += n;
      if (pos_ == prefix_.size()) {
        prefix_ = Bytes();
        pos_ = 0;
      }
      co_return n;
    }
    co_return co_await inner_->read_some(buf);
  }
  using Stream::write_all;
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override { return inner_->write_all(bufs); }
  Task<Result<void>> shutdown_write() override { return inner_->shutdown_write(); }
  void close() noexcept override { inner_->close(); }

 private:
  std::unique_ptr<Stream> inner_;
  Bytes prefix_;
  std::size_t pos_ = 0;
};

constexpr std::size_t kProxyReadSize = 4096;

// The steps of connect() as one Result-returning task (so with_timeout applies); the
// sentence for the user goes to *detail, which lives in the awaiting connect() frame.
Task<Result<std::unique_ptr<WsStream>>> connect_steps(WsUrl target, WsConnectOptions options, Dialer dial,
                                                      std::string* detail) {
  HandshakeResult<WsStream> result = co_await connect_parsed(std::move(target), std::move(options), std::move(dial));
  if (result.ok()) co_return std::move(result.stream);
  *detail = result.message();
  co_return result.error;
}

}  // namespace

Task<HandshakeResult<WsStream>> connect(std::string url, WsConnectOptions options, Dialer dial) {
  HandshakeResult<WsStream> result;
  Result<WsUrl> parsed = parse_ws_url(url);
  if (!parsed) {
    result.error = parsed.error();
    result.detail = "not a valid ws:// or wss:// URL: " + log::escaped(url);
    co_return result;
  }
  if (options.timeout.count() == 0) {
    co_return co_await connect_parsed(std::move(*parsed), std::move(options), std::move(dial));
  }
  const std::string where = parsed->host_header;
  const auto timeout = options.timeout;
  std::string detail;
  Result<std::unique_ptr<WsStream>> connected =
      co_await with_timeout(connect_steps(std::move(*parsed), std::move(options), std::move(dial), &detail), timeout);
  if (connected) {
    result.stream = std::move(*connected);
    co_return result;
  }
  result.error = connected.error();
  if (connected.error() == vtunnel::errc::timed_out) {
    result.detail = "connecting to " + where + " (TCP, TLS, WebSocket upgrade) timed out after " +
                    std::to_string(timeout.count()) + " ms";
  } else {
    result.detail = std::move(detail);
  }
  co_return result;
}

Task<Result<std::unique_ptr<Stream>>> proxy_connect(std::unique_ptr<Stream> transport, ProxyUrl proxy,
                                                    std::string host, std::uint16_t port, HandshakeLimits limits,
                                                    std::string* detail) {
  Result<ProxyConnectHandshake> created = ProxyConnectHandshake::create(proxy, host, port, limits);
  if (!created) {
    *detail = "cannot build a CONNECT request for " + log::escaped(host) + ": " + created.error().message();
    co_return created.error();
  }
  ProxyConnectHandshake& handshake = *created;
  Result<void> sent = co_await transport->write_all(as_bytes(handshake.request()));
  if (!sent) {
    *detail = "sending CONNECT to proxy " + proxy.authority() + " failed: " + sent.error().message();
    co_return sent.error();
  }
  Bytes buffer(kProxyReadSize);
  while (true) {
    Result<std::size_t> got = co_await transport->read_some(buffer);
    if (!got) {
      if (got.error() == vtunnel::errc::eof) {
        *detail = "proxy " + proxy.authority() + " closed the connection without answering CONNECT";
        co_return make_error_code(errc::proxy_eof);
      }
      *detail = "reading the answer of proxy " + proxy.authority() + " to CONNECT: " + got.error().message();
      co_return got.error();
    }
    const ByteSpan input(buffer.data(), *got);
    const ProxyConnectHandshake::Step step = handshake.feed(input);
    if (step.outcome == ProxyConnectHandshake::Outcome::need_more) continue;
    if (step.outcome == ProxyConnectHandshake::Outcome::failed) {
      *detail = handshake.failure_detail();
      transport->close();
      co_return handshake.error();
    }
    const ByteSpan extra = input.subspan(step.consumed);
    if (extra.empty()) co_return std::move(transport);
    co_return std::unique_ptr<Stream>(
        std::make_unique<PrefixedStream>(std::move(transport), Bytes(extra.begin(), extra.end())));
  }
}

Task<HandshakeResult<WsStream>> connect_parsed(WsUrl target, WsConnectOptions options, Dialer dial) {
  HandshakeResult<WsStream> result;
  const bool via_proxy = options.proxy.has_value();
  const std::string dial_host = via_proxy ? options.proxy->host : target.host;
  const std::uint16_t dial_port = via_proxy ? options.proxy->port : target.port;
  Result<std::unique_ptr<Stream>> tcp = co_await dial(dial_host, dial_port);
  if (!tcp) {
    result.error = tcp.error();
    result.detail = via_proxy ? "cannot connect to proxy " + options.proxy->authority() + ": " + tcp.error().message()
                              : "cannot connect to " + target.host_header + ": " + tcp.error().message();
    co_return result;
  }
  std::unique_ptr<Stream> transport = std::move(*tcp);
  if (via_proxy) {
    std::string detail;
    Result<std::unique_ptr<Stream>> tunneled =
        co_await with_timeout(proxy_connect(std::move(transport), *options.proxy, target.host, target.port,
                                            options.handshake, &detail),
                              options.proxy_answer_timeout);
    if (!tunneled) {
      result.error = tunneled.error();
      if (tunneled.error() == vtunnel::errc::timed_out) {
        // Our own error code: the overall deadline's timed_out means something else.
        result.error = make_error_code(errc::proxy_timeout);
        result.detail = "proxy " + options.proxy->authority() + " did not answer CONNECT within " +
                        std::to_string(options.proxy_answer_timeout.count()) + " ms";
      } else {
        result.detail = detail.empty() ? "CONNECT through proxy " + options.proxy->authority() + ": " +
                                             tunneled.error().message()
                                       : std::move(detail);
      }
      co_return result;
    }
    transport = std::move(*tunneled);
  }
  if (target.secure) {
    TlsClientOptions tls;
    tls.server_name = options.tls_server_name.empty() ? target.host : options.tls_server_name;
    tls.port = target.port;
    tls.ca_file = options.tls_ca_file;
    tls.ca_dir = options.tls_ca_dir;
    HandshakeResult<TlsClientStream> secured = co_await TlsClientStream::handshake(std::move(transport), tls);
    if (!secured.ok()) {
      result.error = secured.error;
      result.detail = target.host_header + (via_proxy ? " (through proxy " + options.proxy->authority() + ")" : "") +
                      ": " + secured.message();
      co_return result;
    }
    transport = std::move(secured.stream);
  }
  ClientOptions client;
  client.headers = std::move(options.headers);
  client.handshake = options.handshake;
  client.stream = options.stream;
  co_return co_await client_handshake(std::move(transport), target, std::move(client));
}

}  // namespace vtunnel::ws
