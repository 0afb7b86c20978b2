// vtunnel-bench-runtime: is the runtime the bottleneck? Loopback figures for our io_uring
// coroutine runtime next to a baseline written for the purpose (blocking sockets for one
// stream, epoll for many connections), in the same run and the same topology: the two ends
// always run in two threads, one loop (or one epoll / blocking thread) each.
//
//   vtunnel-bench-runtime [--seconds S] [--repeat N] [--json FILE]   (medians of N runs)
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/buffer_pool.hpp"
#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"

using namespace vtunnel;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

double g_seconds = 3.0;
constexpr std::size_t kChunk = 256 * 1024;

double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// ---- baseline helpers (plain syscalls) -------------------------------------------------------

int baseline_listen(std::uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(fd, 4096);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

int baseline_connect(std::uint16_t port, bool nonblock) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  return fd;
}

// ---- 1. one stream ---------------------------------------------------------------------------

enum class StreamVariant { plain, fixed_send, provided_recv };

double ours_stream(StreamVariant variant) {
  std::atomic<std::uint16_t> port{0};
  std::atomic<std::uint64_t> received{0};
  double elapsed = 0;
  std::thread receiver([&] {
    Loop loop;
    auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
    port = l->port();
    sync_wait(loop, [](TcpListener& li, std::atomic<std::uint64_t>& got, StreamVariant v) -> Task<void> {
      auto s = co_await li.accept();
      std::uint64_t n = 0;
      if (v == StreamVariant::provided_recv) {
        ProvidedBufferRing ring(1, 16, kChunk);
        for (;;) {
          auto r = co_await ring.recv(*s);
          if (!r) break;
          n += r->size();
        }
      } else {
        std::vector<std::uint8_t> buf(kChunk);
        for (;;) {
          auto r = co_await s->read_some(buf);
          if (!r) break;
          n += *r;
        }
      }
      got = n;
    }(*l, received, variant));
  });
  while (port == 0) std::this_thread::yield();
  std::thread sender([&] {
    Loop loop;
    sync_wait(loop, [](std::uint16_t p, StreamVariant v, double& out) -> Task<void> {
      auto s = co_await TcpStream::connect(SocketAddress::loopback_v4(p));
      auto t0 = SteadyClock::now();
      if (v == StreamVariant::fixed_send) {
        FixedBufferPool pool(1, kChunk);
        auto b = pool.try_acquire();
        std::memset(b->data, 0x5a, b->size);
        while (seconds_since(t0) < g_seconds) {
          std::size_t off = 0;
          while (off < kChunk) {
            auto n = co_await s->write_some_fixed(ByteSpan(b->data + off, kChunk - off), b->index);
            if (!n) co_return;
            off += *n;
          }
        }
        pool.release(*b);
      } else {
        std::vector<std::uint8_t> buf(kChunk, 0x5a);
        while (seconds_since(t0) < g_seconds) {
          auto w = co_await s->write_all(buf);
          if (!w) co_return;
        }
      }
      (void)co_await s->shutdown_write();
      std::uint8_t b[1];
      (void)co_await s->read_some(MutableByteSpan(b));  // the receiver closes after EOF
      out = seconds_since(t0);
    }(port, variant, elapsed));
  });
  sender.join();
  receiver.join();
  return double(received) / elapsed / (1 << 20);
}

