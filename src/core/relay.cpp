#include "core/relay.hpp"

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <vector>

#include "core/buffer_pool.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/scope.hpp"
#include "core/socket.hpp"
#include "core/timer.hpp"

namespace vtunnel {

namespace {

// The loop's relay buffers: a provided-buffer ring for TCP receives and a pool of plain
// buffers for everything else (and for TCP when the ring is empty). Created on the first relay.
class RelayBuffers final : public Loop::Service {
 public:
  static constexpr std::uint16_t kRingGroup = 0x7e1a;
  static constexpr unsigned kRingBuffers = 8;  // 2 MiB of address space, touched as used
  static constexpr std::size_t kMaxCached = 4;  // 1 MiB

  static RelayBuffers& current() {
    Loop& loop = Loop::current();
    if (Loop::Service* s = loop.find_service(&kKey)) return static_cast<RelayBuffers&>(*s);
    return static_cast<RelayBuffers&>(loop.add_service(&kKey, std::make_unique<RelayBuffers>()));
  }
  static RelayBuffers* current_or_null() {
    Loop* loop = Loop::current_or_null();
    return loop ? static_cast<RelayBuffers*>(loop->find_service(&kKey)) : nullptr;
  }

  RelayBuffers() {
    try {
      ring_ = std::make_unique<ProvidedBufferRing>(kRingGroup, kRingBuffers, kRelayBufferSize);
    } catch (const std::exception& e) {
      // Kernels before 5.19: TCP waits by poll and reads into a pool buffer instead.
      log::debug("relay: no provided-buffer ring ({}); using poll + pooled buffers", e.what());
    }
  }

  ProvidedBufferRing* ring() noexcept { return ring_.get(); }

  // A pool buffer: returned to the pool (or freed) when destroyed.
  class Held {
   public:
    Held() noexcept = default;
    Held(RelayBuffers* pool, std::unique_ptr<std::uint8_t[]> data, std::size_t size) noexcept
        : pool_(pool), data_(std::move(data)), size_(size) {}
    Held(Held&& o) noexcept = default;
    Held& operator=(Held&& o) noexcept {
      if (this != &o) {
        reset();
        pool_ = o.pool_;
        data_ = std::move(o.data_);
        size_ = o.size_;
      }
      return *this;
    }
    ~Held() { reset(); }
    std::uint8_t* data() const noexcept { return data_.get(); }
    void reset() noexcept {
      if (data_) pool_->give_back(std::move(data_), size_);
    }

   private:
    RelayBuffers* pool_ = nullptr;
    std::unique_ptr<std::uint8_t[]> data_;
    std::size_t size_ = 0;
  };

  Held acquire(std::size_t size) {
    ++in_use_;
    ++acquired_;
    if (size == kRelayBufferSize && !cached_.empty()) {
      auto b = std::move(cached_.back());
      cached_.pop_back();
      return Held(this, std::move(b), size);
    }
    return Held(this, std::make_unique_for_overwrite<std::uint8_t[]>(size), size);
  }

  void count_ring_receive() noexcept { ++ring_receives_; }
  void count_direct_send() noexcept { ++direct_sends_; }
  void count_direct_receive() noexcept { ++direct_receives_; }

  RelayBufferStats stats() const noexcept {
    RelayBufferStats s;
    s.in_use = in_use_ + (ring_ ? ring_->outstanding() : 0);
    s.cached = cached_.size();
    s.acquired = acquired_;
    s.ring_receives = ring_receives_;
    s.direct_sends = direct_sends_;
    s.direct_receives = direct_receives_;
    s.ring = ring_ != nullptr;
    return s;
  }

 private:
  static inline const char kKey = 0;

  void give_back(std::unique_ptr<std::uint8_t[]> b, std::size_t size) noexcept {
    --in_use_;
    if (size == kRelayBufferSize && cached_.size() < kMaxCached) {
      try {
        cached_.push_back(std::move(b));
      } catch (...) {
        // no room to cache it: it is freed
      }
    }
  }

