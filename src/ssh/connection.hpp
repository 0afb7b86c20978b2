#pragma once
// ssh::Connection: the sans-I/O state machine of one SSH connection, either role: version
// exchange, key exchange and rekeying (with strict kex), user authentication and the connection
// protocol (global requests, channels, flow control). It consumes bytes and produces bytes and
// events; it never touches a socket, a clock or a coroutine.
//
// Driving it:
//   - give it input with feed() (or input_buffer() + commit_input());
//   - call poll() until it returns nullopt; views inside events (ChannelData::data, ...) stay
//     valid only until the next poll()/feed()/commit_input();
//   - send whatever take_output() returns (a buffer with `headroom` free bytes in front, for the
//     caller's own framing), then give the storage back with recycle().
// A violation by the peer ends the connection: a DISCONNECT goes out and poll() yields one
// Disconnected event; nothing throws on peer input.
#include <botan/chacha_rng.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ssh/errc.hpp"
#include "ssh/host_key.hpp"
#include "ssh/kex.hpp"
#include "ssh/messages.hpp"
#include "ssh/packet_codec.hpp"
#include "ssh/wire.hpp"

namespace vtunnel::ssh {

enum class Role { client, server };

// Decides whether a server host key (algorithm name and SSH public-key blob) is acceptable.
using HostKeyVerifier = std::function<bool(std::string_view algorithm, ByteSpan key_blob)>;
HostKeyVerifier accept_any_host_key();
HostKeyVerifier accept_only_host_key(Bytes key_blob);  // compared in constant time

struct Config {
  Role role = Role::client;
  std::string software_version = "vtunnel_0.1.0";  // our ident is "SSH-2.0-" + this

  // Client: user name, key (null: the "none" method only) and host key policy.
  std::string user = "vtunnel";
  std::shared_ptr<const SigningKey> client_key;
  HostKeyVerifier verify_host_key;  // required for clients

  // Server: host key, and the one client key allowed (nullopt: keyless mode, "none" accepted).
  std::shared_ptr<const SigningKey> host_key;
  std::optional<Bytes> authorized_client_key;  // SSH public-key blob (ssh-ed25519)
  std::size_t max_auth_attempts = 6;

  // Cipher names in preference order; empty means supported_ciphers() order.
  std::vector<std::string> ciphers;
  // Start a key exchange after this many bytes in one direction; 0 means the cipher's
  // default (OpenSSH/Go: 1 GiB for chacha20-poly1305, 64 GiB for AES).
  std::uint64_t rekey_bytes = 0;
  // Also rekey after this many packets in one direction (keeps sequence numbers from wrapping).
  std::uint64_t rekey_packets = std::uint64_t{1} << 31;

  // Channels: the window and max packet we announce (also the most window we ever grant).
  // What we send is bounded by what the peer announces: Go and OpenSSH announce 32 KiB
  // packets (windows of 2 MiB / 2 MiB), so only our own peers exchange large packets.
  std::uint32_t channel_window = 4 * 1024 * 1024;
  std::uint32_t channel_max_packet = 255 * 1024;
  std::size_t max_channels = 1024;

  // Budget for a peer that has not authenticated yet.
  std::size_t max_unauthenticated_packets = 128;
  std::size_t max_unauthenticated_bytes = 512 * 1024;

