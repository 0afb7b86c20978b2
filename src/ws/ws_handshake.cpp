#include "ws/ws_handshake.hpp"

#include <botan/system_rng.h>

#include "core/error.hpp"
#include "ws/error.hpp"
#include "ws/server_handshake.hpp"

namespace vtunnel::ws {
namespace {

constexpr std::size_t kHandshakeReadSize = 4096;

std::error_code handshake_read_error(std::error_code ec) {
  return ec == vtunnel::errc::eof ? make_error_code(errc::handshake_eof) : ec;
}

}  // namespace

Task<Result<Accepted>> accept(std::unique_ptr<Stream> transport, AcceptOptions options) {
  ServerHandshake handshake(options.handshake, std::move(options.plain));
  Bytes buffer(kHandshakeReadSize);
  while (true) {
    Result<std::size_t> got = co_await transport->read_some(buffer);
    if (!got) co_return handshake_read_error(got.error());
    const ByteSpan input(buffer.data(), *got);
    const ServerHandshake::Step step = handshake.feed(input);
    if (step.outcome == ServerHandshake::Outcome::need_more) continue;

    Accepted accepted;
    accepted.http_status = handshake.status();
    accepted.refusal = handshake.error();
    accepted.target = handshake.target();
    Result<void> sent = co_await transport->write_all(as_bytes(handshake.response()));
    if (!sent) co_return sent.error();
    if (step.outcome == ServerHandshake::Outcome::respond) {
      (void)co_await transport->shutdown_write();
      transport->close();
      co_return accepted;
    }
    accepted.stream = std::make_unique<WsStream>(std::move(transport), Role::server,
                                                 input.subspan(step.consumed), options.stream);
    co_return accepted;
  }
}

Task<HandshakeResult<WsStream>> client_handshake(std::unique_ptr<Stream> transport, WsUrl url,
                                                 ClientOptions options) {
  HandshakeResult<WsStream> result;
  std::array<std::uint8_t, kClientKeyBytes> key{};
  Botan::system_rng().randomize(key.data(), key.size());
  Result<ClientHandshake> created = ClientHandshake::create(
      ClientRequest{url.host_header, url.target, std::move(options.headers)}, key, options.handshake);
  if (!created) {
    result.error = created.error();
    co_return result;
  }
  ClientHandshake& handshake = *created;
  Result<void> sent = co_await transport->write_all(as_bytes(handshake.request()));
  if (!sent) {
    result.error = sent.error();
    result.detail = "sending the WebSocket upgrade request failed: " + sent.error().message();
    co_return result;
  }
  Bytes buffer(kHandshakeReadSize);
  while (true) {
    Result<std::size_t> got = co_await transport->read_some(buffer);
    if (!got) {
      result.error = handshake_read_error(got.error());
      result.detail = "no WebSocket handshake answer: " + result.error.message();
      co_return result;
    }
    const ByteSpan input(buffer.data(), *got);
    const ClientHandshake::Step step = handshake.feed(input);
    if (step.outcome == ClientHandshake::Outcome::need_more) continue;
    if (step.outcome == ClientHandshake::Outcome::failed) {
      result.error = handshake.error();
      result.detail = handshake.failure_detail();
      transport->close();
      co_return result;
    }
    result.stream = std::make_unique<WsStream>(std::move(transport), Role::client,
                                               input.subspan(step.consumed), options.stream);
    co_return result;
  }
}

}  // namespace vtunnel::ws