double baseline_stream() {
  std::uint16_t port = 0;
  int lfd = baseline_listen(port);
  std::atomic<std::uint64_t> received{0};
  std::thread receiver([&] {
    int fd = ::accept(lfd, nullptr, nullptr);
    std::vector<char> buf(kChunk);
    std::uint64_t n = 0;
    for (;;) {
      ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
      if (r <= 0) break;
      n += std::uint64_t(r);
    }
    received = n;
    ::close(fd);
  });
  double elapsed = 0;
  std::thread sender([&] {
    int fd = baseline_connect(port, false);
    std::vector<char> buf(kChunk, 0x5a);
    auto t0 = SteadyClock::now();
    while (seconds_since(t0) < g_seconds) {
      std::size_t off = 0;
      while (off < buf.size()) {
        ssize_t w = ::send(fd, buf.data() + off, buf.size() - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += std::size_t(w);
      }
    }
    ::shutdown(fd, SHUT_WR);
    char b;
    (void)::recv(fd, &b, 1, 0);
    elapsed = seconds_since(t0);
    ::close(fd);
  });
  sender.join();
  receiver.join();
  ::close(lfd);
  return double(received) / elapsed / (1 << 20);
}

// ---- 2. new connections per second (1-byte echo each) ----------------------------------------

constexpr int kCpsConcurrency = 32;

Task<void> cps_server_conn(TcpStream s) {
  std::uint8_t b[16];
  auto r = co_await s.read_some(MutableByteSpan(b));
  if (!r) co_return;
  auto w = co_await s.write_all(ByteSpan(b, *r));
  if (!w) co_return;
  (void)co_await s.read_some(MutableByteSpan(b));  // until the client closes
}

Task<void> ours_accept_loop(TcpListener& l, Scope& conns, std::function<Task<void>(TcpStream)> handler) {
  for (;;) {
    auto c = co_await l.accept();
    if (!c) co_return;
    conns.spawn(handler(std::move(*c)));
  }
}

double ours_cps() {
  std::atomic<std::uint16_t> port{0};
  std::atomic<bool> done{false};
  Loop* server_loop = nullptr;
  std::atomic<bool> server_ready{false};
  std::thread server([&] {
    Loop loop;
    server_loop = &loop;
    auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
    port = l->port();
    server_ready = true;
    sync_wait(loop, [](TcpListener& li, std::atomic<bool>& d) -> Task<void> {
      Scope acceptor, conns;
      acceptor.spawn(ours_accept_loop(li, conns, cps_server_conn));
      while (!d) (void)co_await sleep_for(20ms);
      acceptor.cancel();
      co_await acceptor.join();
      conns.cancel();
      co_await conns.join();
    }(*l, done));
  });
  while (!server_ready) std::this_thread::yield();
  std::uint64_t total = 0;
  double elapsed = 0;
  std::thread client([&] {
    Loop loop;
    sync_wait(loop, [](std::uint16_t p, std::uint64_t& n, double& el) -> Task<void> {
      auto t0 = SteadyClock::now();
      Scope workers;
      for (int i = 0; i < kCpsConcurrency; ++i) {
        workers.spawn([](std::uint16_t pp, std::uint64_t& cnt, SteadyClock::time_point start) -> Task<void> {
          while (seconds_since(start) < g_seconds) {
            auto s = co_await TcpStream::connect(SocketAddress::loopback_v4(pp));
            if (!s) continue;
            std::uint8_t b = 1;
            auto w = co_await s->write_all(ByteSpan(&b, 1));
            if (!w) continue;
            auto r = co_await s->read_some(MutableByteSpan(&b, 1));
            if (r) ++cnt;
          }
        }(p, n, t0));
      }
      co_await workers.join();
      el = seconds_since(t0);
    }(port, total, elapsed));
  });
  client.join();
  done = true;
  server.join();
  (void)server_loop;
  return double(total) / elapsed;
}

// Baseline: epoll on both sides.
double baseline_cps() {
  std::uint16_t port = 0;
  int lfd = baseline_listen(port);
  ::fcntl(lfd, F_SETFL, O_NONBLOCK);
  std::atomic<bool> done{false};
  std::thread server([&] {
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{EPOLLIN, {.fd = lfd}};
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    std::vector<int> replied(65536, 0);
    epoll_event evs[256];
    while (!done) {
      int n = ::epoll_wait(ep, evs, 256, 20);
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        if (fd == lfd) {
          for (;;) {
            int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0) break;
            replied[std::size_t(c)] = 0;
            epoll_event cev{EPOLLIN, {.fd = c}};
            ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          }
          continue;
        }
        char b[16];
        ssize_t r = ::recv(fd, b, sizeof b, 0);
        if (r > 0 && !replied[std::size_t(fd)]) {
          ::send(fd, b, std::size_t(r), MSG_NOSIGNAL);
          replied[std::size_t(fd)] = 1;
        } else if (r == 0 || (r < 0 && errno != EAGAIN)) {
          ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
          ::close(fd);
        }
      }
    }
    ::close(ep);
  });
  std::uint64_t total = 0;
  double elapsed = 0;
  std::thread client([&] {
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    auto open_one = [&] {
      int fd = baseline_connect(port, true);
      epoll_event ev{EPOLLOUT | EPOLLIN, {.fd = fd}};
      ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      return fd;
    };
    std::vector<int> sent(65536, 0);
    auto t0 = SteadyClock::now();
    for (int i = 0; i < kCpsConcurrency; ++i) sent[std::size_t(open_one())] = 0;
    epoll_event evs[256];
    bool stopping = false;
    int open = kCpsConcurrency;
    while (open > 0) {
      int n = ::epoll_wait(ep, evs, 256, 100);
      if (seconds_since(t0) >= g_seconds) stopping = true;
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        auto& st = sent[std::size_t(fd)];
        if (!st && (evs[i].events & EPOLLOUT)) {
          char b = 1;
          if (::send(fd, &b, 1, MSG_NOSIGNAL) == 1) {
            st = 1;
            epoll_event ev{EPOLLIN, {.fd = fd}};
            ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
          }
          continue;
        }
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
          char b;
          ssize_t r = ::recv(fd, &b, 1, 0);
          if (r == 1) ++total;
          ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
          ::close(fd);
          --open;
          if (!stopping) {
            sent[std::size_t(open_one())] = 0;
            ++open;
          }
        }
      }
    }
    elapsed = seconds_since(t0);
    ::close(ep);
  });
  client.join();
  done = true;
  server.join();
  ::close(lfd);
  return double(total) / elapsed;
}

