#pragma once
// TCP over io_uring: TcpListener (multishot accept) and TcpStream (a vtunnel::Stream).
// IPv4 and IPv6. Errors are values: refused, reset and timeout arrive as error codes
// (std::errc::connection_refused, ::connection_reset, errc::timed_out), EOF as errc::eof.
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "core/loop.hpp"
#include "core/result.hpp"
#include "core/stream.hpp"
#include "core/sync.hpp"

namespace vtunnel {

class SocketAddress {
 public:
  SocketAddress() noexcept = default;
  SocketAddress(const sockaddr* sa, socklen_t len) noexcept;

  // Numeric addresses only ("127.0.0.1", "::1", "[::1]"); names go through resolve().
  static Result<SocketAddress> parse(std::string_view ip, std::uint16_t port);
  static SocketAddress loopback_v4(std::uint16_t port) noexcept;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }
  socklen_t* size_ptr() noexcept { return &len_; }
  int family() const noexcept { return storage_.ss_family; }
  std::uint16_t port() const noexcept;
  std::string ip() const;
  std::string to_string() const;  // "127.0.0.1:80", "[::1]:80"

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

struct ConnectOptions {
  std::chrono::milliseconds timeout{10'000};
  bool no_delay = true;
};

class TcpStream final : public Stream {
 public:
  TcpStream() noexcept = default;
  explicit TcpStream(int fd) noexcept : fd_(fd) {}
  TcpStream(TcpStream&& o) noexcept;
  TcpStream& operator=(TcpStream&& o) noexcept;
  ~TcpStream() override { close(); }

  static Task<Result<TcpStream>> connect(SocketAddress address, ConnectOptions options = {});

  Task<Result<std::size_t>> read_some(MutableByteSpan buf) override;
  // As read_some, failing with errc::timed_out if nothing arrives within `timeout`
  // (an io_uring linked timeout: no timer bookkeeping on the loop).
  Task<Result<std::size_t>> read_some(MutableByteSpan buf, Duration timeout);
  // A poll for POLLIN through the ring: no buffer is held while waiting.
  Task<Result<void>> wait_readable() override;
  Task<Result<void>> write_all(std::span<const ByteSpan> bufs) override;
  using Stream::write_all;
  // One send; may write fewer bytes than given.
  Task<Result<std::size_t>> write_some(ByteSpan buf);
  // One non-blocking send(2), outside the ring: what the socket takes now (0 when full), or
  // the error. For producers that must not wait (see DirectSink); everything else awaits.
  Result<std::size_t> send_now(ByteSpan buf) noexcept;
  // One non-blocking recv(2), outside the ring: the count (0 when nothing is there),
  // errc::eof at end of stream, or the error.
  Result<std::size_t> recv_now(MutableByteSpan buf) noexcept;
  // One write from a buffer registered with the ring (see FixedBufferPool).
  Task<Result<std::size_t>> write_some_fixed(ByteSpan buf, int buf_index);
  Task<Result<void>> shutdown_write() override;
  void close() noexcept override;

  Result<void> set_no_delay(bool on) noexcept;
  // TCP keepalive: idle seconds before probes, interval, probe count.
  Result<void> set_keepalive(bool on, int idle_s = 30, int interval_s = 10, int count = 3) noexcept;
  Result<SocketAddress> local_address() const noexcept;
  Result<SocketAddress> peer_address() const noexcept;

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }

 private:
  friend class ProvidedBufferRing;
  // Counts an operation in flight for the lifetime of the scope, so close() knows to cancel.
  struct InFlight {
    int& n;
    explicit InFlight(int& count) noexcept : n(count) { ++n; }
    ~InFlight() { --n; }
  };
  int fd_ = -1;
  int in_flight_ = 0;  // ops submitted and not yet completed: close() must cancel them
};

struct ListenOptions {
  int backlog = 4096;
  bool reuse_address = true;
  bool reuse_port = false;
  bool v6_only = false;
  std::size_t accept_queue_limit = 256;  // accepted, not yet taken by accept(): pause beyond
};

class TcpListener {
 public:
  TcpListener() noexcept = default;
  TcpListener(TcpListener&&) noexcept;
  TcpListener& operator=(TcpListener&&) noexcept;
  TcpListener(const TcpListener&) = delete;
  ~TcpListener();

  static Result<TcpListener> bind(SocketAddress address, ListenOptions options = {});

  // The next connection. One multishot accept SQE serves many calls.
  Task<Result<TcpStream>> accept();
  void close() noexcept;

  std::uint16_t port() const noexcept { return local_.port(); }
  const SocketAddress& local_address() const noexcept { return local_; }
  int fd() const noexcept;

 private:
  class Acceptor;
  Acceptor* acceptor_ = nullptr;  // heap: its address is the SQE's user_data
  SocketAddress local_;
};

}  // namespace vtunnel
