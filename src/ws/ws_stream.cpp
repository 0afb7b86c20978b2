#include "ws/ws_stream.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "core/error.hpp"
#include "ws/error.hpp"
#include "ws/frame_writer.hpp"
#include "ws/mask.hpp"

namespace vtunnel::ws {
namespace {

constexpr std::size_t kCloseDrainBuffer = 4096;
// A frame with at least this much payload left after its first read counts as large.
constexpr std::size_t kLargeFrame = 64 * 1024;

}  // namespace

WsStream::WsStream(std::unique_ptr<Stream> transport, Role role, ByteSpan already_read,
                   WsStreamOptions options)
    : transport_(std::move(transport)),
      options_(options),
      conn_(role, options.limits),
      rx_(std::max(options.read_buffer_size, already_read.size())) {
  std::copy(already_read.begin(), already_read.end(), rx_.begin());
  rx_end_ = already_read.size();
}

WsStream::~WsStream() = default;

Result<std::size_t> WsStream::take_pending(MutableByteSpan buf) {
  const std::size_t n = std::min(buf.size(), data_end_ - data_pos_);
  std::memcpy(buf.data(), rx_.data() + data_pos_, n);
  data_pos_ += n;
  return n;
}

Task<Result<std::size_t>> WsStream::read_some(MutableByteSpan buf) {
  if (buf.empty()) co_return std::size_t{0};
  while (true) {
    if (data_pos_ < data_end_) co_return take_pending(buf);
    if (read_error_) co_return read_error_;
    if (read_eof_) co_return make_error_code(vtunnel::errc::eof);
    if (closed_) co_return make_error_code(vtunnel::errc::closed);

    if (rx_pos_ < rx_end_) {
      const ReadStep step = conn_.read(MutableByteSpan(rx_).subspan(rx_pos_, rx_end_ - rx_pos_));
      rx_pos_ += step.consumed;
      switch (step.kind) {
        case ReadStep::Kind::need_more:
          break;
        case ReadStep::Kind::data:
          if (step.message_opcode != Opcode::binary) {
            conn_.close(static_cast<std::uint16_t>(CloseCode::unsupported_data), "binary messages only");
            read_error_ = errc::text_message;
            break;
          }
          data_pos_ = static_cast<std::size_t>(step.payload.data() - rx_.data());
          data_end_ = data_pos_ + step.payload.size();
          large_frames_ = conn_.parser().payload_remaining() >= kLargeFrame;
          break;
        case ReadStep::Kind::closed:
          read_eof_ = true;
          break;
        case ReadStep::Kind::failed:
          read_error_ = step.error;
          break;
      }
      if (!conn_.pending_output().empty()) {
        co_await flush_control_if_idle();
      }
      continue;
    }

    // Everything read so far is parsed and delivered: the read buffer is free.
    rx_pos_ = rx_end_ = data_pos_ = data_end_ = 0;
    const std::uint64_t remaining = conn_.parser().payload_remaining();
    const bool direct = remaining > 0;
    // Inside a frame the next `remaining` bytes are all payload: read them straight into
    // the caller's buffer and unmask them there.
    // Between large frames, read only the next header into rx_ so that the payload after it
    // is read straight into the caller's buffer too (instead of copied out of rx_).
    const std::size_t header_only = frame_header_size(0xFFFF + 1, conn_.role() == Role::server);
    MutableByteSpan target = direct ? buf.first(static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), remaining)))
                             : large_frames_ ? MutableByteSpan(rx_).first(std::min(rx_.size(), header_only))
                                             : MutableByteSpan(rx_);
    Result<std::size_t> got = co_await transport_->read_some(target);
    if (!got) {
      if (got.error() == vtunnel::errc::eof) {
        const bool clean = conn_.parser().between_frames() && !conn_.parser().in_message();
        if (clean) {
          read_eof_ = true;  // the peer hung up without a close frame (1006)
        } else {
          read_error_ = errc::truncated_frame;
        }
      } else {
        read_error_ = got.error();
      }
      continue;
    }
    if (!direct) {
      rx_end_ = *got;
      continue;
    }
    const ReadStep step = conn_.read(target.first(*got));
    // All payload of one frame: one data step that consumed everything, unmasked in place.
    if (step.kind == ReadStep::Kind::failed) {
      read_error_ = step.error;
    } else if (step.message_opcode != Opcode::binary) {
      conn_.close(static_cast<std::uint16_t>(CloseCode::unsupported_data), "binary messages only");
      read_error_ = errc::text_message;
    } else {
      co_return *got;
    }
    if (!conn_.pending_output().empty()) {
      co_await flush_control_if_idle();
    }
  }
}

