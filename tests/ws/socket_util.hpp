#pragma once
// Blocking loopback sockets for the interop tests (the runtime's TcpStream is not used here:
// these tests exercise the WebSocket and TLS code against real peers with the simplest I/O).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>

#include "ws/sync_streams.hpp"

namespace vtunnel::test {

inline void set_io_timeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// A connected socket, or -errno.
inline int try_connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    ::close(fd);
    return -e;
  }
  set_io_timeout(fd, 20);
  return fd;
}

inline int connect_loopback(std::uint16_t port) {
  const int fd = try_connect_loopback(port);
  if (fd < 0) throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed");
  return fd;
}

// A ws::Dialer for tests: "localhost" and "127.0.0.1" only, blocking.
inline Task<Result<std::unique_ptr<Stream>>> blocking_loopback_dial(std::string host, std::uint16_t port) {
  if (host != "localhost" && host != "127.0.0.1") co_return make_error_code(errc::resolve_failed);
  const int fd = try_connect_loopback(port);
  if (fd < 0) co_return from_errno(fd);
  co_return std::unique_ptr<Stream>(std::make_unique<BlockingFdStream>(fd));
}

// A listening socket on 127.0.0.1 with a kernel-chosen port.
struct LoopbackListener {
  int fd = -1;
  std::uint16_t port = 0;
  LoopbackListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 8) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("cannot listen on loopback");
    }
    port = ntohs(addr.sin_port);
    set_io_timeout(fd, 20);  // accept() gives up too
  }
  ~LoopbackListener() { ::close(fd); }
  int accept() const {
    const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) throw std::runtime_error("accept timed out");
    set_io_timeout(c, 20);
    return c;
  }
};

}  // namespace vtunnel::test
