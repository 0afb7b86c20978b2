#pragma once
// HostRewriter: for tls:// forwards, rewrites the Host header of HTTP requests flowing to the
// target so the target sees its own name (the user spoke to 127.0.0.1:PORT). Sans-I/O and
// streaming: heads may arrive split across reads. Each request head (up to kMaxHead bytes) is
// buffered until complete, its Host line replaced; a body with Content-Length is passed
// through, and the next head is rewritten too. Anything it does not understand (a chunked or
// unknown-length body, a head larger than kMaxHead, a non-HTTP stream) switches it to plain
// pass-through for the rest of the connection: bytes are never lost or reordered.
#include <cstddef>
#include <string>

#include "core/bytes.hpp"

namespace vtunnel {

class HostRewriter {
 public:
  static constexpr std::size_t kMaxHead = 16 * 1024;

  explicit HostRewriter(std::string host) : host_(std::move(host)) {}

  // Consumes `in`; appends what may be sent now to `out` (possibly nothing while a head is
  // incomplete).
  void feed(ByteSpan in, Bytes& out);
  // At end of input: whatever is still buffered (an incomplete head) goes out unchanged.
  void finish(Bytes& out);
  bool passthrough() const noexcept { return mode_ == Mode::passthrough; }

 private:
  enum class Mode { head, body, passthrough };
  void complete_head(Bytes& out, std::size_t head_len);

  std::string host_;
  Mode mode_ = Mode::head;
  Bytes head_;
  std::uint64_t body_left_ = 0;
};

}  // namespace vtunnel
