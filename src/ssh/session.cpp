#include "ssh/session.hpp"

#include <algorithm>

#include <cstring>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"

namespace vtunnel::ssh {

namespace {
constexpr auto kFlushOnCloseTimeout = std::chrono::seconds(2);
}  // namespace

Session::Session(Stream& stream, Config config, std::size_t accept_queue)
    : stream_(stream), conn_(std::move(config)), incoming_(accept_queue) {}

Session::~Session() = default;

Task<Result<std::unique_ptr<Session>>> Session::client_handshake(Stream& stream, Config config) {
  config.role = Role::client;
  return handshake(stream, std::move(config));
}

Task<Result<std::unique_ptr<Session>>> Session::server_handshake(Stream& stream, Config config) {
  config.role = Role::server;
  return handshake(stream, std::move(config));
}

Task<Result<std::unique_ptr<Session>>> Session::handshake(Stream& stream, Config config) {
  // Opens wait here until next_channel() takes them. Sized like the channel limit: a burst the
  // core accepts (max_channels) is never refused merely because the taker ran a turn later.
  std::size_t accept_queue = std::max<std::size_t>(config.max_channels, 1);
  std::unique_ptr<Session> s(new Session(stream, std::move(config), accept_queue));
  s->scope_.spawn(s->read_pump());
  s->scope_.spawn(s->write_pump());
  s->output_ready();
  Result<void> waited = co_await s->authenticated_.wait();
  if (!waited || s->ended_) {
    std::error_code ec = !waited ? waited.error() : s->error_;
    // The details (peer text in them is escaped where it was recorded).
    if (!s->disconnect_message_.empty()) log::debug("ssh: handshake failed: {}", s->disconnect_message_);
    // A client that asked to authenticate and then gave up (disconnect, close) was refused:
    // report that cause rather than how it left.
    if (s->conn_.auth_requests() > 0 && ec != vtunnel::errc::cancelled) ec = errc::auth_failed;
    co_await s->close();
    co_return ec;
  }
  co_return std::move(s);
}

void Session::end(std::error_code ec, std::string message) {
  if (ended_) return;
  ended_ = true;
  error_ = ec;
  disconnect_message_ = std::move(message);
  for (auto& st : channels_) {
    if (!st) continue;
    st->closed = true;
    if (!st->error) st->error = ec;
    st->readable.wake_all();
    st->writable.wake_all();
  }
  channels_.clear();
  for (auto& p : pending_replies_) p->waiters.wake_all();
  pending_replies_.clear();
  incoming_.close();
  authenticated_.set();
  ended_event_.set();
  output_turns_.wake_all();
  output_ready();
}

std::shared_ptr<detail::ChannelState> Session::add_channel(std::uint32_t id) {
  auto st = std::make_shared<detail::ChannelState>();
  st->id = id;
  if (id >= channels_.size()) channels_.resize(std::size_t(id) + 1);
  channels_[id] = st;
  return st;
}

std::shared_ptr<detail::ChannelState> Session::remove_channel(std::uint32_t id) noexcept {
  if (id >= channels_.size()) return nullptr;
  auto st = std::move(channels_[id]);
  while (!channels_.empty() && !channels_.back()) channels_.pop_back();
  return st;
}

Task<void> Session::read_pump() {
  for (;;) {
    MutableByteSpan room = conn_.input_buffer(kReadChunk);
    Result<std::size_t> n = co_await stream_.read_some(room);
    if (!n) {
      if (n.error() == vtunnel::errc::eof) end(n.error(), "connection closed by peer");
      else end(n.error(), "read failed: " + n.error().message());
      co_return;
    }
    conn_.commit_input(*n);
    while (auto e = conn_.poll()) dispatch(*e);
    if (conn_.has_output()) output_ready();
    if (ended_) co_return;
  }
}

Task<void> Session::write_pump() {
  for (;;) {
    if (!conn_.has_output()) {
      if (ended_ || closing_) break;
      output_event_.reset();
      Result<void> woken = co_await output_event_.wait();
      if (!woken) break;
      continue;
    }
    // Everything the core produced since the last write goes out in one write.
    OutputBuffer out = conn_.take_output();
    // The buffer is ours until recycled: the stream may frame it in the headroom and mask in place.
    Result<void> written = co_await stream_.write_all_in_place(MutableByteSpan(out.storage), out.headroom);
    conn_.recycle(std::move(out.storage));
    pass_output_turn();
    if (!written) {
      end(written.error(), "write failed: " + written.error().message());
      break;
    }
  }
  writer_done_.set();
}

void Session::dispatch(Event& e) {
  std::visit(
      [&](auto& ev) {
        using T = std::decay_t<decltype(ev)>;
        if constexpr (std::is_same_v<T, event::KexDone>) {
          ++key_exchanges_;
          log::debug("ssh: key exchange done ({}, {} / {})", ev.kex, ev.cipher_out, ev.cipher_in);
        } else if constexpr (std::is_same_v<T, event::Authenticated>) {
          peer_user_ = ev.user;
          authenticated_.set();
        } else if constexpr (std::is_same_v<T, event::GlobalRequest>) {
          GlobalReplyData reply;
          if (request_handler_) reply = request_handler_(ev.name, ev.data);
          if (ev.want_reply) (void)conn_.reply_global_request(reply.success, reply.data);
        } else if constexpr (std::is_same_v<T, event::GlobalReply>) {
          if (!pending_replies_.empty()) {
            auto p = std::move(pending_replies_.front());
            pending_replies_.pop_front();
            p->answered = true;
            p->reply = GlobalReplyData{ev.success, Bytes(ev.data.begin(), ev.data.end())};
            p->waiters.wake_all();
          }
        } else if constexpr (std::is_same_v<T, event::ChannelOpen>) {
          IncomingChannel ic{ev.channel, ev.type, Bytes(ev.extra.begin(), ev.extra.end())};
          if (!incoming_.try_send(ic))
            (void)conn_.reject_channel(ev.channel, OpenFailure::resource_shortage, "too many pending channels");
        } else if constexpr (std::is_same_v<T, event::ChannelOpenConfirm>) {
          if (detail::ChannelState* st = find_channel(ev.channel)) {
            st->open_answered = true;
            st->open_ok = true;
            st->writable.wake_all();
          }
        } else if constexpr (std::is_same_v<T, event::ChannelOpenFailure>) {
          if (auto st = remove_channel(ev.channel)) {
            st->open_answered = true;
            st->refusal = std::make_unique<detail::ChannelState::OpenRefusal>();
            st->refusal->reason = ev.reason;
            st->refusal->message = std::move(ev.message);
            st->closed = true;
            st->writable.wake_all();
          }
        } else if constexpr (std::is_same_v<T, event::ChannelData>) {
          if (detail::ChannelState* found = find_channel(ev.channel)) {
            auto& st = *found;
            ByteSpan data = ev.data;
            if (st.inbox_offset == st.inbox.size() && st.sink && !st.closed) {
              // Straight from the decrypt buffer to the consumer's socket; the peer may send
              // that much more at once.
              const std::size_t n = st.sink->send_now(data);
              if (n > 0) (void)conn_.consumed(ev.channel, n);
              data = data.subspan(n);
              if (data.empty()) return;
            }
            if (st.inbox_offset == st.inbox.size() && st.reader_filled < st.reader_buf.size()) {
              const std::size_t n = std::min(data.size(), st.reader_buf.size() - st.reader_filled);
              std::memcpy(st.reader_buf.data() + st.reader_filled, data.data(), n);
              st.reader_filled += n;
              data = data.subspan(n);
            }
            if (!data.empty()) {
              if (st.inbox_offset > 0 && st.inbox_offset >= st.inbox.size() / 2) {
                st.inbox.erase(st.inbox.begin(), st.inbox.begin() + std::ptrdiff_t(st.inbox_offset));
                st.inbox_offset = 0;
              }
              st.inbox.insert(st.inbox.end(), data.begin(), data.end());
            }
            st.readable.wake_all();
          } else {
            (void)conn_.consumed(ev.channel, ev.data.size());  // closed locally: drop, keep window
          }
        } else if constexpr (std::is_same_v<T, event::ChannelEof>) {
          if (detail::ChannelState* st = find_channel(ev.channel)) {
            st->eof_received = true;
            st->readable.wake_all();
          }
        } else if constexpr (std::is_same_v<T, event::ChannelClose>) {
          if (auto st = remove_channel(ev.channel)) {
            st->closed = true;
            st->readable.wake_all();
            st->writable.wake_all();
          }
        } else if constexpr (std::is_same_v<T, event::ChannelWindow>) {
          if (detail::ChannelState* st = find_channel(ev.channel)) st->writable.wake_all();
        } else if constexpr (std::is_same_v<T, event::Disconnected>) {
          end(ev.error, ev.message);
        }
      },
      e);
}

Task<Result<GlobalReplyData>> Session::global_request(std::string name, Bytes payload, bool want_reply) {
  if (ended_) co_return error_;
  Result<void> sent = conn_.send_global_request(name, payload, want_reply);
  if (!sent) co_return sent.error();
  output_ready();
  if (!want_reply) co_return GlobalReplyData{true, {}};
  auto pending = std::make_shared<PendingReply>();
  pending_replies_.push_back(pending);
  while (!pending->answered && !ended_) {
    bool woken = co_await pending->waiters.wait();
    if (!woken) co_return vtunnel::errc::cancelled;
  }
  if (!pending->answered) co_return error_;
  co_return std::move(pending->reply);
}

Task<Result<Channel>> Session::open_channel(std::string type, Bytes extra) {
  if (ended_) co_return error_;
  Result<std::uint32_t> id = conn_.open_channel(type, extra);
  if (!id) co_return id.error();
  auto st = add_channel(*id);
  output_ready();
  while (!st->open_answered && !st->closed) {
    bool woken = co_await st->writable.wait();
    if (!woken) {
      (void)conn_.close_channel(*id);
      output_ready();
      co_return vtunnel::errc::cancelled;
    }
  }
  if (!st->open_answered) co_return st->error ? st->error : make_error_code(errc::closed);
  if (!st->open_ok) {
    last_open_failure_reason_ = st->refusal ? st->refusal->reason : 0;
    last_open_failure_message_ = st->refusal ? st->refusal->message : std::string();
    co_return errc::channel_refused;
  }
  co_return Channel(this, st);
}

Task<Result<IncomingChannel>> Session::next_channel() {
  Result<IncomingChannel> next = co_await incoming_.recv();
  if (!next && ended_ && next.error() == vtunnel::errc::closed) co_return error_;
  co_return next;
}

Result<Channel> Session::accept(const IncomingChannel& incoming) {
  if (ended_) return error_;
  Result<void> r = conn_.accept_channel(incoming.id);
  if (!r) return r.error();
  output_ready();
  return Channel(this, add_channel(incoming.id));
}

Result<void> Session::reject(const IncomingChannel& incoming, OpenFailure reason, std::string_view message) {
  if (ended_) return error_;
  Result<void> r = conn_.reject_channel(incoming.id, reason, message);
  output_ready();
  return r;
}

Task<void> Session::close() {
  if (!closing_) {
    closing_ = true;
    if (!ended_) {
      conn_.disconnect();
      end(errc::closed, "closed by application");
    }
    output_ready();
    // Let the writer flush the DISCONNECT, but never hang on a peer that stopped reading.
    (void)co_await with_timeout(writer_done_.wait(), kFlushOnCloseTimeout);
    scope_.cancel();
  }
  co_await scope_.join();
}

Task<std::error_code> Session::wait_closed() {
  (void)co_await ended_event_.wait();
  co_return error_;
}

// ---------------------------------------------------------------- Channel

namespace {
// Registers a waiting reader's buffer with its channel for as long as the read is suspended;
// unregisters on every exit, also when the reading coroutine is destroyed while suspended.
class ReaderRegistration {
 public:
  ReaderRegistration(detail::ChannelState& st, MutableByteSpan buf) noexcept : st_(&st) {
    st_->reader_buf = buf;
    st_->reader_filled = 0;
  }
  ~ReaderRegistration() {
    st_->reader_buf = {};
    st_->reader_filled = 0;
  }
  ReaderRegistration(const ReaderRegistration&) = delete;
  ReaderRegistration& operator=(const ReaderRegistration&) = delete;
  std::size_t filled() const noexcept { return st_->reader_filled; }