  std::unique_ptr<ProvidedBufferRing> ring_;
  std::vector<std::unique_ptr<std::uint8_t[]>> cached_;
  std::size_t in_use_ = 0;
  std::uint64_t acquired_ = 0;
  std::uint64_t ring_receives_ = 0;
  std::uint64_t direct_sends_ = 0;
  std::uint64_t direct_receives_ = 0;
};

// Shared by the two directions and the idle watchdog; lives in relay()'s frame, which
// outlives all three (it joins them).
struct RelayState {
  RelayOptions options;
  Scope directions;
  TimePoint last_activity;
  RelayStats stats;
  bool idle_fired = false;

  void fail(std::error_code ec) noexcept {
    if (!stats.error) stats.error = ec;
    directions.cancel();
  }
};

// Lets `from`'s producer (an SSH channel's read pump) send into the TCP socket `to` directly
// while this direction waits holding nothing, counting the bytes as this direction's own.
class TcpDirectSink final : public DirectSink {
 public:
  TcpDirectSink(RelayBuffers& buffers, RelayState& state, TcpStream& to, std::uint64_t& counter,
                metrics::Counter* live) noexcept
      : buffers_(buffers), state_(state), to_(to), counter_(counter), live_(live) {}
  TcpDirectSink(const TcpDirectSink&) = delete;
  TcpDirectSink& operator=(const TcpDirectSink&) = delete;

  std::size_t send_now(ByteSpan data) noexcept override {
    auto n = to_.send_now(data);
    if (!n || *n == 0) return 0;  // full or failed: buffered, and the relay's write takes over
    buffers_.count_direct_send();
    counter_ += *n;
    if (live_) live_->inc(*n);
    state_.last_activity = Clock::now();
    return *n;
  }

 private:
  RelayBuffers& buffers_;
  RelayState& state_;
  TcpStream& to_;
  std::uint64_t& counter_;
  metrics::Counter* live_;
};

// Offers `sink` to `from` for the life of one wait (the direction holds no data then).
class SinkWhileWaiting {
 public:
  SinkWhileWaiting(Stream& from, DirectSink* sink) noexcept : from_(from), set_(sink != nullptr) {
    if (set_) from_.set_direct_sink(sink);
  }
  ~SinkWhileWaiting() {
    if (set_) from_.set_direct_sink(nullptr);
  }
  SinkWhileWaiting(const SinkWhileWaiting&) = delete;
  SinkWhileWaiting& operator=(const SinkWhileWaiting&) = delete;

 private:
  Stream& from_;
  bool set_;
};

// A TCP socket as a DirectSource: the channel reads it straight into an outgoing packet.
class TcpSource final : public DirectSource {
 public:
  explicit TcpSource(TcpStream& tcp) noexcept : tcp_(tcp) {}
  Result<std::size_t> read_now(MutableByteSpan room) noexcept override { return tcp_.recv_now(room); }

