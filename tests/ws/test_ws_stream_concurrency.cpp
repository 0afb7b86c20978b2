// WsStream with a transport whose writes suspend until the test completes them: a pong the
// reader is sending and a message the writer wants to send must not interleave, and control
// frames queued during a write go out right after it. The write lock hands over through the
// loop's ready queue, so these tests turn a Loop by hand.
#include <catch2/catch.hpp>

#include <coroutine>

#include "core/loop.hpp"
#include "ws/frame_test_util.hpp"
#include "ws/sync_streams.hpp"
#include "ws/ws_stream.hpp"

using namespace vtunnel;
using namespace vtunnel::ws;
using namespace vtunnel::ws::test;

namespace {

// Reads complete at once from `input`; each write records its bytes and then waits until
// complete_write() is called.
class SuspendingWriteStream final : public Stream {
 public:
  Bytes input;
  Bytes written;
  std::coroutine_handle<> pending_write;
  int writes_started = 0;

  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override {
    if (read_pos_ == input.size()) co_return make_error_code(vtunnel::errc::eof);
    const std::size_t n = std::min(buf.size(), input.size() - read_pos_);
    std::memcpy(buf.data(), input.data() + read_pos_, n);
    read_pos_ += n;
    co_return n;
  }
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override {
    ++writes_started;
    for (const ByteSpan& b : bufs) written.insert(written.end(), b.begin(), b.end());
    struct Park {
      SuspendingWriteStream* s;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) noexcept { s->pending_write = h; }
      void await_resume() const noexcept {}
    };
    co_await Park{this};
    co_return Result<void>{};
  }
  Task<Result<void>> shutdown_write() override { co_return Result<void>{}; }
  void close() noexcept override {}

  void complete_write() {
    REQUIRE(pending_write);
    std::exchange(pending_write, {}).resume();
  }

 private:
  std::size_t read_pos_ = 0;
};

}  // namespace

TEST_CASE("a writer waits while the reader sends a pong, then goes on", "[ws_stream]") {
  Loop loop;
  auto owned = std::make_unique<SuspendingWriteStream>();
  SuspendingWriteStream& t = *owned;
  t.input = make_frame(Opcode::ping, "ping-1", std::nullopt);
  append(t.input, make_frame(Opcode::binary, "data", std::nullopt));
  WsStream ws(std::move(owned), Role::client);

  Bytes buf(100);
  Task<Result<std::size_t>> reader = ws.read_some(buf);
  reader.handle().resume();  // parses the ping, starts sending the pong, parks in the write
  REQUIRE_FALSE(reader.done());
  REQUIRE(t.writes_started == 1);

  const std::string message = "message from the writer";
  Task<Result<void>> writer = ws.write_all(as_bytes(message));
  writer.handle().resume();  // the lock is taken: waits without touching the transport
  REQUIRE_FALSE(writer.done());
  REQUIRE(t.writes_started == 1);

  t.complete_write();  // pong done: the reader unlocks, the writer is scheduled
  REQUIRE(reader.done());
  loop.run_until([&] { return t.writes_started == 2; });
  REQUIRE(*reader.handle().promise().take() == 4);  // "data"
  REQUIRE_FALSE(writer.done());
  t.complete_write();
  REQUIRE(writer.done());
  REQUIRE(writer.handle().promise().take().ok());

  auto sent = parse_all(Role::server, t.written);
  REQUIRE(!sent.error);
  REQUIRE(sent.controls.size() == 1);
  REQUIRE(sent.controls[0].payload == "ping-1");
  REQUIRE(sent.messages.size() == 1);
  REQUIRE(sent.messages[0].payload == message);
}

TEST_CASE("a pong that arrives during a write goes out after it, not inside it", "[ws_stream]") {
  Loop loop;
  auto owned = std::make_unique<SuspendingWriteStream>();
  SuspendingWriteStream& t = *owned;
  t.input = make_frame(Opcode::ping, "ping-2", std::nullopt);
  append(t.input, make_frame(Opcode::binary, "x", std::nullopt));
  WsStream ws(std::move(owned), Role::client);

  const std::string message(5000, 'm');
  Task<Result<void>> writer = ws.write_all(as_bytes(message));
  writer.handle().resume();  // parks in the transport write of the data frame
  REQUIRE(t.writes_started == 1);

  Bytes buf(100);
  Task<Result<std::size_t>> reader = ws.read_some(buf);
  reader.handle().resume();  // the lock is taken: the pong is left to the writer
  REQUIRE(reader.done());
  REQUIRE(*reader.handle().promise().take() == 1);
  REQUIRE(t.writes_started == 1);

  t.complete_write();  // data frame done: the writer flushes the pong before it returns
  REQUIRE(t.writes_started == 2);
  REQUIRE_FALSE(writer.done());
  t.complete_write();
  REQUIRE(writer.done());

  auto sent = parse_all(Role::server, t.written);
  REQUIRE(!sent.error);
  REQUIRE(sent.messages.at(0).payload == message);
  REQUIRE(sent.controls.at(0).payload == "ping-2");
  // Order on the wire: the whole data frame first, then the pong.
  REQUIRE(t.written[0] == 0x82);
  REQUIRE(t.written[frame_header_size(message.size(), true) + message.size()] == 0x8A);
}
