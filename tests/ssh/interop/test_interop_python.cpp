// Interop with asyncssh (an implementation no one here wrote): global requests whose reply data
// follows the message type directly, in both directions; ecdsa-sha2-nistp256 host keys; the
// keyless "none" mode; direct-tcpip through an asyncssh server; asyncssh-initiated rekeys.
#include <catch2/catch.hpp>

#include "echo_endpoints.hpp"
#include "interop_util.hpp"
#include "ssh/wire.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;
using namespace vtunnel::test;
using namespace vtunnel::test::interop;

namespace {
const std::string kPython = "/usr/bin/python3";
std::string script(const char* name) {
  return std::string(VTUNNEL_SOURCE_DIR) + "/tests/ssh/interop/" + name;
}
}  // namespace

TEST_CASE("interop: asyncssh client -> our server (ping/pong reply data, direct-tcpip, rekeys)") {
  fs::path dir = make_temp_dir("asyncssh-c");
  REQUIRE(run("ssh-keygen -q -t ed25519 -N '' -f " + (dir / "id").string()) == 0);
  auto host_key = ed25519_key(44);
  std::uint16_t port = 0;
  int lfd = listen_loopback(port);
  write_file(dir / "known_hosts",
             "[127.0.0.1]:" + std::to_string(port) + " " + blob_line(host_key->public_blob()) + "\n");
  int rc = -1;
  std::string cmd = kPython + " " + script("asyncssh_client.py") + " " + std::to_string(port) + " " +
                    (dir / "id").string() + " " + (dir / "known_hosts").string() + " > " +
                    (dir / "out.txt").string() + " 2>&1";
  std::thread client([&] { rc = run(cmd); });
  int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(lfd);
  REQUIRE(fd >= 0);
  Config c;
  c.role = Role::server;
  c.host_key = host_key;
  c.authorized_client_key = pub_file_blob(dir / "id.pub");
  // With our default 4 MiB window asyncssh (rekey_bytes=256k) was seen to rekey only once
  // during the 3 MiB echo (it can send it all in one burst); a 256 KiB window keeps its
  // traffic and its rekeys interleaved, which is what this test is about.
  c.channel_window = 256 * 1024;
  EchoingServer server(c);
  Driver driver(fd, server.conn);
  (void)driver.run([&](Event& e) { server.on_event(e); },
                   [&] {
                     server.push();
                     return server.disconnected.has_value();
                   },
                   std::chrono::seconds(120));
  client.join();
  INFO(read_file(dir / "out.txt"));
  REQUIRE(rc == 0);
  REQUIRE(read_file(dir / "out.txt") == "ok\n");
  REQUIRE(server.authenticated);
  REQUIRE(server.pings == 1);
  REQUIRE(server.kex_done > 2);  // asyncssh rekey_bytes=256k
  fs::remove_all(dir);
}

