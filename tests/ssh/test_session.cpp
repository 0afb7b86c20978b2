// ssh::Session (the coroutine adapter) over real loopback TCP on the io_uring loop: our client
// and our server in one process.
#include <catch2/catch.hpp>

#include "connection_pair.hpp"
#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"
#include "ssh/session.hpp"
#include "session_patterns.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;
using namespace vtunnel::test;

namespace {

struct ServerReport {
  std::size_t channels = 0;
  std::size_t refused = 0;
  std::error_code end;
};

Task<void> serve(TcpStream stream, Config config, ServerReport* report) {
  auto s = co_await Session::server_handshake(stream, std::move(config));
  REQUIRE(s.ok());
  Session& session = **s;
  session.set_global_request_handler([](std::string_view name, ByteSpan) {
    if (name == "ping") return GlobalReplyData{true, to_bytes("pong")};
    return GlobalReplyData{false, to_bytes("unknown request")};
  });
  Scope echoes;
  for (;;) {
    Result<IncomingChannel> in = co_await session.next_channel();
    if (!in) break;
    if (in->type != "direct-tcpip") {
      ++report->refused;
      REQUIRE(session.reject(*in, OpenFailure::unknown_channel_type, "unknown channel type").ok());
      continue;
    }
    Result<ssh::Channel> ch = session.accept(*in);
    REQUIRE(ch.ok());
    ++report->channels;
    echoes.spawn(echo(*ch));
  }
  co_await echoes.join();
  report->end = session.error();
  co_await session.close();
}

Task<void> client_run(SocketAddress address, Config config, std::size_t total, int channels) {
  Result<TcpStream> stream = co_await TcpStream::connect(address);
  REQUIRE(stream.ok());
  auto s = co_await Session::client_handshake(*stream, std::move(config));
  REQUIRE(s.ok());
  Session& session = **s;

  Result<GlobalReplyData> pong = co_await session.global_request("ping", {}, true);
  REQUIRE(pong.ok());
  REQUIRE(pong->success);
  REQUIRE(as_string(pong->data) == "pong");
  Result<GlobalReplyData> other = co_await session.global_request("listen", to_bytes("{}"), true);
  REQUIRE(other.ok());
  REQUIRE_FALSE(other->success);
  REQUIRE(as_string(other->data) == "unknown request");

  Result<ssh::Channel> refused = co_await session.open_channel("session", {});
  REQUIRE(refused.error() == ssh::errc::channel_refused);
  REQUIRE(session.last_open_failure_reason() == 3);
  REQUIRE(session.last_open_failure_message() == "unknown channel type");

  // Several channels at once, each echoing `total` bytes both ways.
  Scope work;
  std::vector<Task<std::size_t>> readers;
  std::vector<ssh::Channel> chans;
  for (int i = 0; i < channels; ++i) {
    Result<ssh::Channel> ch = co_await session.open_channel("direct-tcpip", {});
    REQUIRE(ch.ok());
    chans.push_back(*ch);
    work.spawn(write_pattern(*ch, total));
  }
  for (auto& ch : chans) {
    std::size_t got = co_await read_pattern(ch);
    REQUIRE(got == total);
  }
  co_await work.join();
  co_await session.close();
  REQUIRE_FALSE(session.is_open());
}

Task<void> client_server(Config client, Config server, std::size_t total, int channels, ServerReport* report) {
  auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(l.ok());
  TcpListener listener = std::move(*l);
  Scope servers;
  Result<TcpStream> accepted_later = vtunnel::errc::closed;
  (void)accepted_later;
  Scope clients;
  clients.spawn(client_run(listener.local_address(), std::move(client), total, channels));
  Result<TcpStream> conn = co_await listener.accept();
  REQUIRE(conn.ok());
  servers.spawn(serve(std::move(*conn), std::move(server), report));
  co_await clients.join();
  co_await servers.join();
}

}  // namespace

TEST_CASE("Session: client and server over loopback TCP, global requests, channels, rekeys") {
  Loop loop;
  auto c = keyed_configs();
  c.client.rekey_bytes = 1024 * 1024;  // many key exchanges during the transfer
  ServerReport report;
  sync_wait(loop, client_server(std::move(c.client), std::move(c.server), 8 * 1024 * 1024 + 3, 3, &report));
  REQUIRE(report.channels == 3);
  REQUIRE(report.refused == 1);
  REQUIRE(report.end == ssh::errc::disconnected_by_peer);
}

