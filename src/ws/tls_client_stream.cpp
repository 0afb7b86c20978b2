#include "ws/tls_client_stream.hpp"

#include <botan/auto_rng.h>
#include <botan/pkix_types.h>  // before certstor.h: it uses X509_DN complete
#include <botan/certstor.h>
#include <botan/certstor_flatfile.h>
#include <botan/certstor_system.h>
#include <botan/credentials_manager.h>
#include <botan/tls_callbacks.h>
#include <botan/tls_client.h>
#include <botan/tls_exceptn.h>
#include <botan/tls_policy.h>
#include <botan/tls_session_manager.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "core/log.hpp"
#include "ws/error.hpp"

namespace vtunnel::ws {
namespace {

// Ciphertext read size: one maximal TLS record and its overhead.
constexpr std::size_t kTlsReadSize = 16 * 1024 + 2048;
// Plaintext handed to Botan per send() while writing (bounds the ciphertext buffer).
constexpr std::size_t kTlsWriteChunk = 64 * 1024;

class TrustedCas final : public Botan::Credentials_Manager {
 public:
  std::vector<Botan::Certificate_Store*> trusted_certificate_authorities(const std::string&,
                                                                         const std::string&) override {
    std::vector<Botan::Certificate_Store*> out;
    for (auto& s : stores) out.push_back(s.get());
    return out;
  }
  std::vector<std::unique_ptr<Botan::Certificate_Store>> stores;
};

// Botan's defaults, but revocation data is not required (neither Go nor OpenSSL clients
// require it by default; servers rarely staple it).
class ClientPolicy final : public Botan::TLS::Policy {
 public:
  bool require_cert_revocation_info() const override { return false; }
};

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

}  // namespace

struct TlsClientStream::Impl final : Botan::TLS::Callbacks {
  std::unique_ptr<Stream> transport;
  TlsClientOptions options;
  Botan::AutoSeeded_RNG rng;
  Botan::TLS::Session_Manager_Noop sessions;
  TrustedCas cas;
  ClientPolicy policy;
  std::unique_ptr<Botan::TLS::Client> client;

  Bytes tx_pending;   // ciphertext emitted by Botan, not yet handed to the transport
  Bytes tx_sending;   // ciphertext being written (stable while the write is pending)
  Bytes rx;           // ciphertext read buffer
  Bytes plain;        // decrypted application data: [plain_pos, plain.size()) not yet read
  std::size_t plain_pos = 0;
  bool close_notify = false;
  bool closed = false;
  std::error_code error{};
  std::string detail;
  std::string negotiated;

  // Botan::TLS::Callbacks
  void tls_emit_data(const std::uint8_t data[], std::size_t size) override {
    tx_pending.insert(tx_pending.end(), data, data + size);
  }
  void tls_record_received(std::uint64_t, const std::uint8_t data[], std::size_t size) override {
    plain.insert(plain.end(), data, data + size);
  }
  void tls_alert(Botan::TLS::Alert alert) override {
    if (alert.type() == Botan::TLS::Alert::CLOSE_NOTIFY) {
      close_notify = true;
    } else if (alert.is_fatal()) {
      fail(errc::tls_error, "TLS alert from the server: " + alert.type_string());
    }
  }
  bool tls_session_established(const Botan::TLS::Session& session) override {
    negotiated = session.version().to_string() + " " + session.ciphersuite().to_string();
    return false;  // no session cache
  }
  void tls_verify_cert_chain(const std::vector<Botan::X509_Certificate>& chain,
                             const std::vector<std::shared_ptr<const Botan::OCSP::Response>>& ocsp,
                             const std::vector<Botan::Certificate_Store*>& roots,
                             Botan::Usage_Type usage, const std::string& hostname,
                             const Botan::TLS::Policy& p) override {
    try {
      Botan::TLS::Callbacks::tls_verify_cert_chain(chain, ocsp, roots, usage, hostname, p);
    } catch (const std::exception& e) {
      fail(errc::tls_certificate_rejected,
           "certificate of " + log::escaped(hostname) + " rejected: " + e.what());
      throw;
    }
  }
  std::chrono::milliseconds tls_verify_cert_chain_ocsp_timeout() const override {
    return std::chrono::milliseconds(0);  // no online OCSP from inside the event loop
  }

  void fail(errc e, std::string why) {
    if (error) return;  // keep the first, most specific reason
    error = e;
    detail = std::move(why);
  }

  Result<void> load_trust() {
    const std::string file = !options.ca_file.empty() || !options.ca_dir.empty() ? options.ca_file
                                                                                 : env_or_empty("SSL_CERT_FILE");
    const std::string dir = !options.ca_file.empty() || !options.ca_dir.empty() ? options.ca_dir
                                                                                : env_or_empty("SSL_CERT_DIR");
    try {
      if (!file.empty()) cas.stores.push_back(std::make_unique<Botan::Flatfile_Certificate_Store>(file, true));
      if (!dir.empty()) cas.stores.push_back(std::make_unique<Botan::Certificate_Store_In_Memory>(dir));
      if (file.empty() && dir.empty()) cas.stores.push_back(std::make_unique<Botan::System_Certificate_Store>());
    } catch (const std::exception& e) {
      fail(errc::tls_trust_store, std::string("cannot load trusted CA certificates") +
                                      (file.empty() ? "" : " from " + file) + (dir.empty() ? "" : " from " + dir) +
                                      ": " + e.what());
      return error;
    }
    return {};
  }

