// vtunnel-bench: throughput, round trips and connection rate through a whole tunnel
// (user -> server's tunnel port -> SSH over WebSocket -> client -> backend), like the Go
// original's benchmark, for ours in-process and for any pair of CLI-compatible binaries.
//
//   vtunnel-bench [scenarios] [-size 512M] [-c N] [-seconds S] [-resp BYTES] [-repeat N [-interleave]] [--json FILE]
//                 [--inproc] [--ours-bin PATH] [--compare-go VTPEER] [--compare-openssh]
//                 [--compare-socat [PATH]] [--compare-ceiling [PATH]]
//                 [--server-bin PATH --client-bin PATH [--server-args-style vtunnel|vtpeer] [--name N]]
//   scenarios (comma-separated or separate words): upload download both parallel parallel-down
//             rr rr-64k connect idle (default: upload download both parallel rr connect)
//
// The load generator and the backend are plain blocking sockets in threads (independent of the
// implementation under test). Every stream carries a known pseudo-random pattern: the backend
// checks what it receives (count and content) and reports its count back; the user side checks
// what it downloads. Any mismatch, stall (socket timeout) or dead child fails the run (exit 1).
//
// CPU: in-process, the server's and the client's threads (CLOCK_THREAD_CPUTIME_ID); black-box,
// each child's utime+stime from /proc/<pid>/stat. Peak RSS: VmHWM, reset before each scenario
// through /proc/<pid>/clear_refs (in-process: the whole bench process).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "tunnel/client.hpp"
#include "tunnel/keys.hpp"
#include "tunnel/messages.hpp"
#include "tunnel/server.hpp"

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

// ---- settings ---------------------------------------------------------------------------------

std::uint64_t g_size = 512ull << 20;
int g_c = 0;  // 0: per-scenario default
double g_seconds = 5.0;
std::size_t g_resp = 1024;
constexpr std::size_t kRequest = 1024;
int g_stall_s = 20;
int g_repeat = 1;
bool g_interleave = false;  // -interleave: each repeat runs every implementation in turn
bool g_verify = true;

constexpr std::size_t kChunk = 256 * 1024;
constexpr std::size_t kPeriod = 1 << 20;  // pattern period (a multiple of 4 KiB: aligned sends)
std::vector<std::uint8_t> g_pattern;      // kPeriod + kChunk bytes, pattern[i] == pattern[i % kPeriod]

double since(SteadyClock::time_point t0) { return std::chrono::duration<double>(SteadyClock::now() - t0).count(); }

std::vector<pid_t> g_children;  // killed on any failure
std::mutex g_children_mutex;

// A child that was reaped: no longer one to kill on failure.
void forget_child(pid_t pid) {
  std::lock_guard lock(g_children_mutex);
  std::erase(g_children, pid);
}

void kill_children() {
  std::lock_guard lock(g_children_mutex);
  for (pid_t p : g_children) ::kill(p, SIGKILL);
  for (pid_t p : g_children) ::waitpid(p, nullptr, 0);
  g_children.clear();
}

[[noreturn]] void fatal(const std::string& msg) {
  std::fprintf(stderr, "vtunnel-bench: FAIL: %s\n", msg.c_str());
  std::fflush(stderr);
  kill_children();
  std::_Exit(1);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string loadavg() {
  auto s = read_file("/proc/loadavg");
  std::istringstream in(s);
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::uint64_t parse_size(const std::string& s) {
  std::size_t pos = 0;
  double v = std::stod(s, &pos);
  std::string suf = s.substr(pos);
  for (auto& ch : suf) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  double mul = 1;
  if (suf.empty() || suf == "B") mul = 1;
  else if (suf == "K" || suf == "KB" || suf == "KIB") mul = 1024;
  else if (suf == "M" || suf == "MB" || suf == "MIB") mul = 1024.0 * 1024;
  else if (suf == "G" || suf == "GB" || suf == "GIB") mul = 1024.0 * 1024 * 1024;
  else throw std::invalid_argument("bad size suffix: " + s);
  return std::uint64_t(v * mul);
}

// ---- plain sockets -------------------------------------------------------------------------------

void set_timeouts(int fd) {
  timeval tv{g_stall_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int listen_loopback(std::uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4096) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

std::uint16_t free_port() {
  std::uint16_t p = 0;
  int fd = listen_loopback(p);
  ::close(fd);
  return p;
}

// -1 on failure (errno set).
int connect_loopback(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  set_timeouts(fd);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

bool send_all(int fd, const void* p, std::size_t n) {
  auto* b = static_cast<const std::uint8_t*>(p);
  while (n > 0) {
    ssize_t w = ::send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    b += w;
    n -= std::size_t(w);
  }
  return true;
}

// Reads exactly n bytes; false on EOF/error/timeout (errno 0 for EOF).
bool read_exact(int fd, void* p, std::size_t n) {
  auto* b = static_cast<std::uint8_t*>(p);
  while (n > 0) {
    ssize_t r = ::recv(fd, b, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) errno = 0;
    if (r <= 0) return false;
    b += r;
    n -= std::size_t(r);
  }
  return true;
}

std::string sock_error(const char* what) {
  if (errno == 0) return std::string(what) + ": unexpected EOF";
  if (errno == EAGAIN) return fmt::format("{}: stalled (no progress for {} s)", what, g_stall_s);
  return fmt::format("{}: {}", what, std::strerror(errno));
}

// Sends `size` pattern bytes from stream offset 0.
bool send_pattern(int fd, std::uint64_t size) {
  std::uint64_t off = 0;
  while (off < size) {
    std::size_t n = std::size_t(std::min<std::uint64_t>(kChunk, size - off));
    const std::uint8_t* p = g_pattern.data() + off % kPeriod;
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    off += std::uint64_t(w);
  }
  return true;
}

// Receives until EOF, checking the pattern; returns the count, or -1 on error/stall, -2 on a
// content mismatch (offset in `bad_at`).
// A non-zero `rate` (bytes per second) reads slowly: at most 16 KiB at a time, paced.
std::int64_t recv_pattern(int fd, std::vector<std::uint8_t>& buf, std::uint64_t& bad_at, std::uint32_t rate = 0) {
  std::uint64_t off = 0;
  auto t0 = SteadyClock::now();
  for (;;) {
    if (rate > 0) {
      double due = double(off) / double(rate);
      double now = since(t0);
      if (due > now) std::this_thread::sleep_for(std::chrono::duration<double>(due - now));
    }
    ssize_t r = ::recv(fd, buf.data(), rate > 0 ? std::min<std::size_t>(buf.size(), 16384) : buf.size(), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) return std::int64_t(off);
    if (g_verify && std::memcmp(buf.data(), g_pattern.data() + off % kPeriod, std::size_t(r)) != 0) {
      for (ssize_t i = 0; i < r; ++i) {
        if (buf[std::size_t(i)] != g_pattern[(off + std::uint64_t(i)) % kPeriod]) {
          bad_at = off + std::uint64_t(i);
          break;
        }
      }
      return -2;
    }
    off += std::uint64_t(r);
  }
}

// ---- HTTP responder ------------------------------------------------------------------------------
// The backend for wrk: one epoll thread, non-blocking, keep-alive; answers every request
// ("GET /N ...\r\n\r\n", N the body size in bytes, default 1024) with a fixed 200 response.
// Connections arrive through the Backend (which read the first byte, 'G').

class HttpResponder {
 public:
  HttpResponder() {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) fatal("epoll_create1 failed");
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "http-backend");
      run();
    });
  }
  ~HttpResponder() {
    stop_ = true;
    thread_.join();
    for (auto& [fd, c] : conns_) ::close(fd);
    ::close(ep_);
  }
  // Takes over `fd`; `first` holds the bytes already read from it.
  void adopt(int fd, std::string first) {
    int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->in = std::move(first);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    std::lock_guard lock(m_);
    conns_[fd] = std::move(c);
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      conns_.erase(fd);
      ::close(fd);
    }
  }
  std::uint64_t requests() const { return requests_; }

 private:
  struct Conn {
    int fd = -1;
    std::string in;
    std::string out;
    std::size_t out_off = 0;
    bool want_out = false;
  };
  const std::string& response(std::size_t body) {
    auto it = responses_.find(body);
    if (it != responses_.end()) return it->second;
    std::string r = fmt::format("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", body);
    for (std::size_t i = 0; i < body; ++i) r += char(g_pattern[i % kPeriod]);
    return responses_.emplace(body, std::move(r)).first->second;
  }
  void drop(int fd) {
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    std::lock_guard lock(m_);
    conns_.erase(fd);
  }
  // false: the connection is done.
  bool flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      ssize_t w = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) break;
      if (w <= 0) return false;
      c.out_off += std::size_t(w);
    }
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
    }
    bool want = !c.out.empty();
    if (want != c.want_out) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u);
      ev.data.fd = c.fd;
      ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_out = want;
    }
    return true;
  }
  // false: the connection is done.
  bool on_readable(Conn& c) {
    char buf[16384];
    bool eof = false;
    for (;;) {
      ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == EAGAIN) break;
      if (r <= 0) {
        eof = true;
        break;
      }
      c.in.append(buf, std::size_t(r));
    }
    std::size_t pos = 0;
    for (;;) {
      auto end = c.in.find("\r\n\r\n", pos);
      if (end == std::string::npos) break;
      std::size_t body = 1024;
      auto sp = c.in.find(' ', pos);
      if (sp != std::string::npos && sp + 2 < end && c.in[sp + 1] == '/') {
        std::size_t v = std::strtoul(c.in.c_str() + sp + 2, nullptr, 10);
        if (v > 0 && v <= kPeriod) body = v;
      }
      c.out += response(body);
      ++requests_;
      pos = end + 4;
    }
    c.in.erase(0, pos);
    if (c.in.size() > 65536) return false;  // not HTTP
    if (!flush(c)) return false;
    return !eof;
  }
  void run() {
    epoll_event evs[128];
    while (!stop_) {
      int n = ::epoll_wait(ep_, evs, 128, 100);
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        Conn* c;
        {
          std::lock_guard lock(m_);
          auto it = conns_.find(fd);
          if (it == conns_.end()) continue;
          c = it->second.get();
        }
        bool keep = true;
        if (evs[i].events & EPOLLOUT) keep = flush(*c);
        if (keep && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) keep = on_readable(*c);
        if (!keep) drop(fd);
      }
    }
  }

  int ep_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex m_;
  std::map<int, std::unique_ptr<Conn>> conns_;
  std::map<std::size_t, std::string> responses_;  // responder thread only
  std::atomic<std::uint64_t> requests_{0};
};

// ---- parked connections ----------------------------------------------------------------------------
// The backend ends of idle connections live in a child process (its own fd table): idle-10k
// needs 10,000 fds here for the user side, and both sides would exceed a 20,000 fd limit.
// Created before any thread of its Backend; the child never allocates and keeps no other fd.

