#pragma once
// TlsStream: the Stream side of a TLS connection over a transport Stream, shared by
// TlsClientStream and TlsServerStream. Reads feed the transport's ciphertext to Botan and hand
// out the decrypted records; writes encrypt in chunks and flush Botan's records to the
// transport; shutdown_write() sends close_notify. Botan stays out of this header: the state is a
// detail::TlsChannel (ws/detail/tls_channel.hpp, internal to vtunnel_ws) that the two
// subclasses set up and hand over once the handshake is done.
#include <memory>
#include <string>

#include "core/result.hpp"
#include "core/stream.hpp"
#include "core/sync.hpp"
#include "core/task.hpp"

namespace vtunnel::ws {

namespace detail {
struct TlsChannel;
}

class TlsStream : public Stream {
 public:
  ~TlsStream() override;

  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override;
  using Stream::write_all;
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override;
  // Sends close_notify, then half-closes the transport.
  Task<Result<void>> shutdown_write() override;
  void close() noexcept override;

  // Negotiated version and cipher suite, e.g. "TLS v1.2 ECDHE_RSA_WITH_AES_128_GCM_SHA256".
  std::string protocol_description() const;

 protected:
  // `channel` has completed its handshake.
  explicit TlsStream(std::unique_ptr<detail::TlsChannel> channel);

 private:
  Task<void> flush_if_idle();

  std::unique_ptr<detail::TlsChannel> channel_;
  Mutex write_lock_;  // as in WsStream: writers wait, the reader only try_lock()s
};

}  // namespace vtunnel::ws
