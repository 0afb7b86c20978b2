#include "core/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/io_error.hpp"
#include "core/op.hpp"

namespace vtunnel {

// ---- SocketAddress ---------------------------------------------------------------------------

SocketAddress::SocketAddress(const sockaddr* sa, socklen_t len) noexcept {
  if (len > sizeof storage_) len = sizeof storage_;
  std::memcpy(&storage_, sa, len);
  len_ = len;
}

Result<SocketAddress> SocketAddress::parse(std::string_view ip, std::uint16_t port) {
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  std::string s(ip);
  SocketAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  if (::inet_pton(AF_INET, s.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len_ = sizeof(sockaddr_in);
    return a;
  }
  a.storage_ = {};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  if (::inet_pton(AF_INET6, s.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len_ = sizeof(sockaddr_in6);
    return a;
  }
  return std::make_error_code(std::errc::invalid_argument);
}

SocketAddress SocketAddress::loopback_v4(std::uint16_t port) noexcept {
  SocketAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(port);
  v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.len_ = sizeof(sockaddr_in);
  return a;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string SocketAddress::ip() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
  } else if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

std::string SocketAddress::to_string() const {
  if (family() == AF_INET6) return fmt::format("[{}]:{}", ip(), port());
  return fmt::format("{}:{}", ip(), port());
}

// ---- TcpStream -------------------------------------------------------------------------------

TcpStream::TcpStream(TcpStream&& o) noexcept : fd_(std::exchange(o.fd_, -1)), in_flight_(o.in_flight_) {
  o.in_flight_ = 0;
}

TcpStream& TcpStream::operator=(TcpStream&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    in_flight_ = std::exchange(o.in_flight_, 0);
  }
  return *this;
}

Task<Result<TcpStream>> TcpStream::connect(SocketAddress address, ConnectOptions options) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) co_return from_errno(-errno);
  TcpStream stream(fd);
  if (options.no_delay) (void)stream.set_no_delay(true);
  int res;
  {
    InFlight guard(stream.in_flight_);
    res = co_await io_op(
        [fd, &address](io_uring_sqe* sqe) { io_uring_prep_connect(sqe, fd, address.data(), address.size()); },
        options.timeout);
  }
  if (res < 0) co_return io_error(res);
  co_return std::move(stream);
}

Task<Result<std::size_t>> TcpStream::read_some(MutableByteSpan buf) {
  return read_some(buf, Duration::zero());
}

Task<Result<std::size_t>> TcpStream::read_some(MutableByteSpan buf, Duration timeout) {
  if (fd_ < 0) co_return errc::closed;
  int res;
  {
    InFlight guard(in_flight_);
    res = co_await io_op(
        [fd = fd_, buf](io_uring_sqe* sqe) { io_uring_prep_recv(sqe, fd, buf.data(), buf.size(), 0); },
        timeout);
  }
  if (res < 0) co_return io_error(res);
  if (res == 0 && !buf.empty()) co_return errc::eof;
  co_return std::size_t(res);
}

Task<Result<void>> TcpStream::wait_readable() {
  if (fd_ < 0) co_return errc::closed;
  int res;
  {
    InFlight guard(in_flight_);
    res = co_await io_op([fd = fd_](io_uring_sqe* sqe) { io_uring_prep_poll_add(sqe, fd, POLLIN | POLLRDHUP); });
  }
  if (res < 0) co_return io_error(res);
  co_return Result<void>{};  // POLLIN, POLLRDHUP, POLLERR or POLLHUP: read_some() answers now
}

Task<Result<std::size_t>> TcpStream::write_some(ByteSpan buf) {
  if (fd_ < 0) co_return errc::closed;
  int res;
  {
    InFlight guard(in_flight_);
    res = co_await io_op([fd = fd_, buf](io_uring_sqe* sqe) {
      io_uring_prep_send(sqe, fd, buf.data(), buf.size(), MSG_NOSIGNAL);
    });
  }
  if (res < 0) co_return io_error(res);
  co_return std::size_t(res);
}

Task<Result<std::size_t>> TcpStream::write_some_fixed(ByteSpan buf, int buf_index) {
  if (fd_ < 0) co_return errc::closed;
  int res;
  {
    InFlight guard(in_flight_);
    res = co_await io_op([fd = fd_, buf, buf_index](io_uring_sqe* sqe) {
      io_uring_prep_write_fixed(sqe, fd, buf.data(), unsigned(buf.size()), 0, buf_index);
    });
  }
  if (res < 0) co_return io_error(res);
  co_return std::size_t(res);
}

