#pragma once
// Test-only plumbing for interop tests: loopback sockets, child processes, and a small
// poll()-based driver that moves bytes between a socket and an ssh::Connection. (The product's
// coroutine adapter lives in src/ssh; these tests exercise the sans-I/O core against real peers.)
#include <arpa/inet.h>
#include <botan/base64.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "ssh/connection.hpp"

namespace vtunnel::test::interop {

namespace fs = std::filesystem;
using namespace vtunnel::ssh;

inline fs::path make_temp_dir(const char* tag) {
  std::string templ = (fs::temp_directory_path() / (std::string("vtunnel-") + tag + "-XXXXXX")).string();
  REQUIRE(mkdtemp(templ.data()) != nullptr);
  return templ;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline void write_file(const fs::path& p, std::string_view content) {
  std::ofstream f(p, std::ios::binary);
  f << content;
}

inline int run(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The blob of an OpenSSH ".pub" line ("type base64 comment").
inline Bytes pub_file_blob(const fs::path& p) {
  std::istringstream in(read_file(p));
  std::string type, b64;
  in >> type >> b64;
  auto v = Botan::base64_decode(b64);
  return Bytes(v.begin(), v.end());
}

inline std::string blob_line(ByteSpan blob) {
  auto alg = blob_algorithm(blob);
  return std::string(alg.ok() ? *alg : "unknown") + " " + Botan::base64_encode(blob.data(), blob.size());
}

inline int listen_loopback(std::uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

inline std::uint16_t free_port() {
  std::uint16_t port = 0;
  int fd = listen_loopback(port);
  ::close(fd);
  return port;
}

inline int connect_loopback(std::uint16_t port, int attempts = 100) {
  for (int i = 0; i < attempts; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

// A child process started with execv; killed (by its pid) and reaped on destruction.
class Child {
 public:
  // With stdout_fd, the child's stdout is a pipe whose read end is stored there.
  explicit Child(std::vector<std::string> argv, int* stdout_fd = nullptr) {
    int pipe_fds[2] = {-1, -1};
    if (stdout_fd) REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      if (stdout_fd) ::dup2(pipe_fds[1], 1);
      std::vector<char*> args;
      for (auto& s : argv) args.push_back(s.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    if (stdout_fd) {
      ::close(pipe_fds[1]);
      *stdout_fd = pipe_fds[0];
    }
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

 private:
  pid_t pid_ = -1;
};

// One line from a blocking fd (without the newline).
inline std::string read_line(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

// TCP echo server on loopback, one thread per connection, for as long as the object lives.
class EchoServer {
 public:
  EchoServer() {
    fd_ = listen_loopback(port_);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::thread([c] {
          std::vector<char> buf(256 * 1024);
          for (;;) {
            ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
            if (n <= 0) break;
            for (ssize_t at = 0; at < n;) {
              ssize_t w = ::send(c, buf.data() + at, std::size_t(n - at), MSG_NOSIGNAL);
              if (w <= 0) { ::close(c); return; }
              at += w;
            }
          }
          ::shutdown(c, SHUT_WR);
          ::close(c);
        }).detach();
      }
    });
  }
  ~EchoServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// Moves bytes between a non-blocking socket and a Connection until `done()` or a deadline.
class Driver {
 public:
  Driver(int fd, Connection& conn) : fd_(fd), conn_(conn) {
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~Driver() { ::close(fd_); }

  // on_event is called for every event; returns when done() or the peer/connection closes.
  bool run(const std::function<void(ssh::Event&)>& on_event, const std::function<bool()>& done,
           std::chrono::seconds timeout = std::chrono::seconds(120)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      while (auto e = conn_.poll()) on_event(*e);
      if (done()) return flush_all();
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (!pending_ && conn_.has_output()) {
        pending_ = conn_.take_output();
        sent_ = 0;
      }
      pollfd p{fd_, POLLIN, 0};
      if (pending_) p.events |= POLLOUT;
      if (conn_.closed() && !pending_) return false;
      ::poll(&p, 1, 100);
      if (p.revents & POLLOUT) write_some();
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        auto room = conn_.input_buffer(256 * 1024);
        ssize_t n = ::recv(fd_, room.data(), room.size(), 0);
        if (n > 0) conn_.commit_input(std::size_t(n));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          eof_ = true;  // orderly close or reset
          while (auto e = conn_.poll()) on_event(*e);
          return done();
        }
      }
    }
  }
  bool eof() const { return eof_; }

 private:
  void write_some() {
    ByteSpan d = pending_->data().subspan(sent_);
    ssize_t n = ::send(fd_, d.data(), d.size(), MSG_NOSIGNAL);
    if (n > 0) sent_ += std::size_t(n);
    if (sent_ == pending_->data().size()) {
      conn_.recycle(std::move(pending_->storage));
      pending_.reset();
    }
  }
  bool flush_all() {
    for (int i = 0; i < 1000; ++i) {
      if (!pending_ && conn_.has_output()) {
        pending_ = conn_.take_output();
        sent_ = 0;
      }
      if (!pending_) return true;
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, 100);
      write_some();
    }
    return false;
  }
  int fd_;
  Connection& conn_;
  std::optional<OutputBuffer> pending_;
  std::size_t sent_ = 0;
  bool eof_ = false;
};

}  // namespace vtunnel::test::interop
