#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/loop.hpp"
#include "core/relay.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "support/fd_check.hpp"

using namespace vtunnel;
using namespace std::chrono_literals;

namespace {

std::uint8_t pattern_byte(std::uint64_t stream, std::uint64_t offset) {
  std::uint64_t x = offset * 0x9E3779B97F4A7C15ull ^ (stream * 0xD6E8FEB86659FD93ull);
  return std::uint8_t(x >> 29);
}

// FNV-1a over a byte stream, so both ends can compare what was sent with what arrived.
struct Hash {
  std::uint64_t h = 1469598103934665603ull;
  void add(ByteSpan b) {
    for (auto c : b) h = (h ^ c) * 1099511628211ull;
  }
};

struct Pair {
  TcpStream client;  // the test's end
  TcpStream server;  // the relay's end
};

Task<Pair> connected_pair(TcpListener& listener) {
  auto c = co_await TcpStream::connect(listener.local_address());
  REQUIRE(c.ok());
  auto s = co_await listener.accept();
  REQUIRE(s.ok());
  co_return Pair{std::move(*c), std::move(*s)};
}

// Writes `total` pattern bytes then half-closes; returns their hash.
Task<void> send_pattern(TcpStream& s, std::uint64_t id, std::size_t total, std::uint64_t& hash_out) {
  Hash h;
  std::vector<std::uint8_t> chunk(24 * 1024 + 7);
  for (std::size_t off = 0; off < total;) {
    std::size_t len = std::min(chunk.size(), total - off);
    for (std::size_t i = 0; i < len; ++i) chunk[i] = pattern_byte(id, off + i);
    h.add(ByteSpan(chunk.data(), len));
    auto w = co_await s.write_all(ByteSpan(chunk.data(), len));
    REQUIRE(w.ok());
    off += len;
  }
  auto r = co_await s.shutdown_write();
  REQUIRE(r.ok());
  hash_out = h.h;
}

// Reads until EOF; returns the count and hash.
Task<void> receive_all(TcpStream& s, std::size_t& count, std::uint64_t& hash_out) {
  Hash h;
  std::vector<std::uint8_t> buf(32 * 1024);
  for (;;) {
    auto n = co_await s.read_some(buf);
    if (!n) {
      REQUIRE(n.error() == errc::eof);
      break;
    }
    h.add(ByteSpan(buf.data(), *n));
    count += *n;
  }
  hash_out = h.h;
}

Task<std::string> read_to_eof(TcpStream& s) {
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = co_await s.read_some(MutableByteSpan(reinterpret_cast<std::uint8_t*>(buf), sizeof buf));
    if (!n) break;
    out.append(buf, *n);
  }
  co_return out;
}

Task<void> run_relay(Stream& a, Stream& b, RelayOptions options, std::optional<RelayStats>& out) {
  out = co_await relay(a, b, options);
}

}  // namespace

