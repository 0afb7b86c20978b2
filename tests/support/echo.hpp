#pragma once
// A TCP echo service for tests: every accepted connection gets back what it sends, then EOF
// after the peer's EOF.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/scope.hpp"
#include "core/socket.hpp"

namespace vtunnel::test {

// Echoes `s` with reads of up to `buffer_size` bytes, until EOF or an error; then half-closes.
inline Task<void> echo_connection(TcpStream s, std::size_t buffer_size) {
  std::vector<std::uint8_t> buf(buffer_size);
  for (;;) {
    auto n = co_await s.read_some(buf);
    if (!n) break;
    auto w = co_await s.write_all(ByteSpan(buf.data(), *n));
    if (!w) break;
  }
  (void)co_await s.shutdown_write();
}

// Accepts on `l` until it is closed; each connection is echoed in `conns`.
inline Task<void> echo_server(TcpListener& l, Scope& conns, std::size_t buffer_size) {
  for (;;) {
    auto c = co_await l.accept();
    if (!c) co_return;
    conns.spawn(echo_connection(std::move(*c), buffer_size));
  }
}

}  // namespace vtunnel::test
