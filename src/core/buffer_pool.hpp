#pragma once
// Buffers the kernel knows about.
// - FixedBufferPool: one slab registered with io_uring_register_buffers, cut into equal
//   buffers; writes from them (TcpStream::write_some_fixed) skip the per-call page pinning.
// - ProvidedBufferRing: a provided-buffer ring (IORING_REGISTER_PBUF_RING); receives pick a
//   buffer only when data arrives, so an idle connection holds no receive buffer at all.
#include <sys/uio.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "core/loop.hpp"
#include "core/op.hpp"
#include "core/result.hpp"
#include "core/socket.hpp"
#include "core/sync.hpp"

namespace vtunnel {

class FixedBufferPool {
 public:
  struct Buffer {
    std::uint8_t* data = nullptr;
    std::size_t size = 0;
    int index = -1;  // the registered buffer index to pass to write_some_fixed
  };

  // Registers count buffers of `size` bytes with the current loop's ring (one pool per ring).
  FixedBufferPool(std::size_t count, std::size_t size);
  ~FixedBufferPool();
  FixedBufferPool(const FixedBufferPool&) = delete;
  FixedBufferPool& operator=(const FixedBufferPool&) = delete;

  std::optional<Buffer> try_acquire() noexcept;
  Task<Result<Buffer>> acquire();  // waits for a release when all are taken
  void release(Buffer b) noexcept;
  std::size_t available() const noexcept { return free_.size(); }

 private:
  Loop& loop_;
  std::size_t size_;
  std::uint8_t* slab_ = nullptr;
  std::size_t slab_bytes_ = 0;
  std::vector<int> free_;
  WaitQueue waiters_;
};

class ProvidedBufferRing;

// A received chunk inside a provided buffer; returns the buffer to the ring when destroyed.
class ProvidedBuffer {
 public:
  ProvidedBuffer() noexcept = default;
  ProvidedBuffer(ProvidedBufferRing* ring, std::uint16_t id, std::size_t len) noexcept
      : ring_(ring), id_(id), len_(len) {}
  ProvidedBuffer(ProvidedBuffer&& o) noexcept;
  ProvidedBuffer& operator=(ProvidedBuffer&& o) noexcept;
  ~ProvidedBuffer() { reset(); }

  MutableByteSpan data() const noexcept;
  std::size_t size() const noexcept { return len_; }
  void reset() noexcept;

 private:
  ProvidedBufferRing* ring_ = nullptr;
  std::uint16_t id_ = 0;
  std::size_t len_ = 0;
};

class ProvidedBufferRing {
 public:
  // `count` must be a power of two (at most 32768). Registered with the current loop's ring.
  ProvidedBufferRing(std::uint16_t group_id, unsigned count, std::size_t size);
  ~ProvidedBufferRing();
  ProvidedBufferRing(const ProvidedBufferRing&) = delete;
  ProvidedBufferRing& operator=(const ProvidedBufferRing&) = delete;

  // One recv on `stream` into whichever buffer the kernel picks. When the ring is empty
  // (-ENOBUFS) it waits for a buffer to be recycled and tries again, or, with
  // wait_for_buffer == false, fails with std::errc::no_buffer_space.
  Task<Result<ProvidedBuffer>> recv(TcpStream& stream, bool wait_for_buffer = true);

  // One recv, awaited in place (no task frame of its own: an idle relay waits in it):
  // the buffer, errc::eof, std::errc::no_buffer_space when the ring is empty, or the error.
  class RecvOnce;
  RecvOnce recv_once(TcpStream& stream) noexcept;

  std::uint8_t* buffer(std::uint16_t id) const noexcept { return slab_ + std::size_t(id) * size_; }
  void recycle(std::uint16_t id) noexcept;
  std::size_t buffer_size() const noexcept { return size_; }
  // Buffers handed out by recv() and not yet recycled.
  std::size_t outstanding() const noexcept { return outstanding_; }

 private:
  Loop& loop_;
  std::uint16_t group_;
  unsigned count_;
  std::size_t size_;
  io_uring_buf_ring* br_ = nullptr;
  std::size_t br_bytes_ = 0;
  std::uint8_t* slab_ = nullptr;
  std::size_t slab_bytes_ = 0;
  std::size_t outstanding_ = 0;
  WaitQueue waiters_;  // recv() calls that met -ENOBUFS
  void give_back(std::uint16_t id) noexcept;
};

class ProvidedBufferRing::RecvOnce final : public IoOpBase {
 public:
  RecvOnce(ProvidedBufferRing& ring, TcpStream& stream) noexcept : ring_(ring), stream_(stream) {}
  ~RecvOnce() { uncount(); }
  bool await_ready() const noexcept { return stream_.fd_ < 0; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    ++stream_.in_flight_;  // close() must cancel the recv
    counted_ = true;
    return IoOpBase::await_suspend(h);
  }
  Result<ProvidedBuffer> await_resume() noexcept;

 private:
  void prepare(io_uring_sqe* sqe) noexcept override;
  void uncount() noexcept {
    if (counted_) --stream_.in_flight_;
    counted_ = false;
  }
  ProvidedBufferRing& ring_;
  TcpStream& stream_;
  bool counted_ = false;
};

inline ProvidedBufferRing::RecvOnce ProvidedBufferRing::recv_once(TcpStream& stream) noexcept {
  return RecvOnce(*this, stream);
}

}  // namespace vtunnel