  // Feeds ciphertext to Botan; exceptions (bad records, failed verification) become errors.
  void feed(ByteSpan data) {
    try {
      client->received_data(data.data(), data.size());
    } catch (const Botan::TLS::TLS_Exception& e) {
      const bool in_handshake = !client->is_active();
      fail(in_handshake ? errc::tls_handshake_failed : errc::tls_error,
           std::string(in_handshake ? "TLS handshake failed: " : "TLS error: ") + e.what() +
               (in_handshake ? " (Botan 2 speaks TLS 1.2 at most)" : ""));
    } catch (const std::exception& e) {
      fail(client->is_active() ? errc::tls_error : errc::tls_handshake_failed, std::string("TLS: ") + e.what());
    }
  }
};

TlsClientStream::TlsClientStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsClientStream::~TlsClientStream() = default;

Task<HandshakeResult<TlsClientStream>> TlsClientStream::handshake(std::unique_ptr<Stream> transport,
                                                                  TlsClientOptions options) {
  HandshakeResult<TlsClientStream> result;
  auto impl = std::make_unique<Impl>();
  impl->transport = std::move(transport);
  impl->options = std::move(options);
  impl->rx.resize(kTlsReadSize);
  Impl& s = *impl;
  auto finish_error = [&] {
    result.error = s.error;
    result.detail = s.detail;
    s.transport->close();
    return std::move(result);
  };
  if (!s.load_trust()) co_return finish_error();
  try {
    s.client = std::make_unique<Botan::TLS::Client>(
        s, s.sessions, s.cas, s.policy, s.rng,
        Botan::TLS::Server_Information(s.options.server_name, s.options.port),
        Botan::TLS::Protocol_Version::latest_tls_version());
  } catch (const std::exception& e) {
    s.fail(errc::tls_handshake_failed, std::string("TLS client setup failed: ") + e.what());
    co_return finish_error();
  }
  while (true) {
    // Flush even after an error: it may be the alert that tells the server why.
    while (!s.tx_pending.empty()) {
      std::swap(s.tx_sending, s.tx_pending);
      s.tx_pending.clear();
      Result<void> sent = co_await s.transport->write_all(ByteSpan(s.tx_sending));
      if (!sent) {
        s.fail(errc::tls_handshake_failed, "TLS handshake: sending failed: " + sent.error().message());
        break;
      }
    }
    if (s.error) co_return finish_error();
    if (s.client->is_active()) break;
    Result<std::size_t> got = co_await s.transport->read_some(s.rx);
    if (!got) {
      s.fail(errc::tls_handshake_failed,
             got.error() == vtunnel::errc::eof
                 ? "TLS handshake: the server closed the connection (does it speak TLS 1.2? Botan 2 has no TLS 1.3)"
                 : "TLS handshake: " + got.error().message());
      co_return finish_error();
    }
    s.feed(ByteSpan(s.rx.data(), *got));
  }
  result.stream.reset(new TlsClientStream(std::move(impl)));
  co_return result;
}

std::string TlsClientStream::protocol_description() const { return impl_->negotiated; }

Task<Result<void>> TlsClientStream::flush_locked() {
  Impl& s = *impl_;
  while (!s.tx_pending.empty()) {
    std::swap(s.tx_sending, s.tx_pending);
    s.tx_pending.clear();
    Result<void> sent = co_await s.transport->write_all(ByteSpan(s.tx_sending));
    if (!sent) co_return sent;
  }
  co_return Result<void>{};
}

Task<void> TlsClientStream::flush_if_idle() {
  if (!write_lock_.try_lock()) co_return;  // the writer flushes before it unlocks
  Mutex::Guard guard(&write_lock_);
  Result<void> sent = co_await flush_locked();
  (void)sent;
}

Task<Result<std::size_t>> TlsClientStream::read_some(MutableByteSpan buf) {
  Impl& s = *impl_;
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

Task<Result<void>> TlsClientStream::write_all(std::span<const ByteSpan> bufs) {
  Impl& s = *impl_;
  Result<Mutex::Guard> locked = co_await write_lock_.lock();
  if (!locked) co_return locked.error();
  Mutex::Guard guard = std::move(*locked);
  for (const ByteSpan& buf : bufs) {
    for (std::size_t pos = 0; pos < buf.size(); pos += kTlsWriteChunk) {
      if (s.error) co_return s.error;
      if (s.closed || !s.client->is_active()) co_return make_error_code(vtunnel::errc::closed);
      const std::size_t n = std::min(kTlsWriteChunk, buf.size() - pos);
      try {
        s.client->send(buf.data() + pos, n);
      } catch (const std::exception& e) {
        s.fail(errc::tls_error, std::string("TLS send: ") + e.what());
        co_return s.error;
      }
      Result<void> sent = co_await flush_locked();
      if (!sent) co_return sent;
    }
  }
  co_return co_await flush_locked();
}

Task<Result<void>> TlsClientStream::shutdown_write() {
  Impl& s = *impl_;
  Result<Mutex::Guard> locked = co_await write_lock_.lock();
  if (!locked) co_return locked.error();
  Mutex::Guard guard = std::move(*locked);
  if (s.client->is_active()) {
    try {
      s.client->close();
    } catch (const std::exception&) {
      // already closing: nothing more to send
    }
  }
  Result<void> sent = co_await flush_locked();
  if (!sent) co_return sent;
  co_return co_await s.transport->shutdown_write();
}

void TlsClientStream::close() noexcept {
  if (impl_->closed) return;
  impl_->closed = true;
  impl_->transport->close();
}

}  // namespace vtunnel::ws