class FdHolder {
 public:
  FdHolder() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) fatal("socketpair failed");
    std::vector<int> held;
    held.reserve(1u << 17);
    pid_ = ::fork();
    if (pid_ < 0) fatal("fork failed");
    if (pid_ == 0) {
      // Only our end of the pair: a copy of another backend's (or holder's) fds here would keep
      // them open after their owner closes them (-interleave runs several backends at once).
      const unsigned mine = unsigned(sv[1]);
      if (mine > 3) ::close_range(3, mine - 1, 0);
      ::close_range(mine + 1, ~0u, 0);
      hold(sv[1], held);
      std::_Exit(0);
    }
    ::close(sv[1]);
    sock_ = sv[0];
  }
  ~FdHolder() {
    ::close(sock_);  // the child sees EOF, exits, and its fds close
    ::waitpid(pid_, nullptr, 0);
  }
  // Hands `fd` over (the caller still closes its own copy).
  bool give(int fd) {
    char tag = 'F';
    iovec iov{&tag, 1};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl;
    msg.msg_controllen = sizeof ctl;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    std::lock_guard lock(m_);
    return ::sendmsg(sock_, &msg, MSG_NOSIGNAL) == 1;
  }
  // Closes every held fd; returns once the child has done it.
  void close_all() {
    std::lock_guard lock(m_);
    char tag = 'X';
    if (::send(sock_, &tag, 1, MSG_NOSIGNAL) != 1) return;
    (void)::recv(sock_, &tag, 1, 0);
  }

 private:
  static void hold(int sock, std::vector<int>& held) {
    for (;;) {
      char tag = 0;
      iovec iov{&tag, 1};
      alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = ctl;
      msg.msg_controllen = sizeof ctl;
      ssize_t r = ::recvmsg(sock, &msg, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return;
      if (tag == 'X') {
        for (int fd : held) ::close(fd);
        held.clear();
        (void)::send(sock, &tag, 1, MSG_NOSIGNAL);
        continue;
      }
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int fd;
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        if (held.size() < held.capacity()) held.push_back(fd);
        else ::close(fd);
      }
    }
  }
  pid_t pid_ = -1;
  int sock_ = -1;
  std::mutex m_;
};

// ---- backend ---------------------------------------------------------------------------------------
// Each connection starts with an op byte: 'P' probe (echo, close), 'C' connect test (echo, close),
// 'U' + u64 size: sink (check count and content, answer u64 count, close),
// 'D' + u64 size: source (send the pattern, half-close, wait for EOF),
// 'R' + u32 response size: request/response (1 KiB requests, until EOF),
// 'S' + u64 size + u32 bytes/s: slow sink (reads at that rate, checks, answers the count),
// 'G': an HTTP request (wrk): the connection goes to the HttpResponder.

class Backend {
 public:
  explicit Backend(int threads) {
    lfd_ = listen_loopback(port_);  // after holder_ (the first member) forked: the child does not hold it
    if (lfd_ < 0) fatal("backend: cannot listen");
    for (int i = 0; i < threads; ++i) {
      pool_.emplace_back([this] {
        pthread_setname_np(pthread_self(), "backend");
        accept_loop();
      });
    }
  }
  ~Backend() {
    stop_ = true;
    ::shutdown(lfd_, SHUT_RDWR);  // wakes the blocked accept()s
    for (auto& t : pool_) t.join();
    ::close(lfd_);
  }
  std::uint16_t port() const { return port_; }
  std::uint64_t sunk() const { return sunk_; }
  std::uint64_t sourced() const { return sourced_; }
  std::uint64_t http_requests() const { return http_.requests(); }
  std::string error() {
    std::lock_guard lock(m_);
    return error_;
  }
  void close_parked() { holder_.close_all(); }

 private:
  void fail(std::string e) {
    std::lock_guard lock(m_);
    if (error_.empty()) error_ = std::move(e);
  }
  void accept_loop() {
    std::vector<std::uint8_t> buf(kChunk);
    while (!stop_) {
      int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stop_) return;
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EINVAL) return;
        continue;
      }
      set_timeouts(fd);
      serve(fd, buf);
      ::close(fd);
    }
  }
  void serve(int fd, std::vector<std::uint8_t>& buf) {
    std::uint8_t op = 0;
    if (!read_exact(fd, &op, 1)) return;  // a probe that gave up, or the tunnel cut it: the user side reports
    switch (op) {
      case 'P':
      case 'C':
        if (!send_all(fd, &op, 1)) fail(sock_error("backend echo"));
        return;
      case 'I': {  // idle: echo, then keep the connection open (no thread) until close_parked()
        if (!send_all(fd, &op, 1)) return fail(sock_error("backend idle echo"));
        if (!holder_.give(fd)) fail(sock_error("backend: parking an idle connection"));
        return;
      }
      case 'U': {
        std::uint64_t want = 0;
        if (!read_exact(fd, &want, 8)) return fail(sock_error("backend sink header"));
        std::uint64_t bad = 0;
        std::int64_t got = recv_pattern(fd, buf, bad);
        if (got == -1) return fail(sock_error("backend sink"));
        if (got == -2) return fail(fmt::format("backend sink: content mismatch at offset {}", bad));
        sunk_ += std::uint64_t(got);
        if (std::uint64_t(got) != want) fail(fmt::format("backend sink: received {} bytes, expected {}", got, want));
        std::uint64_t n = std::uint64_t(got);
        send_all(fd, &n, 8);
        return;
      }
      case 'D': {
        std::uint64_t size = 0;
        if (!read_exact(fd, &size, 8)) return fail(sock_error("backend source header"));
        if (!send_pattern(fd, size)) return fail(sock_error("backend source"));
        sourced_ += size;
        ::shutdown(fd, SHUT_WR);
        std::uint8_t b;
        (void)::recv(fd, &b, 1, 0);  // until the user closes
        return;
      }
      case 'G':
        http_.adopt(::dup(fd), "G");
        return;
      case 'S': {
        std::uint64_t want = 0;
        std::uint32_t rate = 0;
        if (!read_exact(fd, &want, 8) || !read_exact(fd, &rate, 4)) return fail(sock_error("backend slow sink header"));
        std::uint64_t bad = 0;
        std::int64_t got = recv_pattern(fd, buf, bad, rate);
        if (got == -1) return fail(sock_error("backend slow sink"));
        if (got == -2) return fail(fmt::format("backend slow sink: content mismatch at offset {}", bad));
        sunk_ += std::uint64_t(got);
        if (std::uint64_t(got) != want) fail(fmt::format("backend slow sink: received {} bytes, expected {}", got, want));
        std::uint64_t n = std::uint64_t(got);
        send_all(fd, &n, 8);
        return;
      }
      case 'R': {
        std::uint32_t resp = 0;
        if (!read_exact(fd, &resp, 4)) return fail(sock_error("backend rr header"));
        std::vector<std::uint8_t> req(kRequest);
        for (;;) {
          if (!read_exact(fd, req.data(), req.size())) {
            if (errno != 0) fail(sock_error("backend rr request"));
            return;
          }
          if (!send_all(fd, g_pattern.data(), resp)) return fail(sock_error("backend rr response"));
        }
      }
      default:
        fail(fmt::format("backend: unknown op byte {}", int(op)));
    }
  }

  FdHolder holder_;  // first: forks before the responder thread starts
  int lfd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<std::thread> pool_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> sunk_{0}, sourced_{0};
  std::mutex m_;
  std::string error_;
  HttpResponder http_;
};

// ---- implementations under test ---------------------------------------------------------------------

struct CpuSample {
  double server = 0, client = 0, process = 0;
};

class Impl {
 public:
  virtual ~Impl() = default;
  virtual std::string name() const = 0;
  // Starts server + client forwarding a fresh tunnel port to 127.0.0.1:backend_port.
  virtual void start(std::uint16_t backend_port) = 0;
  virtual void stop() = 0;
  virtual std::uint16_t tunnel_port() const = 0;
  virtual CpuSample cpu() = 0;
  virtual void reset_peak() = 0;
  // Peak RSS in KiB: server, client (in-process: the whole bench process, twice).
  virtual std::pair<long, long> peak_kib() = 0;
  virtual std::pair<long, long> rss_kib() = 0;  // current VmRSS
  virtual void check_alive() {}
  virtual bool single_process() const { return false; }  // server and client share one RSS
  virtual bool supports(const std::string&) const { return true; }
};

double process_cpu_self() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

long status_kib(const std::string& status_path, const char* field = "VmHWM:") {
  auto s = read_file(status_path);
  auto p = s.find(field);
  if (p == std::string::npos) return -1;
  return std::strtol(s.c_str() + p + std::strlen(field), nullptr, 10);
}
long vm_hwm_kib(const std::string& status_path) { return status_kib(status_path); }

void reset_hwm(const std::string& clear_refs_path) {
  std::ofstream out(clear_refs_path);
  out << "5";
}

// Probes the tunnel port until a 'P' comes back through it (bounded).
void wait_tunnel_ready(std::uint16_t port, Impl& impl, double limit_s = 30) {
  auto t0 = SteadyClock::now();
  std::string last = "never tried";
  while (since(t0) < limit_s) {
    impl.check_alive();
    int fd = connect_loopback(port);
    if (fd >= 0) {
      timeval tv{2, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::uint8_t b = 'P';
      bool ok = send_all(fd, &b, 1) && read_exact(fd, &b, 1) && b == 'P';
      if (!ok) last = sock_error("probe");
      ::close(fd);
      if (ok) return;
    } else {
      last = sock_error("probe connect");
    }
    std::this_thread::sleep_for(100ms);
  }
  fatal(fmt::format("{}: tunnel port {} not ready after {:.0f} s ({})", impl.name(), port, limit_s, last));
}

// Ours, in this process: server and client each on their own thread and Loop.
class InProcess final : public Impl {
 public:
  std::string name() const override { return "vtunnel (in-process)"; }
  bool single_process() const override { return true; }
  std::uint16_t tunnel_port() const override { return tunnel_port_; }

  void start(std::uint16_t backend_port) override {
    auto priv = vtunnel::generate_private_key();
    auto pub = priv.public_key();
    tunnel_port_ = free_port();
    stop_ = false;
    client_stop_ = false;
    failed_ = false;
    ws_port_ = 0;
    server_thread_ = std::thread([this, pub] {
      pthread_setname_np(pthread_self(), "vt-server");  // for perf report --sort comm
      vtunnel::Loop loop;
      vtunnel::sync_wait(loop, serve(pub));
    });
    auto t0 = SteadyClock::now();
    while (ws_port_ == 0 && !failed_) {
      if (since(t0) > 10) fatal("in-process server did not start");
      std::this_thread::sleep_for(1ms);
    }
    if (failed_) fatal("in-process server: listen failed");
    std::string spec = fmt::format("{}=127.0.0.1:{}", tunnel_port_, backend_port);
    client_thread_ = std::thread([this, priv, spec] {
      pthread_setname_np(pthread_self(), "vt-client");
      vtunnel::Loop loop;
      vtunnel::sync_wait(loop, run_client(priv, spec));
    });
    wait_tunnel_ready(tunnel_port_, *this);
    pthread_getcpuclockid(server_thread_.native_handle(), &server_clock_);
    pthread_getcpuclockid(client_thread_.native_handle(), &client_clock_);
  }
  void stop() override {
    client_stop_ = true;  // the client first: the server closing first would make it reconnect
    if (client_thread_.joinable()) client_thread_.join();
    stop_ = true;
    if (server_thread_.joinable()) server_thread_.join();
  }
  void check_alive() override {
    if (failed_) fatal("in-process client or server failed (see log above)");
  }
  CpuSample cpu() override {
    auto get = [](clockid_t c) {
      timespec ts{};
      clock_gettime(c, &ts);
      return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
    };
    return {get(server_clock_), get(client_clock_), process_cpu_self()};
  }
  void reset_peak() override { reset_hwm("/proc/self/clear_refs"); }
  std::pair<long, long> peak_kib() override {
    long v = vm_hwm_kib("/proc/self/status");
    return {v, v};
  }
  std::pair<long, long> rss_kib() override {
    long v = status_kib("/proc/self/status", "VmRSS:");
    return {v, v};
  }

 private:
  vtunnel::Task<void> serve(vtunnel::PublicKey pub) {
    vtunnel::ServerOptions so;
    so.client_key = pub;
    vtunnel::Server server(so);
    auto addr = server.listen(vtunnel::SocketAddress::loopback_v4(0));
    if (!addr) {
      failed_ = true;
      co_return;
    }
    vtunnel::Scope bg;
    bg.spawn(server.run());
    ws_port_ = addr->port();
    while (!stop_) (void)co_await vtunnel::sleep_for(20ms);
    server.close();
    co_await bg.join();
  }
  vtunnel::Task<void> run_client(vtunnel::PrivateKey priv, std::string spec) {
    vtunnel::ClientOptions co;
    co.key = priv;
    vtunnel::Client client(fmt::format("ws://127.0.0.1:{}/", ws_port_.load()), co);
    auto fwd = vtunnel::parse_forward(spec);
    if (!fwd) {
      failed_ = true;
      co_return;
    }
    client.add_forward(*fwd);
    auto r = co_await client.connect();
    if (!r) std::fprintf(stderr, "in-process client: first connect failed: %s\n", r.error().message().c_str());
    while (!client_stop_) (void)co_await vtunnel::sleep_for(20ms);
    co_await client.close();
  }

  std::thread server_thread_, client_thread_;
  std::atomic<std::uint16_t> ws_port_{0};
  std::atomic<bool> stop_{false}, client_stop_{false}, failed_{false};
  std::uint16_t tunnel_port_ = 0;
  clockid_t server_clock_{}, client_clock_{};
};

pid_t spawn(const std::vector<std::string>& args, const std::string& log_path) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) fatal("fork failed");
  if (pid == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
    std::_Exit(127);
  }
  std::lock_guard lock(g_children_mutex);
  g_children.push_back(pid);
  return pid;
}

