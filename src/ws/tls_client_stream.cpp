#include "ws/tls_client_stream.hpp"

#include <botan/pkix_types.h>  // before certstor.h: it uses X509_DN complete
#include <botan/certstor.h>
#include <botan/certstor_flatfile.h>
#include <botan/certstor_system.h>
#include <botan/credentials_manager.h>
#include <botan/tls_client.h>
#include <botan/tls_policy.h>

#include <cstdlib>

#include "core/log.hpp"
#include "ws/detail/tls_channel.hpp"
#include "ws/error.hpp"

namespace vtunnel::ws {
namespace {

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

// The client's side of the channel: trusted CAs, certificate verification, its wording.
struct ClientChannel final : detail::TlsChannel {
  ClientChannel(std::unique_ptr<Stream> transport_stream, TlsClientOptions opts)
      : TlsChannel(std::move(transport_stream), "server"), options(std::move(opts)) {
    eof_hint = " (does it speak TLS 1.2? Botan 2 has no TLS 1.3)";
  }
  ~ClientChannel() override { botan.reset(); }

  TlsClientOptions options;
  TrustedCas cas;
  ClientPolicy policy;

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

  // Botan's TLS errors name the likely cause during the handshake; anything else is "TLS: ...".
  void fail_received(const std::exception& e, bool tls_exception) override {
    const bool in_handshake = !botan->is_active();
    if (!tls_exception) {
      fail(in_handshake ? errc::tls_handshake_failed : errc::tls_error, std::string("TLS: ") + e.what());
    } else if (in_handshake) {
      fail(errc::tls_handshake_failed,
           std::string("TLS handshake failed: ") + e.what() + " (Botan 2 speaks TLS 1.2 at most)");
    } else {
      TlsChannel::fail_received(e, tls_exception);
    }
  }

  bool load_trust() {
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
      return false;
    }
    return true;
  }
};

}  // namespace

TlsClientStream::TlsClientStream(std::unique_ptr<detail::TlsChannel> channel) : TlsStream(std::move(channel)) {}

Task<HandshakeResult<TlsClientStream>> TlsClientStream::handshake(std::unique_ptr<Stream> transport,
                                                                  TlsClientOptions options) {
  auto s = std::make_unique<ClientChannel>(std::move(transport), std::move(options));
  if (s->load_trust()) {
    s->start("client", [&s] {
      return std::make_unique<Botan::TLS::Client>(
          *s, s->sessions, s->cas, s->policy, s->rng,
          Botan::TLS::Server_Information(s->options.server_name, s->options.port),
          Botan::TLS::Protocol_Version::latest_tls_version());
    });
  }
  const bool ok = co_await s->handshake();
  auto result = s->outcome<TlsClientStream>();
  if (ok) result.stream.reset(new TlsClientStream(std::move(s)));
  co_return result;
}

}  // namespace vtunnel::ws