namespace {
Task<std::error_code> failing_handshake(Config client, Config server) {
  auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(l.ok());
  TcpListener listener = std::move(*l);
  Result<TcpStream> stream = co_await TcpStream::connect(listener.local_address());
  REQUIRE(stream.ok());
  Result<TcpStream> conn = co_await listener.accept();
  REQUIRE(conn.ok());
  Scope side;
  TcpStream server_stream = std::move(*conn);
  struct Holder {
    static Task<void> run(TcpStream* st, Config cfg) {
      auto s = co_await Session::server_handshake(*st, std::move(cfg));
      if (s.ok()) co_await (*s)->close();
    }
  };
  side.spawn(Holder::run(&server_stream, std::move(server)));
  auto s = co_await with_timeout(Session::client_handshake(*stream, std::move(client)), std::chrono::seconds(10));
  std::error_code ec = s.ok() ? std::error_code{} : s.error();
  if (s.ok()) co_await (*s)->close();
  stream->close();
  co_await side.join();
  co_return ec;
}
}  // namespace

TEST_CASE("Session: handshake failures come back as values") {
  Loop loop;
  {
    auto c = keyed_configs();
    c.client.client_key = ed25519_key(5);  // not the authorized key
    REQUIRE(sync_wait(loop, failing_handshake(std::move(c.client), std::move(c.server))) == ssh::errc::auth_failed);
  }
  {
    auto c = keyed_configs();
    c.client.verify_host_key = accept_only_host_key(ed25519_key(6)->public_blob());
    REQUIRE(sync_wait(loop, failing_handshake(std::move(c.client), std::move(c.server))) ==
            ssh::errc::host_key_mismatch);
  }
}

namespace {
// Server side: the handshake, then accepts `n` channels into chs[0..n).
Task<void> accept_channels(TcpStream* stream, Config config, std::unique_ptr<Session>* out, ssh::Channel* chs, int n) {
  auto s = co_await Session::server_handshake(*stream, std::move(config));
  REQUIRE(s.ok());
  *out = std::move(*s);
  for (int i = 0; i < n; ++i) {
    Result<IncomingChannel> in = co_await (*out)->next_channel();
    REQUIRE(in.ok());
    Result<ssh::Channel> accepted = (*out)->accept(*in);
    REQUIRE(accepted.ok());
    chs[i] = *accepted;
  }
}

// Our client and server over loopback TCP with one channel open between them. Filled in
// place: the sessions refer to the streams, so the pair must not move.
struct ChannelPair {
  TcpStream client_stream, server_stream;
  std::unique_ptr<Session> client, server;
  ssh::Channel client_ch, server_ch;

