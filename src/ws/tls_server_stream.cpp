#include "ws/tls_server_stream.hpp"

#include <botan/auto_rng.h>
#include <botan/pkix_types.h>  // before certstor.h: it uses X509_DN complete
#include <botan/credentials_manager.h>
#include <botan/data_src.h>
#include <botan/pkcs8.h>
#include <botan/tls_callbacks.h>
#include <botan/tls_exceptn.h>
#include <botan/tls_policy.h>
#include <botan/tls_server.h>
#include <botan/tls_session_manager.h>
#include <botan/x509cert.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/log.hpp"
#include "ws/error.hpp"

namespace vtunnel::ws {

struct TlsServerCredentials::Impl {
  std::vector<Botan::X509_Certificate> chain;
  std::shared_ptr<Botan::Private_Key> key;  // Botan wants a mutable pointer; never modified
};

namespace {

constexpr std::size_t kTlsReadSize = 16 * 1024 + 2048;  // one maximal record and its overhead
constexpr std::size_t kTlsWriteChunk = 64 * 1024;
constexpr std::size_t kMaxPemFileSize = 1024 * 1024;

bool read_file(const std::string& path, std::string& out, std::string& why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  out = buf.str();
  if (out.size() > kMaxPemFileSize) {
    why = path + " is larger than " + std::to_string(kMaxPemFileSize) + " bytes";
    return false;
  }
  return true;
}

// Server side: ECDHE + AEAD suites on TLS 1.2 only, whatever Botan's defaults allow.
class ServerPolicy final : public Botan::TLS::Policy {
 public:
  std::vector<std::string> allowed_ciphers() const override {
    return {"ChaCha20Poly1305", "AES-256/GCM", "AES-128/GCM"};
  }
  std::vector<std::string> allowed_macs() const override { return {"AEAD"}; }
  std::vector<std::string> allowed_key_exchange_methods() const override { return {"ECDH"}; }
  std::vector<std::string> allowed_signature_methods() const override { return {"ECDSA", "RSA"}; }
  bool allow_tls10() const override { return false; }
  bool allow_tls11() const override { return false; }
  bool allow_tls12() const override { return true; }
  bool allow_dtls10() const override { return false; }
  bool allow_dtls12() const override { return false; }
  bool require_cert_revocation_info() const override { return false; }
  bool allow_client_initiated_renegotiation() const override { return false; }
};

class ServerCredentials final : public Botan::Credentials_Manager {
 public:
  explicit ServerCredentials(std::shared_ptr<const TlsServerCredentials> c) : creds(std::move(c)) {}
  std::vector<Botan::X509_Certificate> cert_chain(const std::vector<std::string>& key_types, const std::string&,
                                                  const std::string&) override {
    const auto& impl = creds->impl();
    const std::string algo = impl.key->algo_name();
    if (std::find(key_types.begin(), key_types.end(), algo) == key_types.end()) return {};
    return impl.chain;
  }
  Botan::Private_Key* private_key_for(const Botan::X509_Certificate&, const std::string&, const std::string&) override {
    return creds->impl().key.get();
  }
  std::shared_ptr<const TlsServerCredentials> creds;
};

}  // namespace

TlsServerCredentials::TlsServerCredentials(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsServerCredentials::~TlsServerCredentials() = default;

Result<std::shared_ptr<const TlsServerCredentials>> TlsServerCredentials::load(const std::string& cert_file,
                                                                               const std::string& key_file,
                                                                               std::string* detail) {
  auto impl = std::make_unique<Impl>();
  std::string cert_pem, key_pem, why;
  auto fail = [&](std::string text) -> Result<std::shared_ptr<const TlsServerCredentials>> {
    if (detail) *detail = std::move(text);
    return errc::tls_credentials;
  };
  if (!read_file(cert_file, cert_pem, why)) return fail(why);
  if (!read_file(key_file, key_pem, why)) return fail(why);
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  try {
    for (std::size_t pos = cert_pem.find(kBegin); pos != std::string::npos; pos = cert_pem.find(kBegin, pos)) {
      const std::size_t end = cert_pem.find(kEnd, pos);
      if (end == std::string::npos) return fail(cert_file + ": unterminated PEM certificate");
      Botan::DataSource_Memory block(cert_pem.substr(pos, end + kEnd.size() - pos));
      impl->chain.emplace_back(block);
      pos = end + kEnd.size();
    }
  } catch (const std::exception& e) {
    return fail(cert_file + ": not a valid PEM certificate: " + e.what());
  }
  if (impl->chain.empty()) return fail(cert_file + ": no PEM certificate (-----BEGIN CERTIFICATE-----) in it");
  try {
    Botan::DataSource_Memory source(key_pem);
    impl->key = std::shared_ptr<Botan::Private_Key>(Botan::PKCS8::load_key(source));
  } catch (const std::exception& e) {
    return fail(key_file + ": not an unencrypted PKCS#8 PEM private key (" + e.what() +
                "); convert with: openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8");
  }
  if (!impl->key) return fail(key_file + ": no private key in it");
  if (impl->key->public_key_bits() != impl->chain.front().subject_public_key_bitstring()) {
    return fail(key_file + " does not belong to the certificate in " + cert_file);
  }
  if (impl->key->algo_name() != "ECDSA" && impl->key->algo_name() != "RSA") {
    return fail(key_file + ": " + impl->key->algo_name() + " keys are not supported for TLS 1.2 (use ECDSA or RSA)");
  }
  return std::shared_ptr<const TlsServerCredentials>(new TlsServerCredentials(std::move(impl)));
}

std::string TlsServerCredentials::description() const {
  const auto& cert = impl_->chain.front();
  const auto cn = cert.subject_info("X520.CommonName");
  std::string out = "CN=" + (cn.empty() ? std::string("?") : log::escaped(cn.front(), 100));
  out += " (SHA-256 " + cert.fingerprint("SHA-256") + ", valid until " + cert.not_after().readable_string() + ")";
  return out;
}

struct TlsServerStream::Impl final : Botan::TLS::Callbacks {
  std::unique_ptr<Stream> transport;
  Botan::AutoSeeded_RNG rng;
  Botan::TLS::Session_Manager_Noop sessions;
  std::unique_ptr<ServerCredentials> creds;
  ServerPolicy policy;
  std::unique_ptr<Botan::TLS::Server> server;

  Bytes tx_pending;  // ciphertext emitted by Botan, not yet handed to the transport
  Bytes tx_sending;  // ciphertext being written (stable while the write is pending)
  Bytes rx;          // ciphertext read buffer
  Bytes plain;       // decrypted application data: [plain_pos, plain.size()) not yet read
  std::size_t plain_pos = 0;
  bool close_notify = false;
  bool closed = false;
  std::error_code error{};
  std::string detail;
  std::string negotiated;

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
      fail(errc::tls_error, "TLS alert from the client: " + alert.type_string());
    }
  }
  bool tls_session_established(const Botan::TLS::Session& session) override {
    negotiated = session.version().to_string() + " " + session.ciphersuite().to_string();
    return false;
  }

