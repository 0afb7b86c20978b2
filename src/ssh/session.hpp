#pragma once
// ssh::Session: the coroutine adapter that runs an ssh::Connection (the sans-I/O core) over any
// vtunnel::Stream. One read pump feeds the core and dispatches its events; one write pump sends
// what the core produced, everything pending coalesced into one write. Channels are handles
// with co_await read()/write(); a slow reader stalls only its own channel (the core grants
// window as read() consumes).
//
//   auto s = co_await ssh::Session::client_handshake(stream, config);   // Result<unique_ptr>
//   auto reply = co_await (*s)->global_request("ping", {}, true);
//   auto ch = co_await (*s)->open_channel("direct-tcpip", extra);
//   co_await ch->write(bytes); auto n = co_await ch->read(buf);
//   co_await (*s)->close();   // required before destruction: ends every channel, joins pumps
//
// The Stream must outlive the Session. All calls happen on the loop's thread.
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/stream.hpp"
#include "core/sync.hpp"
#include "core/task.hpp"
#include "ssh/connection.hpp"

namespace vtunnel::ssh {

class Session;

namespace detail {
struct ChannelState {
  std::uint32_t id = 0;
  Bytes inbox;                 // received, not yet read (bounded by our window)
  std::size_t inbox_offset = 0;
  // A read() waiting with its buffer: data arriving while the inbox is empty is copied from
  // the decrypted packet straight into it (one copy instead of two through the inbox).
  MutableByteSpan reader_buf;
  std::size_t reader_filled = 0;
  // Set by a consumer only while it waits holding nothing: data arriving while the inbox is
  // empty goes to the sink straight from the decrypted packet (no copy here at all).
  DirectSink* sink = nullptr;
  bool eof_received = false;
  bool closed = false;         // peer's CLOSE received or session ended
  std::error_code error;
  // Outbound open: the peer's answer; a refusal's details (rare) on the heap.
  bool open_answered = false;
  bool open_ok = false;
  struct OpenRefusal {
    std::uint32_t reason = 0;
    std::string message;
  };
  std::unique_ptr<OpenRefusal> refusal;
  // An outbound open waits for the answer on `writable`: nothing writes before it is open.
  WaitQueue readable, writable;
};
}  // namespace detail

class Channel {
 public:
  Channel() = default;
  std::uint32_t id() const noexcept { return state_ ? state_->id : 0; }
  // Bytes received and not read yet (bounded by the window we announce).
  std::size_t buffered() const noexcept { return state_ ? state_->inbox.size() - state_->inbox_offset : 0; }
  bool valid() const noexcept { return session_ != nullptr; }

  // Reads at least one byte; errc::eof once the peer sent EOF (or closed) and all data was read.
  Task<Result<std::size_t>> read(MutableByteSpan buf);
  // Waits until read() would not wait: data, EOF or close (lets a relay hold no buffer while idle).
  Task<Result<void>> wait_readable();
  // Arriving data is offered to `sink` first while the inbox is empty; what it does not take is
  // buffered as usual and wakes readers. Set it only while waiting holding no data (bytes the
  // consumer still has would otherwise be overtaken); nullptr stops it.
  void set_direct_sink(DirectSink* sink) noexcept {
    if (state_) state_->sink = sink;
  }
  // The same without a task: read() would not wait now / the queue woken when that may change.
  bool readable_now() const noexcept {
    return !state_ || state_->inbox.size() != state_->inbox_offset || state_->eof_received || state_->closed;
  }
  WaitQueue* readable_queue() noexcept { return state_ ? &state_->readable : nullptr; }
  // Writes all of data, waiting for window as needed.
  Task<Result<void>> write(ByteSpan data);
  // Waits for window, then sends what `source` has now, read straight into one outgoing
  // packet: the bytes sent, 0 when the source had none, or the source's error (errc::eof).
  Task<Result<std::size_t>> write_from(DirectSource& source);
  Result<void> send_eof();
  // Sends CLOSE (idempotent). Pending reads/writes end with an error.
  void close();

 private:
  friend class Session;
  Channel(Session* s, std::shared_ptr<detail::ChannelState> st) : session_(s), state_(std::move(st)) {}
  Session* session_ = nullptr;
  std::shared_ptr<detail::ChannelState> state_;
};

struct IncomingChannel {
  std::uint32_t id = 0;
  std::string type;
  Bytes extra;
};

struct GlobalReplyData {
  bool success = false;
  Bytes data;  // bytes after the message type
};

// Answers an incoming global request: (success, reply data). Called on the loop thread.
using GlobalRequestHandler = std::function<GlobalReplyData(std::string_view name, ByteSpan data)>;

class Session {
 public:
  // Handshake (version, kex, auth) over `stream`; fails with the reason (e.g.
  // errc::host_key_mismatch, errc::auth_failed, errc::eof). Wrap in with_timeout for a deadline.
  static Task<Result<std::unique_ptr<Session>>> client_handshake(Stream& stream, Config config);
  static Task<Result<std::unique_ptr<Session>>> server_handshake(Stream& stream, Config config);

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // Global requests. With want_reply the task waits for the reply (replies match in order).
  Task<Result<GlobalReplyData>> global_request(std::string name, Bytes payload, bool want_reply);
  // Incoming requests go to this handler; without one, requests wanting a reply get a failure.
  void set_global_request_handler(GlobalRequestHandler handler) { request_handler_ = std::move(handler); }