// ---- 3. 1,000 connections doing 64-byte round trips -------------------------------------------

constexpr int kRttConnections = 1000;
constexpr std::size_t kRttMessage = 64;

Task<void> echo_conn(TcpStream s) {
  std::uint8_t b[4096];
  for (;;) {
    auto r = co_await s.read_some(MutableByteSpan(b));
    if (!r) co_return;
    auto w = co_await s.write_all(ByteSpan(b, *r));
    if (!w) co_return;
  }
}

double ours_rtt() {
  std::atomic<std::uint16_t> port{0};
  std::atomic<bool> done{false};
  std::thread server([&] {
    Loop loop;
    auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
    port = l->port();
    sync_wait(loop, [](TcpListener& li, std::atomic<bool>& d) -> Task<void> {
      Scope acceptor, conns;
      acceptor.spawn(ours_accept_loop(li, conns, echo_conn));
      while (!d) (void)co_await sleep_for(20ms);
      acceptor.cancel();
      co_await acceptor.join();
      conns.cancel();
      co_await conns.join();
    }(*l, done));
  });
  while (port == 0) std::this_thread::yield();
  std::uint64_t total = 0;
  double elapsed = 0;
  std::thread client([&] {
    Loop loop;
    sync_wait(loop, [](std::uint16_t p, std::uint64_t& n, double& el) -> Task<void> {
      std::vector<TcpStream> conns;
      for (int i = 0; i < kRttConnections; ++i) {
        auto s = co_await TcpStream::connect(SocketAddress::loopback_v4(p));
        if (s) conns.push_back(std::move(*s));
      }
      auto t0 = SteadyClock::now();
      Scope workers;
      for (auto& c : conns) {
        workers.spawn([](TcpStream& s, std::uint64_t& cnt, SteadyClock::time_point start) -> Task<void> {
          std::uint8_t msg[kRttMessage] = {1};
          std::uint8_t in[kRttMessage];
          while (seconds_since(start) < g_seconds) {
            auto w = co_await s.write_all(ByteSpan(msg, sizeof msg));
            if (!w) co_return;
            std::size_t got = 0;
            while (got < kRttMessage) {
              auto r = co_await s.read_some(MutableByteSpan(in + got, kRttMessage - got));
              if (!r) co_return;
              got += *r;
            }
            ++cnt;
          }
        }(c, n, t0));
      }
      co_await workers.join();
      el = seconds_since(t0);
    }(port, total, elapsed));
  });
  client.join();
  done = true;
  server.join();
  return double(total) / elapsed;
}