  Task<void> close() {
    co_await client->close();
    co_await server->close();
  }
};

// Configs whose client announces a 256 KiB window: small enough to fill in a test.
Configs small_window_configs() {
  auto c = keyed_configs();
  c.client.channel_window = 256 * 1024;
  return c;
}

Task<void> open_channel_pair(Config client_config, Config server_config, ChannelPair& p) {
  auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(l.ok());
  TcpListener listener = std::move(*l);
  Result<TcpStream> connected = co_await TcpStream::connect(listener.local_address());
  REQUIRE(connected.ok());
  p.client_stream = std::move(*connected);
  Result<TcpStream> accepted = co_await listener.accept();
  REQUIRE(accepted.ok());
  p.server_stream = std::move(*accepted);
  Scope side;
  side.spawn(accept_channels(&p.server_stream, std::move(server_config), &p.server, &p.server_ch, 1));
  auto client = co_await Session::client_handshake(p.client_stream, std::move(client_config));
  REQUIRE(client.ok());
  p.client = std::move(*client);
  Result<ssh::Channel> ch = co_await p.client->open_channel("direct-tcpip", {});
  REQUIRE(ch.ok());
  p.client_ch = *ch;
  co_await side.join();
  REQUIRE(p.server);
}

Task<void> slow_consumer(Config client_config, Config server_config, std::size_t total) {
  ChannelPair pair;
  co_await open_channel_pair(std::move(client_config), std::move(server_config), pair);
  ssh::Channel* ch = &pair.client_ch;
  ssh::Channel& server_ch = pair.server_ch;

  // The server writes far more than the window while the client does not read.
  Scope writer;
  writer.spawn(write_pattern(server_ch, total));
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (ch->buffered() < 256 * 1024 && Clock::now() < deadline) {
    Result<void> slept = co_await sleep_for(std::chrono::milliseconds(20));
    REQUIRE(slept.ok());
  }
  REQUIRE(ch->buffered() == 256 * 1024);  // the window the client announced, and no more
  Result<void> slept = co_await sleep_for(std::chrono::milliseconds(100));
  REQUIRE(slept.ok());
  REQUIRE(ch->buffered() == 256 * 1024);

  // Then reads it all with buffers of very different sizes (partial reads of each packet,
  // several packets per read, reads waiting for data and reads served from the inbox).
  const std::size_t sizes[] = {1, 1000, 100000, 300000, 7};
  std::size_t got = 0;
  bool mismatch = false;
  for (std::size_t i = 0;; ++i) {
    Bytes buf(sizes[i % std::size(sizes)]);
    Result<std::size_t> n = co_await ch->read(buf);
    if (!n) {
      REQUIRE(n.error() == vtunnel::errc::eof);
      break;
    }
    for (std::size_t k = 0; k < *n; ++k)
      if (buf[k] != session_cycle()[(got + k) % session_cycle().size()]) mismatch = true;
    got += *n;
    REQUIRE(ch->buffered() <= 256 * 1024);
  }
  REQUIRE_FALSE(mismatch);
  REQUIRE(got == total);
  co_await writer.join();
  co_await pair.close();
}
}  // namespace

TEST_CASE("Session: a slow consumer holds at most its window; reads of any size see every byte in order") {
  Loop loop;
  auto c = small_window_configs();
  sync_wait(loop, slow_consumer(std::move(c.client), std::move(c.server), 16 * 1024 * 1024 + 11));
}

namespace {
// Takes bytes by a fixed plan (all, none, some), recording them: a socket that fills and drains.
class ScriptedSink final : public DirectSink {
 public:
  explicit ScriptedSink(Bytes& out) : out_(out) {}
  std::size_t send_now(ByteSpan data) noexcept override {
    static constexpr std::size_t kPlan[] = {SIZE_MAX, 0, 1000, SIZE_MAX, 17, 0, 5000, SIZE_MAX};
    const std::size_t n = std::min(data.size(), kPlan[calls_++ % std::size(kPlan)]);
    out_.insert(out_.end(), data.begin(), data.begin() + std::ptrdiff_t(n));
    taken += n;
    return n;
  }
  std::size_t taken = 0;

 private:
  Bytes& out_;
  std::size_t calls_ = 0;
};

Task<void> direct_sink_consumer(Config client_config, Config server_config, std::size_t total) {
  ChannelPair pair;
  co_await open_channel_pair(std::move(client_config), std::move(server_config), pair);
  ssh::Channel* ch = &pair.client_ch;
  ssh::Channel& server_ch = pair.server_ch;

  Scope writer;
  writer.spawn(write_pattern(server_ch, total));
  // A relay-like consumer: waits in wait_readable() with a sink that takes what it can; what
  // the sink refuses is read from the inbox. Both land in `out`, which must be the stream.
  Bytes out;
  ScriptedSink sink(out);
  const std::size_t sizes[] = {1, 1000, 100000, 300000, 7};
  std::size_t reads = 0;
  for (;;) {
    ch->set_direct_sink(&sink);  // only while waiting, holding nothing
    Result<void> ready = co_await ch->wait_readable();
    ch->set_direct_sink(nullptr);
    REQUIRE(ready.ok());
    Bytes buf(sizes[reads++ % std::size(sizes)]);
    Result<std::size_t> n = co_await ch->read(buf);
    if (!n) {
      REQUIRE(n.error() == vtunnel::errc::eof);
      break;
    }
    out.insert(out.end(), buf.begin(), buf.begin() + std::ptrdiff_t(*n));
  }
  REQUIRE(out.size() == total);
  bool mismatch = false;
  for (std::size_t k = 0; k < out.size(); ++k)
    if (out[k] != session_cycle()[k % session_cycle().size()]) mismatch = true;
  REQUIRE_FALSE(mismatch);
  INFO("sink took " << sink.taken << " bytes; " << reads << " reads");
  REQUIRE(sink.taken > 0);
  REQUIRE(sink.taken < total);
  co_await writer.join();
  co_await pair.close();
}
}  // namespace

