#pragma once
// Test transports whose operations complete without suspending, so WsStream and the TLS
// stream can be driven without an event loop: ScriptedStream (scripted input, recorded output)
// and BlockingFdStream (a blocking socket, for interop with real peers).
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <stdexcept>

#include "core/error.hpp"
#include "core/stream.hpp"

namespace vtunnel::test {

// Runs a task whose awaits all complete synchronously and returns its result.
template <class T>
T run_sync(Task<T> task) {
  task.handle().resume();
  if (!task.done()) throw std::logic_error("run_sync: the task suspended");
  return task.handle().promise().take();
}

class ScriptedStream final : public Stream {
 public:
  Bytes input;              // what the peer "sent"
  std::size_t read_chunk = 1 << 20;  // the most one read_some returns
  Bytes written;            // what we sent
  std::size_t writes = 0;   // write_all calls
  bool write_shut = false;
  bool closed = false;
  int fail_write_at = -1;   // write_all number that fails (0-based), -1: never
  // Called after each write_all with the stream (may append to input, like a responder).
  std::function<void(ScriptedStream&)> on_write;

  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override {
    if (closed) co_return make_error_code(errc::closed);
    if (read_pos_ == input.size()) co_return make_error_code(errc::eof);
    const std::size_t n = std::min({buf.size(), read_chunk, input.size() - read_pos_});
    std::memcpy(buf.data(), input.data() + read_pos_, n);
    read_pos_ += n;
    co_return n;
  }
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override {
    if (closed) co_return make_error_code(errc::closed);
    if (static_cast<int>(writes++) == fail_write_at) co_return std::make_error_code(std::errc::connection_reset);
    for (const ByteSpan& b : bufs) written.insert(written.end(), b.begin(), b.end());
    if (on_write) on_write(*this);
    co_return Result<void>{};
  }
  Task<Result<void>> shutdown_write() override {
    write_shut = true;
    co_return Result<void>{};
  }
  void close() noexcept override { closed = true; }
  std::size_t unread() const { return input.size() - read_pos_; }

 private:
  std::size_t read_pos_ = 0;
};

// Forwards to a stream the test keeps (so it can be inspected after the owner is gone).
class StreamRef final : public Stream {
 public:
  explicit StreamRef(Stream& target) : target_(target) {}
  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override { return target_.read_some(buf); }
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override { return target_.write_all(bufs); }
  Task<Result<void>> shutdown_write() override { return target_.shutdown_write(); }
  void close() noexcept override { target_.close(); }

 private:
  Stream& target_;
};

// A connected blocking socket. Reads and writes block the test thread (with a receive
// timeout set by the caller), so every await completes synchronously.
class BlockingFdStream final : public Stream {
 public:
  explicit BlockingFdStream(int fd) : fd_(fd) {}
  ~BlockingFdStream() override { close(); }

  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override {
    while (true) {
      const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n > 0) co_return static_cast<std::size_t>(n);
      if (n == 0) co_return make_error_code(errc::eof);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) co_return make_error_code(errc::timed_out);
      co_return std::error_code(errno, std::system_category());
    }
  }
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override {
    for (const ByteSpan& b : bufs) {
      std::size_t pos = 0;
      while (pos < b.size()) {
        const ssize_t n = ::send(fd_, b.data() + pos, b.size() - pos, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EINTR) continue;
          co_return std::error_code(errno, std::system_category());
        }
        pos += static_cast<std::size_t>(n);
      }
    }
    co_return Result<void>{};
  }
  Task<Result<void>> shutdown_write() override {
    if (::shutdown(fd_, SHUT_WR) != 0) co_return std::error_code(errno, std::system_category());
    co_return Result<void>{};
  }
  void close() noexcept override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

}  // namespace vtunnel::test
