// Interop with golang.org/x/crypto/ssh, the library the Go original is built on (Debian's
// 0.4.0: no strict kex, no aes256-gcm): our client -> Go server and Go client -> our server,
// with the vtunnel wire conventions (ping/pong reply data, "tunnel" channels opened by the
// server, failure text after the message type) and Go rekeying every 512 KiB.
#include <catch2/catch.hpp>

#include <botan/hex.h>

#include "echo_endpoints.hpp"
#include "interop_util.hpp"
#include "ssh/wire.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;
using namespace vtunnel::test;
using namespace vtunnel::test::interop;

namespace {

const char* const kGoCiphers[] = {"aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr",
                                  "aes256-ctr"};

// Builds the Go peer once; empty if no Go toolchain is installed.
std::string go_peer() {
  static const std::string path = [] {
    std::string bin = std::string(VTUNNEL_BINARY_DIR) + "/go_peer";
    std::string src = std::string(VTUNNEL_SOURCE_DIR) + "/tests/ssh/interop/go/go_peer.go";
    std::string cmd = "GOCACHE=" + std::string(VTUNNEL_BINARY_DIR) +
                      "/gocache GOPATH=/usr/share/gocode GO111MODULE=off go build -o " + bin + " " + src;
    return run(cmd) == 0 ? bin : std::string();
  }();
  return path;
}

std::string mib() {
  const char* m = std::getenv("VTUNNEL_INTEROP_MIB");
  return std::to_string(std::min(m ? std::atoi(m) : 64, 16));
}

}  // namespace

TEST_CASE("interop: our client -> Go x/crypto/ssh server") {
  if (go_peer().empty()) {
    WARN("go toolchain not available: skipped");
    return;
  }
  for (bool keyless : {false, true}) {
    for (const char* cipher : kGoCiphers) {
      INFO(cipher << (keyless ? " keyless" : " keyed"));
      auto client_key = ed25519_key(66);
      std::string blob_b64 =
          Botan::base64_encode(client_key->public_blob().data(), client_key->public_blob().size());
      int out = -1;
      Child go({go_peer(), "server", cipher, mib(), keyless ? "-" : blob_b64}, &out);
      auto host_blob_v = Botan::base64_decode(read_line(out));
      Bytes host_blob(host_blob_v.begin(), host_blob_v.end());
      std::uint16_t port = std::uint16_t(std::stoi(read_line(out)));

      Config c;
      c.role = Role::client;
      if (!keyless) {
        c.client_key = client_key;
        c.verify_host_key = accept_only_host_key(host_blob);
      } else {
        c.verify_host_key = accept_any_host_key();
      }
      c.ciphers = {cipher};
      EchoingServer peer(c);  // our client: answers pings, echoes the server's tunnel channel
      peer.accepted_types = {"tunnel"};
      int fd = connect_loopback(port);
      REQUIRE(fd >= 0);
      Driver driver(fd, peer.conn);
      bool asked = false;
      (void)driver.run([&](Event& e) { peer.on_event(e); },
                       [&] {
                         if (peer.authenticated && !asked) {
                           asked = true;
                           REQUIRE(peer.conn.send_global_request("ping", {}, true).ok());
                           REQUIRE(peer.conn.send_global_request("listen", as_bytes(R"({"port":1})"), true).ok());
                           REQUIRE(peer.conn.open_channel("direct-tcpip").ok());
                         }
                         peer.push();
                         return peer.disconnected.has_value();
                       });
      std::string verdict = read_line(out);
      ::close(out);
      REQUIRE(verdict == "ok");
      REQUIRE(peer.authenticated);
      REQUIRE(peer.pings == 1);  // Go's keepalive-style ping got "pong"
      REQUIRE(peer.replies.size() == 2);
      REQUIRE(peer.replies[0] == std::pair<bool, std::string>{true, "pong"});
      REQUIRE(peer.replies[1] == std::pair<bool, std::string>{false, "unknown request"});
      REQUIRE(peer.open_failures.size() == 1);
      REQUIRE(peer.open_failures[0].reason == 1);
      REQUIRE(peer.open_failures[0].message == "server refuses client channels");
      REQUIRE(peer.open_extras == std::vector<std::string>{R"({"port":8080})"});
      REQUIRE(peer.eofs == 1);  // (Go closes the socket right after CHANNEL_CLOSE: see below)
      REQUIRE(peer.kex_done > 2);  // Go rekeyed every 512 KiB
      // Go closes the TCP connection without a DISCONNECT message.
      REQUIRE((driver.eof() || peer.disconnected));
      if (peer.disconnected) REQUIRE(peer.disconnected->error == errc::disconnected_by_peer);
    }
  }
}

TEST_CASE("interop: Go x/crypto/ssh client -> our server") {
  if (go_peer().empty()) {
    WARN("go toolchain not available: skipped");
    return;
  }
  for (const char* cipher : kGoCiphers) {
    INFO(cipher);
    Bytes seed(32, 0x42);
    auto client_key = std::make_shared<const SigningKey>(std::move(*SigningKey::ed25519_from_seed(seed)));
    auto host_key = ed25519_key(77);
    std::uint16_t port = 0;
    int lfd = listen_loopback(port);
    std::string host_b64 = Botan::base64_encode(host_key->public_blob().data(), host_key->public_blob().size());
    int out = -1;
    Child go({go_peer(), "client", cipher, mib(), std::to_string(port), Botan::hex_encode(seed), host_b64}, &out);
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(lfd);
    REQUIRE(fd >= 0);
    Config c;
    c.role = Role::server;
    c.host_key = host_key;
    c.authorized_client_key = client_key->public_blob();
    EchoingServer server(c);
    Driver driver(fd, server.conn);
    bool pinged = false;
    (void)driver.run([&](Event& e) { server.on_event(e); },
                     [&] {
                       if (server.authenticated && !pinged) {
                         pinged = true;  // the server's keepalive ping
                         REQUIRE(server.conn.send_global_request("ping", {}, true).ok());
                       }
                       server.push();
                       return server.disconnected.has_value();
                     });
    std::string verdict = read_line(out);
    ::close(out);
    REQUIRE(verdict == "ok");
    REQUIRE(server.authenticated);
    REQUIRE(server.pings == 1);
    REQUIRE(server.replies == std::vector<std::pair<bool, std::string>>{{true, "pong"}});
    // Go's client closes the socket right after its CHANNEL_CLOSE; if our last packets are still
    // unread on its side the kernel resets the connection and that CLOSE may be lost here, so
    // only the EOF is required (the echo itself was verified by the Go side).
    REQUIRE(server.eofs == 1);
    REQUIRE(server.kex_done > 2);
    if (server.disconnected) REQUIRE(server.disconnected->error == errc::disconnected_by_peer);
  }
}