namespace {
struct AsyncsshServer {
  int out_fd = -1;
  std::unique_ptr<Child> child;
  Bytes host_blob;
  std::uint16_t port = 0;
  AsyncsshServer(const char* host_key_type, const std::string& authorized_keys_file) {
    child = std::make_unique<Child>(
        std::vector<std::string>{kPython, script("asyncssh_server.py"), host_key_type, authorized_keys_file},
        &out_fd);
    std::string key_b64 = read_line(out_fd);
    auto blob = Botan::base64_decode(key_b64);
    host_blob.assign(blob.begin(), blob.end());
    port = std::uint16_t(std::stoi(read_line(out_fd)));
  }
  ~AsyncsshServer() {
    child.reset();
    ::close(out_fd);
  }
};

void client_session(Config c, std::uint16_t port, std::size_t echo_bytes, std::uint16_t echo_port) {
  Connection conn(std::move(c));
  int fd = connect_loopback(port);
  REQUIRE(fd >= 0);
  Driver driver(fd, conn);
  bool authenticated = false;
  std::size_t kex_done = 0;
  std::vector<std::pair<bool, std::string>> replies;
  std::optional<std::uint32_t> confirmed;
  std::optional<event::Disconnected> disconnected;
  std::unique_ptr<EchoTransfer> xfer;
  auto on_event = [&](Event& e) {
    if (std::get_if<event::KexDone>(&e)) ++kex_done;
    else if (std::get_if<event::Authenticated>(&e)) authenticated = true;
    else if (auto* r = std::get_if<event::GlobalReply>(&e))
      replies.emplace_back(r->success, std::string(as_string(r->data)));
    else if (auto* g = std::get_if<event::GlobalRequest>(&e)) {
      if (g->want_reply) REQUIRE(conn.reply_global_request(false).ok());
    } else if (auto* oc = std::get_if<event::ChannelOpenConfirm>(&e)) confirmed = oc->channel;
    else if (auto* d = std::get_if<event::ChannelData>(&e)) xfer->on_data(d->data);
    else if (auto* cl = std::get_if<event::ChannelClose>(&e)) {
      if (xfer && cl->channel == xfer->ch) xfer->closed = true;
    } else if (auto* dc = std::get_if<event::Disconnected>(&e)) disconnected = *dc;
  };
  REQUIRE(driver.run(on_event, [&] { return authenticated || disconnected; }));
  if (disconnected) INFO(disconnected->message);
  REQUIRE_FALSE(disconnected);
  REQUIRE(conn.send_global_request("ping", {}, true).ok());
  REQUIRE(conn.send_global_request("no-such-request", {}, true).ok());
  REQUIRE(driver.run(on_event, [&] { return replies.size() == 2 || disconnected; }));
  REQUIRE(replies[0] == std::pair<bool, std::string>{true, "pong"});
  REQUIRE_FALSE(replies[1].first);

  Bytes extra;
  Writer(extra).string("127.0.0.1").u32(echo_port).string("127.0.0.1").u32(40000);
  auto id = conn.open_channel("direct-tcpip", extra);
  REQUIRE(id.ok());
  REQUIRE(driver.run(on_event, [&] { return confirmed.has_value() || disconnected; }));
  xfer = std::make_unique<EchoTransfer>(EchoTransfer{conn, *id, echo_bytes});
  REQUIRE(driver.run(on_event, [&] {
    if (disconnected) return true;
    xfer->push();
    return xfer->received == echo_bytes;
  }));
  if (disconnected) FAIL(disconnected->message);
  REQUIRE_FALSE(xfer->mismatch);
  REQUIRE(kex_done >= 2);  // the asyncssh server rekeys every 512k
  conn.disconnect();
  (void)driver.run(on_event, [] { return true; });
}
}  // namespace

TEST_CASE("interop: our client -> asyncssh server, ed25519 host key pinned, publickey auth") {
  fs::path dir = make_temp_dir("asyncssh-s");
  auto client_key = ed25519_key(55);
  write_file(dir / "authorized_keys", blob_line(client_key->public_blob()) + "\n");
  AsyncsshServer server("ed25519", (dir / "authorized_keys").string());
  EchoServer echo;
  Config c;
  c.role = Role::client;
  c.client_key = client_key;
  c.verify_host_key = accept_only_host_key(server.host_blob);
  client_session(std::move(c), server.port, 4 * 1024 * 1024, echo.port());
  fs::remove_all(dir);
}

TEST_CASE("interop: keyless client -> asyncssh server with an ecdsa-sha2-nistp256 host key, none auth") {
  AsyncsshServer server("ecdsa", "-");
  REQUIRE(*blob_algorithm(server.host_blob) == kEcdsaP256);
  EchoServer echo;
  Config c;
  c.role = Role::client;
  std::string seen_algorithm;
  c.verify_host_key = [&](std::string_view alg, ByteSpan) {
    seen_algorithm = std::string(alg);
    return true;
  };
  client_session(std::move(c), server.port, 3 * 1024 * 1024, echo.port());
  REQUIRE(seen_algorithm == "ecdsa-sha2-nistp256");
}