  void fail(errc e, std::string why) {
    if (error) return;
    error = e;
    detail = std::move(why);
  }

  void feed(ByteSpan data) {
    try {
      server->received_data(data.data(), data.size());
    } catch (const std::exception& e) {
      const bool in_handshake = !server->is_active();
      fail(in_handshake ? errc::tls_handshake_failed : errc::tls_error,
           std::string(in_handshake ? "TLS handshake failed: " : "TLS error: ") + e.what());
    }
  }
};

TlsServerStream::TlsServerStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsServerStream::~TlsServerStream() = default;

Task<HandshakeResult<TlsServerStream>> TlsServerStream::handshake(
    std::unique_ptr<Stream> transport, std::shared_ptr<const TlsServerCredentials> credentials) {
  HandshakeResult<TlsServerStream> result;
  auto impl = std::make_unique<Impl>();
  impl->transport = std::move(transport);
  impl->creds = std::make_unique<ServerCredentials>(std::move(credentials));
  impl->rx.resize(kTlsReadSize);
  Impl& s = *impl;
  auto finish_error = [&] {
    result.error = s.error;
    result.detail = s.detail;
    s.transport->close();
    return std::move(result);
  };
  try {
    s.server = std::make_unique<Botan::TLS::Server>(s, s.sessions, *s.creds, s.policy, s.rng);
  } catch (const std::exception& e) {
    s.fail(errc::tls_handshake_failed, std::string("TLS server setup failed: ") + e.what());
    co_return finish_error();
  }
  bool first = true;
  while (true) {
    // Flush even after an error: it may be the alert that tells the client why.
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
    if (s.server->is_active()) break;
    Result<std::size_t> got = co_await s.transport->read_some(s.rx);
    if (!got) {
      s.fail(errc::tls_handshake_failed, got.error() == vtunnel::errc::eof
                                             ? "TLS handshake: the client closed the connection"
                                             : "TLS handshake: " + got.error().message());
      co_return finish_error();
    }
    if (first && *got > 0 && s.rx[0] != 0x16) {
      // Not a TLS handshake record: name the likely mistake instead of Botan's record error.
      const bool http = std::isalpha(s.rx[0]) != 0;
      s.fail(errc::tls_handshake_failed, http ? "not TLS: the client speaks plain HTTP to the TLS port (ws:// instead of wss://?)"
                                              : "not TLS: the first byte is not a TLS handshake record");
      co_return finish_error();
    }
    first = false;
    s.feed(ByteSpan(s.rx.data(), *got));
  }
  result.stream.reset(new TlsServerStream(std::move(impl)));
  co_return result;
}