Task<Result<void>> TcpStream::write_all(std::span<const ByteSpan> bufs) {
  if (fd_ < 0) co_return errc::closed;
  if (bufs.size() == 1) {
    ByteSpan b = bufs[0];
    while (!b.empty()) {
      auto n = co_await write_some(b);
      if (!n) co_return n.error();
      b = b.subspan(*n);
    }
    co_return Result<void>{};
  }
  // Gather write: sendmsg over up to kMaxIov spans at a time, looping on short sends.
  constexpr std::size_t kMaxIov = 64;
  iovec iov[kMaxIov];
  std::size_t next = 0;   // first span not yet (fully) sent
  std::size_t offset = 0; // bytes of bufs[next] already sent
  while (next < bufs.size()) {
    std::size_t n = 0;
    for (std::size_t i = next; i < bufs.size() && n < kMaxIov; ++i) {
      ByteSpan b = i == next ? bufs[i].subspan(offset) : bufs[i];
      if (b.empty()) continue;
      iov[n].iov_base = const_cast<std::uint8_t*>(b.data());
      iov[n].iov_len = b.size();
      ++n;
    }
    if (n == 0) break;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    int res;
    {
      InFlight guard(in_flight_);
      res = co_await io_op([fd = fd_, &msg](io_uring_sqe* sqe) { io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL); });
    }
    if (res < 0) co_return io_error(res);
    std::size_t sent = std::size_t(res);
    while (next < bufs.size() && sent > 0) {
      std::size_t left = bufs[next].size() - offset;
      if (sent >= left) {
        sent -= left;
        ++next;
        offset = 0;
      } else {
        offset += sent;
        sent = 0;
      }
    }
    while (next < bufs.size() && bufs[next].size() == offset) {
      ++next;
      offset = 0;
    }
  }
  co_return Result<void>{};
}

Result<std::size_t> TcpStream::send_now(ByteSpan buf) noexcept {
  if (fd_ < 0) return errc::closed;
  const ssize_t n = ::send(fd_, buf.data(), buf.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n >= 0) return std::size_t(n);
  if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
  return from_errno(-errno);
}

Result<std::size_t> TcpStream::recv_now(MutableByteSpan buf) noexcept {
  if (fd_ < 0) return errc::closed;
  const ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
  if (n > 0) return std::size_t(n);
  if (n == 0) return buf.empty() ? Result<std::size_t>(std::size_t{0}) : Result<std::size_t>(errc::eof);
  if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
  return from_errno(-errno);
}

Task<Result<void>> TcpStream::shutdown_write() {
  if (fd_ < 0) co_return errc::closed;
  if (::shutdown(fd_, SHUT_WR) < 0) co_return from_errno(-errno);
  co_return Result<void>{};
}

void TcpStream::close() noexcept {
  if (fd_ < 0) return;
  if (in_flight_ > 0) {
    // io_uring holds its own file reference: close(2) alone would leave a pending recv
    // waiting forever. Cancel every request on this fd, submitted now, before closing.
    if (Loop* loop = Loop::current_or_null()) {
      io_uring_sqe* sqe = loop->get_sqe();
      io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
      io_uring_sqe_set_data(sqe, nullptr);
      io_uring_submit(loop->ring());
    }
  }
  ::close(fd_);
  fd_ = -1;
}

Result<void> TcpStream::set_no_delay(bool on) noexcept {
  int v = on ? 1 : 0;
  if (::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) < 0) return from_errno(-errno);
  return {};
}

Result<void> TcpStream::set_keepalive(bool on, int idle_s, int interval_s, int count) noexcept {
  int v = on ? 1 : 0;
  if (::setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v) < 0) return from_errno(-errno);
  if (on) {
    if (::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s) < 0 ||
        ::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s) < 0 ||
        ::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) < 0) {
      return from_errno(-errno);
    }
  }
  return {};
}

Result<SocketAddress> TcpStream::local_address() const noexcept {
  SocketAddress a;
  *a.size_ptr() = sizeof(sockaddr_storage);
  if (::getsockname(fd_, a.data(), a.size_ptr()) < 0) return from_errno(-errno);
  return a;
}

Result<SocketAddress> TcpStream::peer_address() const noexcept {
  SocketAddress a;
  *a.size_ptr() = sizeof(sockaddr_storage);
  if (::getpeername(fd_, a.data(), a.size_ptr()) < 0) return from_errno(-errno);
  return a;
}

// ---- TcpListener -----------------------------------------------------------------------------

// Owns the multishot accept. Lives on the heap because its address is the SQE's user_data:
// when the listener closes while the accept is armed, the Acceptor outlives it until the
// final CQE (the one without IORING_CQE_F_MORE) arrives, then deletes itself.
class TcpListener::Acceptor final : public Completion {
 public:
  Acceptor(int fd, std::size_t limit) : fd_(fd), limit_(limit) {}