double proc_cpu(pid_t pid) {
  auto s = read_file(fmt::format("/proc/{}/stat", pid));
  auto p = s.rfind(')');
  if (p == std::string::npos) return 0;
  std::istringstream in(s.substr(p + 2));
  std::string f;
  unsigned long long ticks = 0;
  // fields after ")" start at field 3 (state); utime, stime, cutime, cstime are fields 14-17
  for (int i = 3; i <= 17 && in >> f; ++i) {
    if (i >= 14) ticks += std::stoull(f);
  }
  return double(ticks) / double(::sysconf(_SC_CLK_TCK));
}

// `root` and its live descendants.
std::vector<pid_t> process_tree(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> all;  // pid, ppid
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      pid_t p = pid_t(std::atol(e->d_name));
      if (p <= 0) continue;
      auto s = read_file(fmt::format("/proc/{}/stat", p));
      auto q = s.rfind(')');
      if (q == std::string::npos) continue;
      std::istringstream in(s.substr(q + 2));
      std::string state;
      long ppid = 0;
      in >> state >> ppid;
      all.emplace_back(p, pid_t(ppid));
    }
    ::closedir(d);
  }
  std::vector<pid_t> tree{root};
  for (std::size_t i = 0; i < tree.size(); ++i)
    for (auto [p, pp] : all)
      if (pp == tree[i]) tree.push_back(p);
  return tree;
}

void run_and_wait(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fatal(fmt::format("{} failed (status {})", args[0], status));
}

std::string tail_of(const std::string& path) {
  auto s = read_file(path);
  if (s.size() > 1500) s = "..." + s.substr(s.size() - 1500);
  return s;
}

// Two CLI-compatible binaries: `server -port P [-bind 127.0.0.1] -client-key K` and
// `client -server ws://127.0.0.1:P/ -key K -forward R=127.0.0.1:T`.
class BlackBox final : public Impl {
 public:
  BlackBox(std::string name, std::string server_bin, std::string client_bin, std::string style)
      : name_(std::move(name)), server_bin_(std::move(server_bin)), client_bin_(std::move(client_bin)),
        style_(std::move(style)) {}
  std::string name() const override { return name_; }
  std::uint16_t tunnel_port() const override { return tunnel_port_; }

  void start(std::uint16_t backend_port) override {
    auto priv = vtunnel::generate_private_key();
    std::string priv_s = vtunnel::format_private_key(priv);
    std::string pub_s = vtunnel::format_public_key(priv.public_key());
    char dir_tmpl[] = "/tmp/vtunnel-bench.XXXXXX";
    if (!::mkdtemp(dir_tmpl)) fatal("mkdtemp failed");
    dir_ = dir_tmpl;
    std::uint16_t ws_port = free_port();
    tunnel_port_ = free_port();
    server_log_ = dir_ + "/server.log";
    client_log_ = dir_ + "/client.log";
    std::vector<std::string> sargs, cargs;
    std::string forward = fmt::format("{}=127.0.0.1:{}", tunnel_port_, backend_port);
    if (style_ == "openssh") {
      // A throwaway sshd (not daemonized: our child, its session processes our descendants) and
      // `ssh -N -R`, AES-128-GCM, fresh keys.
      run_and_wait({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir_ + "/host_key"});
      run_and_wait({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir_ + "/user_key"});
      ::mkdir("/run/sshd", 0755);
      {
        std::ofstream ak(dir_ + "/authorized_keys");
        ak << read_file(dir_ + "/user_key.pub");
        std::ofstream cfg(dir_ + "/sshd_config");
        cfg << fmt::format(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}/host_key\nPidFile none\nAuthorizedKeysFile {}/authorized_keys\n"
            "PermitRootLogin yes\nStrictModes no\nUsePAM no\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nAllowTcpForwarding yes\nX11Forwarding no\nPrintMotd no\n"
            "Ciphers aes128-gcm@openssh.com\nMaxStartups 100:30:200\nLogLevel ERROR\n",
            ws_port, dir_, dir_);
      }
      ::chmod((dir_ + "/authorized_keys").c_str(), 0600);
      sargs = {server_bin_, "-D", "-e", "-f", dir_ + "/sshd_config"};
      cargs = {client_bin_, "-N", "-T", "-i", dir_ + "/user_key", "-p", std::to_string(ws_port),
               "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "ExitOnForwardFailure=yes", "-o", "Ciphers=aes128-gcm@openssh.com", "-o", "LogLevel=ERROR",
               "-R", fmt::format("127.0.0.1:{}:127.0.0.1:{}", tunnel_port_, backend_port), "root@127.0.0.1"};
    } else {
      sargs = {server_bin_, "server", "-port", std::to_string(ws_port)};
      if (style_ == "vtunnel") {
        sargs.push_back("-bind");
        sargs.push_back("127.0.0.1");
      }
      sargs.push_back("-client-key");
      sargs.push_back(pub_s);
      cargs = {client_bin_, "client", "-server", fmt::format("ws://127.0.0.1:{}/", ws_port), "-key", priv_s,
               "-forward", forward};
    }
    server_pid_ = spawn(sargs, server_log_);
    auto t0 = SteadyClock::now();
    for (;;) {
      check_alive();
      int fd = connect_loopback(ws_port);
      if (fd >= 0) {
        ::close(fd);
        break;
      }
      if (since(t0) > 10) fatal(fmt::format("{}: server not listening on {} after 10 s:\n{}", name_, ws_port, tail_of(server_log_)));
      std::this_thread::sleep_for(20ms);
    }
    client_pid_ = spawn(cargs, client_log_);
    wait_tunnel_ready(tunnel_port_, *this);
  }
  void stop() override {
    for (pid_t p : {client_pid_, server_pid_}) {
      if (p <= 0) continue;
      ::kill(p, SIGTERM);
      int status = 0;
      auto t0 = SteadyClock::now();
      bool killed = false;
      while (::waitpid(p, &status, WNOHANG) == 0) {
        if (since(t0) > 5) {
          std::fprintf(stderr, "%s: pid %d ignored SIGTERM for 5 s, killing\n", name_.c_str(), p);
          ::kill(p, SIGKILL);
          ::waitpid(p, &status, 0);
          killed = true;
          break;
        }
        std::this_thread::sleep_for(10ms);
      }
      if (!killed && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        std::fprintf(stderr, "%s: pid %d did not exit 0 on SIGTERM (%s %d)\n", name_.c_str(), p,
                     WIFEXITED(status) ? "exit status" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      }
      forget_child(p);
    }
    client_pid_ = server_pid_ = 0;
  }
  void check_alive() override {
    for (auto [p, log] : {std::pair{server_pid_, server_log_}, std::pair{client_pid_, client_log_}}) {
      if (p <= 0) continue;
      int status = 0;
      if (::waitpid(p, &status, WNOHANG) == p) {
        forget_child(p);
        fatal(fmt::format("{}: child {} ({}) exited (status {}):\n{}", name_, p, log, status, tail_of(log)));
      }
    }
  }
  // Each side: the process and its live descendants (sshd's session processes), plus children
  // already reaped.
  CpuSample cpu() override {
    double s = 0, c = 0;
    for (pid_t p : process_tree(server_pid_)) s += proc_cpu(p);
    for (pid_t p : process_tree(client_pid_)) c += proc_cpu(p);
    return {s, c, 0};
  }
  void reset_peak() override {
    for (pid_t root : {server_pid_, client_pid_})
      for (pid_t p : process_tree(root)) reset_hwm(fmt::format("/proc/{}/clear_refs", p));
  }
  std::pair<long, long> peak_kib() override {
    auto sum = [](pid_t root) {
      long t = 0;
      for (pid_t p : process_tree(root)) t += std::max(0L, vm_hwm_kib(fmt::format("/proc/{}/status", p)));
      return t;
    };
    return {sum(server_pid_), sum(client_pid_)};
  }
  std::pair<long, long> rss_kib() override {
    auto sum = [](pid_t root) {
      long t = 0;
      for (pid_t p : process_tree(root)) t += std::max(0L, status_kib(fmt::format("/proc/{}/status", p), "VmRSS:"));
      return t;
    };
    return {sum(server_pid_), sum(client_pid_)};
  }

 private:
  std::string name_, server_bin_, client_bin_, style_, dir_, server_log_, client_log_;
  pid_t server_pid_ = 0, client_pid_ = 0;
  std::uint16_t tunnel_port_ = 0;
};

// The plain relay baseline: one socat process (a child per connection), 128 KiB buffers, no
// crypto, listening where the tunnel port would be. "server" is socat and its children.
class PlainRelay final : public Impl {
 public:
  explicit PlainRelay(std::string bin) : bin_(std::move(bin)) {}
  std::string name() const override { return "plain relay (socat)"; }
  std::uint16_t tunnel_port() const override { return port_; }
  // Idle memory per connection is not comparable (a process per connection).
  bool supports(const std::string& sc) const override { return sc != "idle" && sc != "idle-10k"; }

