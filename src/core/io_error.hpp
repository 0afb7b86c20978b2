#pragma once
#include <cerrno>
#include <system_error>

#include "core/error.hpp"

namespace vtunnel {
// Maps a negative io_uring result to an error code: cancellation and timeouts to our own
// conditions (so callers test one code), everything else to system_category.
inline std::error_code io_error(int res) noexcept {
  if (res == -ECANCELED) return errc::cancelled;
  if (res == -ETIMEDOUT || res == -ETIME) return errc::timed_out;
  return from_errno(res);
}
}  // namespace vtunnel