TEST_CASE("Session: a direct sink takes data while the reader waits; the rest is read in order") {
  Loop loop;
  auto c = small_window_configs();
  sync_wait(loop, direct_sink_consumer(std::move(c.client), std::move(c.server), 8 * 1024 * 1024 + 5));
}

namespace {
// Accepts every channel the client opens and echoes it, until the session ends.
Task<void> accept_and_echo(Session& session) {
  Scope echoes;
  for (;;) {
    Result<IncomingChannel> in = co_await session.next_channel();
    if (!in) break;
    Result<ssh::Channel> ch = session.accept(*in);
    REQUIRE(ch.ok());
    echoes.spawn(echo(*ch));
  }
  co_await echoes.join();
}

// Sends `text` on `ch` and reads back exactly its echo.
Task<void> echoes_back(ssh::Channel& ch, std::string text) {
  Result<void> w = co_await ch.write(as_bytes(text));
  REQUIRE(w.ok());
  std::string got;
  Bytes buf(256);
  while (got.size() < text.size()) {
    Result<std::size_t> n = co_await ch.read(buf);
    REQUIRE(n.ok());
    got.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  REQUIRE(got == text);
}

// Waits (at most 20 s) until the session holds `n` channels: closes complete when the peer answers.
Task<void> wait_channel_count(Session& session, std::size_t n) {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (session.core().channel_count() > n && Clock::now() < deadline) {
    Result<void> slept = co_await sleep_for(std::chrono::milliseconds(10));
    REQUIRE(slept.ok());
  }
  REQUIRE(session.core().channel_count() == n);
}

Task<void> channel_ids_reused(Config client_config, Config server_config) {
  ChannelPair pair;
  co_await open_channel_pair(std::move(client_config), std::move(server_config), pair);
  Session& client = *pair.client;
  Scope server_side;
  server_side.spawn(echo(pair.server_ch));
  server_side.spawn(accept_and_echo(*pair.server));

  ssh::Channel chs[5];
  chs[0] = pair.client_ch;
  REQUIRE(chs[0].id() == 0);
  for (std::uint32_t i = 1; i < 5; ++i) {
    Result<ssh::Channel> ch = co_await client.open_channel("direct-tcpip", {});
    REQUIRE(ch.ok());
    REQUIRE(ch->id() == i);  // ours to choose: the lowest free id
    chs[i] = *ch;
  }
  for (int i = 0; i < 5; ++i) co_await echoes_back(chs[i], "first " + std::to_string(i));

  // Channels 1 and 3 close (the peer answers CLOSE): their ids become free.
  ssh::Channel old1 = chs[1], old3 = chs[3];
  chs[1].close();
  chs[3].close();
  co_await wait_channel_count(client, 3);

  // New channels take the freed ids, in order, and carry their own data.
  Result<ssh::Channel> again1 = co_await client.open_channel("direct-tcpip", {});
  REQUIRE(again1.ok());
  REQUIRE(again1->id() == 1);
  Result<ssh::Channel> again3 = co_await client.open_channel("direct-tcpip", {});
  REQUIRE(again3.ok());
  REQUIRE(again3->id() == 3);
  chs[1] = *again1;
  chs[3] = *again3;
  for (int i = 0; i < 5; ++i) co_await echoes_back(chs[i], "second, channel " + std::to_string(i));

  // The closed handles share an id with the new channels and see none of their data.
  REQUIRE(old1.id() == 1);
  REQUIRE(old1.buffered() == 0);
  Bytes buf(16);
  Result<std::size_t> stale_read = co_await old1.read(buf);
  REQUIRE_FALSE(stale_read.ok());
  REQUIRE(stale_read.error() == ssh::errc::closed);
  Result<void> stale_write = co_await old3.write(as_bytes("stale"));
  REQUIRE_FALSE(stale_write.ok());
  co_await echoes_back(chs[3], "third");  // and their writes did not reach the new channel

  // The highest id closes; the next open takes it again, then the table grows past it.
  chs[4].close();
  co_await wait_channel_count(client, 4);
  for (std::uint32_t id : {4u, 5u}) {
    Result<ssh::Channel> ch = co_await client.open_channel("direct-tcpip", {});
    REQUIRE(ch.ok());
    REQUIRE(ch->id() == id);
    co_await echoes_back(*ch, "late " + std::to_string(id));
  }

  co_await pair.close();  // ends every channel, open or not
  Result<std::size_t> after_end = co_await chs[0].read(buf);
  REQUIRE_FALSE(after_end.ok());
  co_await server_side.join();
}
}  // namespace

TEST_CASE("Session: closed channel ids are reused; data reaches only the channel holding the id now") {
  Loop loop;
  auto c = keyed_configs();
  sync_wait(loop, channel_ids_reused(std::move(c.client), std::move(c.server)));
}

namespace {
// A TcpStream whose writes wait while the gate is closed: the session's output backs up.
class GatedStream final : public Stream {
 public:
  explicit GatedStream(TcpStream& inner) : inner_(inner) { gate.set(); }
  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override { return inner_.read_some(buf); }
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override {
    Result<void> opened = co_await gate.wait();
    if (!opened) co_return opened.error();
    co_return co_await inner_.write_all(bufs);
  }
  Task<Result<void>> shutdown_write() override { return inner_.shutdown_write(); }
  void close() noexcept override { inner_.close(); }
  vtunnel::Event gate;