 private:
  detail::ChannelState* st_;
};
}  // namespace

Task<Result<std::size_t>> Channel::read(MutableByteSpan buf) {
  auto st = state_;
  Session* s = session_;
  if (!st) co_return errc::invalid_argument;
  for (;;) {
    const std::size_t avail = st->inbox.size() - st->inbox_offset;
    if (avail > 0 && !buf.empty()) {
      const std::size_t n = std::min(avail, buf.size());
      std::memcpy(buf.data(), st->inbox.data() + st->inbox_offset, n);
      st->inbox_offset += n;
      if (st->inbox_offset == st->inbox.size()) {
        st->inbox.clear();
        st->inbox_offset = 0;
      }
      // The application took n bytes: the peer may send n more.
      if (s->is_open() && !st->closed) {
        (void)s->conn_.consumed(st->id, n);
        s->output_ready();
      }
      co_return n;
    }
    if (st->eof_received || st->closed) {
      if (st->error) co_return st->error;
      co_return vtunnel::errc::eof;
    }
    // Wait with the buffer registered: the read pump may fill it directly.
    std::size_t got = 0;
    bool woken = false;
    {
      ReaderRegistration registration(*st, buf);
      woken = co_await st->readable.wait();
      got = registration.filled();
    }
    if (got > 0) {
      // Delivered even if the wait was cancelled meanwhile: the bytes are in the caller's buffer.
      if (s->is_open() && !st->closed) {
        (void)s->conn_.consumed(st->id, got);
        s->output_ready();
      }
      co_return got;
    }
    if (!woken) co_return vtunnel::errc::cancelled;
  }
}

Task<Result<void>> Channel::wait_readable() {
  auto st = state_;
  if (!st) co_return errc::invalid_argument;
  while (!readable_now()) {
    bool woken = co_await st->readable.wait();
    if (!woken) co_return vtunnel::errc::cancelled;
  }
  co_return Result<void>{};
}

Task<Result<void>> Channel::write(ByteSpan data) {
  auto st = state_;
  Session* s = session_;
  if (!st) co_return errc::invalid_argument;
  std::size_t done = 0;
  bool my_turn = false;  // woken from the output queue: go even if others wait behind us
  while (done < data.size()) {
    if (st->closed) break;
    if (s->must_wait_for_output(my_turn)) {
      my_turn = co_await s->output_turn();
      if (!my_turn) co_return vtunnel::errc::cancelled;
      continue;
    }
    // Up to the mark, rounded up to whole packets: a big write takes turns too.
    const std::size_t room = Session::kOutputHighWater - s->conn_.output_size();
    const std::size_t limit = (room / kMaxChannelDataPerPacket + 1) * kMaxChannelDataPerPacket;
    Result<std::size_t> n = s->conn_.send_data(st->id, data.subspan(done, std::min(limit, data.size() - done)));
    if (!n) {
      s->pass_output_turn();
      co_return n.error();
    }
    if (*n > 0) {
      done += *n;
      s->output_ready();
      continue;
    }
    s->pass_output_turn();
    my_turn = false;
    bool woken = co_await st->writable.wait();  // window exhausted: wait for WINDOW_ADJUST
    if (!woken) co_return vtunnel::errc::cancelled;
  }
  s->pass_output_turn();
  if (st->closed) co_return st->error ? st->error : make_error_code(errc::closed);
  co_return Result<void>{};
}

Task<Result<std::size_t>> Channel::write_from(DirectSource& source) {
  auto st = state_;
  Session* s = session_;
  if (!st) co_return errc::invalid_argument;
  bool my_turn = false;  // as in write()
  for (;;) {
    if (st->closed) {
      s->pass_output_turn();
      co_return st->error ? st->error : make_error_code(errc::closed);
    }
    if (s->must_wait_for_output(my_turn)) {
      my_turn = co_await s->output_turn();
      if (!my_turn) co_return vtunnel::errc::cancelled;
      continue;
    }
    if (s->conn_.send_window(st->id) == 0) {
      s->pass_output_turn();
      my_turn = false;
      bool woken = co_await st->writable.wait();  // window exhausted: wait for WINDOW_ADJUST
      if (!woken) co_return vtunnel::errc::cancelled;
      continue;
    }
    MutableByteSpan room = s->conn_.begin_channel_data(st->id, kMaxChannelDataPerPacket);
    if (room.empty()) {
      // A key exchange holds data back: read into a buffer and let send_data() queue it.
      s->pass_output_turn();
      Bytes held(std::min<std::size_t>(s->conn_.send_window(st->id), kMaxChannelDataPerPacket));
      Result<std::size_t> n = source.read_now(held);
      if (!n || *n == 0) co_return n;
      Result<void> w = co_await write(ByteSpan(held).first(*n));
      if (!w) co_return w.error();
      co_return n;
    }
    // Nothing runs between begin and finish: read_now never waits.
    Result<std::size_t> n = source.read_now(room);
    s->conn_.finish_channel_data(st->id, n ? *n : 0);
    if (n && *n > 0) s->output_ready();
    s->pass_output_turn();
    co_return n;
  }
}

Result<void> Channel::send_eof() {
  if (!state_ || state_->closed) return errc::closed;
  Result<void> r = session_->conn_.send_eof(state_->id);
  session_->output_ready();
  return r;
}

void Channel::close() {
  if (!state_ || state_->closed) return;
  (void)session_->conn_.close_channel(state_->id);
  session_->output_ready();
  state_->closed = true;
  state_->error = errc::closed;
  state_->readable.wake_all();
  state_->writable.wake_all();
}

}  // namespace vtunnel::ssh
