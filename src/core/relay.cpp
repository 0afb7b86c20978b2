#include "core/relay.hpp"

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "core/buffer_pool.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
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

using Direction = detail::RelayDirection;
using detail::RelayState;

// How a direction ends on `failed`: EOF becomes a half-close of `to`; other errors end the relay.
Task<void> end_direction(RelayState& state, const Direction& d, std::error_code failed) {
  if (failed == errc::eof) {
    auto shut = co_await d.to.shutdown_write();
    if (!shut) state.fail(shut.error());
  } else if (failed != errc::cancelled) {
    state.fail(failed);
  }
}

// What a direction does once `from` has data (or has failed): read it if the ring did not
// (waiting for readability first when `wait_first`: the ring was empty), write it, count it.
// A task of its own so its frame (awaiters, results) exists only while data moves, not while
// the direction waits. Returns false when the direction has ended.
Task<bool> move_chunk(RelayState& state, const Direction& d, ProvidedBuffer* received, std::error_code failed,
                      bool wait_first) {
  RelayBuffers& buffers = RelayBuffers::current();
  RelayBuffers::Held held;  // a pool buffer taken once `from` was readable
  ByteSpan data;
  if (!failed && !received && wait_first) {
    auto ready = co_await d.from.wait_readable();
    if (!ready) failed = ready.error();
  }
  if (!failed) {
    if (received) {
      data = received->data();
    } else {
      const std::size_t size = std::max<std::size_t>(1, state.options.buffer_size);
      held = buffers.acquire(size);
      auto n = co_await d.from.read_some(MutableByteSpan(held.data(), size));
      if (n) data = ByteSpan(held.data(), *n);
      else failed = n.error();
    }
  }
  if (failed) {
    co_await end_direction(state, d, failed);
    co_return false;
  }
  state.last_activity = Clock::now();
  auto w = co_await d.to.write_all(data);
  if (!w) {
    if (w.error() != errc::cancelled) state.fail(w.error());
    co_return false;
  }
  d.counter += data.size();
  if (d.live) d.live->inc(data.size());
  state.last_activity = Clock::now();
  co_return true;  // `held` goes back now: nothing is held while waiting
}

void direction_threw(RelayState& state) noexcept {
  if (!state.thrown) state.thrown = std::current_exception();
  state.cancel_directions();
}

// Lets `from`'s producer (an SSH channel's read pump) send into the TCP socket `to` directly
// while the direction waits holding nothing, counting the bytes as the direction's own.
class TcpDirectSink final : public DirectSink {
 public:
  TcpDirectSink(RelayState& state, const Direction& d, TcpStream& to) noexcept : state_(state), d_(d), to_(to) {}
  TcpDirectSink(const TcpDirectSink&) = delete;
  TcpDirectSink& operator=(const TcpDirectSink&) = delete;

  std::size_t send_now(ByteSpan data) noexcept override {
    auto n = to_.send_now(data);
    if (!n || *n == 0) return 0;  // full or failed: buffered, and the relay's write takes over
    RelayBuffers::current().count_direct_send();
    d_.counter += *n;
    if (d_.live) d_.live->inc(*n);
    state_.last_activity = Clock::now();
    return *n;
  }

 private:
  RelayState& state_;
  const Direction& d_;
  TcpStream& to_;
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

// One direction from a stream other than a ring-capable TCP socket: wait for data holding no
// buffer (an SSH channel: its readiness queue, awaited in place; others: wait_readable()),
// then move_chunk() reads it into a pool buffer and writes it. An SSH channel relayed to TCP
// sends arriving data straight to the socket while the direction waits (TcpDirectSink).
Task<void> copy_one_way(RelayState& state, const Direction& d) {
  try {
    WaitQueue* queue = d.from.readable_queue();
    std::optional<TcpDirectSink> sink;
    if (auto* to_tcp = queue ? dynamic_cast<TcpStream*>(&d.to) : nullptr) sink.emplace(state, d, *to_tcp);
    for (;;) {
      std::error_code failed;
      if (queue) {
        SinkWhileWaiting offered(d.from, sink ? &*sink : nullptr);
        while (!d.from.readable_now()) {
          bool woken = co_await queue->wait();
          if (!woken) {
            failed = errc::cancelled;
            break;
          }
        }
      } else {
        auto ready = co_await d.from.wait_readable();
        if (!ready) failed = ready.error();
      }
      bool more = co_await move_chunk(state, d, nullptr, failed, false);
      if (!more) break;
    }
  } catch (...) {
    direction_threw(state);
  }
  state.direction_done();
}

// A TCP socket as a DirectSource: the channel reads it straight into an outgoing packet.
class TcpSource final : public DirectSource {
 public:
  explicit TcpSource(TcpStream& tcp) noexcept : tcp_(tcp) {}
  Result<std::size_t> read_now(MutableByteSpan room) noexcept override { return tcp_.recv_now(room); }

