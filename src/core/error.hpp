#pragma once
// Runtime-level error codes. Kernel errors from a negative cqe->res map to system_category;
// these cover the conditions the kernel has no errno for.
#include <string>
#include <system_error>

namespace vtunnel {

enum class errc {
  eof = 1,          // the peer closed its write side
  timed_out,        // a deadline given to with_timeout / connect passed
  cancelled,        // the operation's scope was cancelled
  closed,           // the object was closed locally while the operation was pending
  limit_exceeded,   // a named limit (size, count) was exceeded
  resolve_failed,   // name resolution found no address
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

// An error code for a negative errno value as io_uring reports it (cqe->res < 0).
inline std::error_code from_errno(int negative_errno) noexcept {
  return {-negative_errno, std::system_category()};
}

}  // namespace vtunnel

template <>
struct std::is_error_code_enum<vtunnel::errc> : std::true_type {};
