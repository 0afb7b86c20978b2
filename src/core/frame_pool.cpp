#include "core/frame_pool.hpp"

#include <array>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define VTUNNEL_FRAME_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VTUNNEL_FRAME_POOL 0
#endif
#endif
#ifndef VTUNNEL_FRAME_POOL
#define VTUNNEL_FRAME_POOL 1
#endif

namespace vtunnel::detail {
namespace {

constexpr std::size_t kGranule = 64;
constexpr std::size_t kClasses = 32;  // frames up to 2 KiB
[[maybe_unused]] constexpr std::size_t kMaxBytesPerClass = 64 * 1024;  // so at most 2 MiB cached per thread

struct FreeFrame {
  FreeFrame* next;
};

// Trivially destructible, so it stays usable while the thread's other thread_locals are
// destroyed; PoolDrain empties it at thread exit and sends later frees straight to delete.
struct PoolState {
  std::array<FreeFrame*, kClasses> heads;
  std::array<std::size_t, kClasses> counts;
  std::size_t cached;
  unsigned long long reused;
  bool dead;
};

#if VTUNNEL_FRAME_POOL
constinit thread_local PoolState t_state{};

struct PoolDrain {
  PoolDrain() = default;
  PoolDrain(const PoolDrain&) = delete;
  PoolDrain& operator=(const PoolDrain&) = delete;
  ~PoolDrain() {
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeFrame* f = t_state.heads[c]) {
        t_state.heads[c] = f->next;
        ::operator delete(f);
      }
      t_state.counts[c] = 0;
    }
    t_state.cached = 0;
    t_state.dead = true;
  }
  void touch() noexcept {}
};
thread_local PoolDrain t_drain;
#endif

// Unused when the pool is off (sanitizer builds).
[[maybe_unused]] std::size_t class_of(std::size_t size) noexcept { return (size + kGranule - 1) / kGranule - 1; }

}  // namespace

void* allocate_frame(std::size_t size) {
#if VTUNNEL_FRAME_POOL
  const std::size_t c = class_of(size);
  if (size == 0 || c >= kClasses) return ::operator new(size);
  if (FreeFrame* f = t_state.dead ? nullptr : t_state.heads[c]) {
    t_state.heads[c] = f->next;
    --t_state.counts[c];
    --t_state.cached;
    ++t_state.reused;
    return f;
  }
  return ::operator new((c + 1) * kGranule);  // the whole class: any frame of the class fits
#else
  return ::operator new(size);
#endif
}

void free_frame(void* p, std::size_t size) noexcept {
#if VTUNNEL_FRAME_POOL
  const std::size_t c = class_of(size);
  if (size == 0 || c >= kClasses || t_state.dead ||
      (t_state.counts[c] + 1) * (c + 1) * kGranule > kMaxBytesPerClass) {
    ::operator delete(p);
    return;
  }
  t_drain.touch();  // constructs the drain on this thread's first cached frame
  auto* f = static_cast<FreeFrame*>(p);
  f->next = t_state.heads[c];
  t_state.heads[c] = f;
  ++t_state.counts[c];
  ++t_state.cached;
#else
  (void)size;
  ::operator delete(p);
#endif
}

FramePoolStats frame_pool_stats() noexcept {
#if VTUNNEL_FRAME_POOL
  return FramePoolStats{t_state.cached, t_state.reused};
#else
  return {};
#endif
}

bool frame_pool_enabled() noexcept { return VTUNNEL_FRAME_POOL != 0; }

}  // namespace vtunnel::detail