 private:
  TcpStream& tcp_;
};

// After a ring receive came back full (a bulk flow: more is likely waiting), reads the socket
// straight into the channel's outgoing packets (no copy) until it has nothing more. A task of
// its own, like move_chunk(). Returns false when the direction has ended.
Task<bool> move_straight_into_channel(RelayState& state, const Direction& d, TcpStream& tcp) {
  TcpSource source(tcp);
  for (;;) {
    auto n = co_await d.to.write_from(source);
    if (!n) {
      co_await end_direction(state, d, n.error());
      co_return false;
    }
    if (*n == 0) co_return true;
    RelayBuffers::current().count_direct_receive();
    d.counter += *n;
    if (d.live) d.live->inc(*n);
    state.last_activity = Clock::now();
  }
}

// One direction from a TCP socket: each wait is a recv into the loop's provided-buffer ring,
// awaited in place; the kernel picks a buffer only when data arrives.
Task<void> copy_from_tcp(RelayState& state, const Direction& d, ProvidedBufferRing& ring, TcpStream& tcp) {
  try {
    const bool to_channel = d.to.writes_from_source();
    for (;;) {
      ProvidedBuffer received;  // a ring buffer the kernel filled
      std::error_code failed;
      bool got = false;
      auto r = co_await ring.recv_once(tcp);
      if (r) {
        received = std::move(*r);
        got = true;
        RelayBuffers::current().count_ring_receive();
      } else if (r.error() != std::errc::no_buffer_space) {
        failed = r.error();
      }  // else the ring is empty: move_chunk() waits, then reads into a pool buffer
      const bool full = got && received.data().size() == ring.buffer_size();
      ProvidedBuffer* chunk = got ? &received : nullptr;
      bool more = co_await move_chunk(state, d, chunk, failed, true);
      if (!more) break;
      received = ProvidedBuffer();  // back to the ring: nothing is held while waiting
      if (full && to_channel) {
        more = co_await move_straight_into_channel(state, d, tcp);
        if (!more) break;
      }
    }
  } catch (...) {
    direction_threw(state);
  }
  state.direction_done();
}

Task<void> start_direction(RelayState& state, const Direction& d) {
  RelayBuffers& buffers = RelayBuffers::current();
  ProvidedBufferRing* ring = buffers.ring();
  if (ring && std::max<std::size_t>(1, state.options.buffer_size) == ring->buffer_size()) {
    if (auto* tcp = dynamic_cast<TcpStream*>(&d.from)) return copy_from_tcp(state, d, *ring, *tcp);
  }
  return copy_one_way(state, d);
}

}  // namespace

namespace detail {

void RelayState::cancel_directions() noexcept {
  stops[0].request_stop();
  stops[1].request_stop();
}

void RelayState::fail(std::error_code ec) noexcept {
  if (!stats.error) stats.error = ec;
  cancel_directions();
}

void RelayState::direction_done() noexcept {
  if (--running == 0 && joiner) Loop::current().schedule(std::exchange(joiner, {}));
}

// Fires at last activity + idle timeout; re-arms while bytes keep moving.
void RelayState::on_idle_timer(TimerNode* t) noexcept {
  RelayState& st = *reinterpret_cast<IdleTimer*>(t)->self;
  TimePoint due = st.last_activity + st.options.idle_timeout;
  if (Clock::now() >= due) {
    st.idle_fired = true;
    st.cancel_directions();
  } else {
    Loop::current().arm_timer(st.idle.node, due);
  }
}

}  // namespace detail

Relay::Relay(Stream& a, Stream& b, const RelayOptions& options)
    : options_(options),
      state_(options_, a, b),
      directions_{start_direction(state_, state_.dirs[0]), start_direction(state_, state_.dirs[1])} {}

Relay::~Relay() {
  if (state_.idle.node.armed()) Loop::current().cancel_timer(state_.idle.node);
}

void Relay::start(std::coroutine_handle<> awaiting, StopState* stop) noexcept {
  stop_ = stop;
  state_.last_activity = Clock::now();
  state_.joiner = awaiting;
  Loop& loop = Loop::current();
  for (int i = 0; i < 2; ++i) {
    // If the awaiting task is cancelled, the linked StopStates cancel both directions.
    state_.stops[i].link(stop);
    directions_[i].set_stop_state(&state_.stops[i]);
    ++state_.running;
    loop.schedule(directions_[i].handle());
  }
  if (options_.idle_timeout > Duration::zero()) {
    state_.idle.self = &state_;
    state_.idle.node.fire = &RelayState::on_idle_timer;
    loop.arm_timer(state_.idle.node, state_.last_activity + options_.idle_timeout);
  }
}

RelayStats Relay::await_resume() {
  if (state_.idle.node.armed()) Loop::current().cancel_timer(state_.idle.node);
  if (state_.thrown) std::rethrow_exception(state_.thrown);
  if (state_.stats.error) {
    state_.stats.end = RelayEnd::error;
  } else if (state_.idle_fired) {
    state_.stats.end = RelayEnd::idle;
  } else if (stop_ && stop_->stop_requested()) {
    state_.stats.end = RelayEnd::cancelled;
  }
  state_.dirs[0].from.close();
  state_.dirs[0].to.close();
  return state_.stats;
}

RelayBufferStats relay_buffer_stats() {
  RelayBuffers* b = RelayBuffers::current_or_null();
  return b ? b->stats() : RelayBufferStats{};
}

}  // namespace vtunnel
