#pragma once
// TlsClientStream: TLS client over any transport Stream (TCP), on Botan 2's TLS::Client, for
// wss:// URLs. Sends SNI, verifies the chain and the host name against the trusted CAs:
//   options.ca_file / options.ca_dir if given, else the files named by SSL_CERT_FILE /
//   SSL_CERT_DIR (as OpenSSL honours them) when set, else the system store.
// Botan 2 speaks TLS 1.2 at most; a server that insists on TLS 1.3 fails the handshake.
// Reading, writing and closing are TlsStream's (ws/tls_stream.hpp).
#include <memory>
#include <string>

#include "core/stream.hpp"
#include "core/task.hpp"
#include "ws/handshake_result.hpp"
#include "ws/tls_stream.hpp"

namespace vtunnel::ws {

struct TlsClientOptions {
  std::string server_name;  // SNI and the name the certificate must match
  std::uint16_t port = 443;
  std::string ca_file;      // PEM bundle of trusted CAs (overrides the environment)
  std::string ca_dir;       // directory of PEM CA certificates (overrides the environment)
};

class TlsClientStream final : public TlsStream {
 public:
  // Runs the TLS handshake over `transport`. On failure, detail says why (certificate
  // verification, alert from the server, version mismatch, ...).
  static Task<HandshakeResult<TlsClientStream>> handshake(std::unique_ptr<Stream> transport,
                                                          TlsClientOptions options);

 private:
  explicit TlsClientStream(std::unique_ptr<detail::TlsChannel> channel);
};

}  // namespace vtunnel::ws
