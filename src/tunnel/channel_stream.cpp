#include "tunnel/channel_stream.hpp"

namespace vtunnel {

Task<Result<void>> ChannelStream::write_all(std::span<const ByteSpan> bufs) {
  for (ByteSpan b : bufs) {
    if (b.empty()) continue;
    auto r = co_await channel_.write(b);
    if (!r) co_return r;
  }
  co_return Result<void>{};
}

Task<Result<void>> ChannelStream::shutdown_write() { co_return channel_.send_eof(); }

void ChannelStream::close() noexcept {
  if (closed_) return;
  closed_ = true;
  channel_.close();
}

}  // namespace vtunnel