 private:
  TcpStream& inner_;
};

Task<void> write_then_log(ssh::Channel ch, std::size_t total, char tag, std::string* log) {
  co_await write_pattern(ch, total);
  log->push_back(tag);
}

Task<void> writers_take_turns(Config client_config, Config server_config) {
  auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(l.ok());
  Result<TcpStream> connected = co_await TcpStream::connect(l->local_address());
  REQUIRE(connected.ok());
  Result<TcpStream> accepted = co_await l->accept();
  REQUIRE(accepted.ok());
  GatedStream gated(*connected);
  std::unique_ptr<Session> server;
  ssh::Channel server_chs[2];
  Scope side;
  side.spawn(accept_channels(&*accepted, std::move(server_config), &server, server_chs, 2));
  auto client = co_await Session::client_handshake(gated, std::move(client_config));
  REQUIRE(client.ok());
  Result<ssh::Channel> a = co_await (*client)->open_channel("direct-tcpip", {});
  REQUIRE(a.ok());
  Result<ssh::Channel> b = co_await (*client)->open_channel("direct-tcpip", {});
  REQUIRE(b.ok());
  co_await side.join();

  // Both start in the same turn of the loop with the stream stalled: A fills the output past
  // the high-water mark and waits, then B finds it full and waits behind A. The write pump
  // takes A's first batch and stalls on the gate. A has four marks' worth in all; B a little.
  const std::size_t a_total = 4 * Session::kOutputHighWater;
  REQUIRE(a_total <= Config{}.channel_window);
  std::string log;
  Scope writers;
  gated.gate.reset();
  writers.spawn(write_then_log(*a, a_total, 'A', &log));
  writers.spawn(write_then_log(*b, 1000, 'B', &log));
  Result<void> slept = co_await sleep_for(std::chrono::milliseconds(50));
  REQUIRE(slept.ok());
  REQUIRE(log.empty());

  // Once the stream moves, B's turn comes after A's first one: B must not wait until A has
  // sent everything, however eagerly A refills the output.
  gated.gate.set();
  co_await writers.join();
  REQUIRE(log == "BA");
  const std::size_t a_got = co_await read_pattern(server_chs[0]);
  const std::size_t b_got = co_await read_pattern(server_chs[1]);
  REQUIRE(a_got == a_total);
  REQUIRE(b_got == 1000);
  co_await (*client)->close();
  co_await server->close();
}
}  // namespace

TEST_CASE("Session: channel writers waiting for room in the output take turns") {
  Loop loop;
  auto c = keyed_configs();
  sync_wait(loop, writers_take_turns(std::move(c.client), std::move(c.server)));
}
