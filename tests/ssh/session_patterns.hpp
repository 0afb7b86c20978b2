#pragma once
// Coroutines shared by the Session tests: write a checkable pattern, read and verify it, echo.
#include <catch2/catch.hpp>

#include "connection_pair.hpp"
#include "core/task.hpp"
#include "ssh/session.hpp"

namespace vtunnel::test {

inline const Bytes& session_cycle() {
  static const Bytes c = pattern(1024 * 1024 + 7, 99);
  return c;
}

inline Task<void> write_pattern(ssh::Channel ch, std::size_t total) {
  std::size_t sent = 0;
  while (sent < total) {
    std::size_t at = sent % session_cycle().size();
    std::size_t n = std::min(total - sent, session_cycle().size() - at);
    Result<void> w = co_await ch.write(ByteSpan(session_cycle()).subspan(at, n));
    REQUIRE(w.ok());
    sent += n;
  }
  REQUIRE(ch.send_eof().ok());
}

// Reads until EOF, checking the pattern; returns the byte count.
inline Task<std::size_t> read_pattern(ssh::Channel ch) {
  Bytes buf(100 * 1000);
  std::size_t got = 0;
  bool mismatch = false;
  for (;;) {
    Result<std::size_t> n = co_await ch.read(buf);
    if (!n) {
      REQUIRE(n.error() == vtunnel::errc::eof);
      break;
    }
    for (std::size_t i = 0; i < *n; ++i)
      if (buf[i] != session_cycle()[(got + i) % session_cycle().size()]) mismatch = true;
    got += *n;
  }
  REQUIRE_FALSE(mismatch);
  co_return got;
}

inline Task<void> echo(ssh::Channel ch) {
  Bytes buf(64 * 1024);
  for (;;) {
    Result<std::size_t> n = co_await ch.read(buf);
    if (!n) break;
    Result<void> w = co_await ch.write(ByteSpan(buf).first(*n));
    if (!w) break;
  }
  (void)ch.send_eof();
  ch.close();
}

}  // namespace vtunnel::test
