// Connection: input/output plumbing, version exchange, dispatch by message type, disconnects.
#include "ssh/connection.hpp"

#include <algorithm>
#include <botan/mem_ops.h>
#include <botan/system_rng.h>
#include <stdexcept>

#include "core/log.hpp"
#include "ssh/limits.hpp"

namespace vtunnel::ssh {

HostKeyVerifier accept_any_host_key() {
  return [](std::string_view, ByteSpan) { return true; };
}

HostKeyVerifier accept_only_host_key(Bytes key_blob) {
  return [expected = std::move(key_blob)](std::string_view, ByteSpan blob) {
    return blob.size() == expected.size() &&
           Botan::constant_time_compare(blob.data(), expected.data(), blob.size());
  };
}

Connection::Connection(Config config)
    : config_(std::move(config)), rng_(Botan::system_rng()), encoder_(rng_) {
  // Start-up configuration errors are bugs in the caller: exceptions, not values.
  if (config_.role == Role::client && !config_.verify_host_key)
    throw std::invalid_argument("ssh client needs a host key verifier");
  if (config_.role == Role::server && !config_.host_key)
    throw std::invalid_argument("ssh server needs a host key");
  if (config_.channel_window == 0 || config_.channel_max_packet == 0 ||
      config_.channel_max_packet > kMaxChannelDataPerPacket)
    throw std::invalid_argument("ssh channel window/max packet out of range");
  our_version_ = "SSH-2.0-" + config_.software_version;
  PacketBuffer& o = out();
  o.insert(o.end(), our_version_.begin(), our_version_.end());
  o.push_back('\r');
  o.push_back('\n');
  send_kexinit();
}

Connection::~Connection() = default;

PacketBuffer& Connection::out() {
  if (out_.size() < config_.output_headroom) out_.resize(config_.output_headroom);
  return out_;
}

OutputBuffer Connection::take_output() {
  OutputBuffer b{std::move(out_), config_.output_headroom};
  if (b.storage.size() < b.headroom) b.storage.resize(b.headroom);
  out_.clear();
  if (!spare_buffers_.empty()) {
    out_ = std::move(spare_buffers_.back());
    spare_buffers_.pop_back();
  }
  return b;
}

void Connection::recycle(PacketBuffer storage) {
  constexpr std::size_t kMaxSpareBuffers = 4;
  if (spare_buffers_.size() >= kMaxSpareBuffers) return;
  storage.clear();
  spare_buffers_.push_back(std::move(storage));
}

void Connection::write_packet(ByteSpan payload) { encoder_.encode(payload, out()); }

void Connection::send_payload(ByteSpan payload) {
  if (closed_) return;
  if (sending_paused() && !msg::allowed_during_kex(payload[0])) {
    deferred_.emplace_back(payload.begin(), payload.end());
    return;
  }
  write_packet(payload);
}

void Connection::fail(std::error_code ec, DisconnectReason reason, std::string message) {
  if (closed_) return;
  if (version_received_) {
    Bytes p;
    Writer(p).u8(msg::kDisconnect).u32(static_cast<std::uint32_t>(reason)).string(message).string("");
    write_packet(p);
  }
  closed_ = true;
  error_ = ec;
  deferred_.clear();
  emit(event::Disconnected{ec, std::move(message)});
}

void Connection::disconnect(std::string_view reason) {
  if (closed_) return;
  Bytes p;
  Writer(p)
      .u8(msg::kDisconnect)
      .u32(static_cast<std::uint32_t>(DisconnectReason::by_application))
      .string(reason)
      .string("");
  write_packet(p);
  closed_ = true;
  error_ = errc::closed;
  deferred_.clear();
}

void Connection::peer_disconnected(Reader& r) {
  auto reason = r.u32();
  auto text = r.text();
  std::string message = "peer disconnected";
  if (reason && text) {
    message += ": " + log::escaped(*text) + " (reason " + std::to_string(*reason) + ")";
  }
  closed_ = true;
  error_ = errc::disconnected_by_peer;
  emit(event::Disconnected{error_, std::move(message)});
}

void Connection::send_unimplemented() {
  Bytes p;
  Writer(p).u8(msg::kUnimplemented).u32(decoder_.last_sequence());
  write_packet(p);
}

bool Connection::parse_version() {
  ByteSpan in = decoder_.unparsed();
  auto nl = std::find(in.begin(), in.end(), std::uint8_t{'\n'});
  if (nl == in.end()) {
    if (in.size() >= kMaxIdentLineLength || banner_bytes_ + in.size() > kMaxBannerBytes)
      fail(errc::bad_version, DisconnectReason::protocol_error, "identification line too long");
    return false;
  }
  std::size_t line_len = static_cast<std::size_t>(nl - in.begin()) + 1;
  std::string_view line = as_string(in.first(line_len - 1));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.starts_with("SSH-")) {
    if (line_len > kMaxIdentLineLength || !(line.starts_with("SSH-2.0-") || line.starts_with("SSH-1.99-"))) {
      fail(errc::bad_version, DisconnectReason::protocol_error,
           "unsupported SSH version: " + log::escaped(line, 64));
      return false;
    }
    for (char c : line) {
      if (c < 0x20 || c > 0x7e) {
        fail(errc::bad_version, DisconnectReason::protocol_error, "invalid identification line");
        return false;
      }
    }
    peer_version_ = std::string(line);
    decoder_.consume(line_len);
    version_received_ = true;
    return true;
  }
  // Only a server may send other lines before its version (RFC 4253 §4.2).
  banner_bytes_ += line_len;
  if (config_.role == Role::server || ++banner_lines_ > kMaxBannerLines ||
      banner_bytes_ > kMaxBannerBytes) {
    fail(errc::bad_version, DisconnectReason::protocol_error,
         "peer did not send an SSH identification line");
    return false;
  }
  decoder_.consume(line_len);
  return true;
}

