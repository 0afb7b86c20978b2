#include "ws/tls_stream.hpp"

#include <botan/tls_exceptn.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "ws/detail/tls_channel.hpp"

namespace vtunnel::ws {
namespace {

// Ciphertext read size: one maximal TLS record and its overhead.
constexpr std::size_t kTlsReadSize = 16 * 1024 + 2048;
// Plaintext handed to Botan per send() while writing (bounds the ciphertext buffer).
constexpr std::size_t kTlsWriteChunk = 64 * 1024;

}  // namespace

namespace detail {

TlsChannel::TlsChannel(std::unique_ptr<Stream> transport_stream, const char* peer)
    : transport(std::move(transport_stream)), peer_(peer) {
  rx.resize(kTlsReadSize);
}

TlsChannel::~TlsChannel() = default;

void TlsChannel::tls_emit_data(const std::uint8_t data[], std::size_t size) {
  tx_pending.insert(tx_pending.end(), data, data + size);
}

void TlsChannel::tls_record_received(std::uint64_t, const std::uint8_t data[], std::size_t size) {
  plain.insert(plain.end(), data, data + size);
}

void TlsChannel::tls_alert(Botan::TLS::Alert alert) {
  if (alert.type() == Botan::TLS::Alert::CLOSE_NOTIFY) {
    close_notify = true;
  } else if (alert.is_fatal()) {
    fail(errc::tls_error, std::string("TLS alert from the ") + peer_ + ": " + alert.type_string());
  }
}

bool TlsChannel::tls_session_established(const Botan::TLS::Session& session) {
  negotiated = session.version().to_string() + " " + session.ciphersuite().to_string();
  return false;  // no session cache
}

void TlsChannel::fail(errc e, std::string why) {
  if (error) return;  // keep the first, most specific reason
  error = e;
  detail = std::move(why);
}

void TlsChannel::fail_received(const std::exception& e, bool) {
  const bool in_handshake = !botan->is_active();
  fail(in_handshake ? errc::tls_handshake_failed : errc::tls_error,
       std::string(in_handshake ? "TLS handshake failed: " : "TLS error: ") + e.what());
}

void TlsChannel::feed(ByteSpan data) {
  try {
    botan->received_data(data.data(), data.size());
  } catch (const Botan::TLS::TLS_Exception& e) {
    fail_received(e, true);
  } catch (const std::exception& e) {
    fail_received(e, false);
  }
}

Task<Result<void>> TlsChannel::flush() {
  while (!tx_pending.empty()) {
    std::swap(tx_sending, tx_pending);
    tx_pending.clear();
    Result<void> sent = co_await transport->write_all(ByteSpan(tx_sending));
    if (!sent) co_return sent;
  }
  co_return Result<void>{};
}

Task<bool> TlsChannel::handshake() {
  if (error || !botan) {
    transport->close();
    co_return false;
  }
  bool first = true;
  while (true) {
    // Flush even after an error: it may be the alert that tells the peer why.
    Result<void> sent = co_await flush();
    if (!sent) {
      fail(errc::tls_handshake_failed, "TLS handshake: sending failed: " + sent.error().message());
      break;
    }
    if (error) break;
    if (botan->is_active()) co_return true;
    Result<std::size_t> got = co_await transport->read_some(rx);
    if (!got) {
      fail(errc::tls_handshake_failed,
           got.error() == vtunnel::errc::eof
               ? std::string("TLS handshake: the ") + peer_ + " closed the connection" + eof_hint
               : "TLS handshake: " + got.error().message());
      break;
    }
    const ByteSpan data(rx.data(), *got);
    if (first && !check_first_bytes(data)) break;
    first = false;
    feed(data);
  }
  transport->close();
  co_return false;
}

}  // namespace detail

TlsStream::TlsStream(std::unique_ptr<detail::TlsChannel> channel) : channel_(std::move(channel)) {}
TlsStream::~TlsStream() = default;

std::string TlsStream::protocol_description() const { return channel_->negotiated; }

Task<void> TlsStream::flush_if_idle() {
  if (!write_lock_.try_lock()) co_return;  // the writer flushes before it unlocks
  Mutex::Guard guard(&write_lock_);
  Result<void> sent = co_await channel_->flush();
  (void)sent;
}

Task<Result<std::size_t>> TlsStream::read_some(MutableByteSpan buf) {
  detail::TlsChannel& s = *channel_;
  if (buf.empty()) co_return std::size_t{0};
  while (true) {
    if (s.plain_pos < s.plain.size()) {
      const std::size_t n = std::min(buf.size(), s.plain.size() - s.plain_pos);
      std::memcpy(buf.data(), s.plain.data() + s.plain_pos, n);
      s.plain_pos += n;
      if (s.plain_pos == s.plain.size()) {
        s.plain.clear();
        s.plain_pos = 0;
      }
      co_return n;
    }
    if (s.error) co_return s.error;
    if (s.close_notify) co_return make_error_code(vtunnel::errc::eof);
    if (s.closed) co_return make_error_code(vtunnel::errc::closed);
    Result<std::size_t> got = co_await s.transport->read_some(s.rx);
    if (!got) co_return got.error();  // EOF without close_notify reads as EOF too
    s.feed(ByteSpan(s.rx.data(), *got));
    if (!s.tx_pending.empty()) {
      co_await flush_if_idle();
    }
  }
}

Task<Result<void>> TlsStream::write_all(std::span<const ByteSpan> bufs) {
  detail::TlsChannel& s = *channel_;
  Result<Mutex::Guard> locked = co_await write_lock_.lock();
  if (!locked) co_return locked.error();
  Mutex::Guard guard = std::move(*locked);
  for (const ByteSpan& buf : bufs) {
    for (std::size_t pos = 0; pos < buf.size(); pos += kTlsWriteChunk) {
      if (s.error) co_return s.error;
      if (s.closed || !s.botan->is_active()) co_return make_error_code(vtunnel::errc::closed);
      const std::size_t n = std::min(kTlsWriteChunk, buf.size() - pos);
      try {
        s.botan->send(buf.data() + pos, n);
      } catch (const std::exception& e) {
        s.fail(errc::tls_error, std::string("TLS send: ") + e.what());
        co_return s.error;
      }
      Result<void> sent = co_await s.flush();
      if (!sent) co_return sent;
    }
  }
  co_return co_await s.flush();
}

Task<Result<void>> TlsStream::shutdown_write() {
  detail::TlsChannel& s = *channel_;
  Result<Mutex::Guard> locked = co_await write_lock_.lock();
  if (!locked) co_return locked.error();
  Mutex::Guard guard = std::move(*locked);
  if (s.botan->is_active()) {
    try {
      s.botan->close();
    } catch (const std::exception&) {
      // already closing: nothing more to send
    }
  }
  Result<void> sent = co_await s.flush();
  if (!sent) co_return sent;
  co_return co_await s.transport->shutdown_write();
}

void TlsStream::close() noexcept {
  if (channel_->closed) return;
  channel_->closed = true;
  channel_->transport->close();
}

}  // namespace vtunnel::ws
