#pragma once
// ChunkedBodyScanner: finds where a chunked request body ends, without decoding it, so the
// proxy can forward the chunks verbatim (sizes, extensions, trailers) and stop at the end of
// the body. Sans-I/O: feed bytes as they arrive. Strict framing (CRLF only, hex sizes that
// fit in 64 bits); chunk-size lines and the trailer section are bounded by named limits.
#include <cstddef>
#include <cstdint>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace vtunnel::proxy {

inline constexpr std::size_t kMaxChunkLineBytes = 4 * 1024;  // size + extensions
inline constexpr std::size_t kMaxTrailerBytes = 8 * 1024;

class ChunkedBodyScanner {
 public:
  // How many leading bytes of `data` belong to the body: all of them until the final CRLF
  // has been seen, then only up to it. errc::bad_chunked_body on a framing error.
  Result<std::size_t> scan(ByteSpan data);
  bool done() const noexcept { return state_ == State::done; }

 private:
  enum class State { size, extension, size_lf, data, data_cr, data_lf, trailer_start, trailer_line, trailer_lf, final_lf, done };
  State state_ = State::size;
  std::uint64_t remaining_ = 0;  // chunk size being read, then data bytes left
  std::size_t size_digits_ = 0;
  std::size_t line_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
};

}  // namespace vtunnel::proxy