  void start(std::uint16_t backend_port) override {
    char dir_tmpl[] = "/tmp/vtunnel-bench.XXXXXX";
    if (!::mkdtemp(dir_tmpl)) fatal("mkdtemp failed");
    log_ = std::string(dir_tmpl) + "/socat.log";
    port_ = free_port();
    pid_ = spawn({bin_, "-b131072", fmt::format("TCP4-LISTEN:{},bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay", port_),
                  fmt::format("TCP4:127.0.0.1:{},nodelay", backend_port)},
                 log_);
    wait_tunnel_ready(port_, *this);
  }
  void stop() override {
    if (pid_ <= 0) return;
    for (pid_t p : process_tree(pid_)) ::kill(p, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    forget_child(pid_);
    pid_ = 0;
  }
  void check_alive() override {
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      forget_child(pid_);
      fatal(fmt::format("socat exited (status {}):\n{}", status, tail_of(log_)));
    }
  }
  CpuSample cpu() override {
    double t = 0;
    for (pid_t p : process_tree(pid_)) t += proc_cpu(p);
    return {t, 0, 0};
  }
  void reset_peak() override {
    for (pid_t p : process_tree(pid_)) reset_hwm(fmt::format("/proc/{}/clear_refs", p));
  }
  std::pair<long, long> peak_kib() override {
    long t = 0;
    for (pid_t p : process_tree(pid_)) t += std::max(0L, vm_hwm_kib(fmt::format("/proc/{}/status", p)));
    return {t, 0};
  }
  std::pair<long, long> rss_kib() override {
    long t = 0;
    for (pid_t p : process_tree(pid_)) t += std::max(0L, status_kib(fmt::format("/proc/{}/status", p), "VmRSS:"));
    return {t, 0};
  }

 private:
  std::string bin_, log_;
  pid_t pid_ = 0;
  std::uint16_t port_ = 0;
};

// Issue 7's ceiling: the vtunnel-ceiling pair (bench/ceiling_relay.cpp), blocking sockets and
// AES-128-GCM in place, nothing else. "server" is the entry (the tunnel port), "client" the exit
// (connects to the backend), each one process with a thread per direction of each connection.
class CeilingRelay final : public Impl {
 public:
  explicit CeilingRelay(std::string bin) : bin_(std::move(bin)) {}
  std::string name() const override { return "ceiling (relay + AES-128-GCM)"; }
  std::uint16_t tunnel_port() const override { return entry_port_; }
  // Two threads and two 256 KiB buffers per connection: idle memory is not what it is for.
  bool supports(const std::string& sc) const override { return sc != "idle" && sc != "idle-10k"; }

  void start(std::uint16_t backend_port) override {
    char dir_tmpl[] = "/tmp/vtunnel-bench.XXXXXX";
    if (!::mkdtemp(dir_tmpl)) fatal("mkdtemp failed");
    exit_log_ = std::string(dir_tmpl) + "/ceiling-exit.log";
    entry_log_ = std::string(dir_tmpl) + "/ceiling-entry.log";
    // Port 0: each prints the port it got.
    exit_pid_ = spawn({bin_, "exit", "0", std::to_string(backend_port)}, exit_log_);
    std::uint16_t exit_port = listening_port(exit_pid_, exit_log_);
    entry_pid_ = spawn({bin_, "entry", "0", std::to_string(exit_port)}, entry_log_);
    entry_port_ = listening_port(entry_pid_, entry_log_);
    wait_tunnel_ready(entry_port_, *this);
  }
  void stop() override {
    for (pid_t* p : {&entry_pid_, &exit_pid_}) {
      if (*p <= 0) continue;
      ::kill(*p, SIGTERM);
      ::waitpid(*p, nullptr, 0);
      forget_child(*p);
      *p = 0;
    }
  }
  void check_alive() override {
    for (auto [p, log] : {std::pair{entry_pid_, entry_log_}, std::pair{exit_pid_, exit_log_}}) {
      int status = 0;
      if (p > 0 && ::waitpid(p, &status, WNOHANG) == p) {
        forget_child(p);
        fatal(fmt::format("vtunnel-ceiling exited (status {}):\n{}", status, tail_of(log)));
      }
    }
  }
  CpuSample cpu() override { return {proc_cpu(entry_pid_), proc_cpu(exit_pid_), 0}; }
  void reset_peak() override {
    for (pid_t p : {entry_pid_, exit_pid_}) reset_hwm(fmt::format("/proc/{}/clear_refs", p));
  }
  std::pair<long, long> peak_kib() override {
    return {vm_hwm_kib(fmt::format("/proc/{}/status", entry_pid_)), vm_hwm_kib(fmt::format("/proc/{}/status", exit_pid_))};
  }
  std::pair<long, long> rss_kib() override {
    return {status_kib(fmt::format("/proc/{}/status", entry_pid_), "VmRSS:"),
            status_kib(fmt::format("/proc/{}/status", exit_pid_), "VmRSS:")};
  }

 private:
  // The port from the child's "listening on 127.0.0.1:PORT" line (bounded).
  std::uint16_t listening_port(pid_t pid, const std::string& log) {
    const std::string key = "listening on 127.0.0.1:";
    auto t0 = SteadyClock::now();
    for (;;) {
      auto text = read_file(log);
      if (auto p = text.find(key); p != std::string::npos && text.find('\n', p) != std::string::npos)
        return std::uint16_t(std::atoi(text.c_str() + p + key.size()));
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        forget_child(pid);
        fatal(fmt::format("vtunnel-ceiling exited (status {}):\n{}", status, tail_of(log)));
      }
      if (since(t0) > 10) fatal(fmt::format("vtunnel-ceiling: not listening after 10 s:\n{}", tail_of(log)));
      std::this_thread::sleep_for(10ms);
    }
  }
  std::string bin_, entry_log_, exit_log_;
  pid_t entry_pid_ = 0, exit_pid_ = 0;
  std::uint16_t entry_port_ = 0;
};

// ---- scenarios -----------------------------------------------------------------------------------

struct Outcome {
  double rate = 0;         // MiB/s, req/s or conn/s
  std::string unit;
  std::uint64_t bytes = 0;  // through the tunnel (both directions)
  std::uint64_t ops = 0;
  double seconds = 0;
  double p50_ms = -1, p99_ms = -1;
  int streams = 1;
};

enum class Dir { up, down };

void one_stream(std::uint16_t port, Dir dir, std::uint64_t size, std::string& err) {
  int fd = connect_loopback(port);
  if (fd < 0) {
    err = sock_error("user connect");
    return;
  }
  if (dir == Dir::up) {
    std::uint8_t head[9] = {'U'};
    std::memcpy(head + 1, &size, 8);
    std::uint64_t got = 0;
    if (!send_all(fd, head, 9) || !send_pattern(fd, size)) err = sock_error("upload send");
    else if (::shutdown(fd, SHUT_WR) != 0) err = sock_error("upload shutdown");
    else if (!read_exact(fd, &got, 8)) err = sock_error("upload: waiting for the backend's count (half-close carried?)");
    else if (got != size) err = fmt::format("upload: backend received {} bytes, sent {}", got, size);
  } else {
    std::uint8_t head[9] = {'D'};
    std::memcpy(head + 1, &size, 8);
    std::vector<std::uint8_t> buf(kChunk);
    std::uint64_t bad = 0;
    if (!send_all(fd, head, 9)) {
      err = sock_error("download request");
    } else {
      std::int64_t got = recv_pattern(fd, buf, bad);
      if (got == -1) err = sock_error("download recv");
      else if (got == -2) err = fmt::format("download: content mismatch at offset {}", bad);
      else if (std::uint64_t(got) != size) err = fmt::format("download: received {} bytes, backend sent {}", got, size);
    }
  }
  ::close(fd);
}

Outcome run_streams(std::uint16_t port, const std::vector<Dir>& dirs, std::uint64_t size) {
  std::vector<std::string> errs(dirs.size());
  std::vector<std::thread> ts;
  auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < dirs.size(); ++i) ts.emplace_back([&, i] { one_stream(port, dirs[i], size, errs[i]); });
  for (auto& t : ts) t.join();
  Outcome o;
  o.seconds = since(t0);
  for (auto& e : errs)
    if (!e.empty()) fatal(e);
  o.bytes = size * dirs.size();
  o.rate = double(o.bytes) / o.seconds / (1 << 20);
  o.unit = "MiB/s";
  o.streams = int(dirs.size());
  return o;
}

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return -1;
  std::size_t k = std::min(v.size() - 1, std::size_t(q * double(v.size())));
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
  return v[k];
}

Outcome run_rr(std::uint16_t port, int conns, std::size_t resp_size) {
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(conns));
  std::vector<std::string> errs(static_cast<std::size_t>(conns));
  std::atomic<int> connected{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  SteadyClock::time_point t0;
  for (int i = 0; i < conns; ++i) {
    ts.emplace_back([&, i] {
      auto& err = errs[std::size_t(i)];
      auto& l = lat[std::size_t(i)];
      l.reserve(200000);
      int fd = connect_loopback(port);
      std::uint8_t head[5] = {'R'};
      std::uint32_t resp = std::uint32_t(resp_size);
      std::memcpy(head + 1, &resp, 4);
      if (fd < 0 || !send_all(fd, head, 5)) {
        err = sock_error("rr connect");
        ++connected;
        return;
      }
      ++connected;
      while (!go) std::this_thread::sleep_for(1ms);
      std::vector<std::uint8_t> req(kRequest, 'q'), in(resp_size);
      std::memcpy(req.data(), "GET / HTTP/1.1\r\n", 16);
      while (since(t0) < g_seconds) {
        auto s = SteadyClock::now();
        if (!send_all(fd, req.data(), req.size())) {
          err = sock_error("rr request");
          break;
        }
        if (!read_exact(fd, in.data(), in.size())) {
          err = sock_error("rr response");
          break;
        }
        if (g_verify && std::memcmp(in.data(), g_pattern.data(), in.size()) != 0) {
          err = "rr: response content mismatch";
          break;
        }
        l.push_back(since(s) * 1e3);
      }
      ::close(fd);
    });
  }
  while (connected < conns) std::this_thread::sleep_for(1ms);
  t0 = SteadyClock::now();
  go = true;
  for (auto& t : ts) t.join();
  Outcome o;
  o.seconds = since(t0);
  for (auto& e : errs)
    if (!e.empty()) fatal(e);
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  o.ops = all.size();
  o.bytes = o.ops * (kRequest + resp_size);
  o.rate = double(o.ops) / o.seconds;
  o.unit = "req/s";
  o.p50_ms = percentile(all, 0.50);
  o.p99_ms = percentile(all, 0.99);
  o.streams = conns;
  return o;
}

