#pragma once
// An SSH channel as a vtunnel::Stream, so relay() can copy between it and a TCP socket.
// `owner` keeps whatever owns the SSH session alive while the channel is in use.
#include <memory>

#include "core/stream.hpp"
#include "ssh/session.hpp"

namespace vtunnel {

class ChannelStream final : public Stream {
 public:
  ChannelStream(ssh::Channel channel, std::shared_ptr<void> owner)
      : channel_(std::move(channel)), owner_(std::move(owner)) {}
  ~ChannelStream() override { close(); }

  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override { return channel_.read(buf); }
  Task<Result<void>> wait_readable() override { return channel_.wait_readable(); }
  void set_direct_sink(DirectSink* sink) noexcept override { channel_.set_direct_sink(sink); }
  bool writes_from_source() const noexcept override { return true; }
  Task<Result<std::size_t>> write_from(DirectSource& source) override { return channel_.write_from(source); }
  WaitQueue* readable_queue() noexcept override { return channel_.readable_queue(); }
  bool readable_now() const noexcept override { return channel_.readable_now(); }
  using Stream::write_all;
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override;
  Task<Result<void>> shutdown_write() override;
  void close() noexcept override;

 private:
  ssh::Channel channel_;
  std::shared_ptr<void> owner_;
  bool closed_ = false;
};

}  // namespace vtunnel