double baseline_rtt() {
  std::uint16_t port = 0;
  int lfd = baseline_listen(port);
  std::atomic<bool> done{false};
  std::thread server([&] {
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    ::fcntl(lfd, F_SETFL, O_NONBLOCK);
    epoll_event ev{EPOLLIN, {.fd = lfd}};
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    epoll_event evs[512];
    char b[4096];
    while (!done) {
      int n = ::epoll_wait(ep, evs, 512, 20);
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        if (fd == lfd) {
          for (;;) {
            int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0) break;
            int one = 1;
            ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            epoll_event cev{EPOLLIN, {.fd = c}};
            ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          }
          continue;
        }
        ssize_t r = ::recv(fd, b, sizeof b, 0);
        if (r > 0) {
          ::send(fd, b, std::size_t(r), MSG_NOSIGNAL);  // 64 bytes: never short on loopback
        } else if (r == 0 || errno != EAGAIN) {
          ::close(fd);
        }
      }
    }
    ::close(ep);
  });
  std::uint64_t total = 0;
  double elapsed = 0;
  std::thread client([&] {
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    std::vector<int> fds;
    for (int i = 0; i < kRttConnections; ++i) {
      int fd = baseline_connect(port, false);
      ::fcntl(fd, F_SETFL, O_NONBLOCK);
      fds.push_back(fd);
    }
    std::vector<std::size_t> got(65536, 0);
    char msg[kRttMessage] = {1};
    auto t0 = SteadyClock::now();
    for (int fd : fds) {
      epoll_event ev{EPOLLIN, {.fd = fd}};
      ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      ::send(fd, msg, sizeof msg, MSG_NOSIGNAL);
    }
    epoll_event evs[512];
    char in[4096];
    while (seconds_since(t0) < g_seconds) {
      int n = ::epoll_wait(ep, evs, 512, 100);
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        ssize_t r = ::recv(fd, in, sizeof in, 0);
        if (r <= 0) continue;
        got[std::size_t(fd)] += std::size_t(r);
        if (got[std::size_t(fd)] >= kRttMessage) {
          got[std::size_t(fd)] -= kRttMessage;
          ++total;
          ::send(fd, msg, sizeof msg, MSG_NOSIGNAL);
        }
      }
    }
    elapsed = seconds_since(t0);
    for (int fd : fds) ::close(fd);
    ::close(ep);
  });
  client.join();
  done = true;
  server.join();
  ::close(lfd);
  return double(total) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  int repeat = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) g_seconds = std::stod(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc) repeat = std::max(1, std::stoi(argv[++i]));
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--repeat N] [--json FILE]\n", argv[0]);
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);

  struct Row {
    std::string name, unit;
    double ours, baseline;
  };
  std::vector<Row> rows;
  std::fprintf(stderr, "each figure runs %.1f s, median of %d; two threads per scenario\n", g_seconds, repeat);
  auto median = [repeat](const std::function<double()>& f) {
    std::vector<double> v;
    for (int i = 0; i < repeat; ++i) v.push_back(f());
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double base_stream = median(baseline_stream);
  rows.push_back({"one stream, recv into own buffer", "MiB/s", median([] { return ours_stream(StreamVariant::plain); }), base_stream});
  rows.push_back({"one stream, fixed-buffer send", "MiB/s", median([] { return ours_stream(StreamVariant::fixed_send); }), base_stream});
  rows.push_back({"one stream, provided-buffer recv", "MiB/s", median([] { return ours_stream(StreamVariant::provided_recv); }), base_stream});
  rows.push_back({"new connections (1-byte echo), c=32", "conn/s", median(ours_cps), median(baseline_cps)});
  rows.push_back({"1,000 connections, 64-byte round trips", "rt/s", median(ours_rtt), median(baseline_rtt)});

  std::printf("| figure | unit | vtunnel runtime | baseline | ratio |\n|---|---|---:|---:|---:|\n");
  for (auto& r : rows) {
    std::printf("| %s | %s | %.0f | %.0f | %.2f |\n", r.name.c_str(), r.unit.c_str(), r.ours, r.baseline,
                r.ours / r.baseline);
  }
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << "[\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      out << fmt::format("  {{\"figure\":\"{}\",\"unit\":\"{}\",\"ours\":{:.1f},\"baseline\":{:.1f}}}{}\n",
                         rows[i].name, rows[i].unit, rows[i].ours, rows[i].baseline, i + 1 < rows.size() ? "," : "");
    }
    out << "]\n";
  }
  return 0;
}