std::string TlsServerStream::protocol_description() const { return impl_->negotiated; }

Task<Result<void>> TlsServerStream::flush_locked() {
  Impl& s = *impl_;
  while (!s.tx_pending.empty()) {
    std::swap(s.tx_sending, s.tx_pending);
    s.tx_pending.clear();
    Result<void> sent = co_await s.transport->write_all(ByteSpan(s.tx_sending));
    if (!sent) co_return sent;
  }
  co_return Result<void>{};
}

Task<void> TlsServerStream::flush_if_idle() {
  if (!write_lock_.try_lock()) co_return;  // the writer flushes before it unlocks
  Mutex::Guard guard(&write_lock_);
  Result<void> sent = co_await flush_locked();
  (void)sent;
}

Task<Result<std::size_t>> TlsServerStream::read_some(MutableByteSpan buf) {
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
    if (!got) co_return got.error();
    s.feed(ByteSpan(s.rx.data(), *got));
    if (!s.tx_pending.empty()) {
      co_await flush_if_idle();
    }
  }
}

Task<Result<void>> TlsServerStream::write_all(std::span<const ByteSpan> bufs) {
  Impl& s = *impl_;
  Result<Mutex::Guard> locked = co_await write_lock_.lock();
  if (!locked) co_return locked.error();
  Mutex::Guard guard = std::move(*locked);
  for (const ByteSpan& buf : bufs) {
    for (std::size_t pos = 0; pos < buf.size(); pos += kTlsWriteChunk) {
      if (s.error) co_return s.error;
      if (s.closed || !s.server->is_active()) co_return make_error_code(vtunnel::errc::closed);
      const std::size_t n = std::min(kTlsWriteChunk, buf.size() - pos);
      try {
        s.server->send(buf.data() + pos, n);
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

Task<Result<void>> TlsServerStream::shutdown_write() {
  Impl& s = *impl_;
  Result<Mutex::Guard> locked = co_await write_lock_.lock();
  if (!locked) co_return locked.error();
  Mutex::Guard guard = std::move(*locked);
  if (s.server->is_active()) {
    try {
      s.server->close();
    } catch (const std::exception&) {
      // already closing: nothing more to send
    }
  }
  Result<void> sent = co_await flush_locked();
  if (!sent) co_return sent;
  co_return co_await s.transport->shutdown_write();
}

void TlsServerStream::close() noexcept {
  if (impl_->closed) return;
  impl_->closed = true;
  impl_->transport->close();
}

}  // namespace vtunnel::ws