Outcome run_connect(std::uint16_t port, int workers) {
  std::atomic<std::uint64_t> ok{0};
  std::vector<std::string> errs(static_cast<std::size_t>(workers));
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(workers));
  std::vector<std::thread> ts;
  auto t0 = SteadyClock::now();
  for (int i = 0; i < workers; ++i) {
    ts.emplace_back([&, i] {
      auto& err = errs[std::size_t(i)];
      while (since(t0) < g_seconds) {
        auto s = SteadyClock::now();
        int fd = connect_loopback(port);
        if (fd < 0) {
          err = sock_error("connect");
          return;
        }
        std::uint8_t b = 'C';
        bool good = send_all(fd, &b, 1) && read_exact(fd, &b, 1);
        if (!good) err = sock_error("connect: 1-byte echo");
        else if (b != 'C') err = "connect: wrong echo byte";
        ::close(fd);
        if (!err.empty()) return;
        lat[std::size_t(i)].push_back(since(s) * 1e3);
        ++ok;
      }
    });
  }
  for (auto& t : ts) t.join();
  Outcome o;
  o.seconds = since(t0);
  for (auto& e : errs)
    if (!e.empty()) fatal(e);
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  o.ops = ok;
  o.bytes = 2 * o.ops;
  o.rate = double(o.ops) / o.seconds;
  o.unit = "conn/s";
  o.p50_ms = percentile(all, 0.50);
  o.p99_ms = percentile(all, 0.99);
  o.streams = workers;
  return o;
}

// Slow consumers: one download read by the user at `kSlowRate` and one upload the backend reads
// at that rate, at once, each g_seconds long; the figure is the peak RSS of server + client
// (it must stay bounded by the flow-control windows, whatever the transfer size).
constexpr std::uint32_t kSlowRate = 16u << 20;  // bytes per second

std::uint64_t slow_size() { return std::max<std::uint64_t>(4u << 20, std::uint64_t(double(kSlowRate) * g_seconds)); }

Outcome run_slow(std::uint16_t port, Impl& impl) {
  std::uint64_t size = slow_size();
  std::string err_down, err_up;
  auto t0 = SteadyClock::now();
  std::thread down([&] {
    int fd = connect_loopback(port);
    if (fd < 0) {
      err_down = sock_error("slow download connect");
      return;
    }
    std::uint8_t head[9] = {'D'};
    std::memcpy(head + 1, &size, 8);
    std::vector<std::uint8_t> buf(kChunk);
    std::uint64_t bad = 0;
    if (!send_all(fd, head, 9)) {
      err_down = sock_error("slow download request");
    } else {
      std::int64_t got = recv_pattern(fd, buf, bad, kSlowRate);
      if (got == -1) err_down = sock_error("slow download recv");
      else if (got == -2) err_down = fmt::format("slow download: content mismatch at offset {}", bad);
      else if (std::uint64_t(got) != size) err_down = fmt::format("slow download: received {} bytes, backend sent {}", got, size);
    }
    ::close(fd);
  });
  std::thread up([&] {
    int fd = connect_loopback(port);
    if (fd < 0) {
      err_up = sock_error("slow upload connect");
      return;
    }
    std::uint8_t head[13] = {'S'};
    std::memcpy(head + 1, &size, 8);
    std::memcpy(head + 9, &kSlowRate, 4);
    std::uint64_t got = 0;
    if (!send_all(fd, head, 13) || !send_pattern(fd, size)) err_up = sock_error("slow upload send");
    else if (::shutdown(fd, SHUT_WR) != 0) err_up = sock_error("slow upload shutdown");
    else if (!read_exact(fd, &got, 8)) err_up = sock_error("slow upload: waiting for the backend's count");
    else if (got != size) err_up = fmt::format("slow upload: backend received {} bytes, sent {}", got, size);
    ::close(fd);
  });
  down.join();
  up.join();
  if (!err_down.empty()) fatal(err_down);
  if (!err_up.empty()) fatal(err_up);
  Outcome o;
  o.seconds = since(t0);
  o.bytes = 2 * size;
  auto [ps, pc] = impl.peak_kib();
  o.rate = impl.single_process() ? double(ps) / 1024 : double(ps + pc) / 1024;
  o.unit = "MiB peak";
  o.streams = 2;
  return o;
}

// HTTP through the tunnel with wrk (-t2 -c64 by default): GET /BODY, keep-alive, against the
// backend's HttpResponder. Skipped (rate -1) when wrk is not installed.
std::string g_wrk = "wrk";
bool g_have_wrk = true;

Outcome run_http(std::uint16_t port, int conns, std::size_t body, std::uint64_t& served) {
  Outcome o;
  o.unit = "req/s";
  o.streams = conns;
  if (!g_have_wrk) {
    o.rate = -1;
    return o;
  }
  int secs = std::max(1, int(g_seconds + 0.5));
  std::string cmd = fmt::format("{} -t2 -c{} -d{}s --timeout {}s --latency http://127.0.0.1:{}/{} 2>&1", g_wrk, conns, secs,
                                g_stall_s, port, body);
  auto t0 = SteadyClock::now();
  std::string text;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char b[4096];
    std::size_t n;
    while ((n = std::fread(b, 1, sizeof b, f)) > 0) text.append(b, n);
    int st = ::pclose(f);
    if (st != 0) fatal(fmt::format("wrk exited with status {}:\n{}", st, text));
  } else {
    fatal("cannot run wrk");
  }
  o.seconds = since(t0);
  auto number_after = [&](const std::string& key, double& v, std::string* unit) -> bool {
    auto p = text.find(key);
    if (p == std::string::npos) return false;
    const char* c = text.c_str() + p + key.size();
    char* e = nullptr;
    v = std::strtod(c, &e);
    if (e == c) return false;
    if (unit) {
      std::string u;
      while (*e && std::isalpha(static_cast<unsigned char>(*e))) u += *e++;
      *unit = u;
    }
    return true;
  };
  double rps = 0, reqs = 0, p50 = 0, p99 = 0;
  std::string u50, u99;
  auto ms = [](double v, const std::string& u) { return u == "us" ? v / 1e3 : u == "s" ? v * 1e3 : v; };
  if (!number_after("Requests/sec:", rps, nullptr) || !number_after("\n     50%", p50, &u50) || !number_after("\n     99%", p99, &u99))
    fatal(fmt::format("cannot parse wrk output:\n{}", text));
  {
    auto p = text.find(" requests in ");
    if (p != std::string::npos) {
      auto q = text.rfind('\n', p);
      reqs = std::strtod(text.c_str() + (q == std::string::npos ? 0 : q + 1), nullptr);
    }
  }
  if (text.find("Non-2xx") != std::string::npos) fatal(fmt::format("wrk: non-2xx responses:\n{}", text));
  double errors = 0;
  if (auto p = text.find("Socket errors:"); p != std::string::npos) {
    for (const char* key : {"connect ", "read ", "write ", "timeout "}) {
      auto q = text.find(key, p);
      if (q != std::string::npos) errors += std::strtod(text.c_str() + q + std::strlen(key), nullptr);
    }
  }
  if (errors > 0.01 * std::max(1.0, reqs)) fatal(fmt::format("wrk: {} socket errors in {} requests:\n{}", errors, reqs, text));
  o.rate = rps;
  o.ops = std::uint64_t(reqs);
  o.bytes = o.ops * body;
  o.p50_ms = ms(p50, u50);
  o.p99_ms = ms(p99, u99);
  served = o.ops;
  return o;
}

// Opens n connections through the tunnel (each proven end to end by a 1-byte echo), keeps them
// open, and reports the growth of the server's and the client's resident memory per connection.
// Opening stops after kIdleOpenLimit seconds (slow peers); the figure is per connection opened.
constexpr double kIdleOpenLimit = 45;

Outcome run_idle(std::uint16_t port, int n, Impl& impl, Backend& backend, double& server_kib, double& client_kib) {
  std::this_thread::sleep_for(200ms);
  auto [s0, c0] = impl.rss_kib();
  std::vector<int> fds;
  fds.reserve(std::size_t(n));
  auto t0 = SteadyClock::now();
  for (int i = 0; i < n; ++i) {
    if (since(t0) > kIdleOpenLimit) {
      std::fprintf(stderr, "   idle: only %d of %d connections opened within %.0f s; measuring those\n", i, n, kIdleOpenLimit);
      break;
    }
    int fd = connect_loopback(port);
    if (fd < 0) fatal(sock_error(fmt::format("idle: connection {}", i).c_str()));
    std::uint8_t b = 'I';
    if (!send_all(fd, &b, 1) || !read_exact(fd, &b, 1)) fatal(sock_error(fmt::format("idle: echo on connection {}", i).c_str()));
    fds.push_back(fd);
  }
  n = int(fds.size());
  Outcome o;
  o.seconds = since(t0);
  std::this_thread::sleep_for(500ms);
  impl.check_alive();
  auto [s1, c1] = impl.rss_kib();
  server_kib = double(s1 - s0) / n;
  client_kib = double(c1 - c0) / n;
  for (int fd : fds) ::close(fd);
  backend.close_parked();
  std::this_thread::sleep_for(300ms);
  o.ops = std::uint64_t(n);
  o.bytes = 2 * o.ops;
  o.rate = impl.single_process() ? server_kib : server_kib + client_kib;
  o.unit = "KiB/conn";
  o.streams = n;
  return o;
}

int g_idle = 1000;
int g_idle_big = 10000;

int default_c(const std::string& scenario) {
  if (scenario == "idle") return g_idle;
  if (scenario == "idle-10k") return g_idle_big;
  if (g_c > 0) return g_c;
  if (scenario == "rr" || scenario == "http" || scenario == "http-64k") return 64;
  if (scenario == "connect") return 32;
  return 8;  // parallel
}

struct Row {
  std::string scenario, impl;
  Outcome o;
  double cpu_server = 0, cpu_client = 0, cpu_process = 0;  // seconds during the scenario
  long rss_server = -1, rss_client = -1;                   // KiB
  bool in_process = false;
  bool skipped = false;                             // not applicable to this implementation
  double idle_server_kib = 0, idle_client_kib = 0;  // idle: RSS growth per connection
  std::string load;                                  // load average when the run ended
};