std::optional<Event> Connection::poll() {
  while (events_.empty() && !closed_) {
    if (!version_received_) {
      if (!parse_version()) break;
      continue;
    }
    auto next = decoder_.next();
    if (!next) {
      std::error_code ec = next.error();
      fail(ec, ec == errc::mac_failure ? DisconnectReason::mac_error : DisconnectReason::protocol_error,
           ec.message());
      break;
    }
    if (!*next) break;
    if (strict_kex_ && decoder_.sequence_wrapped()) {
      fail(errc::sequence_wrapped, DisconnectReason::protocol_error, "sequence number wrapped");
      break;
    }
    if (!authenticated_) {
      unauth_bytes_ += (*next)->size();
      if (++unauth_packets_ > config_.max_unauthenticated_packets ||
          unauth_bytes_ > config_.max_unauthenticated_bytes) {
        fail(errc::limit_exceeded, DisconnectReason::protocol_error,
             "too much traffic before authentication");
        break;
      }
    }
    handle_packet(**next);
    check_rekey_needed();
  }
  if (events_.empty()) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void Connection::handle_packet(ByteSpan payload) {
  Reader r(payload);
  auto type_or = r.u8();
  if (!type_or) {
    fail(errc::protocol_error, DisconnectReason::protocol_error, "empty packet");
    return;
  }
  const std::uint8_t type = *type_or;
  const bool is_kex = type >= msg::kKexInit && type <= 49;

  if (!first_kex_done_) {
    // Strict kex (OpenSSH PROTOCOL §1.10): nothing but the key exchange itself until the
    // first NEWKEYS; without it, only the transport-generic messages are tolerated.
    if (is_kex) return handle_kex_message(type, payload, r);
    if (!strict_kex_ && type >= msg::kDisconnect && type <= msg::kDebug)
      return handle_transport_generic(type, r);
    if (type == msg::kDisconnect) return peer_disconnected(r);
    fail(errc::unexpected_message, DisconnectReason::protocol_error,
         "message " + std::to_string(type) + " during initial key exchange");
    return;
  }
  // RFC 4253 §7.1 forbids a peer to send other messages between its KEXINIT and NEWKEYS of a
  // rekey, but some implementations do (asyncssh 2.10 sends channel data) and OpenSSH accepts
  // them: the old keys still apply, so they are processed normally. Only the initial exchange
  // is strict.
  if (type >= msg::kDisconnect && type <= msg::kDebug) return handle_transport_generic(type, r);
  if (is_kex) return handle_kex_message(type, payload, r);
  if ((type >= msg::kServiceRequest && type <= msg::kExtInfo) ||
      (type >= msg::kUserauthRequest && type <= 79))
    return handle_auth_message(type, r);
  if (type >= msg::kGlobalRequest && type <= 127) {
    if (!authenticated_) {
      fail(errc::unexpected_message, DisconnectReason::protocol_error,
           "connection message before authentication");
      return;
    }
    return handle_connection_message(type, r);
  }
  send_unimplemented();
}

void Connection::handle_transport_generic(std::uint8_t type, Reader& r) {
  switch (type) {
    case msg::kDisconnect: peer_disconnected(r); return;
    case msg::kIgnore: return;
    case msg::kUnimplemented: {
      auto seq = r.u32();
      log::debug("ssh: peer did not implement our packet {}", seq ? *seq : 0);
      return;
    }
    case msg::kDebug: return;
    default: return;
  }
}

void Connection::check_rekey_needed() {
  if (!first_kex_done_ || kex_.sent_kexinit || closed_) return;
  const auto& in = decoder_.counters();
  const auto& o = encoder_.counters();
  if (std::max(in.bytes, o.bytes) >= rekey_limit_ ||
      std::max(in.packets, o.packets) >= config_.rekey_packets)
    send_kexinit();
}

void Connection::start_rekey() {
  if (first_kex_done_ && !kex_.sent_kexinit && !closed_) send_kexinit();
}

}  // namespace vtunnel::ssh
