// The coroutine adapter (ssh::Session over TcpStream on the io_uring loop) against OpenSSH:
// our client -> sshd (direct-tcpip echo, 64 MiB each way per cipher, sshd rekeying every MiB)
// and `ssh -W` -> our server.
#include <catch2/catch.hpp>

#include "../session_patterns.hpp"
#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "interop_util.hpp"
#include "ssh/session.hpp"
#include "ssh/wire.hpp"
#include "sshd_fixture.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;
using namespace vtunnel::test;
using namespace vtunnel::test::interop;

namespace {

std::size_t transfer_bytes() {
  const char* mib = std::getenv("VTUNNEL_INTEROP_MIB");
  return std::size_t(mib ? std::atoi(mib) : 64) * 1024 * 1024;
}

struct ClientResult {
  std::size_t echoed = 0;
  std::size_t key_exchanges = 0;
  double seconds = 0;
};

Task<void> client_via_sshd(std::uint16_t port, Config config, std::uint16_t echo_port, std::size_t total,
                           ClientResult* result) {
  Result<TcpStream> stream = co_await TcpStream::connect(SocketAddress::loopback_v4(port));
  REQUIRE(stream.ok());
  auto s = co_await Session::client_handshake(*stream, std::move(config));
  if (!s) FAIL("handshake: " << s.error().message());
  Session& session = **s;
  Bytes extra;
  Writer(extra).string("127.0.0.1").u32(echo_port).string("127.0.0.1").u32(40000);
  Result<ssh::Channel> ch = co_await session.open_channel("direct-tcpip", std::move(extra));
  REQUIRE(ch.ok());
  const auto start = std::chrono::steady_clock::now();
  Scope writer;
  writer.spawn(write_pattern(*ch, total));
  result->echoed = co_await read_pattern(*ch);
  co_await writer.join();
  result->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result->key_exchanges = session.key_exchanges();
  ch->close();
  co_await session.close();
}

}  // namespace

TEST_CASE("interop: ssh::Session client -> OpenSSH sshd, direct-tcpip echo, every cipher, sshd rekeys") {
  auto client_key = ed25519_key(23);
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
    Loop loop;
    ClientResult r;
    sync_wait(loop, client_via_sshd(sshd.port, std::move(c), echo.port(), total, &r));
    WARN("Session " << spec.name << ": " << (2.0 * double(total) / 1048576.0 / r.seconds)
                    << " MiB/s (both directions), " << r.key_exchanges << " key exchanges");
    REQUIRE(r.echoed == total);
    if (total >= 4 * 1024 * 1024) REQUIRE(r.key_exchanges > 2);
  }
}

namespace {
Task<void> serve_one(TcpListener* listener, Config config, std::size_t* channels) {
  Result<TcpStream> conn = co_await listener->accept();
  REQUIRE(conn.ok());
  TcpStream stream = std::move(*conn);
  auto s = co_await Session::server_handshake(stream, std::move(config));
  if (!s) FAIL("handshake: " << s.error().message());
  Session& session = **s;
  Scope echoes;
  for (;;) {
    Result<IncomingChannel> in = co_await session.next_channel();
    if (!in) break;
    Result<ssh::Channel> ch = session.accept(*in);
    REQUIRE(ch.ok());
    ++*channels;
    echoes.spawn(echo(*ch));
  }
  co_await echoes.join();
  co_await session.close();
}
}  // namespace

TEST_CASE("interop: OpenSSH ssh -W -> ssh::Session server") {
  fs::path dir = make_temp_dir("session-w");
  REQUIRE(run("ssh-keygen -q -t ed25519 -N '' -f " + (dir / "id").string()) == 0);
  auto host_key = ed25519_key(34);
  const std::size_t total = std::min<std::size_t>(transfer_bytes(), 16 * 1024 * 1024);
  {
    std::ofstream in(dir / "in.bin", std::ios::binary);
    Bytes data = pattern(total, 5);
    in.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
  }
  for (const char* cipher : {"aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"}) {
    INFO(cipher);
    Loop loop;
    auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
    REQUIRE(l.ok());
    TcpListener listener = std::move(*l);
    std::uint16_t port = listener.port();
    write_file(dir / "known_hosts",
               "[127.0.0.1]:" + std::to_string(port) + " " + blob_line(host_key->public_blob()) + "\n");
    std::string cmd = "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" +
                      (dir / "known_hosts").string() + " -o IdentitiesOnly=yes -i " + (dir / "id").string() +
                      " -o Ciphers=" + cipher + " -o RekeyLimit=1M -p " + std::to_string(port) +
                      " -l vtunnel -W 127.0.0.1:9 127.0.0.1 < " + (dir / "in.bin").string() + " > " +
                      (dir / "out.bin").string() + " 2> " + (dir / "err.txt").string();
    int rc = -1;
    std::thread ssh([&] { rc = run(cmd); });
    Config c;
    c.role = Role::server;
    c.host_key = host_key;
    c.authorized_client_key = pub_file_blob(dir / "id.pub");
    std::size_t channels = 0;
    sync_wait(loop, serve_one(&listener, std::move(c), &channels));
    ssh.join();
    INFO(read_file(dir / "err.txt"));
    REQUIRE(rc == 0);
    REQUIRE(channels == 1);
    REQUIRE(read_file(dir / "out.bin") == read_file(dir / "in.bin"));
  }
  fs::remove_all(dir);
}