  Task<Result<TcpStream>> accept() {
    // Keeps this Acceptor alive while the call runs, even if the listener is closed meanwhile.
    struct User {
      Acceptor* a;
      explicit User(Acceptor* acc) : a(acc) { ++a->users_; }
      ~User() {
        --a->users_;
        a->maybe_delete();
      }
    } user(this);
    for (;;) {
      if (!ready_.empty()) {
        int r = ready_.front();
        ready_.pop_front();
        if (r < 0) co_return io_error(r);
        co_return TcpStream(r);
      }
      if (closed_) co_return errc::closed;
      if (!armed_) arm();
      bool woken = co_await waiters_.wait();
      if (!woken) co_return errc::cancelled;
    }
  }

  // Called by the listener; the Acceptor deletes itself once the kernel is done with it.
  void release() noexcept {
    closed_ = true;
    for (int r : ready_) {
      if (r >= 0) ::close(r);
    }
    ready_.clear();
    waiters_.wake_all();
    if (armed_) {
      Loop& loop = Loop::current();
      io_uring_sqe* sqe = loop.get_sqe();
      io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(static_cast<Completion*>(this)), 0);
      io_uring_sqe_set_data(sqe, nullptr);
      io_uring_submit(loop.ring());
    }
    ::close(fd_);
    fd_ = -1;
    orphaned_ = true;
    maybe_delete();
  }

  void on_cqe(int res, std::uint32_t flags) noexcept override {
    if (!(flags & IORING_CQE_F_MORE)) armed_ = false;
    if (closed_) {
      if (res >= 0) ::close(res);
    } else if (res != -ECANCELED) {
      ready_.push_back(res);
      waiters_.wake_one();
      if (armed_ && !pausing_ && ready_.size() >= limit_) pause();
    }
    if (!armed_) pausing_ = false;
    maybe_delete();
  }

  int fd() const noexcept { return fd_; }

 private:
  void arm() {
    io_uring_sqe* sqe = Loop::current().get_sqe();
    io_uring_prep_multishot_accept(sqe, fd_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, static_cast<Completion*>(this));
    armed_ = true;
  }
  // Too many accepted connections nobody has taken: stop accepting until accept() drains them
  // (the kernel's backlog holds the rest), so memory stays bounded.
  void pause() {
    pausing_ = true;
    io_uring_sqe* sqe = Loop::current().get_sqe();
    io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(static_cast<Completion*>(this)), 0);
    io_uring_sqe_set_data(sqe, nullptr);
  }

  void maybe_delete() noexcept {
    if (orphaned_ && !armed_ && users_ == 0) delete this;
  }

  int fd_;
  std::size_t limit_;
  int users_ = 0;  // accept() calls running
  std::deque<int> ready_;  // accepted fds, or negative errno
  WaitQueue waiters_;
  bool armed_ = false;
  bool pausing_ = false;
  bool closed_ = false;
  bool orphaned_ = false;
};

TcpListener::TcpListener(TcpListener&& o) noexcept
    : acceptor_(std::exchange(o.acceptor_, nullptr)), local_(o.local_) {}

TcpListener& TcpListener::operator=(TcpListener&& o) noexcept {
  if (this != &o) {
    close();
    acceptor_ = std::exchange(o.acceptor_, nullptr);
    local_ = o.local_;
  }
  return *this;
}

TcpListener::~TcpListener() { close(); }

int TcpListener::fd() const noexcept { return acceptor_ ? acceptor_->fd() : -1; }

Result<TcpListener> TcpListener::bind(SocketAddress address, ListenOptions options) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return from_errno(-errno);
  auto fail = [fd]() -> std::error_code {
    auto ec = from_errno(-errno);
    ::close(fd);
    return ec;
  };
  int one = 1;
  if (options.reuse_address && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) return fail();
  if (options.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) return fail();
  if (address.family() == AF_INET6) {
    int v6only = options.v6_only ? 1 : 0;
    if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0) return fail();
  }
  if (::bind(fd, address.data(), address.size()) < 0) return fail();
  if (::listen(fd, options.backlog) < 0) return fail();
  TcpListener l;
  *l.local_.size_ptr() = sizeof(sockaddr_storage);
  if (::getsockname(fd, l.local_.data(), l.local_.size_ptr()) < 0) return fail();
  l.acceptor_ = new Acceptor(fd, options.accept_queue_limit);
  return l;
}

Task<Result<TcpStream>> TcpListener::accept() {
  if (!acceptor_) co_return errc::closed;
  co_return co_await acceptor_->accept();
}

void TcpListener::close() noexcept {
  if (acceptor_) std::exchange(acceptor_, nullptr)->release();
}

}  // namespace vtunnel
