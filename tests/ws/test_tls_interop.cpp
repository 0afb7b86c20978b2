// wss:// interop: our TLS client stream (Botan 2) + WebSocket client against Python
// websockets behind Python's ssl, with a CA made here by openssl and trusted via SSL_CERT_FILE.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>

#include "ws/error.hpp"
#include "ws/socket_util.hpp"
#include "ws/subprocess.hpp"
#include "ws/sync_streams.hpp"
#include "ws/tls_client_stream.hpp"
#include "ws/ws_connect.hpp"
#include "ws/ws_handshake.hpp"

using namespace vtunnel;
using namespace vtunnel::test;

namespace {

const std::string kPython = "/usr/bin/python3";
const std::string kScripts = std::string(VTUNNEL_SOURCE_DIR) + "/tests/ws/";

// The test PKI, made once per process in a temporary directory removed at exit.
struct TestPki {
  std::string dir;
  TestPki() {
    dir = (std::filesystem::temp_directory_path() / "vtunnel-ws-pki-XXXXXX").string();
    if (!::mkdtemp(dir.data())) throw std::runtime_error("mkdtemp failed");
    const std::string cmd = "sh " + kScripts + "make_test_certs.sh " + dir;
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("making test certificates failed");
  }
  ~TestPki() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

const std::string& pki_dir() {
  static const TestPki pki;
  return pki.dir;
}

struct TlsPythonServer {
  Subprocess process;
  std::uint16_t port = 0;
  TlsPythonServer(const std::string& cert, bool tls13_only = false)
      : process([&] {
          std::vector<std::string> argv{kPython, kScripts + "py_ws_server.py", "--cert", pki_dir() + "/" + cert + ".pem",
                                        "--key", pki_dir() + "/" + cert + ".key", "--timeout", "60"};
          if (tls13_only) argv.push_back("--tls13-only");
          return argv;
        }()) {
    const std::string ready = process.read_line();
    REQUIRE(ready.rfind("READY ", 0) == 0);
    port = static_cast<std::uint16_t>(std::stoi(ready.substr(6)));
  }
};

ws::HandshakeResult<ws::TlsClientStream> tls_connect(std::uint16_t port, const std::string& name,
                                                     ws::TlsClientOptions options = {}) {
  options.server_name = name;
  options.port = port;
  return run_sync(ws::TlsClientStream::handshake(std::make_unique<BlockingFdStream>(connect_loopback(port)), options));
}

struct TrustOnly {
  explicit TrustOnly(const std::string& file) {
    ::setenv("SSL_CERT_FILE", file.c_str(), 1);
    ::unsetenv("SSL_CERT_DIR");
  }
  ~TrustOnly() { ::unsetenv("SSL_CERT_FILE"); }
};

}  // namespace

TEST_CASE("wss: TLS 1.2 + WebSocket echo against python, CA from SSL_CERT_FILE", "[interop][tls]") {
  TrustOnly trust(pki_dir() + "/ca.pem");
  TlsPythonServer server("good");
  auto tls = tls_connect(server.port, "localhost");
  INFO(tls.message());
  REQUIRE(tls.ok());
  REQUIRE(tls.stream->protocol_description().rfind("TLS v1.2", 0) == 0);
  auto url = ws::parse_ws_url("wss://localhost:" + std::to_string(server.port) + "/echo");
  REQUIRE(url.ok());
  auto conn = run_sync(ws::client_handshake(std::move(tls.stream), *url));
  INFO(conn.message());
  REQUIRE(conn.ok());
  for (std::size_t size : {5u, 70000u, 2u * 1024 * 1024 + 3}) {
    Bytes data(size);
    for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<std::uint8_t>(i * 7 + size);
    REQUIRE(run_sync(conn.stream->write_all(data)).ok());
    Bytes back(size);
    std::size_t have = 0;
    while (have < size) {
      auto got = run_sync(conn.stream->read_some(MutableByteSpan(back).subspan(have)));
      REQUIRE(got.ok());
      have += *got;
    }
    REQUIRE(back == data);
  }
  REQUIRE(run_sync(conn.stream->close_handshake(1000, "done")).ok());
  REQUIRE(conn.stream->peer_close()->code == 1000);
  REQUIRE(server.process.wait() == 0);
}

TEST_CASE("wss: explicit ca_file works without the environment", "[interop][tls]") {
  ::unsetenv("SSL_CERT_FILE");
  TlsPythonServer server("good");
  ws::TlsClientOptions options;
  options.ca_file = pki_dir() + "/ca.pem";
  auto tls = tls_connect(server.port, "localhost", options);
  INFO(tls.message());
  REQUIRE(tls.ok());
}

TEST_CASE("wss: a certificate from an untrusted CA is refused", "[interop][tls]") {
  TrustOnly trust(pki_dir() + "/ca.pem");
  TlsPythonServer server("untrusted");
  auto tls = tls_connect(server.port, "localhost");
  REQUIRE_FALSE(tls.ok());
  REQUIRE(tls.error == ws::errc::tls_certificate_rejected);
  INFO(tls.message());
  REQUIRE(tls.message().find("certificate of localhost rejected") != std::string::npos);
}

TEST_CASE("wss: a certificate for another name is refused", "[interop][tls]") {
  TrustOnly trust(pki_dir() + "/ca.pem");
  TlsPythonServer server("wrong");
  auto tls = tls_connect(server.port, "localhost");
  REQUIRE_FALSE(tls.ok());
  REQUIRE(tls.error == ws::errc::tls_certificate_rejected);
  INFO(tls.message());
  REQUIRE(tls.message().find("certificate of localhost rejected") != std::string::npos);
}

TEST_CASE("wss: the system store does not trust the test CA", "[interop][tls]") {
  ::unsetenv("SSL_CERT_FILE");
  ::unsetenv("SSL_CERT_DIR");
  TlsPythonServer server("good");
  auto tls = tls_connect(server.port, "localhost");
  REQUIRE_FALSE(tls.ok());
  REQUIRE(tls.error == ws::errc::tls_certificate_rejected);
}

TEST_CASE("wss: a TLS 1.3-only server fails with a message that says TLS 1.2", "[interop][tls]") {
  TrustOnly trust(pki_dir() + "/ca.pem");
  TlsPythonServer server("good", /*tls13_only=*/true);
  auto tls = tls_connect(server.port, "localhost");
  REQUIRE_FALSE(tls.ok());
  REQUIRE(tls.error == ws::errc::tls_handshake_failed);
  INFO(tls.message());
  REQUIRE(tls.message().find("TLS 1.2") != std::string::npos);
}

TEST_CASE("wss: an unreadable SSL_CERT_FILE is a clear error", "[tls]") {
  TrustOnly trust("/nonexistent/ca.pem");
  ws::TlsClientOptions options;
  options.server_name = "localhost";
  auto tls = run_sync(ws::TlsClientStream::handshake(std::make_unique<ScriptedStream>(), options));
  REQUIRE(tls.error == ws::errc::tls_trust_store);
  REQUIRE(tls.message().find("/nonexistent/ca.pem") != std::string::npos);
}

TEST_CASE("connect(): wss:// URL end to end, and a refused certificate names the server", "[interop][tls][connect]") {
  TrustOnly trust(pki_dir() + "/ca.pem");
  ws::WsConnectOptions no_deadline;
  no_deadline.timeout = {};  // no Loop here: blocking sockets
  {
    TlsPythonServer server("good");
    auto conn = run_sync(ws::connect("wss://localhost:" + std::to_string(server.port) + "/echo", no_deadline,
                                     blocking_loopback_dial));
    INFO(conn.message());
    REQUIRE(conn.ok());
    REQUIRE(run_sync(conn.stream->write_all(as_bytes("over TLS"))).ok());
    Bytes back(8);
    std::size_t have = 0;
    while (have < back.size()) {
      auto got = run_sync(conn.stream->read_some(MutableByteSpan(back).subspan(have)));
      REQUIRE(got.ok());
      have += *got;
    }
    REQUIRE(as_string(back) == "over TLS");
    REQUIRE(run_sync(conn.stream->close_handshake()).ok());
  }
  {
    TlsPythonServer server("wrong");
    const std::string where = "localhost:" + std::to_string(server.port);
    auto conn = run_sync(ws::connect("wss://" + where + "/echo", no_deadline, blocking_loopback_dial));
    REQUIRE(conn.error == ws::errc::tls_certificate_rejected);
    INFO(conn.message());
    REQUIRE(conn.message().rfind(where + ": certificate of localhost rejected", 0) == 0);
  }
}

TEST_CASE("wss: an IP address URL verifies against the certificate's IP SAN", "[interop][tls]") {
  TrustOnly trust(pki_dir() + "/ca.pem");
  TlsPythonServer server("good");
  auto tls = tls_connect(server.port, "127.0.0.1");
  INFO(tls.message());
  REQUIRE(tls.ok());
}
