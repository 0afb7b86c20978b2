// vtunnel-core-demo: the runtime on its own, until the tunnel exists. An echo server and 100
// concurrent clients on loopback, one io_uring loop, every byte checked.
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"

using namespace vtunnel;

namespace {
Task<void> echo(TcpStream s) {
  std::vector<std::uint8_t> buf(16 * 1024);
  for (;;) {
    auto n = co_await s.read_some(buf);
    if (!n) break;
    auto w = co_await s.write_all(ByteSpan(buf.data(), *n));
    if (!w) break;
  }
}

Task<void> serve(TcpListener& l, Scope& conns) {
  for (;;) {
    auto c = co_await l.accept();
    if (!c) co_return;
    conns.spawn(echo(std::move(*c)));
  }
}

Task<void> client(SocketAddress addr, int id, int& ok) {
  auto s = co_await TcpStream::connect(addr);
  if (!s) co_return;
  std::string msg = "hello from client " + std::to_string(id);
  auto w = co_await s->write_all(as_bytes(msg));
  if (!w) co_return;
  std::string got;
  std::uint8_t buf[256];
  while (got.size() < msg.size()) {
    auto n = co_await s->read_some(MutableByteSpan(buf));
    if (!n) co_return;
    got.append(reinterpret_cast<char*>(buf), *n);
  }
  if (got == msg) ++ok;
}

Task<int> demo() {
  auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
  if (!l) {
    std::fprintf(stderr, "bind: %s\n", l.error().message().c_str());
    co_return 1;
  }
  std::printf("echo server on %s\n", l->local_address().to_string().c_str());
  Scope server, conns, clients;
  server.spawn(serve(*l, conns));
  int ok = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) clients.spawn(client(l->local_address(), i, ok));
  co_await clients.join();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("100 concurrent clients, %d echoed correctly, in %.1f ms on one io_uring loop\n", ok, ms);
  server.cancel();
  co_await server.join();
  conns.cancel();
  co_await conns.join();
  co_return ok == 100 ? 0 : 1;
}
}  // namespace

int main() {
  Loop loop;
  return sync_wait(loop, demo());
}