 private:
  TcpStream& tcp_;
};

// How a direction ends on `failed`: EOF becomes a half-close of `to`; other errors end the relay.
Task<void> end_direction(RelayState& state, Stream& to, std::error_code failed) {
  if (failed == errc::eof) {
    auto shut = co_await to.shutdown_write();
    if (!shut) state.fail(shut.error());
  } else if (failed != errc::cancelled) {
    state.fail(failed);
  }
}

Task<void> copy_one_way(RelayState& state, Stream& from, Stream& to, std::uint64_t& counter,
                        metrics::Counter* live) {
  RelayBuffers& buffers = RelayBuffers::current();
  const std::size_t size = std::max<std::size_t>(1, state.options.buffer_size);
  TcpStream* tcp = nullptr;
  if (buffers.ring() && size == buffers.ring()->buffer_size()) tcp = dynamic_cast<TcpStream*>(&from);
  // Channel -> TCP: while waiting, the channel may send straight to the socket.
  std::optional<TcpDirectSink> sink;
  if (auto* to_tcp = dynamic_cast<TcpStream*>(&to)) sink.emplace(buffers, state, *to_tcp, counter, live);
  // TCP -> channel: once a full buffer shows a bulk flow, read straight into channel packets.
  std::optional<TcpSource> source;
  if (tcp && to.writes_from_source()) source.emplace(*tcp);
  for (;;) {
    ProvidedBuffer received;     // a ring buffer the kernel filled, or
    RelayBuffers::Held held;     // a pool buffer taken once `from` was readable
    ByteSpan data;
    std::error_code failed;
    bool got = false;
    if (tcp) {
      auto r = co_await buffers.ring()->recv(*tcp, false);
      if (r) {
        received = std::move(*r);
        data = received.data();
        got = true;
        buffers.count_ring_receive();
      } else if (r.error() != std::errc::no_buffer_space) {
        failed = r.error();
      }  // else the ring is empty: a pool buffer below
    }
    if (!got && !failed) {
      Result<void> ready;
      {
        SinkWhileWaiting offered(from, sink ? &*sink : nullptr);
        ready = co_await from.wait_readable();
      }
      if (!ready) {
        failed = ready.error();
      } else {
        held = buffers.acquire(size);
        auto n = co_await from.read_some(MutableByteSpan(held.data(), size));
        if (n) {
          data = ByteSpan(held.data(), *n);
          got = true;
        } else {
          failed = n.error();
        }
      }
    }
    if (failed) {
      co_await end_direction(state, to, failed);
      co_return;
    }
    state.last_activity = Clock::now();
    auto w = co_await to.write_all(data);
    if (!w) {
      if (w.error() != errc::cancelled) state.fail(w.error());
      co_return;
    }
    counter += data.size();
    if (live) live->inc(data.size());
    state.last_activity = Clock::now();
    const bool bulk = source && data.size() == size;
    received = ProvidedBuffer();  // back to the ring / pool: nothing is held while waiting
    held.reset();
    if (!bulk) continue;
    // The buffer came back full: more is likely waiting. Read it straight into channel packets
    // (no copy) until the socket has nothing more, then wait on the ring again.
    for (;;) {
      auto n = co_await to.write_from(*source);
      if (!n) {
        co_await end_direction(state, to, n.error());
        co_return;
      }
      if (*n == 0) break;
      buffers.count_direct_receive();
      counter += *n;
      if (live) live->inc(*n);
      state.last_activity = Clock::now();
    }
  }
}

// Sleeps until the last activity plus the idle timeout; re-arms while bytes keep moving.
Task<void> idle_watchdog(RelayState& state) {
  for (;;) {
    auto slept = co_await sleep_until(state.last_activity + state.options.idle_timeout);
    if (!slept) co_return;  // the directions ended first
    if (Clock::now() - state.last_activity >= state.options.idle_timeout) {
      state.idle_fired = true;
      state.directions.cancel();
      co_return;
    }
  }
}

}  // namespace

Task<RelayStats> relay(Stream& a, Stream& b, RelayOptions options) {
  RelayState state;
  state.options = options;
  state.last_activity = Clock::now();
  state.directions.spawn(copy_one_way(state, a, b, state.stats.a_to_b, options.count_a_to_b));
  state.directions.spawn(copy_one_way(state, b, a, state.stats.b_to_a, options.count_b_to_a));
  Scope watchdog;
  if (options.idle_timeout > Duration::zero()) watchdog.spawn(idle_watchdog(state));

  // If the awaiting task is cancelled, join() cancels the directions and still waits.
  co_await state.directions.join();
  StopState* stop = co_await current_stop_state();
  watchdog.cancel();
  co_await watchdog.join();

  if (state.stats.error) {
    state.stats.end = RelayEnd::error;
  } else if (state.idle_fired) {
    state.stats.end = RelayEnd::idle;
  } else if (stop && stop->stop_requested()) {
    state.stats.end = RelayEnd::cancelled;
  }
  a.close();
  b.close();
  co_return state.stats;
}

RelayBufferStats relay_buffer_stats() {
  RelayBuffers* b = RelayBuffers::current_or_null();
  return b ? b->stats() : RelayBufferStats{};
}

}  // namespace vtunnel