  // Opens a channel; fails with errc::closed / the peer's refusal (see open_failure()).
  Task<Result<Channel>> open_channel(std::string type, Bytes extra);
  // The next channel the peer opened; accept() or reject() it.
  Task<Result<IncomingChannel>> next_channel();
  Result<Channel> accept(const IncomingChannel& incoming);
  Result<void> reject(const IncomingChannel& incoming, OpenFailure reason, std::string_view message);

  // Disconnects (if still connected), ends every channel, flushes and joins the pumps.
  Task<void> close();
  // Waits until the session ends (peer disconnect, error or close()); returns the reason.
  Task<std::error_code> wait_closed();

  bool is_open() const noexcept { return !ended_; }
  std::error_code error() const noexcept { return error_; }
  std::string_view disconnect_message() const noexcept { return disconnect_message_; }
  // The user name the peer authenticated as (peer text: escape before logging).
  const std::string& peer_user() const noexcept { return peer_user_; }
  Connection& core() noexcept { return conn_; }
  std::size_t key_exchanges() const noexcept { return key_exchanges_; }
  // Why the last open_channel() was refused (reason code and the peer's text).
  std::uint32_t last_open_failure_reason() const noexcept { return last_open_failure_reason_; }
  const std::string& last_open_failure_message() const noexcept { return last_open_failure_message_; }

  // Channel writes wait while more than this many bytes are queued for the stream. Waiting
  // writers take turns (see output_turns_), so a low mark keeps sealed packets in cache until
  // the kernel copies them without starving any channel.
  static constexpr std::size_t kOutputHighWater = 512 * 1024;
  static constexpr std::size_t kReadChunk = 64 * 1024;

 private:
  friend class Channel;
  Session(Stream& stream, Config config, std::size_t accept_queue);
  static Task<Result<std::unique_ptr<Session>>> handshake(Stream& stream, Config config);
  Task<void> read_pump();
  Task<void> write_pump();
  void dispatch(Event& e);
  void output_ready() noexcept { output_event_.set(); }
  bool output_full() const noexcept { return conn_.output_size() > kOutputHighWater; }
  // Whether a channel writer must wait for a turn at the output. One holding a turn waits only
  // while the output is full; one without also waits while others wait or a writer was given
  // a turn and has not run yet.
  bool must_wait_for_output(bool has_turn) const noexcept {
    return output_full() || (!has_turn && (!output_turns_.empty() || turns_given_ > 0));
  }
  // Ends a writer's turn at the output: the next waiter goes if there is room. Harmless when
  // called without a turn, so every path out of a channel write calls it.
  void pass_output_turn() noexcept {
    if (!output_full() && output_turns_.wake_one()) ++turns_given_;
  }
  // `co_await output_turn()`: passes on the writer's turn (if it has one), waits in line, and
  // starts its turn once woken; true with the turn, false if the wait was cancelled.
  class OutputTurn {
   public:
    explicit OutputTurn(Session& s) noexcept : session_(&s), waiter_(s.output_turns_) {}
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      session_->pass_output_turn();
      return waiter_.await_suspend(h);
    }
    bool await_resume() noexcept {
      if (!waiter_.await_resume()) return false;
      if (session_->turns_given_ > 0) --session_->turns_given_;
      return true;
    }

   private:
    Session* session_;
    WaitQueue::Waiter waiter_;
  };
  OutputTurn output_turn() noexcept { return OutputTurn(*this); }
  void end(std::error_code ec, std::string message);
  std::shared_ptr<detail::ChannelState> add_channel(std::uint32_t id);
  detail::ChannelState* find_channel(std::uint32_t id) const noexcept {
    return id < channels_.size() ? channels_[id].get() : nullptr;
  }
  std::shared_ptr<detail::ChannelState> remove_channel(std::uint32_t id) noexcept;

  Stream& stream_;
  Connection conn_;
  Scope scope_;
  vtunnel::Event output_event_;
  vtunnel::Event writer_done_;
  vtunnel::Event ended_event_;
  vtunnel::Event authenticated_;
  bool ended_ = false;
  bool closing_ = false;
  std::error_code error_;
  std::string disconnect_message_;
  std::string peer_user_;
  // Open channels by our id. The core picks ids (the lowest free one, below max_channels), so
  // this is a dense table: a slot per id, empty once the channel is gone, trailing empty slots
  // dropped. 16 bytes a channel instead of a map node.
  std::vector<std::shared_ptr<detail::ChannelState>> channels_;
  vtunnel::Channel<IncomingChannel> incoming_;
  struct PendingReply {
    bool answered = false;
    GlobalReplyData reply;
    WaitQueue waiters;
  };
  std::deque<std::shared_ptr<PendingReply>> pending_replies_;
  GlobalRequestHandler request_handler_;
  // Channel writers waiting for room in the output, oldest first. Each drained write wakes the
  // oldest; each writer that ends its turn with room left wakes the next. Writers arriving
  // while others wait queue behind them, so a busy channel cannot starve a waiting one.
  WaitQueue output_turns_;
  std::size_t turns_given_ = 0;  // writers woken for a turn that have not run yet
  std::size_t key_exchanges_ = 0;
  std::uint32_t last_open_failure_reason_ = 0;
  std::string last_open_failure_message_;
};

}  // namespace vtunnel::ssh
