#include "proxy/chunked_body.hpp"

#include <algorithm>

#include "proxy/error.hpp"

namespace vtunnel::proxy {

namespace {
int hex_value(std::uint8_t c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Result<std::size_t> ChunkedBodyScanner::scan(ByteSpan data) {
  std::size_t i = 0;
  const std::error_code bad = errc::bad_chunked_body;
  while (i < data.size() && state_ != State::done) {
    if (state_ == State::data) {
      std::size_t take = std::size_t(std::min<std::uint64_t>(remaining_, data.size() - i));
      i += take;
      remaining_ -= take;
      if (remaining_ == 0) state_ = State::data_cr;
      continue;
    }
    std::uint8_t c = data[i++];
    switch (state_) {
      case State::size: {
        if (++line_bytes_ > kMaxChunkLineBytes) return bad;
        int h = hex_value(c);
        if (h >= 0) {
          if (remaining_ > (UINT64_MAX >> 4)) return bad;
          remaining_ = (remaining_ << 4) | std::uint64_t(h);
          ++size_digits_;
        } else if (size_digits_ > 0 && (c == ';' || c == ' ' || c == '\t')) {
          state_ = State::extension;
        } else if (size_digits_ > 0 && c == '\r') {
          state_ = State::size_lf;
        } else {
          return bad;
        }
        break;
      }
      case State::extension:
        if (++line_bytes_ > kMaxChunkLineBytes) return bad;
        if (c == '\r') state_ = State::size_lf;
        else if (c == '\n') return bad;
        break;
      case State::size_lf:
        if (c != '\n') return bad;
        line_bytes_ = 0;
        size_digits_ = 0;
        state_ = remaining_ == 0 ? State::trailer_start : State::data;
        break;
      case State::data_cr:
        if (c != '\r') return bad;
        state_ = State::data_lf;
        break;
      case State::data_lf:
        if (c != '\n') return bad;
        state_ = State::size;
        break;
      case State::trailer_start:
        if (c == '\r') {
          state_ = State::final_lf;
          break;
        }
        [[fallthrough]];
      case State::trailer_line:
        if (++trailer_bytes_ > kMaxTrailerBytes) return bad;
        if (c == '\r') state_ = State::trailer_lf;
        else if (c == '\n') return bad;
        else state_ = State::trailer_line;
        break;
      case State::trailer_lf:
        if (c != '\n') return bad;
        state_ = State::trailer_start;
        break;
      case State::final_lf:
        if (c != '\n') return bad;
        state_ = State::done;
        break;
      case State::data:
      case State::done:
        break;
    }
  }
  return i;
}

}  // namespace vtunnel::proxy
