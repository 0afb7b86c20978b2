#pragma once
// TlsClientStream: TLS client over any transport Stream (TCP), on Botan 2's TLS::Client, for
// wss:// URLs. Sends SNI, verifies the chain and the host name against the trusted CAs:
//   options.ca_file / options.ca_dir if given, else the files named by SSL_CERT_FILE /
//   SSL_CERT_DIR (as OpenSSL honours them) when set, else the system store.
// Botan 2 speaks TLS 1.2 at most; a server that insists on TLS 1.3 fails the handshake.
#include <memory>
#include <string>

#include "core/result.hpp"
#include "core/stream.hpp"
#include "core/task.hpp"
#include "core/sync.hpp"
#include "ws/handshake_result.hpp"

namespace vtunnel::ws {

struct TlsClientOptions {
  std::string server_name;  // SNI and the name the certificate must match
  std::uint16_t port = 443;
  std::string ca_file;      // PEM bundle of trusted CAs (overrides the environment)
  std::string ca_dir;       // directory of PEM CA certificates (overrides the environment)
};

class TlsClientStream final : public Stream {
 public:
  // Runs the TLS handshake over `transport`. On failure, detail says why (certificate
  // verification, alert from the server, version mismatch, ...).
  static Task<HandshakeResult<TlsClientStream>> handshake(std::unique_ptr<Stream> transport,
                                                          TlsClientOptions options);
  ~TlsClientStream() override;

  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override;
  using Stream::write_all;
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override;
  // Sends close_notify, then half-closes the transport.
  Task<Result<void>> shutdown_write() override;
  void close() noexcept override;

  // Negotiated version and cipher suite, e.g. "TLS v1.2 ECDHE_RSA_WITH_AES_128_GCM_SHA256".
  std::string protocol_description() const;

 private:
  struct Impl;
  explicit TlsClientStream(std::unique_ptr<Impl> impl);
  Task<Result<void>> flush_locked();
  Task<void> flush_if_idle();

  std::unique_ptr<Impl> impl_;
  Mutex write_lock_;  // as in WsStream: writers wait, the reader only try_lock()s
};

}  // namespace vtunnel::ws
