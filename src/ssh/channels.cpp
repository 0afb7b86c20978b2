// Connection: the connection protocol (RFC 4254): global requests, channels, flow control.
#include <algorithm>
#include <cstring>
#include <utility>

#include "core/log.hpp"
#include "ssh/connection.hpp"

namespace vtunnel::ssh {
namespace {
constexpr std::size_t kMaxRequestNameLength = 256;
constexpr std::uint64_t kMaxWindow = 0xffffffffu;  // RFC 4254 §5.2
}  // namespace

// ---------------------------------------------------------------- global requests

Result<void> Connection::send_global_request(std::string_view name, ByteSpan data, bool want_reply) {
  if (closed_) return errc::closed;
  if (!authenticated_) return errc::unexpected_message;
  Bytes p;
  Writer(p).u8(msg::kGlobalRequest).string(name).boolean(want_reply).raw(data);
  if (p.size() > PacketEncoder::kMaxPayload) return errc::invalid_argument;
  send_payload(p);
  if (want_reply) ++pending_outgoing_replies_;
  return {};
}

Result<void> Connection::reply_global_request(bool success, ByteSpan data) {
  if (closed_) return errc::closed;
  if (pending_incoming_replies_ == 0) return errc::invalid_argument;
  --pending_incoming_replies_;
  Bytes p;
  Writer(p).u8(success ? msg::kRequestSuccess : msg::kRequestFailure).raw(data);
  if (p.size() > PacketEncoder::kMaxPayload) return errc::invalid_argument;
  send_payload(p);
  return {};
}

// ---------------------------------------------------------------- channel table

Connection::Channel* Connection::find_channel(std::uint32_t id) noexcept {
  if (id >= channels_.size() || !channels_[id]) return nullptr;
  return &*channels_[id];
}

const Connection::Channel* Connection::find_channel(std::uint32_t id) const noexcept {
  if (id >= channels_.size() || !channels_[id]) return nullptr;
  return &*channels_[id];
}

Result<std::uint32_t> Connection::allocate_channel() {
  if (channel_count_ >= config_.max_channels) return errc::too_many_channels;
  std::size_t id = 0;
  while (id < channels_.size() && channels_[id]) ++id;
  if (id == channels_.size()) channels_.emplace_back();
  channels_[id].emplace();
  ++channel_count_;
  return static_cast<std::uint32_t>(id);
}

void Connection::free_channel(std::uint32_t id) {
  if (id < channels_.size() && channels_[id]) {
    channels_[id].reset();
    --channel_count_;
  }
}

void Connection::send_window_adjust(std::uint32_t, Channel& ch) {
  Bytes p;
  Writer(p).u8(msg::kChannelWindowAdjust).u32(ch.remote_id).u32(ch.grant_pending);
  send_payload(p);
  ch.recv_window += ch.grant_pending;
  ch.grant_pending = 0;
}

// ---------------------------------------------------------------- application calls

Result<std::uint32_t> Connection::open_channel(std::string_view type, ByteSpan extra) {
  if (closed_) return errc::closed;
  if (!authenticated_) return errc::unexpected_message;
  auto id = allocate_channel();
  if (!id) return id;
  Channel& ch = *channels_[*id];
  ch.state = ChannelState::opening;
  ch.recv_window = config_.channel_window;
  Bytes p;
  Writer(p)
      .u8(msg::kChannelOpen)
      .string(type)
      .u32(*id)
      .u32(config_.channel_window)
      .u32(config_.channel_max_packet)
      .raw(extra);
  send_payload(p);
  return id;
}

Result<void> Connection::accept_channel(std::uint32_t id) {
  if (closed_) return errc::closed;
  Channel* ch = find_channel(id);
  if (!ch || ch->state != ChannelState::awaiting_accept) return errc::unknown_channel;
  ch->state = ChannelState::open;
  ch->recv_window = config_.channel_window;
  Bytes p;
  Writer(p)
      .u8(msg::kChannelOpenConfirmation)
      .u32(ch->remote_id)
      .u32(id)
      .u32(config_.channel_window)
      .u32(config_.channel_max_packet);
  send_payload(p);
  return {};
}

Result<void> Connection::reject_channel(std::uint32_t id, OpenFailure reason, std::string_view message) {
  if (closed_) return errc::closed;
  Channel* ch = find_channel(id);
  if (!ch || ch->state != ChannelState::awaiting_accept) return errc::unknown_channel;
  Bytes p;
  Writer(p)
      .u8(msg::kChannelOpenFailure)
      .u32(ch->remote_id)
      .u32(static_cast<std::uint32_t>(reason))
      .string(message)
      .string("");
  send_payload(p);
  free_channel(id);
  return {};
}

std::size_t Connection::send_window(std::uint32_t id) const noexcept {
  const Channel* ch = find_channel(id);
  if (!ch || ch->state != ChannelState::open || ch->eof_sent || ch->close_sent || closed_) return 0;
  return static_cast<std::size_t>(ch->send_window);
}

Result<std::size_t> Connection::send_data(std::uint32_t id, ByteSpan data) {
  if (closed_) return errc::closed;
  Channel* ch = find_channel(id);
  if (!ch || ch->state != ChannelState::open) return errc::unknown_channel;
  if (ch->eof_sent || ch->close_sent) return errc::closed;
  const std::size_t max_chunk = std::min<std::size_t>(ch->send_max_packet, kMaxChannelDataPerPacket);
  std::size_t total = std::min<std::uint64_t>(data.size(), ch->send_window);
  if (max_chunk == 0) total = 0;
  for (std::size_t done = 0; done < total;) {
    const std::size_t n = std::min(max_chunk, total - done);
    auto fill = [&](MutableByteSpan p) {
      p[0] = msg::kChannelData;
      store_be32(p.data() + 1, ch->remote_id);
      store_be32(p.data() + 5, static_cast<std::uint32_t>(n));
      std::memcpy(p.data() + 9, data.data() + done, n);
    };
    if (sending_paused()) {
      deferred_.emplace_back(9 + n);
      fill(deferred_.back());
    } else {
      // Built straight into the output buffer and encrypted there: one copy of the data.
      fill(encoder_.begin(out(), 9 + n));
      encoder_.finish(out());
    }
    done += n;
  }
  ch->send_window -= total;
  check_rekey_needed();
  return total;
}

MutableByteSpan Connection::begin_channel_data(std::uint32_t id, std::size_t limit) {
  data_room_ = 0;
  if (closed_ || sending_paused()) return {};
  Channel* ch = find_channel(id);
  if (!ch || ch->state != ChannelState::open || ch->eof_sent || ch->close_sent) return {};
  const std::size_t max_chunk = std::min<std::size_t>(ch->send_max_packet, kMaxChannelDataPerPacket);
  const std::size_t n = std::min<std::uint64_t>({limit, max_chunk, ch->send_window});
  if (n == 0) return {};
  MutableByteSpan p = encoder_.begin(out(), 9 + n);
  p[0] = msg::kChannelData;
  store_be32(p.data() + 1, ch->remote_id);
  data_room_ = n;
  return p.subspan(9);
}

void Connection::finish_channel_data(std::uint32_t id, std::size_t n) {
  const std::size_t room = std::exchange(data_room_, 0);
  Channel* ch = find_channel(id);
  if (room == 0) return;
  if (n == 0 || !ch || n > room) {
    encoder_.abandon(out_);
    return;
  }
  // The room ends the buffer; the data length field sits just before it.
  store_be32(out_.data() + out_.size() - room - 4, static_cast<std::uint32_t>(n));
  encoder_.shrink(9 + n);
  encoder_.finish(out_);
  ch->send_window -= n;
  check_rekey_needed();
}

Result<void> Connection::consumed(std::uint32_t id, std::size_t n) {
  if (closed_) return errc::closed;
  Channel* ch = find_channel(id);
  if (!ch) return errc::unknown_channel;
  if (n > ch->unconsumed) return errc::invalid_argument;
  ch->unconsumed -= static_cast<std::uint32_t>(n);
  ch->grant_pending += static_cast<std::uint32_t>(n);
  // Grant in batches: a WINDOW_ADJUST per quarter window keeps the pipe full without
  // sending one per packet.
  if (!ch->close_sent && ch->grant_pending >= config_.channel_window / 4) send_window_adjust(id, *ch);
  return {};
}

Result<void> Connection::send_eof(std::uint32_t id) {
  if (closed_) return errc::closed;
  Channel* ch = find_channel(id);
  if (!ch || ch->state != ChannelState::open) return errc::unknown_channel;
  if (ch->eof_sent || ch->close_sent) return {};
  ch->eof_sent = true;
  Bytes p;
  Writer(p).u8(msg::kChannelEof).u32(ch->remote_id);
  send_payload(p);
  return {};
}

Result<void> Connection::close_channel(std::uint32_t id) {
  if (closed_) return errc::closed;
  Channel* ch = find_channel(id);
  if (!ch) return errc::unknown_channel;
  switch (ch->state) {
    case ChannelState::awaiting_accept:
      return reject_channel(id, OpenFailure::connect_failed, "closed");
    case ChannelState::opening:
      ch->close_when_confirmed = true;  // CLOSE needs the peer's id: send it on confirmation
      return {};
    case ChannelState::open:
      if (!ch->close_sent) {
        ch->close_sent = true;
        Bytes p;
        Writer(p).u8(msg::kChannelClose).u32(ch->remote_id);
        send_payload(p);
      }
      return {};
  }
  return {};
}

// ---------------------------------------------------------------- peer messages

Connection::Channel* Connection::channel_for_peer_message(Reader& r, std::uint32_t& id) {
  auto recipient = r.u32();
  if (!recipient) {
    fail(errc::protocol_error, DisconnectReason::protocol_error, "malformed channel message");
    return nullptr;
  }
  id = *recipient;
  Channel* ch = find_channel(id);
  if (!ch) {
    fail(errc::unknown_channel, DisconnectReason::protocol_error,
         "message for unknown channel " + std::to_string(id));
    return nullptr;
  }
  return ch;
}

void Connection::on_channel_open(Reader& r) {
  auto type = r.text();
  auto sender = r.u32();
  auto window = r.u32();
  auto max_packet = r.u32();
  if (!type || !sender || !window || !max_packet || type->size() > kMaxRequestNameLength) {
    fail(errc::protocol_error, DisconnectReason::protocol_error, "malformed CHANNEL_OPEN");
    return;
  }
  ByteSpan extra = r.rest();
  auto id = allocate_channel();
  if (!id) {
    Bytes p;
    Writer(p)
        .u8(msg::kChannelOpenFailure)
        .u32(*sender)
        .u32(static_cast<std::uint32_t>(OpenFailure::resource_shortage))
        .string("too many channels")
        .string("");
    send_payload(p);
    return;
  }
  Channel& ch = *channels_[*id];
  ch.state = ChannelState::awaiting_accept;
  ch.remote_id = *sender;
  ch.send_window = *window;
  ch.send_max_packet = *max_packet;
  emit(event::ChannelOpen{*id, std::string(*type), extra});
}

void Connection::handle_connection_message(std::uint8_t type, Reader& r) {
  auto malformed = [&] {
    fail(errc::protocol_error, DisconnectReason::protocol_error,
         "malformed connection message " + std::to_string(type));
  };
  switch (type) {
    case msg::kGlobalRequest: {
      auto name = r.text();
      auto want_reply = r.boolean();
      if (!name || !want_reply || name->size() > kMaxRequestNameLength) return malformed();
      if (*want_reply) ++pending_incoming_replies_;
      emit(event::GlobalRequest{std::string(*name), *want_reply, r.rest()});
      return;
    }
    case msg::kRequestSuccess:
    case msg::kRequestFailure:
      if (pending_outgoing_replies_ == 0) {
        fail(errc::unexpected_message, DisconnectReason::protocol_error, "unexpected global request reply");
        return;
      }
      --pending_outgoing_replies_;
      // Reply data follows the message type directly (Go sends "pong" this way).
      emit(event::GlobalReply{type == msg::kRequestSuccess, r.rest()});
      return;
    case msg::kChannelOpen: return on_channel_open(r);
    default: break;
  }
  if (type > msg::kChannelFailure) return send_unimplemented();

  std::uint32_t id = 0;
  Channel* ch = channel_for_peer_message(r, id);
  if (!ch) return;

  if (type == msg::kChannelOpenConfirmation || type == msg::kChannelOpenFailure) {
    if (ch->state != ChannelState::opening) {
      fail(errc::unexpected_message, DisconnectReason::protocol_error, "unexpected channel open reply");
      return;
    }
    if (type == msg::kChannelOpenConfirmation) {
      auto sender = r.u32();
      auto window = r.u32();
      auto max_packet = r.u32();
      if (!sender || !window || !max_packet) return malformed();
      ch->state = ChannelState::open;
      ch->remote_id = *sender;
      ch->send_window = *window;
      ch->send_max_packet = *max_packet;
      if (ch->close_when_confirmed) {
        ch->close_when_confirmed = false;
        return (void)close_channel(id);
      }
      emit(event::ChannelOpenConfirm{id});
    } else {
      auto reason = r.u32();
      auto text = r.text();
      if (!reason || !text) return malformed();
      const bool report = !ch->close_when_confirmed;
      free_channel(id);
      if (report) emit(event::ChannelOpenFailure{id, *reason, log::escaped(*text)});
    }
    return;
  }
  if (ch->state != ChannelState::open) {
    fail(errc::unexpected_message, DisconnectReason::protocol_error, "message for a channel not yet open");
    return;
  }

  switch (type) {
    case msg::kChannelWindowAdjust: {
      auto bytes = r.u32();
      if (!bytes || !r.expect_end()) return malformed();
      ch->send_window += *bytes;
      if (ch->send_window > kMaxWindow) {
        fail(errc::protocol_error, DisconnectReason::protocol_error, "channel window overflow");
        return;
      }
      if (!ch->close_sent && !ch->eof_sent) emit(event::ChannelWindow{id});
      return;
    }
    case msg::kChannelData:
    case msg::kChannelExtendedData: {
      if (type == msg::kChannelExtendedData && !r.u32()) return malformed();
      auto data = r.string();
      if (!data || !r.expect_end()) return malformed();
      if (data->size() > config_.channel_max_packet) {
        fail(errc::limit_exceeded, DisconnectReason::protocol_error, "channel packet above our maximum");
        return;
      }
      if (data->size() > ch->recv_window) {
        fail(errc::window_exceeded, DisconnectReason::protocol_error, "channel window exceeded");
        return;
      }
      if (ch->eof_received) {
        fail(errc::protocol_error, DisconnectReason::protocol_error, "channel data after EOF");
        return;
      }
      const auto n = static_cast<std::uint32_t>(data->size());
      ch->recv_window -= n;
      if (type == msg::kChannelExtendedData || ch->close_sent) {
        // Discarded, but the window is still ours to give back.
        ch->grant_pending += n;
        if (!ch->close_sent && ch->grant_pending >= config_.channel_window / 4) send_window_adjust(id, *ch);
        return;
      }
      ch->unconsumed += n;
      emit(event::ChannelData{id, *data});
      return;
    }
    case msg::kChannelEof:
      ch->eof_received = true;
      emit(event::ChannelEof{id});
      return;
    case msg::kChannelClose:
      if (!ch->close_sent) {
        Bytes p;
        Writer(p).u8(msg::kChannelClose).u32(ch->remote_id);
        send_payload(p);
      }
      free_channel(id);
      emit(event::ChannelClose{id});
      return;
    case msg::kChannelRequest: {
      auto name = r.text();
      auto want_reply = r.boolean();
      if (!name || !want_reply) return malformed();
      if (*want_reply && !ch->close_sent) {
        Bytes p;
        Writer(p).u8(msg::kChannelFailure).u32(ch->remote_id);
        send_payload(p);
      }
      return;
    }
    case msg::kChannelSuccess:
    case msg::kChannelFailure:
      return;  // we never send channel requests; a stray answer is harmless
    default: return send_unimplemented();
  }
}

}  // namespace vtunnel::ssh