Row run_scenario(const std::string& sc, Impl& impl, Backend& backend, bool in_process) {
  std::uint16_t port = impl.tunnel_port();
  impl.reset_peak();
  auto c0 = impl.cpu();
  std::uint64_t sunk0 = backend.sunk(), sourced0 = backend.sourced(), http0 = backend.http_requests();
  Outcome o;
  double idle_s = 0, idle_c = 0;
  std::uint64_t http_served = 0;
  if (!impl.supports(sc)) {
    Row r;
    r.scenario = sc;
    r.impl = impl.name();
    r.skipped = true;
    return r;
  }
  if (sc == "upload") o = run_streams(port, {Dir::up}, g_size);
  else if (sc == "download") o = run_streams(port, {Dir::down}, g_size);
  else if (sc == "both") o = run_streams(port, {Dir::up, Dir::down}, g_size);
  else if (sc == "parallel") o = run_streams(port, std::vector<Dir>(std::size_t(default_c(sc)), Dir::up), g_size);
  else if (sc == "parallel-down") o = run_streams(port, std::vector<Dir>(std::size_t(default_c(sc)), Dir::down), g_size);
  else if (sc == "rr") o = run_rr(port, default_c(sc), g_resp);
  else if (sc == "rr-64k") o = run_rr(port, default_c("rr"), 64 * 1024);
  else if (sc == "idle" || sc == "idle-10k") o = run_idle(port, default_c(sc), impl, backend, idle_s, idle_c);
  else if (sc == "http") o = run_http(port, default_c(sc), 1024, http_served);
  else if (sc == "http-64k") o = run_http(port, default_c(sc), 64 * 1024, http_served);
  else if (sc == "slow") o = run_slow(port, impl);
  else if (sc == "connect") o = run_connect(port, default_c(sc));
  else fatal("unknown scenario " + sc);
  auto c1 = impl.cpu();
  impl.check_alive();
  if (o.rate < 0) {  // not measurable here (e.g. no wrk)
    Row r;
    r.scenario = sc;
    r.impl = impl.name();
    r.skipped = true;
    return r;
  }
  if (backend.http_requests() - http0 < http_served)
    fatal(fmt::format("{} / {}: wrk counted {} responses, the backend sent {}", impl.name(), sc, http_served,
                      backend.http_requests() - http0));
  auto berr = backend.error();
  if (!berr.empty()) fatal(fmt::format("{} / {}: {}", impl.name(), sc, berr));
  // Cross-check the backend's own counters with what the scenario moved.
  std::uint64_t up = 0, down = 0;
  if (sc == "upload" || sc == "parallel") up = o.bytes;
  if (sc == "download" || sc == "parallel-down") down = o.bytes;
  if (sc == "both") up = down = g_size;
  if (sc == "slow") up = down = slow_size();
  if (backend.sunk() - sunk0 != up || backend.sourced() - sourced0 != down)
    fatal(fmt::format("{} / {}: backend counted {} in / {} out, expected {} / {}", impl.name(), sc,
                      backend.sunk() - sunk0, backend.sourced() - sourced0, up, down));
  Row r;
  r.scenario = sc;
  r.impl = impl.name();
  r.o = o;
  r.cpu_server = c1.server - c0.server;
  r.cpu_client = c1.client - c0.client;
  r.cpu_process = c1.process - c0.process;
  auto [s, c] = impl.peak_kib();
  r.rss_server = s;
  r.rss_client = c;
  r.in_process = in_process;
  r.idle_server_kib = idle_s;
  r.idle_client_kib = idle_c;
  r.load = loadavg();
  return r;
}

// CPU per unit: seconds per GiB for streams, microseconds per operation otherwise.
bool is_stream(const Row& r) { return r.o.unit == "MiB/s"; }
double cpu_per(const Row& r, double cpu) {
  if (is_stream(r)) return cpu / (double(r.o.bytes) / double(1ull << 30));
  return r.o.ops ? cpu * 1e6 / double(r.o.ops) : 0;
}

std::string scenario_label(const Row& r) {
  if (r.scenario == "rr") return fmt::format("rr {} B req / {} B resp, c={}", kRequest, g_resp, r.o.streams);
  if (r.scenario == "rr-64k") return fmt::format("rr {} B req / 64 KiB resp, c={}", kRequest, r.o.streams);
  if (r.scenario == "idle" || r.scenario == "idle-10k") return fmt::format("idle: {} open connections, RSS growth", r.o.streams);
  if (r.scenario == "http") return fmt::format("HTTP 1 KiB responses, wrk -t2 -c{}", r.o.streams);
  if (r.scenario == "http-64k") return fmt::format("HTTP 64 KiB responses, wrk -t2 -c{}", r.o.streams);
  if (r.scenario == "slow") return fmt::format("slow consumers ({} MiB up + down at {} MiB/s)", slow_size() >> 20, kSlowRate >> 20);
  if (r.scenario == "connect") return fmt::format("connect (1-byte echo), c={}", r.o.streams);
  if (r.scenario == "parallel" || r.scenario == "parallel-down")
    return fmt::format("{} x{} ({} each)", r.scenario, r.o.streams, fmt::format("{} MiB", g_size >> 20));
  return fmt::format("{} ({} MiB)", r.scenario, (g_size * (r.scenario == "both" ? 2 : 1)) >> 20);
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) {
      o += fmt::format("\\u{:04x}", int(ch));
      continue;
    }
    o += ch;
  }
  return o;
}

std::string cpu_model() {
  auto s = read_file("/proc/cpuinfo");
  auto p = s.find("model name");
  if (p == std::string::npos) return "?";
  auto c = s.find(':', p);
  auto e = s.find('\n', c);
  return s.substr(c + 2, e - c - 2);
}

std::string exe_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, std::size_t(n));
  return p.substr(0, p.rfind('/'));
}