Task<void> WsStream::flush_control_if_idle() {
  if (!write_lock_.try_lock()) co_return;  // the writer holding it flushes before unlocking
  Mutex::Guard guard(&write_lock_);
  Result<void> sent = co_await flush_control_locked();
  (void)sent;  // recorded in write_error_; the reader reports its own state
}

Task<Result<void>> WsStream::flush_control_locked() {
  while (!conn_.pending_output().empty()) {
    if (write_error_) co_return write_error_;
    // Copied: the connection may queue more (and reallocate) while this write is pending.
    const ByteSpan pending = conn_.pending_output();
    control_tx_.assign(pending.begin(), pending.end());
    conn_.consume_output(pending.size());
    Result<void> sent = co_await transport_->write_all(ByteSpan(control_tx_));
    if (!sent) {
      write_error_ = sent.error();
      co_return sent;
    }
  }
  co_return Result<void>{};
}

Task<Result<void>> WsStream::send_frames(std::span<const ByteSpan> bufs, std::size_t total) {
  std::size_t span_index = 0;
  std::size_t span_offset = 0;
  while (total > 0) {
    const std::size_t message = std::min(total, options_.max_outgoing_message);
    const FrameSpec spec = conn_.data_frame();
    const std::size_t header = frame_header_size(message, spec.mask.has_value());
    if (spec.mask) {
      // Clients mask, so the payload is copied next to its header and masked there.
      tx_.resize(header + message);
      std::size_t filled = header;
      while (filled < tx_.size()) {
        const ByteSpan from = bufs[span_index].subspan(span_offset);
        const std::size_t n = std::min(from.size(), tx_.size() - filled);
        std::memcpy(tx_.data() + filled, from.data(), n);
        filled += n;
        span_offset += n;
        if (span_offset == bufs[span_index].size()) {
          ++span_index;
          span_offset = 0;
        }
      }
      seal_frame_in_place(tx_, header, spec);
      Result<void> sent = co_await transport_->write_all(ByteSpan(tx_));
      if (!sent) co_return sent;
    } else {
      // Servers send the header and the caller's own spans in one gathered write.
      tx_.resize(header);
      write_frame_header(tx_, spec, message);
      gather_.clear();
      gather_.push_back(ByteSpan(tx_));
      std::size_t left = message;
      while (left > 0) {
        const ByteSpan from = bufs[span_index].subspan(span_offset);
        const std::size_t n = std::min(from.size(), left);
        if (n != 0) gather_.push_back(from.first(n));
        left -= n;
        span_offset += n;
        if (span_offset == bufs[span_index].size()) {
          ++span_index;
          span_offset = 0;
        }
      }
      Result<void> sent = co_await transport_->write_all(std::span<const ByteSpan>(gather_));
      if (!sent) co_return sent;
    }
    total -= message;
  }
  co_return Result<void>{};
}

Task<Result<void>> WsStream::write_all(std::span<const ByteSpan> bufs) {
  std::size_t total = 0;
  for (const ByteSpan& b : bufs) total += b.size();
  Result<Mutex::Guard> locked = co_await write_lock_.lock();
  if (!locked) co_return locked.error();
  Mutex::Guard guard = std::move(*locked);
  if (closed_) co_return make_error_code(vtunnel::errc::closed);
  Result<void> flushed = co_await flush_control_locked();
  if (!flushed) co_return flushed;
  if (!conn_.can_send_data()) co_return make_error_code(errc::closed);
  if (total == 0) co_return Result<void>{};  // an empty message would carry nothing
  Result<void> sent = co_await send_frames(bufs, total);
  if (!sent) {
    write_error_ = sent.error();
    co_return sent;
  }
  co_return co_await flush_control_locked();  // pongs that arrived meanwhile
}

