// Interop against OpenSSH 9.x: our client -> sshd (direct-tcpip to an echo server, every
// cipher, sshd rekeying every megabyte), and `ssh -W` -> our server.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "../connection_pair.hpp"
#include "echo_endpoints.hpp"
#include "interop_util.hpp"
#include "sshd_fixture.hpp"
#include "ssh/wire.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;
using namespace vtunnel::test;
using namespace vtunnel::test::interop;

namespace {

std::size_t transfer_bytes() {
  const char* mib = std::getenv("VTUNNEL_INTEROP_MIB");
  return std::size_t(mib ? std::atoi(mib) : 64) * 1024 * 1024;
}

}  // namespace

TEST_CASE("interop: our client -> OpenSSH sshd, direct-tcpip echo, every cipher, sshd rekeys") {
  auto client_key = ed25519_key(21);
  Sshd sshd(*client_key);
  EchoServer echo;
  const std::size_t total = transfer_bytes();

  for (const auto& spec : supported_ciphers()) {
    INFO(spec.name);
    Config c;
    c.role = Role::client;
    c.user = "root";
    c.client_key = client_key;
    c.verify_host_key = accept_only_host_key(sshd.host_blob);
    c.ciphers = {std::string(spec.name)};
    Connection conn(c);
    int fd = connect_loopback(sshd.port);
    REQUIRE(fd >= 0);
    Driver driver(fd, conn);

    std::size_t kex_done = 0;
    bool authenticated = false;
    std::string negotiated;
    std::optional<std::uint32_t> confirmed;
    std::optional<event::Disconnected> disconnected;
    std::unique_ptr<EchoTransfer> xfer;
    auto on_event = [&](Event& e) {
      if (auto* k = std::get_if<event::KexDone>(&e)) {
        ++kex_done;
        negotiated = k->cipher_out;
      } else if (std::get_if<event::Authenticated>(&e)) {
        authenticated = true;
      } else if (auto* oc = std::get_if<event::ChannelOpenConfirm>(&e)) {
        confirmed = oc->channel;
      } else if (auto* d = std::get_if<event::ChannelData>(&e)) {
        xfer->on_data(d->data);
      } else if (auto* cl = std::get_if<event::ChannelClose>(&e)) {
        if (xfer && cl->channel == xfer->ch) xfer->closed = true;
      } else if (auto* dc = std::get_if<event::Disconnected>(&e)) {
        disconnected = *dc;
      }
    };
    REQUIRE(driver.run(on_event, [&] { return authenticated || disconnected; }));
    REQUIRE_FALSE(disconnected);
    REQUIRE(negotiated == spec.name);
    // Host key was pinned; the session is strict-kex if this sshd has the Terrapin fix.
    WARN("sshd " << conn.peer_version() << ", strict kex: " << (conn.strict_kex() ? "yes" : "no"));

    Bytes extra;
    Writer(extra).string("127.0.0.1").u32(echo.port()).string("127.0.0.1").u32(40000);
    auto id = conn.open_channel("direct-tcpip", extra);
    REQUIRE(id.ok());
    REQUIRE(driver.run(on_event, [&] { return confirmed.has_value() || disconnected; }));
    REQUIRE(confirmed == *id);

    xfer = std::make_unique<EchoTransfer>(EchoTransfer{conn, *id, total});
    const auto start = std::chrono::steady_clock::now();
    bool ok = driver.run(on_event, [&] {
      if (disconnected) return true;
      xfer->push();
      return xfer->closed;
    });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    WARN(spec.name << ": " << (2.0 * double(total) / 1048576.0 / secs) << " MiB/s (both directions), "
                   << kex_done << " key exchanges");
    REQUIRE(ok);
    REQUIRE_FALSE(disconnected);
    REQUIRE(xfer->sent == total);
    REQUIRE(xfer->received == total);
    REQUIRE_FALSE(xfer->mismatch);
    if (total >= 4 * 1024 * 1024) REQUIRE(kex_done > 2);  // sshd's RekeyLimit 1M kicked in
    conn.disconnect();
    (void)driver.run(on_event, [] { return true; });
  }
}


TEST_CASE("interop: OpenSSH ssh -W -> our server, every cipher, ssh rekeys every megabyte") {
  fs::path dir = make_temp_dir("ssh-w");
  REQUIRE(run("ssh-keygen -q -t ed25519 -N '' -f " + (dir / "id").string()) == 0);
  auto host_key = ed25519_key(33);
  const std::size_t total = std::min<std::size_t>(transfer_bytes(), 16 * 1024 * 1024);
  {
    std::ofstream in(dir / "in.bin", std::ios::binary);
    for (std::size_t at = 0; at < total;) {
      std::size_t n = std::min(total - at, cycle().size());
      in.write(reinterpret_cast<const char*>(cycle().data()), std::streamsize(n));
      at += n;
    }
  }
  for (const auto& spec : supported_ciphers()) {
    INFO(spec.name);
    std::uint16_t port = 0;
    int lfd = listen_loopback(port);
    write_file(dir / "known_hosts",
               "[127.0.0.1]:" + std::to_string(port) + " " + blob_line(host_key->public_blob()) + "\n");
    std::string cmd = "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" +
                      (dir / "known_hosts").string() + " -o IdentitiesOnly=yes -i " + (dir / "id").string() +
                      " -o Ciphers=" + std::string(spec.name) + " -o RekeyLimit=1M -p " + std::to_string(port) +
                      " -l vtunnel -W 127.0.0.1:9 127.0.0.1 < " + (dir / "in.bin").string() + " > " +
                      (dir / "out.bin").string() + " 2> " + (dir / "err.txt").string();
    int rc = -1;
    std::thread ssh([&] { rc = run(cmd); });

    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(lfd);
    REQUIRE(fd >= 0);
    Config c;
    c.role = Role::server;
    c.host_key = host_key;
    c.authorized_client_key = pub_file_blob(dir / "id.pub");
    EchoingServer server(c);
    Driver driver(fd, server.conn);
    // ssh may drop the connection right after our CHANNEL_CLOSE instead of answering it.
    (void)driver.run([&](Event& e) { server.on_event(e); },
                         [&] {
                           server.push();
                           return server.closed_channels > 0 || server.disconnected.has_value();
                         });
    // ssh exits once its only channel is closed; then it closes the connection.
    (void)driver.run([&](Event& e) { server.on_event(e); }, [] { return false; }, std::chrono::seconds(20));
    ssh.join();
    INFO(read_file(dir / "err.txt"));
    if (server.disconnected) INFO(server.disconnected->message);
    REQUIRE_FALSE(server.disconnected);
    REQUIRE(server.eofs == 1);
    REQUIRE(rc == 0);
    REQUIRE(server.authenticated);
    REQUIRE(server.kex_done > 2);  // the client's RekeyLimit kicked in
    REQUIRE(read_file(dir / "out.bin") == read_file(dir / "in.bin"));
  }
  fs::remove_all(dir);
}
