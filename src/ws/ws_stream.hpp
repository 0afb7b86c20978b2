#pragma once
// WsStream: a byte stream over a WebSocket (after the handshake), itself a vtunnel::Stream so
// the SSH transport runs over it unchanged. Over any transport Stream (TCP, TLS).
//
// Writing: each write_all() call becomes one binary message (split into several only above
// max_outgoing_message; boundaries carry no meaning). A server sends header + the caller's
// spans in one gathered write (no copy); a client must mask, so it copies into its frame
// buffer. write_message_in_place() avoids that copy when the caller reserved kHeadroom bytes.
// Reading: read_some() returns the concatenated payloads of binary messages whatever their
// framing; payload bytes are unmasked in place, and while inside a frame they are read
// straight into the caller's buffer. Pings are answered, pongs ignored. The peer's close
// frame is echoed and reads EOF; text messages fail the connection with status 1003.
// Deadlines are the caller's: compose with with_timeout().
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "core/stream.hpp"
#include "core/task.hpp"
#include "ws/connection.hpp"
#include "core/sync.hpp"

namespace vtunnel::ws {

struct WsStreamOptions {
  ParserLimits limits{};
  // Largest message we send; bigger writes are split. Python websockets refuses > 1 MiB by
  // default, Go gorilla has no limit, ours is limits.max_message_size.
  std::size_t max_outgoing_message = 1024 * 1024;
  // Transport read buffer (headers, control frames, small messages).
  std::size_t read_buffer_size = 64 * 1024;
};

class WsStream final : public Stream {
 public:
  // Room to reserve in front of a payload for write_message_in_place().
  static constexpr std::size_t kHeadroom = kMaxFrameHeaderSize;

  // `already_read`: bytes the handshake read past the HTTP head (first WebSocket bytes).
  WsStream(std::unique_ptr<Stream> transport, Role role, ByteSpan already_read = {},
           WsStreamOptions options = {});
  ~WsStream() override;

  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override;
  using Stream::write_all;
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override;
  // Frames the payload where it lies: a client masks it in place (no copy), the first frame's
  // header goes into the headroom when it fits, and every frame leaves in one gathered write.
  Task<Result<void>> write_all_in_place(MutableByteSpan buffer, std::size_t headroom) override;
  // Sends a close frame (1000): the peer reads EOF; we go on reading until its close frame.
  Task<Result<void>> shutdown_write() override;
  // Closes the transport at once, without a close frame (use close_handshake() for that).
  void close() noexcept override;

  // `buffer` = [headroom][payload at payload_offset]; payload_offset >= kHeadroom is always
  // enough. Writes the frame header into the headroom, masks the payload in place (client),
  // and sends header + payload in one write. The payload bytes are modified (masked).
  // Payloads above max_outgoing_message are sent as one message nonetheless.
  Task<Result<void>> write_message_in_place(MutableByteSpan buffer, std::size_t payload_offset);

  // The full close handshake: sends a close frame with `code` and `reason` (unless one was
  // sent), reads and discards until the peer's close frame or EOF, then closes the transport.
  Task<Result<void>> close_handshake(std::uint16_t code, std::string reason);
  Task<Result<void>> close_handshake() { return close_handshake(1000, std::string()); }

  // The peer's close frame, once it arrived.
  const std::optional<CloseStatus>& peer_close() const noexcept { return conn_.peer_close(); }
  Role role() const noexcept { return conn_.role(); }
  Stream& transport() noexcept { return *transport_; }

 private:
  Task<Result<void>> send_frames(std::span<const ByteSpan> bufs, std::size_t total);
  Task<Result<void>> flush_control_locked();
  Task<void> flush_control_if_idle();
  Result<std::size_t> take_pending(MutableByteSpan buf);

  std::unique_ptr<Stream> transport_;
  WsStreamOptions options_;
  Connection conn_;
  // One writer on the transport at a time. The write side waits for it (cancellably); the
  // read side only try_lock()s to send control frames and otherwise leaves them to the
  // writer holding it, which flushes them before it unlocks.
  Mutex write_lock_;

  Bytes rx_;                    // transport bytes: [rx_pos_, rx_end_) not yet parsed
  std::size_t rx_pos_ = 0;
  std::size_t rx_end_ = 0;
  std::size_t data_pos_ = 0;    // unmasked payload in rx_ not yet delivered: [data_pos_, data_end_)
  std::size_t data_end_ = 0;
  bool large_frames_ = false;   // the peer sends large frames: read headers on their own
  bool read_eof_ = false;       // peer's close frame seen (or transport EOF between frames)
  std::error_code read_error_{};

  Bytes tx_;                    // client frames (masking needs a copy) and control frames
  Bytes control_tx_;
  std::vector<ByteSpan> gather_;
  Bytes frame_headers_;         // headers of in-place frames that did not fit the headroom
  std::error_code write_error_{};
  bool closed_ = false;
};

}  // namespace vtunnel::ws
