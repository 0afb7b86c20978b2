#include "core/buffer_pool.hpp"

#include <sys/mman.h>

#include <stdexcept>
#include <system_error>

#include "core/io_error.hpp"
#include "core/op.hpp"

namespace vtunnel {
namespace {
std::uint8_t* map_pages(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::system_category(), "mmap");
  return static_cast<std::uint8_t*>(p);
}
}  // namespace

// ---- FixedBufferPool ---------------------------------------------------------------------

FixedBufferPool::FixedBufferPool(std::size_t count, std::size_t size) : loop_(Loop::current()), size_(size) {
  slab_bytes_ = count * size;
  slab_ = map_pages(slab_bytes_);
  std::vector<iovec> iov(count);
  for (std::size_t i = 0; i < count; ++i) {
    iov[i].iov_base = slab_ + i * size;
    iov[i].iov_len = size;
  }
  int rc = io_uring_register_buffers(loop_.ring(), iov.data(), unsigned(count));
  if (rc < 0) {
    ::munmap(slab_, slab_bytes_);
    throw std::system_error(-rc, std::system_category(), "io_uring_register_buffers");
  }
  free_.reserve(count);
  for (std::size_t i = count; i-- > 0;) free_.push_back(int(i));
}

FixedBufferPool::~FixedBufferPool() {
  io_uring_unregister_buffers(loop_.ring());
  ::munmap(slab_, slab_bytes_);
}

std::optional<FixedBufferPool::Buffer> FixedBufferPool::try_acquire() noexcept {
  if (free_.empty()) return std::nullopt;
  int i = free_.back();
  free_.pop_back();
  return Buffer{slab_ + std::size_t(i) * size_, size_, i};
}

Task<Result<FixedBufferPool::Buffer>> FixedBufferPool::acquire() {
  for (;;) {
    if (auto b = try_acquire()) co_return *b;
    bool woken = co_await waiters_.wait();
    if (!woken) co_return errc::cancelled;
  }
}

void FixedBufferPool::release(Buffer b) noexcept {
  if (b.index < 0) return;
  free_.push_back(b.index);
  waiters_.wake_one();
}

// ---- ProvidedBuffer -----------------------------------------------------------------------

ProvidedBuffer::ProvidedBuffer(ProvidedBuffer&& o) noexcept
    : ring_(std::exchange(o.ring_, nullptr)), id_(o.id_), len_(std::exchange(o.len_, 0)) {}

ProvidedBuffer& ProvidedBuffer::operator=(ProvidedBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    ring_ = std::exchange(o.ring_, nullptr);
    id_ = o.id_;
    len_ = std::exchange(o.len_, 0);
  }
  return *this;
}

MutableByteSpan ProvidedBuffer::data() const noexcept {
  if (!ring_) return {};
  return {ring_->buffer(id_), len_};
}

void ProvidedBuffer::reset() noexcept {
  if (ring_) std::exchange(ring_, nullptr)->recycle(id_);
  len_ = 0;
}

// ---- ProvidedBufferRing -------------------------------------------------------------------

ProvidedBufferRing::ProvidedBufferRing(std::uint16_t group_id, unsigned count, std::size_t size)
    : loop_(Loop::current()), group_(group_id), count_(count), size_(size) {
  if (count == 0 || (count & (count - 1)) != 0 || count > 32768) {
    throw std::invalid_argument("ProvidedBufferRing: count must be a power of two <= 32768");
  }
  br_bytes_ = count * sizeof(io_uring_buf);
  br_ = reinterpret_cast<io_uring_buf_ring*>(map_pages(br_bytes_));
  slab_bytes_ = count * size;
  slab_ = map_pages(slab_bytes_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group_id;
  int rc = io_uring_register_buf_ring(loop_.ring(), &reg, 0);
  if (rc < 0) {
    ::munmap(br_, br_bytes_);
    ::munmap(slab_, slab_bytes_);
    throw std::system_error(-rc, std::system_category(), "io_uring_register_buf_ring");
  }
  io_uring_buf_ring_init(br_);
  int mask = io_uring_buf_ring_mask(count);
  for (unsigned i = 0; i < count; ++i) {
    io_uring_buf_ring_add(br_, buffer(std::uint16_t(i)), unsigned(size), std::uint16_t(i), mask, int(i));
  }
  io_uring_buf_ring_advance(br_, int(count));
}

ProvidedBufferRing::~ProvidedBufferRing() {
  io_uring_unregister_buf_ring(loop_.ring(), group_);
  ::munmap(br_, br_bytes_);
  ::munmap(slab_, slab_bytes_);
}

void ProvidedBufferRing::recycle(std::uint16_t id) noexcept {
  --outstanding_;
  give_back(id);
}

void ProvidedBufferRing::give_back(std::uint16_t id) noexcept {
  io_uring_buf_ring_add(br_, buffer(id), unsigned(size_), id, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
  waiters_.wake_one();
}

void ProvidedBufferRing::RecvOnce::prepare(io_uring_sqe* sqe) noexcept {
  io_uring_prep_recv(sqe, stream_.fd_, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = ring_.group_;
}

Result<ProvidedBuffer> ProvidedBufferRing::RecvOnce::await_resume() noexcept {
  if (!counted_) return errc::closed;  // the stream was closed before the recv was submitted
  uncount();
  int res = IoOpBase::await_resume();
  std::uint32_t flags = cqe_flags();
  if (res == -ENOBUFS) return std::make_error_code(std::errc::no_buffer_space);
  if (res < 0) return io_error(res);
  if (!(flags & IORING_CQE_F_BUFFER)) return errc::eof;  // res == 0: no buffer was used
  auto id = std::uint16_t(flags >> IORING_CQE_BUFFER_SHIFT);
  if (res == 0) {
    ring_.give_back(id);
    return errc::eof;
  }
  ++ring_.outstanding_;
  return ProvidedBuffer(&ring_, id, std::size_t(res));
}

Task<Result<ProvidedBuffer>> ProvidedBufferRing::recv(TcpStream& stream, bool wait_for_buffer) {
  for (;;) {
    Result<ProvidedBuffer> r = co_await recv_once(stream);
    if (!r && r.error() == std::errc::no_buffer_space && wait_for_buffer) {
      bool woken = co_await waiters_.wait();
      if (!woken) co_return errc::cancelled;
      continue;
    }
    co_return r;
  }
}

}  // namespace vtunnel
