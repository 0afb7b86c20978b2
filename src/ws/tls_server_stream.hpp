#pragma once
// TlsServerStream: TLS server over any transport Stream (TCP), on Botan 2's TLS::Server, so
// the vtunnel server speaks wss:// itself. TLS 1.2 (Botan 2 has no 1.3), ECDHE key exchange
// and AEAD cipher suites only (AES-GCM, ChaCha20-Poly1305); no session resumption.
//
// TlsServerCredentials is an immutable certificate chain + key loaded from PEM files. Every
// handshake takes a shared_ptr to the credentials current at accept time, so replacing them
// (SIGHUP reload) affects new connections only.
// Reading, writing and closing are TlsStream's (ws/tls_stream.hpp).
#include <memory>
#include <string>

#include "core/result.hpp"
#include "core/stream.hpp"
#include "core/task.hpp"
#include "ws/handshake_result.hpp"
#include "ws/tls_stream.hpp"

namespace vtunnel::ws {

class TlsServerCredentials {
 public:
  // cert_file: PEM, the server certificate first, then any intermediates. key_file: PEM
  // PKCS#8 private key (ECDSA or RSA), unencrypted. On failure, errc::tls_credentials and
  // *detail says why (missing file, no certificate, key does not match, ...).
  static Result<std::shared_ptr<const TlsServerCredentials>> load(const std::string& cert_file,
                                                                  const std::string& key_file, std::string* detail);
  ~TlsServerCredentials();

  // "CN=... (SHA-256 AB:CD:..., valid until ...)": for logs.
  std::string description() const;

  struct Impl;
  const Impl& impl() const noexcept { return *impl_; }

 private:
  explicit TlsServerCredentials(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class TlsServerStream final : public TlsStream {
 public:
  // Runs the server side of the TLS handshake over `transport`. On failure (not TLS, no
  // common cipher suite, the client's alert, EOF) the transport is closed and detail says why.
  // The deadline is the caller's.
  static Task<HandshakeResult<TlsServerStream>> handshake(std::unique_ptr<Stream> transport,
                                                          std::shared_ptr<const TlsServerCredentials> credentials);

 private:
  explicit TlsServerStream(std::unique_ptr<detail::TlsChannel> channel);
};

}  // namespace vtunnel::ws