  // Free bytes reserved in front of every output buffer (for a WebSocket frame header).
  std::size_t output_headroom = 14;
};

// The most channel data we put in one packet regardless of what the peer allows.
inline constexpr std::size_t kMaxChannelDataPerPacket = PacketEncoder::kMaxPayload - 9;

namespace event {
struct KexDone {
  bool initial;
  std::string kex, host_key_algorithm, cipher_in, cipher_out;
};
// Host key accepted (client) and authentication succeeded (both roles).
struct Authenticated {
  std::string user;
};
struct GlobalRequest {
  std::string name;
  bool want_reply;
  ByteSpan data;  // request-specific data
};
struct GlobalReply {
  bool success;
  ByteSpan data;  // bytes after the message type (Go puts e.g. "pong" there, no length prefix)
};
struct ChannelOpen {
  std::uint32_t channel;
  std::string type;
  ByteSpan extra;
};
struct ChannelOpenConfirm {
  std::uint32_t channel;
};
struct ChannelOpenFailure {
  std::uint32_t channel;
  std::uint32_t reason;
  std::string message;  // escaped peer text
};
struct ChannelData {
  std::uint32_t channel;
  ByteSpan data;  // call consumed(channel, n) once the application has taken it
};
struct ChannelEof {
  std::uint32_t channel;
};
struct ChannelClose {
  std::uint32_t channel;  // the id is free again after this event
};
struct ChannelWindow {
  std::uint32_t channel;  // the send window grew
};
struct Disconnected {
  std::error_code error;
  std::string message;
};
}  // namespace event

using Event = std::variant<event::KexDone, event::Authenticated, event::GlobalRequest,
                           event::GlobalReply, event::ChannelOpen, event::ChannelOpenConfirm,
                           event::ChannelOpenFailure, event::ChannelData, event::ChannelEof,
                           event::ChannelClose, event::ChannelWindow, event::Disconnected>;

struct OutputBuffer {
  PacketBuffer storage;
  std::size_t headroom = 0;
  ByteSpan data() const noexcept { return ByteSpan(storage).subspan(headroom); }
};

class Connection {
 public:
  explicit Connection(Config config);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // ---- input
  MutableByteSpan input_buffer(std::size_t min_size = 64 * 1024) { return decoder_.prepare(min_size); }
  void commit_input(std::size_t n) noexcept { decoder_.commit(n); }
  std::size_t feed(ByteSpan data) { return decoder_.feed(data); }
  std::optional<Event> poll();

  // ---- output
  bool has_output() const noexcept { return out_.size() > config_.output_headroom; }
  std::size_t output_size() const noexcept {
    return out_.size() > config_.output_headroom ? out_.size() - config_.output_headroom : 0;
  }
  OutputBuffer take_output();
  void recycle(PacketBuffer storage);

  // ---- state
  bool authenticated() const noexcept { return authenticated_; }
  // Server: authentication requests received so far (the "none" probe included).
  std::size_t auth_requests() const noexcept { return auth_requests_; }
  bool closed() const noexcept { return closed_; }
  std::error_code error() const noexcept { return error_; }
  const std::string& peer_version() const noexcept { return peer_version_; }
  ByteSpan session_id() const noexcept { return session_id_; }
  bool strict_kex() const noexcept { return strict_kex_; }
  bool kex_in_progress() const noexcept { return kex_.sent_kexinit; }

  // ---- global requests
  Result<void> send_global_request(std::string_view name, ByteSpan data, bool want_reply);
  // Answers the oldest incoming request that wanted a reply. `data` goes right after the
  // message type, as Go expects (e.g. "pong").
  Result<void> reply_global_request(bool success, ByteSpan data = {});

  // ---- channels
  Result<std::uint32_t> open_channel(std::string_view type, ByteSpan extra = {});
  Result<void> accept_channel(std::uint32_t channel);
  Result<void> reject_channel(std::uint32_t channel, OpenFailure reason, std::string_view message);
  // Queues up to min(data.size(), send window) bytes; returns how many were taken.
  Result<std::size_t> send_data(std::uint32_t channel, ByteSpan data);
  std::size_t send_window(std::uint32_t channel) const noexcept;
  // CHANNEL_DATA without a copy: room for up to `limit` payload bytes (also bounded by the
  // send window and the peer's max packet) inside an outgoing packet, for the caller to fill
  // and pass to finish_channel_data() before anything else is sent. Empty when nothing can be
  // placed now: no window, channel not open or past EOF, or a key exchange holds data back
  // (send_data() then queues it).
  MutableByteSpan begin_channel_data(std::uint32_t channel, std::size_t limit);
  // Seals the packet begun last with its first n bytes (n <= room; 0 drops it).
  void finish_channel_data(std::uint32_t channel, std::size_t n);
  // The application has taken n bytes of this channel's data: the peer may send n more.
  Result<void> consumed(std::uint32_t channel, std::size_t n);
  Result<void> send_eof(std::uint32_t channel);
  Result<void> close_channel(std::uint32_t channel);
  std::size_t channel_count() const noexcept { return channel_count_; }

  // ---- session
  void start_rekey();
  // Sends one arbitrary message, bypassing every state check. For tests that play a hostile
  // peer and for diagnostics; never used by the library itself.
  void send_unchecked_message_for_testing(ByteSpan payload) { write_packet(payload); }
  void disconnect(std::string_view reason = "closed by application");

