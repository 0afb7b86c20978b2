#pragma once
// Stream: a bidirectional byte stream (TCP, TLS, WebSocket). The SSH transport runs over any
// of them. All calls are made from the owning Loop's thread; at most one read and one write
// may be pending at a time.
#include <cstddef>
#include <span>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "core/sync.hpp"
#include "core/task.hpp"

namespace vtunnel {

// A socket a producer may hand bytes to directly, without waiting, while the consumer that owns
// it (a relay direction) waits holding nothing. Lets the SSH read pump pass channel data
// from its decrypt buffer straight to the TCP socket instead of copying it twice.
class DirectSink {
 public:
  // Sends what the socket takes now, never waiting; 0 when it is full or failed (the consumer's
  // own write then sees the error). Counts the bytes as delivered.
  virtual std::size_t send_now(ByteSpan data) noexcept = 0;

 protected:
  ~DirectSink() = default;
};

// A socket a consumer may read from directly, without waiting, into memory of the consumer's
// choosing. Lets an SSH channel receive TCP data straight into an outgoing packet.
class DirectSource {
 public:
  // Reads what is there now into `room`, never waiting: the count (0 when nothing is there),
  // errc::eof at end of stream, or the error.
  virtual Result<std::size_t> read_now(MutableByteSpan room) noexcept = 0;

 protected:
  ~DirectSource() = default;
};

class Stream {
 public:
  virtual ~Stream() = default;

  // Reads at least one byte into `buf` (unless buf is empty); errc::eof once the peer has
  // finished sending and everything before has been read.
  virtual Task<Result<std::size_t>> read_some(MutableByteSpan buf) = 0;

  // Waits, holding no buffer, until read_some() would not wait (data, EOF or an error is
  // there), so a caller can take a buffer only when data flows. Streams that cannot tell
  // return at once (read_some() then waits as usual).
  virtual Task<Result<void>> wait_readable() { co_return Result<void>{}; }

  // While set, the stream may deliver incoming bytes to `sink` instead of buffering them
  // (nullptr: stop). Set it only while waiting for readability (wait_readable() or the
  // readable_queue()) holding no data, so direct bytes never overtake bytes the caller still
  // has. Streams without a producer of their own ignore it. The sink must stay valid until it
  // is unset.
  virtual void set_direct_sink(DirectSink* sink) noexcept { (void)sink; }
  // Streams whose readability is known in memory (an SSH channel) can also expose it as a
  // queue, so a caller waits without a nested task frame (an idle relay holds less):
  //   while (!s.readable_now()) { bool woken = co_await s.readable_queue()->wait(); ... }
  // nullptr (the default): use wait_readable().
  virtual WaitQueue* readable_queue() noexcept { return nullptr; }
  virtual bool readable_now() const noexcept { return true; }

  // Writes every byte of every span, in order, or fails. The spans must stay valid until the
  // returned task completes.
  virtual Task<Result<void>> write_all(std::span<const ByteSpan> bufs) = 0;
  Task<Result<void>> write_all(ByteSpan buf) { return write_all_one(buf); }

  // Like write_all(), for a caller that hands its buffer over until the task completes:
  // `buffer` = [headroom free bytes][payload]. The stream may use the headroom for its own
  // framing and may modify the payload bytes (a WebSocket client masks them in place instead
  // of copying them). The default writes the payload as write_all() does.
  virtual Task<Result<void>> write_all_in_place(MutableByteSpan buffer, std::size_t headroom) {
    return write_all_one(ByteSpan(buffer).subspan(headroom));
  }

  // Writes what `source` has now, read straight into the stream's own send buffer (no copy),
  // after waiting for room to send. Returns the bytes written, 0 when the source had none
  // (or this stream cannot write from a source: see writes_from_source()), or the source's or
  // the stream's error.
  virtual bool writes_from_source() const noexcept { return false; }
  virtual Task<Result<std::size_t>> write_from(DirectSource& source) {
    (void)source;
    co_return std::size_t{0};
  }

  // Half-close: the peer reads EOF after the bytes already written; reading goes on.
  virtual Task<Result<void>> shutdown_write() = 0;

  // Closes at once; pending operations complete with an error. Idempotent.
  virtual void close() noexcept = 0;

 private:
  Task<Result<void>> write_all_one(ByteSpan buf) {
    ByteSpan one[1] = {buf};
    co_return co_await write_all(std::span<const ByteSpan>(one));
  }
};

}  // namespace vtunnel
