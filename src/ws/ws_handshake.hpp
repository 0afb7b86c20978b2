#pragma once
// The handshake drivers: run ServerHandshake / ClientHandshake over a transport Stream and
// hand over a WsStream. Deadlines are the caller's: wrap in with_timeout() (every accept needs
// one: a client that sends half a head would otherwise hold the connection).
#include <memory>
#include <string>
#include <system_error>

#include "core/result.hpp"
#include "core/stream.hpp"
#include "core/task.hpp"
#include "ws/client_handshake.hpp"
#include "ws/handshake_result.hpp"
#include "ws/server_handshake.hpp"
#include "ws/url.hpp"
#include "ws/ws_stream.hpp"

namespace vtunnel::ws {

struct AcceptOptions {
  HandshakeLimits handshake{};
  WsStreamOptions stream{};
  PlainHandler plain{};  // answers plain GET/HEAD requests (e.g. /metrics); see server_handshake.hpp
};

struct Accepted {
  std::unique_ptr<WsStream> stream;  // set when the connection was upgraded
  unsigned http_status = 0;          // 101, or what we answered instead (200 /health, plain, 4xx)
  std::error_code refusal{};         // why a request was refused (empty for 101 and /health)
  std::string target;                // the request target (peer text: escape before logging)
};

// Server side. Reads the request head, answers it, and returns the WebSocket on an upgrade;
// otherwise the answer (health, refusal) was sent and the transport closed. Errors only for
// transport failures (EOF, reset) before an answer.
Task<Result<Accepted>> accept(std::unique_ptr<Stream> transport, AcceptOptions options);
// Overloads instead of default arguments: GCC 12 miscompiles a coroutine call whose argument
// is an aggregate temporary with non-trivial members (a default `= {}` is one) when the call
// sits in a co_await inside another coroutine (double free / bad free). See ws_connect.hpp.
inline Task<Result<Accepted>> accept(std::unique_ptr<Stream> transport) {
  return accept(std::move(transport), AcceptOptions{});
}

struct ClientOptions {
  HeaderList headers;  // extra handshake headers
  HandshakeLimits handshake{};
  WsStreamOptions stream{};
};

// Client side over a connected transport (TCP for ws://, TLS for wss://): sends the upgrade
// request for `url` and checks the answer.
Task<HandshakeResult<WsStream>> client_handshake(std::unique_ptr<Stream> transport, WsUrl url,
                                                 ClientOptions options);
inline Task<HandshakeResult<WsStream>> client_handshake(std::unique_ptr<Stream> transport, WsUrl url) {
  return client_handshake(std::move(transport), std::move(url), ClientOptions{});
}

}  // namespace vtunnel::ws
