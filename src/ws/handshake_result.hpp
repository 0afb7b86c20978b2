#pragma once
#include <memory>
#include <string>
#include <system_error>

namespace vtunnel::ws {

// The result of a client handshake (TLS or WebSocket): a stream, or an error code with a
// sentence the user can act on ("server answered 404 Not Found ...").
template <class S>
struct HandshakeResult {
  std::unique_ptr<S> stream;
  std::error_code error{};
  std::string detail;

  bool ok() const noexcept { return stream != nullptr; }
  // "detail" when there is one, else the error's own message.
  std::string message() const { return detail.empty() ? error.message() : detail; }
};

}  // namespace vtunnel::ws
