#pragma once
// A throwaway OpenSSH sshd on loopback: fresh ed25519 host key, one authorized key, forwarding
// allowed, RekeyLimit 1M (so it rekeys in the middle of transfers), every cipher we implement.
#include <catch2/catch.hpp>

#include "interop_util.hpp"
#include "ssh/host_key.hpp"

namespace vtunnel::test::interop {

struct Sshd {
  fs::path dir = make_temp_dir("sshd");
  std::uint16_t port = free_port();
  std::unique_ptr<Child> child;
  Bytes host_blob;

  explicit Sshd(const SigningKey& client_key) {
    REQUIRE(run("ssh-keygen -q -t ed25519 -N '' -f " + (dir / "host_ed25519").string()) == 0);
    host_blob = pub_file_blob(dir / "host_ed25519.pub");
    write_file(dir / "authorized_keys", blob_line(client_key.public_blob()) + "\n");
    std::string cfg = "Port " + std::to_string(port) +
                      "\nListenAddress 127.0.0.1\n"
                      "HostKey " + (dir / "host_ed25519").string() +
                      "\nAuthorizedKeysFile " + (dir / "authorized_keys").string() +
                      "\nPidFile " + (dir / "sshd.pid").string() +
                      "\nStrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\n"
                      "KbdInteractiveAuthentication no\nUsePAM no\nAllowTcpForwarding yes\n" +
                      std::string(std::getenv("VTUNNEL_SSHD_NO_REKEY") ? "" : "RekeyLimit 1M\n") +
                      "LogLevel ERROR\n"
                      "Ciphers aes128-gcm@openssh.com,aes256-gcm@openssh.com,"
                      "chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr\n";
    write_file(dir / "sshd_config", cfg);
    child = std::make_unique<Child>(std::vector<std::string>{
        "/usr/sbin/sshd", "-D", "-e", "-f", (dir / "sshd_config").string()});
    int fd = connect_loopback(port);
    REQUIRE(fd >= 0);
    ::close(fd);
  }
  ~Sshd() {
    child.reset();
    fs::remove_all(dir);
  }
};


}  // namespace vtunnel::test::interop
