// Pinned server identity (-host-key / -server-key), key files, fingerprints and reconnect
// backoff: Server and Client in one loop over loopback sockets.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "ssh/errc.hpp"
#include "support/tunnel_fixture.hpp"
#include "tunnel/backoff.hpp"
#include "tunnel/client.hpp"
#include "tunnel/errc.hpp"
#include "tunnel/server.hpp"

using namespace vtunnel;
using namespace vtunnel::test;
using namespace std::chrono_literals;

namespace {

// One server (client key `client_pub`, optional own host key) and one client attempt.
struct Outcome {
  bool connected = false;
  std::error_code error;
  std::size_t server_sessions = 0;
  std::size_t server_failed_handshakes = 0;
  std::error_code server_error;
  bool tunnel_ok = false;
};

Task<void> attempt(std::optional<PublicKey> client_pub, std::optional<PrivateKey> host_key,
                   std::optional<PrivateKey> client_priv, std::optional<PublicKey> pin, Outcome& out) {
  EchoBackend backend;
  ServerOptions so;
  so.client_key = client_pub;
  so.host_key = host_key;
  RunningServer server(so);
  ClientOptions co = client_options(client_priv);
  co.server_key = pin;
  co.backoff_min = 50ms;
  co.backoff_max = 100ms;
  Client client(server.url(), co);
  std::uint16_t tunnel_port = free_port();
  auto l = co_await client.listen(tunnel_port, backend.target());
  REQUIRE(l.ok());
  auto r = co_await client.connect();
  out.connected = r.ok();
  if (!r) {
    out.error = r.error();
    // The client keeps retrying with backoff; give it a few attempts.
    (void)co_await eventually([&] { return server.failed_handshakes() >= 3; }, 5s);
  } else {
    auto ready = co_await listening(server, tunnel_port);
    REQUIRE(ready);
    auto rt = co_await round_trip(tunnel_port, "identity");
    out.tunnel_ok = rt.ok() && *rt == "identity";
  }
  out.server_sessions = server.session_count();
  out.server_failed_handshakes = server.failed_handshakes();
  out.server_error = server.last_handshake_error();
  co_await client.close();
  co_await server.stop();
  co_await backend.stop();
}

std::string temp_path(const char* tag) {
  return std::string("/tmp/vt-identity-") + tag + "-" + std::to_string(::getpid());
}

}  // namespace

TEST_CASE("identity: fingerprint matches ssh-keygen -l", "[tunnel][identity]") {
  // `ssh-keygen -lf` of "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDzlPlryPFKO9s5Tb4ny/tVsvqe6F1iO8H47b3yNfSmx"
  auto pub = parse_public_key("vt-pub-M/iXsjuDZ/rzE7+7UpKCjayrpb298aXsjpnyc2LPtns");
  REQUIRE(pub.ok());
  PublicKey host = derive_host_key(*pub).public_key();
  REQUIRE(host_key_fingerprint(host) == "SHA256:1WfQUI9n7N5F2zyGO4Z4tzOJWibQK+0WfGKjiyqoapM");
  REQUIRE(fingerprint_sha256(ssh_ed25519_blob(host)) == host_key_fingerprint(host));
}

TEST_CASE("identity: key files", "[tunnel][identity]") {
  Keys k;
  std::string text = format_private_key(k.priv);
  std::string path = temp_path("key");
  auto write = [&](const std::string& content, mode_t mode) {
    std::remove(path.c_str());
    {
      std::ofstream f(path);
      f << content;
    }
    REQUIRE(::chmod(path.c_str(), mode) == 0);
  };
  write(text + "\n", 0600);
  auto ok = read_private_key_file(path);
  REQUIRE(ok.ok());
  REQUIRE(ok->public_key() == k.pub);
  write("  " + text + "\r\n\n", 0400);
  REQUIRE(read_private_key_file(path).ok());

  write(text + "\n", 0644);  // world-readable: refused, like OpenSSH
  auto loose = read_private_key_file(path);
  REQUIRE_FALSE(loose.ok());
  REQUIRE(loose.error() == make_error_code(tunnel_errc::key_file_permissions));
  write(text + "\n", 0660);
  REQUIRE(read_private_key_file(path).error() == make_error_code(tunnel_errc::key_file_permissions));

  write(format_public_key(k.pub) + "\n", 0600);  // a public key is not a host key
  REQUIRE(read_private_key_file(path).error() == make_error_code(tunnel_errc::key_file_format));
  write(text + "\n" + text + "\n", 0600);  // two keys
  REQUIRE_FALSE(read_private_key_file(path).ok());
  write("", 0600);
  REQUIRE(read_private_key_file(path).error() == make_error_code(tunnel_errc::key_file_format));
  write(std::string(4096, 'A'), 0600);
  REQUIRE(read_private_key_file(path).error() == make_error_code(tunnel_errc::key_file_format));
  std::remove(path.c_str());
  auto missing = read_private_key_file(path);
  REQUIRE(missing.error() == std::error_code(ENOENT, std::system_category()));
  REQUIRE(read_private_key_file("/tmp").error() == make_error_code(tunnel_errc::key_file_format));
}