Task<Result<void>> WsStream::write_all_in_place(MutableByteSpan buffer, std::size_t headroom) {
  Result<Mutex::Guard> locked = co_await write_lock_.lock();
  if (!locked) co_return locked.error();
  Mutex::Guard guard = std::move(*locked);
  if (closed_) co_return make_error_code(vtunnel::errc::closed);
  Result<void> flushed = co_await flush_control_locked();
  if (!flushed) co_return flushed;
  if (!conn_.can_send_data()) co_return make_error_code(errc::closed);
  const MutableByteSpan payload = buffer.subspan(headroom);
  if (payload.empty()) co_return Result<void>{};
  const std::size_t max_message = std::max<std::size_t>(options_.max_outgoing_message, 1);
  const std::size_t frames = (payload.size() + max_message - 1) / max_message;
  frame_headers_.resize(frames * kMaxFrameHeaderSize);
  gather_.clear();
  for (std::size_t i = 0, offset = 0; i < frames; ++i) {
    const std::size_t message = std::min(payload.size() - offset, max_message);
    const FrameSpec spec = conn_.data_frame();
    const std::size_t header = frame_header_size(message, spec.mask.has_value());
    const MutableByteSpan body = payload.subspan(offset, message);
    if (spec.mask) apply_mask(body, *spec.mask, 0);
    if (i == 0 && headroom >= header) {
      // Header right in front of the payload: one contiguous span.
      write_frame_header(buffer.subspan(headroom - header, header), spec, message);
      gather_.push_back(ByteSpan(buffer).subspan(headroom - header, header + message));
    } else {
      const MutableByteSpan h = MutableByteSpan(frame_headers_).subspan(i * kMaxFrameHeaderSize, header);
      write_frame_header(h, spec, message);
      gather_.push_back(h);
      gather_.push_back(body);
    }
    offset += message;
  }
  Result<void> sent = co_await transport_->write_all(std::span<const ByteSpan>(gather_));
  if (!sent) {
    write_error_ = sent.error();
    co_return sent;
  }
  co_return co_await flush_control_locked();
}

Task<Result<void>> WsStream::write_message_in_place(MutableByteSpan buffer, std::size_t payload_offset) {
  Result<Mutex::Guard> locked = co_await write_lock_.lock();
  if (!locked) co_return locked.error();
  Mutex::Guard guard = std::move(*locked);
  if (closed_) co_return make_error_code(vtunnel::errc::closed);
  Result<void> flushed = co_await flush_control_locked();
  if (!flushed) co_return flushed;
  if (!conn_.can_send_data()) co_return make_error_code(errc::closed);
  const MutableByteSpan frame = seal_frame_in_place(buffer, payload_offset, conn_.data_frame());
  Result<void> sent = co_await transport_->write_all(ByteSpan(frame));
  if (!sent) {
    write_error_ = sent.error();
    co_return sent;
  }
  co_return co_await flush_control_locked();
}

Task<Result<void>> WsStream::shutdown_write() {
  Result<Mutex::Guard> locked = co_await write_lock_.lock();
  if (!locked) co_return locked.error();
  Mutex::Guard guard = std::move(*locked);
  if (closed_) co_return make_error_code(vtunnel::errc::closed);
  conn_.close(static_cast<std::uint16_t>(CloseCode::normal));
  co_return co_await flush_control_locked();
}

Task<Result<void>> WsStream::close_handshake(std::uint16_t code, std::string reason) {
  {
    Result<Mutex::Guard> locked = co_await write_lock_.lock();
    if (!locked) co_return locked.error();
    Mutex::Guard guard = std::move(*locked);
    conn_.close(code, reason);
    Result<void> sent = co_await flush_control_locked();
    if (!sent) {
      close();
      co_return sent;
    }
  }
  Bytes sink(kCloseDrainBuffer);
  while (true) {
    Result<std::size_t> got = co_await read_some(sink);
    if (!got) break;  // EOF once the peer's close arrived, or an error
  }
  close();
  co_return Result<void>{};
}

void WsStream::close() noexcept {
  if (closed_) return;
  closed_ = true;
  transport_->close();
}

}  // namespace vtunnel::ws