void usage(FILE* f) {
  std::fprintf(f,
               "usage: vtunnel-bench [SCENARIO[,SCENARIO...]] [options]\n"
               "scenarios: upload download both parallel parallel-down rr rr-64k http http-64k connect idle idle-10k slow\n"
               "           (default: upload download parallel http http-64k connect idle idle-10k slow)\n"
               "  -size BYTES        per stream (default 512M; K/M/G suffixes)\n"
               "  -c N               streams (parallel, default 8) / connections (rr 64, connect 32)\n"
               "  -seconds S         duration of rr and connect (default 5)\n"
               "  -resp BYTES        rr response size (default 1024; requests are 1 KiB); rr-64k: 64 KiB\n"
               "  -idle-conns N      idle: connections held open (default 1000); idle-10k: -idle-big N (10000)\n"
               "  --inproc           run ours in this process (the default when no binary is given)\n"
               "  --ours-bin PATH    run our CLI black-box (vtunnel server/client)\n"
               "  --compare-go PATH  also run the Go peer (vtpeer) black-box; ratios are against it\n"
               "                     (with no --ours-bin/--inproc: ours = the vtunnel CLI next to this build)\n"
               "  --compare-openssh  also run OpenSSH: a throwaway sshd (root) + ssh -N -R, aes128-gcm\n"
               "  --compare-socat [PATH]  also run the plain relay baseline: socat -b131072, no crypto\n"
               "  --compare-ceiling [PATH]  also run issue 7's ceiling: the vtunnel-ceiling relay pair\n"
               "                     (blocking sockets, AES-128-GCM in place, no SSH/WebSocket);\n"
               "                     default PATH: vtunnel-ceiling next to this binary\n"
               "  --pair NAME=SERVER_BIN,CLIENT_BIN[,vtunnel|vtpeer]  any CLI-compatible pair, black-box\n"
               "                     (repeatable; style vtpeer by default: no -bind flag)\n"
               "  --compare BIN      shorthand for --pair BIN=BIN,BIN (e.g. your Go build of the original)\n"
               "  --server-bin PATH --client-bin PATH [--server-args-style vtunnel|vtpeer] [--name NAME]\n"
               "                     one CLI-compatible pair, black-box\n"
               "  --wrk PATH         wrk for the http scenarios (default: wrk on PATH; skipped without it)\n"
               "  --json FILE        write the rows as JSON\n"
               "  --stall-timeout S  fail when a socket makes no progress for S seconds (default 20)\n"
               "  --no-verify        check counts only, not content\n"
               "  -repeat N          run each scenario N times, report the run with the median rate\n"
               "  -interleave        with -repeat: every implementation runs side by side; each scenario\n"
               "                     is run once by each of them in turn (rotating who goes first), N\n"
               "                     times, so a slow phase of the host hits them all alike\n");
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  pthread_setname_np(pthread_self(), "loadgen");  // user-side threads inherit it
  std::vector<std::string> scenarios;
  std::string json_path, ours_bin, go_bin, server_bin, client_bin, style = "vtunnel", custom_name;
  bool inproc = false, openssh = false;
  std::string socat_bin, ceiling_bin;
  struct PairSpec {
    std::string name, server, client, style;
  };
  std::vector<PairSpec> pairs;
  std::string command;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.find(' ') != std::string::npos) a = "'" + a + "'";
    command += (i ? " " : "") + a;
  }
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      std::string key = a;
      while (!key.empty() && key[0] == '-') key.erase(0, 1);
      std::string val;
      bool has_val = false;
      if (auto eq = key.find('='); eq != std::string::npos && a[0] == '-') {
        val = key.substr(eq + 1);
        key = key.substr(0, eq);
        has_val = true;
      }
      auto next = [&]() -> std::string {
        if (has_val) return val;
        if (i + 1 >= argc) throw std::invalid_argument("missing value for " + a);
        return argv[++i];
      };
      if (a[0] != '-') {
        std::stringstream ss(a);
        std::string s;
        while (std::getline(ss, s, ',')) scenarios.push_back(s);
      } else if (key == "h" || key == "help") {
        usage(stdout);
        return 0;
      } else if (key == "size") g_size = parse_size(next());
      else if (key == "c") g_c = std::stoi(next());
      else if (key == "idle-conns") g_idle = std::max(1, std::stoi(next()));
      else if (key == "seconds") g_seconds = std::stod(next());
      else if (key == "resp") g_resp = std::size_t(parse_size(next()));
      else if (key == "json") json_path = next();
      else if (key == "inproc") inproc = true;
      else if (key == "ours-bin") ours_bin = next();
      else if (key == "compare-go") go_bin = next();
      else if (key == "server-bin") server_bin = next();
      else if (key == "client-bin") client_bin = next();
      else if (key == "server-args-style") style = next();
      else if (key == "name") custom_name = next();
      else if (key == "compare-openssh") openssh = true;
      else if (key == "compare-socat") {
        socat_bin = "/usr/bin/socat";
        if (has_val) socat_bin = val;
        else if (i + 1 < argc && argv[i + 1][0] == '/') socat_bin = argv[++i];
      } else if (key == "compare-ceiling") {
        ceiling_bin = exe_dir() + "/vtunnel-ceiling";
        if (has_val) ceiling_bin = val;
        else if (i + 1 < argc && argv[i + 1][0] != '-' && std::strchr(argv[i + 1], '/')) ceiling_bin = argv[++i];
      } else if (key == "pair") {
        std::string v = next();
        auto eq = v.find('=');
        if (eq == std::string::npos || eq == 0) throw std::invalid_argument("--pair NAME=SERVER_BIN,CLIENT_BIN[,STYLE]");
        PairSpec ps;
        ps.name = v.substr(0, eq);
        std::vector<std::string> parts;
        std::stringstream ss(v.substr(eq + 1));
        std::string part;
        while (std::getline(ss, part, ',')) parts.push_back(part);
        if (parts.size() < 2 || parts.size() > 3) throw std::invalid_argument("--pair NAME=SERVER_BIN,CLIENT_BIN[,STYLE]");
        ps.server = parts[0];
        ps.client = parts[1];
        ps.style = parts.size() == 3 ? parts[2] : "vtpeer";
        if (ps.style != "vtunnel" && ps.style != "vtpeer") throw std::invalid_argument("--pair style must be vtunnel or vtpeer");
        pairs.push_back(ps);
      } else if (key == "compare") {
        std::string b = next();
        pairs.push_back({b, b, b, "vtpeer"});
      } else if (key == "wrk") g_wrk = next();
      else if (key == "idle-big") g_idle_big = std::max(1, std::stoi(next()));
      else if (key == "stall-timeout") g_stall_s = std::stoi(next());
      else if (key == "repeat") g_repeat = std::max(1, std::stoi(next()));
      else if (key == "interleave") g_interleave = true;
      else if (key == "no-verify") g_verify = false;
      else throw std::invalid_argument("unknown flag " + a);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vtunnel-bench: %s\n", e.what());
    usage(stderr);
    return 2;
  }
  if (scenarios.empty()) scenarios = {"upload", "download", "parallel", "http", "http-64k", "connect", "idle", "idle-10k", "slow"};
  for (auto& sc : scenarios) {
    static const char* known[] = {"upload", "download", "both", "parallel", "parallel-down", "rr", "rr-64k", "http",
                                  "http-64k", "connect", "idle", "idle-10k", "slow"};
    if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return sc == k; }) == std::end(known)) {
      std::fprintf(stderr, "vtunnel-bench: unknown scenario %s\n", sc.c_str());
      usage(stderr);
      return 2;
    }
  }
  for (auto& sc : scenarios) {
    if (sc != "http" && sc != "http-64k") continue;
    std::string probe = fmt::format("{} --version >/dev/null 2>&1", g_wrk);
    int st = std::system(probe.c_str());
    // wrk --version exits 1 after printing its version; 127 means not found
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) == 127) {
      std::fprintf(stderr, "vtunnel-bench: %s not found: http scenarios skipped (apt-get install wrk)\n", g_wrk.c_str());
      g_have_wrk = false;
    }
    break;
  }
  if (style != "vtunnel" && style != "vtpeer") {
    std::fprintf(stderr, "vtunnel-bench: --server-args-style must be vtunnel or vtpeer\n");
    return 2;
  }
  if (server_bin.empty() != client_bin.empty()) {
    std::fprintf(stderr, "vtunnel-bench: --server-bin and --client-bin go together\n");
    return 2;
  }
  if (g_resp == 0 || g_resp > (64u << 20)) {
    std::fprintf(stderr, "vtunnel-bench: -resp out of range\n");
    return 2;
  }
  if ((!go_bin.empty() || openssh || !socat_bin.empty() || !ceiling_bin.empty() || !pairs.empty()) && ours_bin.empty() &&
      !inproc)
    ours_bin = exe_dir() + "/../apps/vtunnel";

  // idle-10k holds 10,000 user sockets here (the backend ends live in the FdHolder child), and
  // the server and client (which inherit the limit) about as many each: raise the hard limit
  // too when allowed.
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rlim_t want = rlim_t(std::max(g_idle, g_idle_big)) + 2048;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
    rlimit raised{want, want};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    int fit = int(rl.rlim_cur - 512);
    std::fprintf(stderr, "vtunnel-bench: RLIMIT_NOFILE %llu: idle runs capped at %d connections\n",
                 static_cast<unsigned long long>(rl.rlim_cur), fit);
    g_idle = std::min(g_idle, fit);
    g_idle_big = std::min(g_idle_big, fit);
  }

  g_pattern.resize(kPeriod + std::max(kChunk, g_resp));
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (std::size_t i = 0; i < kPeriod; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    g_pattern[i] = std::uint8_t(x >> 24);
  }
  for (std::size_t i = kPeriod; i < g_pattern.size(); ++i) g_pattern[i] = g_pattern[i - kPeriod];

  std::vector<std::unique_ptr<Impl>> impls;
  std::vector<bool> impl_inproc;
  if (inproc || (ours_bin.empty() && go_bin.empty() && server_bin.empty())) {
    impls.push_back(std::make_unique<InProcess>());
    impl_inproc.push_back(true);
  }
  if (!ours_bin.empty()) {
    impls.push_back(std::make_unique<BlackBox>("vtunnel (CLI)", ours_bin, ours_bin, "vtunnel"));
    impl_inproc.push_back(false);
  }
  if (!ceiling_bin.empty()) {  // right after ours: the closest in time, the first ratio column
    if (::access(ceiling_bin.c_str(), X_OK) != 0) {
      std::fprintf(stderr, "vtunnel-bench: --compare-ceiling: %s is not executable\n", ceiling_bin.c_str());
      return 2;
    }
    impls.push_back(std::make_unique<CeilingRelay>(ceiling_bin));
    impl_inproc.push_back(false);
  }
  if (!server_bin.empty()) {
    impls.push_back(std::make_unique<BlackBox>(custom_name.empty() ? server_bin : custom_name, server_bin, client_bin, style));
    impl_inproc.push_back(false);
  }
  for (auto& ps : pairs) {
    impls.push_back(std::make_unique<BlackBox>(ps.name, ps.server, ps.client, ps.style));
    impl_inproc.push_back(false);
  }
  if (openssh) {
    impls.push_back(std::make_unique<BlackBox>("OpenSSH ssh -R (aes128-gcm)", "/usr/sbin/sshd", "/usr/bin/ssh", "openssh"));
    impl_inproc.push_back(false);
  }
  if (!go_bin.empty()) {
    impls.push_back(std::make_unique<BlackBox>("Go peer (x/crypto/ssh)", go_bin, go_bin, "vtpeer"));
    impl_inproc.push_back(false);
  }
  if (!socat_bin.empty()) {
    impls.push_back(std::make_unique<PlainRelay>(socat_bin));
    impl_inproc.push_back(false);
  }
  for (std::size_t i = 0; i < impls.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (impls[i]->name() == impls[j]->name()) {
        std::fprintf(stderr, "vtunnel-bench: two implementations named %s (use --name)\n", impls[i]->name().c_str());
        return 2;
      }
    }
  }

  std::string load_before = loadavg();
  utsname un{};
  ::uname(&un);
  std::string machine = fmt::format("{} {}, {} x {}, {}", un.sysname, un.release, std::thread::hardware_concurrency(),
                                    cpu_model(), un.machine);
  std::fprintf(stderr, "vtunnel-bench: %s; load average %s; -size %llu MiB, rr/connect %.1f s\n", machine.c_str(),
               load_before.c_str(), static_cast<unsigned long long>(g_size >> 20), g_seconds);

  // Watchdog: the whole run is bounded even if something hangs outside socket timeouts.
  double budget = 120 + double(impls.size() * scenarios.size()) * g_repeat * (g_seconds + 60 + double(g_size >> 20) / 20.0);
  std::thread([budget] {
    std::this_thread::sleep_for(std::chrono::duration<double>(budget));
    fatal(fmt::format("watchdog: the run took more than {:.0f} s", budget));
  }).detach();

  int max_c = 1;
  for (auto& sc : scenarios) {
    // idle connections and HTTP (the responder's epoll thread) hold no backend thread
    if (sc == "upload" || sc == "download" || sc == "idle" || sc == "idle-10k" || sc == "http" || sc == "http-64k") continue;
    max_c = std::max(max_c, sc == "both" || sc == "slow" ? 2 : default_c(sc == "rr-64k" ? "rr" : sc));
  }
  // runs[k][s]: the runs of scenario s by implementation k.
  std::vector<std::vector<std::vector<Row>>> runs(impls.size(), std::vector<std::vector<Row>>(scenarios.size()));
  std::vector<std::unique_ptr<Backend>> backends(impls.size());
  std::vector<bool> fresh(impls.size(), true);
  auto start = [&](std::size_t k) {
    backends[k] = std::make_unique<Backend>(max_c + 4);
    impls[k]->start(backends[k]->port());
    fresh[k] = true;
  };
  auto stop = [&](std::size_t k) {
    impls[k]->stop();
    backends[k].reset();
  };
  auto measure = [&](std::size_t k, std::size_t s) {
    Impl& impl = *impls[k];
    const std::string& sc = scenarios[s];
    // Memory per idle connection is measured on a freshly started pair: memory that earlier
    // scenarios left allocated (and the allocator reuses) would hide the growth. The same for
    // the slow consumers' peak RSS (heap kept from 10,000 idle connections would dominate it).
    if ((sc == "idle" || sc == "idle-10k" || sc == "slow") && !fresh[k] && impl.supports(sc)) {
      impl.stop();
      impl.start(backends[k]->port());
    }
    runs[k][s].push_back(run_scenario(sc, impl, *backends[k], impl_inproc[k]));
    fresh[k] = false;
  };
  std::vector<Row> rows;
  // The run with the median rate (its CPU and memory figures with it).
  auto report = [&](std::size_t k, std::size_t s) {
    const std::string& sc = scenarios[s];
    auto& mine = runs[k][s];
    std::sort(mine.begin(), mine.end(), [](const Row& a, const Row& b) { return a.o.rate < b.o.rate; });
    auto r = mine[mine.size() / 2];
    if (g_repeat > 1) {
      std::string all;
      for (auto& each : mine) all += fmt::format(" {:.0f}", each.o.rate);
      std::fprintf(stderr, "   %-14s runs:%s\n", sc.c_str(), all.c_str());
    }
    if (r.skipped) {
      std::fprintf(stderr, "   %-14s (not applicable)\n", sc.c_str());
      rows.push_back(std::move(r));
      return;
    }
    std::fprintf(stderr, "   %-14s %10.1f %s  (%.2f s, cpu server %.2f s client %.2f s; load %s)\n", sc.c_str(), r.o.rate,
                 r.o.unit.c_str(), r.o.seconds, r.cpu_server, r.cpu_client, r.load.c_str());
    rows.push_back(std::move(r));
  };
  const bool interleaved = g_interleave && g_repeat > 1 && impls.size() > 1;
  if (g_interleave && !interleaved)
    std::fprintf(stderr, "vtunnel-bench: -interleave needs -repeat 2 or more and a second pair; running back to back\n");
  if (interleaved) {
    for (std::size_t k = 0; k < impls.size(); ++k) start(k);
    for (std::size_t s = 0; s < scenarios.size(); ++s) {
      for (int rep = 0; rep < g_repeat; ++rep) {
        for (std::size_t j = 0; j < impls.size(); ++j) {
          const std::size_t k = (j + std::size_t(rep)) % impls.size();
          std::fprintf(stderr, "-- %s, run %d: %s\n", scenarios[s].c_str(), rep + 1, impls[k]->name().c_str());
          measure(k, s);
        }
      }
    }
    for (std::size_t k = 0; k < impls.size(); ++k) {
      std::fprintf(stderr, "== %s\n", impls[k]->name().c_str());
      for (std::size_t s = 0; s < scenarios.size(); ++s) report(k, s);
      stop(k);
    }
  } else {
    for (std::size_t k = 0; k < impls.size(); ++k) {
      std::fprintf(stderr, "== %s\n", impls[k]->name().c_str());
      start(k);
      for (std::size_t s = 0; s < scenarios.size(); ++s) {
        for (int rep = 0; rep < g_repeat; ++rep) measure(k, s);
        report(k, s);
      }
      stop(k);
    }
  }
  std::string load_after = loadavg();

  // Ratios: against ours (the first implementation run).
  std::string ref = impls.front()->name();
  auto find_row = [&](const std::string& impl, const std::string& sc) -> const Row* {
    for (auto& r : rows)
      if (r.impl == impl && r.scenario == sc && !r.skipped) return &r;
    return nullptr;
  };

  std::printf("\nMachine: %s. Load average: %s before, %s after.\n", machine.c_str(), load_before.c_str(), load_after.c_str());
  std::printf("Command: %s\n", command.c_str());
  std::printf("Each row: %s.\n\n", g_repeat > 1 ? fmt::format("the median of {} runs{}", g_repeat,
                                                                interleaved ? ", the implementations taking turns" : "")
                                                        .c_str()
                                                  : "one run");
  std::printf("| scenario | implementation | rate | p50 / p99 ms | CPU server | CPU client | CPU total | RSS peak server / client |%s\n",
              impls.size() > 1 ? " rate vs ours |" : "");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|%s\n", impls.size() > 1 ? "---:|" : "");
  for (auto& r : rows) {
    if (r.skipped) continue;
    std::string lat = r.o.p50_ms >= 0 ? fmt::format("{:.2f} / {:.2f}", r.o.p50_ms, r.o.p99_ms) : "";
    std::string rss = r.in_process ? fmt::format("{:.0f} MiB (process)", double(r.rss_server) / 1024)
                                   : fmt::format("{:.1f} / {:.1f} MiB", double(r.rss_server) / 1024, double(r.rss_client) / 1024);
    std::string cpu_unit = is_stream(r) ? " s/GiB" : " µs/op";
    std::string ratio;
    if (impls.size() > 1) {
      const Row* o = find_row(ref, r.scenario);
      ratio = o && o->o.rate > 0 ? fmt::format(" {:.2f}× |", r.o.rate / o->o.rate) : " |";
    }
    std::string total = fmt::format("{:.2f}{}", cpu_per(r, r.cpu_server + r.cpu_client), cpu_unit);
    if (r.in_process) total += fmt::format(" (process {:.2f})", cpu_per(r, r.cpu_process));
    if (r.scenario == "idle" || r.scenario == "idle-10k") {
      std::string per = r.in_process ? fmt::format("process (server + client): {:.1f} KiB per connection", r.idle_server_kib)
                                     : fmt::format("server / client: {:.1f} / {:.1f} KiB per connection", r.idle_server_kib,
                                                   r.idle_client_kib);
      std::printf("| %s | %s | %.1f KiB/conn | | | | | %s |%s\n", scenario_label(r).c_str(), r.impl.c_str(), r.o.rate,
                  per.c_str(), ratio.c_str());
      continue;
    }
    if (r.scenario == "slow") {
      double gib = double(r.o.bytes) / double(1ull << 30);
      std::printf("| %s | %s | %.1f MiB peak RSS | | %.2f s/GiB | %.2f s/GiB | %.2f s/GiB | %s |%s\n", scenario_label(r).c_str(),
                  r.impl.c_str(), r.o.rate, r.cpu_server / gib, r.cpu_client / gib, (r.cpu_server + r.cpu_client) / gib,
                  rss.c_str(), ratio.c_str());
      continue;
    }
    std::printf("| %s | %s | %.0f %s | %s | %.2f%s | %.2f%s | %s | %s |%s\n", scenario_label(r).c_str(), r.impl.c_str(),
                r.o.rate, r.o.unit.c_str(), lat.c_str(), cpu_per(r, r.cpu_server), cpu_unit.c_str(),
                cpu_per(r, r.cpu_client), cpu_unit.c_str(), total.c_str(), rss.c_str(), ratio.c_str());
  }
  std::printf("\nCPU: seconds per GiB moved through the tunnel (streams) or microseconds per request/connection; "
              "server and client processes (in-process: their threads; \"process\" includes the load generator).\n");

  // The summary: one line per figure, one column per implementation, then ours ÷ each peer.
  enum class What { rate, cpu, p99, value };
  struct Fig {
    std::string label, scenario;
    What what;
    bool lower_better;
    std::string unit;
  };
  std::vector<Fig> figs = {
      {"one stream, upload", "upload", What::rate, false, "MiB/s"},
      {"one stream, download", "download", What::rate, false, "MiB/s"},
      {"upload + download at once", "both", What::rate, false, "MiB/s"},
      {"8 streams aggregate, upload", "parallel", What::rate, false, "MiB/s"},
      {"8 streams aggregate, download", "parallel-down", What::rate, false, "MiB/s"},
      {"CPU per GiB, upload (server + client)", "upload", What::cpu, true, "s/GiB"},
      {"CPU per GiB, download (server + client)", "download", What::cpu, true, "s/GiB"},
      {"CPU per GiB, 8 streams (server + client)", "parallel", What::cpu, true, "s/GiB"},
      {fmt::format("HTTP 1 KiB responses (wrk -t2 -c{})", default_c("http")), "http", What::rate, false, "req/s"},
      {"HTTP 1 KiB responses, p99 latency", "http", What::p99, true, "ms"},
      {fmt::format("HTTP 64 KiB responses (wrk -t2 -c{})", default_c("http")), "http-64k", What::rate, false, "req/s"},
      {"HTTP 64 KiB responses, p99 latency", "http-64k", What::p99, true, "ms"},
      {fmt::format("request/response 1 KiB, c={}", default_c("rr")), "rr", What::rate, false, "req/s"},
      {fmt::format("request/response 64 KiB, c={}", default_c("rr")), "rr-64k", What::rate, false, "req/s"},
      {fmt::format("new connections (1-byte echo, c={})", default_c("connect")), "connect", What::rate, false, "conn/s"},
      {fmt::format("memory per idle connection ({} open)", g_idle), "idle", What::value, true, "KiB"},
      {fmt::format("memory per idle connection ({} on one session)", g_idle_big), "idle-10k", What::value, true, "KiB"},
      {"peak RSS, slow consumers (server + client)", "slow", What::value, true, "MiB"},
  };
  auto fig_value = [&](const Fig& f, const Row& r) -> double {
    switch (f.what) {
      case What::rate:
      case What::value: return r.o.rate;
      case What::cpu: return cpu_per(r, r.cpu_server + r.cpu_client);
      case What::p99: return r.o.p99_ms;
    }
    return 0;
  };
  struct SummaryLine {
    Fig fig;
    std::vector<double> values;  // per implementation; < 0: not run
  };
  std::vector<SummaryLine> summary;
  for (auto& f : figs) {
    SummaryLine line{f, {}};
    bool any = false;
    for (auto& impl : impls) {
      const Row* r = find_row(impl->name(), f.scenario);
      line.values.push_back(r ? fig_value(f, *r) : -1);
      any = any || r;
    }
    if (any) summary.push_back(line);
  }
  std::printf("\nSummary (ratios: ours ÷ peer; above 1 is better for ours where higher is better, below 1 where lower is better):\n\n|"
              " figure |");
  for (auto& impl : impls) std::printf(" %s |", impl->name().c_str());
  for (std::size_t k = 1; k < impls.size(); ++k) std::printf(" ours ÷ %s |", impls[k]->name().c_str());
  std::printf("\n|---|");
  for (std::size_t k = 0; k < 2 * impls.size() - 1; ++k) std::printf("---:|");
  std::printf("\n");
  auto fmt_value = [](double v) {
    if (v < 0) return std::string("—");
    if (v >= 100) return fmt::format("{:.0f}", v);
    if (v >= 10) return fmt::format("{:.1f}", v);
    return fmt::format("{:.2f}", v);
  };
  for (auto& line : summary) {
    std::printf("| %s (%s%s) |", line.fig.label.c_str(), line.fig.unit.c_str(), line.fig.lower_better ? ", lower is better" : "");
    for (double v : line.values) std::printf(" %s |", fmt_value(v).c_str());
    for (std::size_t k = 1; k < impls.size(); ++k) {
      double a = line.values[0], b = line.values[k];
      if (a >= 0 && b > 0) std::printf(" %.2f× |", a / b);
      else std::printf(" — |");
    }
    std::printf("\n");
  }

  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << "{\n";
    out << fmt::format("  \"command\": \"{}\",\n  \"machine\": \"{}\",\n  \"loadavg_before\": \"{}\",\n  \"loadavg_after\": \"{}\",\n",
                       json_escape(command), json_escape(machine), load_before, load_after);
    out << fmt::format("  \"size_bytes\": {},\n  \"seconds\": {},\n  \"repeat\": {},\n  \"interleaved\": {},\n  \"reference\": \"{}\",\n",
                       g_size, g_seconds, g_repeat, interleaved, json_escape(ref));
    out << "  \"implementations\": [";
    for (std::size_t k = 0; k < impls.size(); ++k) out << (k ? ", " : "") << "\"" << json_escape(impls[k]->name()) << "\"";
    out << "],\n  \"rows\": [\n";
    std::vector<const Row*> run;
    for (auto& r : rows)
      if (!r.skipped) run.push_back(&r);
    for (std::size_t i = 0; i < run.size(); ++i) {
      auto& r = *run[i];
      const Row* o = find_row(ref, r.scenario);
      double rr = o ? o->o.rate : 0;
      out << fmt::format(
          "    {{\"scenario\":\"{}\",\"implementation\":\"{}\",\"in_process\":{},\"rate\":{:.2f},\"unit\":\"{}\","
          "\"streams\":{},\"bytes\":{},\"ops\":{},\"seconds\":{:.4f},\"p50_ms\":{:.4f},\"p99_ms\":{:.4f},"
          "\"cpu_server_s\":{:.4f},\"cpu_client_s\":{:.4f},\"cpu_process_s\":{:.4f},\"cpu_per\":{:.4f},\"cpu_per_unit\":\"{}\","
          "\"rss_peak_server_kib\":{},\"rss_peak_client_kib\":{},\"idle_server_kib_per_conn\":{:.3f},"
          "\"idle_client_kib_per_conn\":{:.3f},\"ratio_vs_reference\":{:.4f}}}{}\n",
          r.scenario, json_escape(r.impl), r.in_process ? "true" : "false", r.o.rate, r.o.unit, r.o.streams, r.o.bytes,
          r.o.ops, r.o.seconds, r.o.p50_ms, r.o.p99_ms, r.cpu_server, r.cpu_client, r.cpu_process,
          cpu_per(r, r.cpu_server + r.cpu_client), is_stream(r) ? "s/GiB" : "us/op", r.rss_server, r.rss_client,
          r.idle_server_kib, r.idle_client_kib, rr > 0 ? r.o.rate / rr : 0.0, i + 1 < run.size() ? "," : "");
    }
    out << "  ],\n  \"summary\": [\n";
    for (std::size_t i = 0; i < summary.size(); ++i) {
      auto& line = summary[i];
      out << fmt::format("    {{\"figure\":\"{}\",\"scenario\":\"{}\",\"unit\":\"{}\",\"lower_is_better\":{},\"values\":{{",
                         json_escape(line.fig.label), line.fig.scenario, line.fig.unit, line.fig.lower_better ? "true" : "false");
      bool first = true;
      for (std::size_t k = 0; k < impls.size(); ++k) {
        if (line.values[k] < 0) continue;
        out << fmt::format("{}\"{}\":{:.4f}", first ? "" : ",", json_escape(impls[k]->name()), line.values[k]);
        first = false;
      }
      out << "},\"ours_over\":{";
      first = true;
      for (std::size_t k = 1; k < impls.size(); ++k) {
        double a = line.values[0], b = line.values[k];
        if (!(a >= 0 && b > 0)) continue;
        out << fmt::format("{}\"{}\":{:.4f}", first ? "" : ",", json_escape(impls[k]->name()), a / b);
        first = false;
      }
      out << fmt::format("}}}}{}\n", i + 1 < summary.size() ? "," : "");
    }
    out << "  ]\n}\n";
  }
  return 0;
}