TEST_CASE("identity: pinned server key", "[tunnel][identity]") {
  (void)generate_private_key();
  Keys client, host, other;
  Loop loop;

  SECTION("pin matches the server's own host key: connects") {
    Outcome o;
    sync_wait(loop, attempt(client.pub, host.priv, client.priv, host.pub, o));
    REQUIRE(o.connected);
    REQUIRE(o.tunnel_ok);
  }
  SECTION("pin mismatch: refused before authentication, retried with backoff") {
    Outcome o;
    sync_wait(loop, attempt(client.pub, host.priv, client.priv, other.pub, o));
    REQUIRE_FALSE(o.connected);
    REQUIRE(o.error == make_error_code(ssh::errc::host_key_mismatch));
    // The client holds the right key, so authenticating would have succeeded: no session means
    // it never tried. The server saw the client disconnect during key exchange, every attempt.
    REQUIRE(o.server_sessions == 0);
    REQUIRE(o.server_error == make_error_code(ssh::errc::disconnected_by_peer));
    REQUIRE(o.server_failed_handshakes >= 3);
  }
  SECTION("server with its own host key, client without a pin: refused (expects the derived key)") {
    Outcome o;
    sync_wait(loop, attempt(client.pub, host.priv, client.priv, std::nullopt, o));
    REQUIRE_FALSE(o.connected);
    REQUIRE(o.error == make_error_code(ssh::errc::host_key_mismatch));
    REQUIRE(o.server_sessions == 0);
    REQUIRE(o.server_error == make_error_code(ssh::errc::disconnected_by_peer));
  }
  SECTION("default derived key still works, also pinned explicitly") {
    Outcome o;
    sync_wait(loop, attempt(client.pub, std::nullopt, client.priv, std::nullopt, o));
    REQUIRE(o.connected);
    REQUIRE(o.tunnel_ok);
    Outcome pinned;
    sync_wait(loop, attempt(client.pub, std::nullopt, client.priv, derive_host_key(client.pub).public_key(), pinned));
    REQUIRE(pinned.connected);
    REQUIRE(pinned.tunnel_ok);
  }
  SECTION("the derived key is not accepted once a pin names another key") {
    Outcome o;
    sync_wait(loop, attempt(client.pub, std::nullopt, client.priv, host.pub, o));
    REQUIRE_FALSE(o.connected);
    REQUIRE(o.error == make_error_code(ssh::errc::host_key_mismatch));
    REQUIRE(o.server_sessions == 0);
  }
  SECTION("keyless server with a host key, keyless client pinning it") {
    Outcome o;
    sync_wait(loop, attempt(std::nullopt, host.priv, std::nullopt, host.pub, o));
    REQUIRE(o.connected);
    REQUIRE(o.tunnel_ok);
    Outcome wrong;
    sync_wait(loop, attempt(std::nullopt, host.priv, std::nullopt, other.pub, wrong));
    REQUIRE_FALSE(wrong.connected);
    REQUIRE(wrong.server_sessions == 0);
  }
}

TEST_CASE("backoff: exponential, jittered, bounded, never spinning", "[tunnel][backoff]") {
  using std::chrono::milliseconds;
  std::mt19937_64 rng(42);
  const Duration min = 200ms, max = 2s;
  Duration current = min;
  std::vector<Duration> delays;
  for (int i = 0; i < 200; ++i) delays.push_back(jittered_backoff(current, min, max, rng));
  for (auto d : delays) {
    REQUIRE(d >= min);
    REQUIRE(d <= max);
  }
  // Grows: 200, 400, 800, 1600 ms nominal (+ up to 25 %), then capped.
  REQUIRE(delays[0] < 260ms);
  REQUIRE(delays[1] >= 400ms);
  REQUIRE(delays[2] >= 800ms);
  REQUIRE(delays[3] >= 1600ms);
  // At the cap the delays still differ (else every client cut off together retries together)
  // and stay within [max - 25 %, max].
  std::set<long> distinct;
  for (std::size_t i = 5; i < delays.size(); ++i) {
    REQUIRE(delays[i] >= max - max / 4);
    distinct.insert(std::chrono::duration_cast<milliseconds>(delays[i]).count());
  }
  REQUIRE(distinct.size() > 50);
  // Two clients with different seeds do not march in step.
  std::mt19937_64 rng2(43);
  Duration c1 = min, c2 = min;
  int same = 0;
  for (int i = 0; i < 50; ++i) {
    if (jittered_backoff(c1, min, max, rng) == jittered_backoff(c2, min, max, rng2)) ++same;
  }
  REQUIRE(same < 10);
  // min == max: exactly that, no spinning below it.
  Duration c3 = 500ms;
  for (int i = 0; i < 10; ++i) REQUIRE(jittered_backoff(c3, 500ms, 500ms, rng) == 500ms);
  // A tiny or zero minimum never yields a zero delay once above it.
  Duration c4 = 1ms;
  for (int i = 0; i < 20; ++i) REQUIRE(jittered_backoff(c4, 1ms, 1s, rng) >= 1ms);
}