TEST_CASE("relay: several MiB each way arrive intact, then both directions end", "[core][relay]") {
  // 16 KiB: smaller than the writes, many turns through pool buffers; the default size: TCP
  // receives land in the loop's provided-buffer ring.
  std::size_t buffer_size = GENERATE(std::size_t(16 * 1024), kRelayBufferSize);
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = [buffer_size]() -> Task<void> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      Pair p1 = co_await connected_pair(*l);
      Pair p2 = co_await connected_pair(*l);
      constexpr std::size_t k1 = (5u << 20) + 123, k2 = (3u << 20) + 45;
      std::uint64_t sent1 = 0, sent2 = 0, got1 = 1, got2 = 1;
      std::size_t n1 = 0, n2 = 0;
      std::optional<RelayStats> stats;
      Scope scope;
      RelayOptions options;
      options.buffer_size = buffer_size;
      scope.spawn(run_relay(p1.server, p2.server, options, stats));
      scope.spawn(send_pattern(p1.client, 1, k1, sent1));
      scope.spawn(send_pattern(p2.client, 2, k2, sent2));
      scope.spawn(receive_all(p2.client, n1, got1));
      scope.spawn(receive_all(p1.client, n2, got2));
      co_await scope.join();
      REQUIRE(n1 == k1);
      REQUIRE(n2 == k2);
      REQUIRE(sent1 == got1);
      REQUIRE(sent2 == got2);
      REQUIRE(stats.has_value());
      REQUIRE(stats->end == RelayEnd::completed);
      REQUIRE(stats->a_to_b == k1);
      REQUIRE(stats->b_to_a == k2);
      REQUIRE_FALSE(p1.server.is_open());  // relay closed both
      REQUIRE_FALSE(p2.server.is_open());
      REQUIRE(relay_buffer_stats().in_use == 0);
      if (buffer_size == kRelayBufferSize && relay_buffer_stats().ring) REQUIRE(relay_buffer_stats().ring_receives > 0);
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("relay: half-close lets the reply come back after the request's EOF", "[core][relay]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      Pair p1 = co_await connected_pair(*l);
      Pair p2 = co_await connected_pair(*l);
      std::optional<RelayStats> stats;
      Scope scope;
      scope.spawn(run_relay(p1.server, p2.server, {}, stats));
      // Side 1 sends its whole request and half-closes.
      auto w = co_await p1.client.write_all(as_bytes("request"));
      REQUIRE(w.ok());
      auto sh = co_await p1.client.shutdown_write();
      REQUIRE(sh.ok());
      // Side 2 sees the request and EOF, waits a little, then answers.
      std::string req = co_await read_to_eof(p2.client);
      REQUIRE(req == "request");
      auto slept = co_await sleep_for(50ms);
      REQUIRE(slept.ok());
      auto w2 = co_await p2.client.write_all(as_bytes("reply after EOF"));
      REQUIRE(w2.ok());
      auto sh2 = co_await p2.client.shutdown_write();
      REQUIRE(sh2.ok());
      std::string reply = co_await read_to_eof(p1.client);
      REQUIRE(reply == "reply after EOF");
      co_await scope.join();
      REQUIRE(stats->end == RelayEnd::completed);
      REQUIRE(stats->a_to_b == 7);
      REQUIRE(stats->b_to_a == 15);
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("relay: idle timeout closes both sides; traffic either way keeps it alive", "[core][relay]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      Pair p1 = co_await connected_pair(*l);
      Pair p2 = co_await connected_pair(*l);
      std::optional<RelayStats> stats;
      RelayOptions options;
      options.idle_timeout = 300ms;
      Scope scope;
      auto start = Clock::now();
      scope.spawn(run_relay(p1.server, p2.server, options, stats));
      // One byte every 100 ms for 600 ms, alternating directions: longer than the timeout.
      for (int i = 0; i < 6; ++i) {
        auto s = co_await sleep_for(100ms);
        REQUIRE(s.ok());
        TcpStream& writer = i % 2 ? p1.client : p2.client;
        auto w = co_await writer.write_all(as_bytes("x"));
        REQUIRE(w.ok());
        REQUIRE_FALSE(stats.has_value());
      }
      // Now silence: the relay ends and both test ends see the connection go away.
      std::string rest1 = co_await read_to_eof(p1.client);
      std::string rest2 = co_await read_to_eof(p2.client);
      co_await scope.join();
      auto elapsed = Clock::now() - start;
      REQUIRE(rest1 == "xxx");
      REQUIRE(rest2 == "xxx");
      REQUIRE(stats->end == RelayEnd::idle);
      REQUIRE(elapsed >= 850ms);
      REQUIRE(elapsed < 5s);
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("relay: cancelling the awaiting task ends it promptly", "[core][relay]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      Pair p1 = co_await connected_pair(*l);
      Pair p2 = co_await connected_pair(*l);
      std::optional<RelayStats> stats;
      RelayOptions options;
      options.idle_timeout = 60s;
      Scope scope;
      scope.spawn(run_relay(p1.server, p2.server, options, stats));
      auto w = co_await p1.client.write_all(as_bytes("hello"));
      REQUIRE(w.ok());
      char buf[5];
      auto n = co_await p2.client.read_some(MutableByteSpan(reinterpret_cast<std::uint8_t*>(buf), 5));
      REQUIRE(n.ok());
      auto start = Clock::now();
      scope.cancel();
      co_await scope.join();
      REQUIRE(Clock::now() - start < 1s);
      REQUIRE(stats.has_value());
      REQUIRE(stats->end == RelayEnd::cancelled);
      REQUIRE(stats->a_to_b >= 1);
      std::string rest = co_await read_to_eof(p2.client);
      REQUIRE(rest.size() + *n == 5);
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("relay: a reset on one side ends both directions with an error", "[core][relay]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      Pair p1 = co_await connected_pair(*l);
      Pair p2 = co_await connected_pair(*l);
      std::optional<RelayStats> stats;
      Scope scope;
      scope.spawn(run_relay(p1.server, p2.server, {}, stats));
      // SO_LINGER 0 + close sends RST.
      linger lg{1, 0};
      REQUIRE(::setsockopt(p2.client.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
      p2.client.close();
      std::string rest = co_await read_to_eof(p1.client);
      co_await scope.join();
      REQUIRE(rest.empty());
      REQUIRE(stats->end == RelayEnd::error);
      REQUIRE(stats->error);
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}

namespace {

// A TcpStream seen only as a Stream (so relay() cannot use the ring for it) that still knows
// how to wait for readability: the pool path.
class PlainStream final : public Stream {
 public:
  explicit PlainStream(TcpStream& s) : s_(s) {}
  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override { return s_.read_some(buf); }
  Task<Result<void>> wait_readable() override { return s_.wait_readable(); }
  using Stream::write_all;
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override { return s_.write_all(bufs); }
  Task<Result<void>> shutdown_write() override { return s_.shutdown_write(); }
  void close() noexcept override { s_.close(); }

 private:
  TcpStream& s_;
};

// Sends `msg` into `from` and reads the same bytes from `to`.
Task<bool> through(TcpStream& from, TcpStream& to, std::string msg) {
  auto w = co_await from.write_all(as_bytes(msg));
  if (!w) co_return false;
  std::string got;
  std::uint8_t buf[256];
  while (got.size() < msg.size()) {
    auto n = co_await to.read_some(MutableByteSpan(buf), 10s);
    if (!n) co_return false;
    got.append(reinterpret_cast<char*>(buf), *n);
  }
  co_return got == msg;
}

}  // namespace

TEST_CASE("relay: idle relays hold no buffers; buffers go back to the pool after each burst", "[core][relay]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      constexpr int kRelays = 100;  // half through the ring (TCP), half through the pool (PlainStream)
      std::vector<Pair> left, right;
      std::vector<std::unique_ptr<PlainStream>> plain;
      for (int i = 0; i < kRelays; ++i) {
        left.push_back(co_await connected_pair(*l));
        right.push_back(co_await connected_pair(*l));
      }
      std::vector<std::optional<RelayStats>> stats(kRelays);
      Scope relays;
      for (int i = 0; i < kRelays; ++i) {
        if (i % 2 == 0) {
          relays.spawn(run_relay(left[std::size_t(i)].server, right[std::size_t(i)].server, {}, stats[std::size_t(i)]));
        } else {
          plain.push_back(std::make_unique<PlainStream>(left[std::size_t(i)].server));
          plain.push_back(std::make_unique<PlainStream>(right[std::size_t(i)].server));
          relays.spawn(run_relay(*plain[plain.size() - 2], *plain.back(), {}, stats[std::size_t(i)]));
        }
      }
      (void)co_await sleep_for(20ms);
      REQUIRE(relay_buffer_stats().in_use == 0);  // every relay is waiting, none holds a buffer
      auto acquired0 = relay_buffer_stats().acquired;
      auto ring0 = relay_buffer_stats().ring_receives;
      for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < kRelays; ++i) {
          auto& a = left[std::size_t(i)].client;
          auto& b = right[std::size_t(i)].client;
          std::string msg = "request " + std::to_string(round) + "/" + std::to_string(i);
          bool there = co_await through(a, b, msg);
          REQUIRE(there);
          bool back = co_await through(b, a, "reply to " + msg);
          REQUIRE(back);
        }
        (void)co_await sleep_for(5ms);
        auto st = relay_buffer_stats();
        INFO("round " << round << ": in use " << st.in_use << ", cached " << st.cached);
        REQUIRE(st.in_use == 0);
        REQUIRE(st.cached <= 16);
      }
      auto st = relay_buffer_stats();
      REQUIRE(st.acquired - acquired0 >= std::uint64_t(3 * kRelays));  // the pool path: 2 per round-trip
      if (st.ring) REQUIRE(st.ring_receives - ring0 >= std::uint64_t(3 * kRelays));
      // Half-close still carried after idling without buffers.
      for (int i = 0; i < kRelays; ++i) {
        auto sh = co_await left[std::size_t(i)].client.shutdown_write();
        REQUIRE(sh.ok());
        sh = co_await right[std::size_t(i)].client.shutdown_write();
        REQUIRE(sh.ok());
      }
      co_await relays.join();
      for (auto& s : stats) {
        REQUIRE(s.has_value());
        REQUIRE(s->end == RelayEnd::completed);
      }
      REQUIRE(relay_buffer_stats().in_use == 0);
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("relay: when the ring runs out, more relays than ring buffers all move their data", "[core][relay]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    auto body = []() -> Task<void> {
      auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
      REQUIRE(l.ok());
      constexpr int kRelays = 80;  // more than the ring's 64 buffers
      constexpr std::size_t kBytes = 256 * 1024;
      std::vector<Pair> left, right;
      for (int i = 0; i < kRelays; ++i) {
        left.push_back(co_await connected_pair(*l));
        right.push_back(co_await connected_pair(*l));
        // Small socket buffers on the far side: each relay's write blocks early, holding its buffer.
        int small = 4096;
        ::setsockopt(right.back().client.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        ::setsockopt(right.back().server.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
      }
      std::vector<std::optional<RelayStats>> stats(kRelays);
      std::vector<std::uint64_t> sent(kRelays), got(kRelays);
      std::vector<std::size_t> counts(kRelays);
      Scope scope;
      for (int i = 0; i < kRelays; ++i) {
        scope.spawn(run_relay(left[std::size_t(i)].server, right[std::size_t(i)].server, {}, stats[std::size_t(i)]));
        scope.spawn(send_pattern(left[std::size_t(i)].client, std::uint64_t(i), kBytes, sent[std::size_t(i)]));
      }
      // Nobody reads yet: the relays fill what they can and then wait to write, each holding a buffer.
      auto deadline = Clock::now() + 10s;
      while (relay_buffer_stats().in_use < std::size_t(kRelays) && Clock::now() < deadline) (void)co_await sleep_for(10ms);
      INFO("in use " << relay_buffer_stats().in_use);
      REQUIRE(relay_buffer_stats().in_use == std::size_t(kRelays));
      for (int i = 0; i < kRelays; ++i) {
        scope.spawn(receive_all(right[std::size_t(i)].client, counts[std::size_t(i)], got[std::size_t(i)]));
        auto sh = co_await right[std::size_t(i)].client.shutdown_write();
        REQUIRE(sh.ok());
      }
      co_await scope.join();
      for (int i = 0; i < kRelays; ++i) {
        REQUIRE(counts[std::size_t(i)] == kBytes);
        REQUIRE(got[std::size_t(i)] == sent[std::size_t(i)]);
        REQUIRE(stats[std::size_t(i)]->end == RelayEnd::completed);
      }
      REQUIRE(relay_buffer_stats().in_use == 0);
    };
    sync_wait(loop, body());
  }
  REQUIRE(test::open_fd_count() == fds);
}