 private:
  struct Algorithms {
    std::string kex, host_key, cipher_c2s, cipher_s2c, mac_c2s, mac_s2c;
  };
  struct KexRound {
    bool sent_kexinit = false;
    bool received_kexinit = false;
    bool sent_newkeys = false;
    bool received_newkeys = false;
    bool ignore_guessed_packet = false;
    Bytes our_kexinit, peer_kexinit;
    Algorithms algs;
    std::unique_ptr<KeyAgreement> agreement;
    std::unique_ptr<PacketCipher> pending_in, pending_out;
  };
  enum class ChannelState { opening, awaiting_accept, open };
  struct Channel {
    ChannelState state = ChannelState::opening;
    std::uint32_t remote_id = 0;
    std::uint32_t recv_window = 0;      // bytes the peer may still send
    std::uint32_t unconsumed = 0;       // delivered, not yet consumed by the application
    std::uint32_t grant_pending = 0;    // consumed, not yet granted with WINDOW_ADJUST
    std::uint64_t send_window = 0;
    std::uint32_t send_max_packet = 0;
    bool eof_sent = false, eof_received = false, close_sent = false, close_when_confirmed = false;
  };
  enum class AuthStage { idle, service_requested, none_sent, publickey_sent, done };

  // connection.cpp
  bool parse_version();
  void handle_packet(ByteSpan payload);
  void handle_transport_generic(std::uint8_t type, Reader& r);
  void fail(std::error_code ec, DisconnectReason reason, std::string message);
  void peer_disconnected(Reader& r);
  void send_unimplemented();
  PacketBuffer& out();
  void send_payload(ByteSpan payload);
  void write_packet(ByteSpan payload);
  bool sending_paused() const noexcept { return kex_.sent_kexinit && !kex_.sent_newkeys; }
  void check_rekey_needed();
  std::size_t data_room_ = 0;  // payload bytes reserved by begin_channel_data()
  template <class E>
  void emit(E&& e) { events_.emplace_back(std::forward<E>(e)); }
  // handshake.cpp
  void send_kexinit();
  void on_kexinit(ByteSpan payload, Reader& r);
  bool negotiate(Reader& peer);
  void on_ecdh_init(Reader& r);
  void on_ecdh_reply(Reader& r);
  bool install_keys(ByteSpan shared_secret, ByteSpan exchange_hash);
  void send_newkeys();
  void on_newkeys(Reader& r);
  void finish_kex_round();
  void handle_kex_message(std::uint8_t type, ByteSpan payload, Reader& r);
  // userauth.cpp
  void handle_auth_message(std::uint8_t type, Reader& r);
  void client_send_auth_request();
  void server_on_userauth_request(Reader& r);
  Bytes publickey_signed_data(std::string_view user, std::string_view service,
                              std::string_view algorithm, ByteSpan key_blob) const;
  // channels.cpp
  void handle_connection_message(std::uint8_t type, Reader& r);
  void on_channel_open(Reader& r);
  Channel* find_channel(std::uint32_t id) noexcept;
  const Channel* find_channel(std::uint32_t id) const noexcept;
  Channel* channel_for_peer_message(Reader& r, std::uint32_t& id);
  Result<std::uint32_t> allocate_channel();
  void free_channel(std::uint32_t id);
  void send_window_adjust(std::uint32_t id, Channel& ch);

  Config config_;
  Botan::ChaCha_RNG rng_;
  PacketDecoder decoder_;
  PacketEncoder encoder_;
  std::deque<Event> events_;
  std::deque<Bytes> deferred_;   // outgoing non-kex payloads held while a kex is in progress
  PacketBuffer out_;
  std::vector<PacketBuffer> spare_buffers_;

  std::string our_version_, peer_version_;
  bool version_received_ = false;
  std::size_t banner_lines_ = 0, banner_bytes_ = 0;

  KexRound kex_;
  bool first_kex_done_ = false;
  bool strict_kex_ = false;
  std::uint64_t rekey_limit_ = 0;
  Bytes session_id_;
  std::string cipher_in_name_, cipher_out_name_;

  AuthStage auth_stage_ = AuthStage::idle;
  bool service_accepted_ = false;  // server: ssh-userauth granted
  bool authenticated_ = false;
  std::size_t auth_failures_ = 0;
  std::size_t auth_requests_ = 0;
  std::size_t unauth_packets_ = 0;
  std::size_t unauth_bytes_ = 0;

  std::size_t pending_incoming_replies_ = 0;   // incoming global requests awaiting our reply
  std::size_t pending_outgoing_replies_ = 0;   // our global requests awaiting the peer's reply

  std::vector<std::optional<Channel>> channels_;
  std::size_t channel_count_ = 0;

  bool closed_ = false;
  bool disconnect_reported_ = false;
  std::error_code error_;
};

}  // namespace vtunnel::ssh
