#include "ws/tls_server_stream.hpp"

#include <botan/pkix_types.h>  // before certstor.h: it uses X509_DN complete
#include <botan/credentials_manager.h>
#include <botan/data_src.h>
#include <botan/pkcs8.h>
#include <botan/tls_policy.h>
#include <botan/tls_server.h>
#include <botan/x509cert.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/log.hpp"
#include "ws/detail/tls_channel.hpp"
#include "ws/error.hpp"

namespace vtunnel::ws {

struct TlsServerCredentials::Impl {
  std::vector<Botan::X509_Certificate> chain;
  std::shared_ptr<Botan::Private_Key> key;  // Botan wants a mutable pointer; never modified
};

namespace {

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

namespace {

// The server's side of the channel: its credentials and policy, a clear word for a client that
// does not speak TLS.
struct ServerChannel final : detail::TlsChannel {
  ServerChannel(std::unique_ptr<Stream> transport_stream, std::shared_ptr<const TlsServerCredentials> credentials)
      : TlsChannel(std::move(transport_stream), "client"), creds(std::move(credentials)) {}
  ~ServerChannel() override { botan.reset(); }

  ServerCredentials creds;
  ServerPolicy policy;

  bool check_first_bytes(ByteSpan data) override {
    if (data.empty() || data[0] == 0x16) return true;
    // Not a TLS handshake record: name the likely mistake instead of Botan's record error.
    const bool http = std::isalpha(data[0]) != 0;
    fail(errc::tls_handshake_failed, http ? "not TLS: the client speaks plain HTTP to the TLS port (ws:// instead of wss://?)"
                                          : "not TLS: the first byte is not a TLS handshake record");
    return false;
  }
};

}  // namespace

TlsServerStream::TlsServerStream(std::unique_ptr<detail::TlsChannel> channel) : TlsStream(std::move(channel)) {}

Task<HandshakeResult<TlsServerStream>> TlsServerStream::handshake(
    std::unique_ptr<Stream> transport, std::shared_ptr<const TlsServerCredentials> credentials) {
  auto s = std::make_unique<ServerChannel>(std::move(transport), std::move(credentials));
  s->start("server", [&s] {
    return std::make_unique<Botan::TLS::Server>(*s, s->sessions, s->creds, s->policy, s->rng);
  });
  const bool ok = co_await s->handshake();
  auto result = s->outcome<TlsServerStream>();
  if (ok) result.stream.reset(new TlsServerStream(std::move(s)));
  co_return result;
}

}  // namespace vtunnel::ws
