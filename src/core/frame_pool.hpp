#pragma once
// Recycles coroutine frames. Every co_await of a Task allocates a frame, and the data path
// awaits a few per chunk (relay -> stream -> socket -> io_op), so a request through the tunnel
// costs about ten frame allocations per process. Frames are freed in the same bursts they are
// made, often more at once than glibc's per-thread cache keeps (7 per size), so most went
// through malloc's slower bins. This pool keeps freed frames per thread in size classes of
// 64 bytes up to 2 KiB, at most 64 KiB of frames per class (at most 2 MiB per thread, in
// practice the few sizes the data path uses); larger frames go to operator new directly.
// Under AddressSanitizer the pool is off, so a use after free is still caught.
#include <cstddef>

namespace vtunnel::detail {

void* allocate_frame(std::size_t size);
void free_frame(void* p, std::size_t size) noexcept;

struct FramePoolStats {
  std::size_t cached = 0;         // frames held for reuse by this thread
  unsigned long long reused = 0;  // allocations served from the cache so far (this thread)
};
FramePoolStats frame_pool_stats() noexcept;
bool frame_pool_enabled() noexcept;  // false under AddressSanitizer

}  // namespace vtunnel::detail
