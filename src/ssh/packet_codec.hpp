#pragma once
// Binary packet protocol (RFC 4253 §6): framing, padding, sequence numbers. Knows ciphers but
// no message types. Decrypts and encrypts in place; no allocation per packet once warm.
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include <botan/rng.h>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ssh/cipher.hpp"
#include "ssh/limits.hpp"

namespace vtunnel::ssh {

// Allocator whose value-initialization is default-initialization: a vector using it leaves the
// bytes added by resize() unset. Packets are sized and then written in full at once, so the
// zero-fill std::vector would do first is wasted work on the hot path.
template <class T>
struct UninitializedAllocator : std::allocator<T> {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <class U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
// Output storage for packets (see Connection::take_output()).
using PacketBuffer = std::vector<std::uint8_t, UninitializedAllocator<std::uint8_t>>;

struct PacketCounters {
  std::uint64_t bytes = 0;    // wire bytes since the current keys took effect
  std::uint64_t packets = 0;
};

class PacketDecoder {
 public:
  // Room for two maximum packets so a reader can keep a full packet buffered while the next one
  // arrives.
  static constexpr std::size_t kBufferLimit = 2 * (4 + kMaxPacketSize + kMaxTagSize);

  PacketDecoder() = default;

  // Writable space at the end of the input buffer (at least min_size bytes unless the buffer
  // limit is reached). Invalidates views returned by next().
  MutableByteSpan prepare(std::size_t min_size);
  void commit(std::size_t n) noexcept { end_ += n; }
  // Copies as many bytes as fit; returns how many were taken. Invalidates views from next().
  std::size_t feed(ByteSpan data);

  // need more -> nullopt; a packet -> its payload (decrypted in place, valid until the next
  // prepare/feed); a violation -> error (the decoder is then unusable).
  Result<std::optional<MutableByteSpan>> next() noexcept;

  // New keys take effect from the next packet.
  void set_cipher(std::unique_ptr<PacketCipher> cipher) noexcept;
  void reset_sequence() noexcept { seq_ = 0; }
  std::uint32_t sequence() const noexcept { return seq_; }        // of the next packet
  std::uint32_t last_sequence() const noexcept { return seq_ - 1; }  // of the last packet returned
  bool sequence_wrapped() const noexcept { return wrapped_; }
  const PacketCounters& counters() const noexcept { return counters_; }
  std::size_t buffered() const noexcept { return end_ - start_; }
  // Raw access for the identification exchange, which precedes the packet protocol.
  ByteSpan unparsed() const noexcept { return ByteSpan(buf_).subspan(start_, end_ - start_); }
  void consume(std::size_t n) noexcept { start_ += n; }

 private:
  Bytes buf_;
  std::size_t start_ = 0;
  std::size_t end_ = 0;
  std::optional<std::uint32_t> packet_length_;  // decoded length of the packet at start_
  std::unique_ptr<PacketCipher> cipher_;
  std::uint32_t seq_ = 0;
  bool wrapped_ = false;
  PacketCounters counters_;
};

class PacketEncoder {
 public:
  explicit PacketEncoder(Botan::RandomNumberGenerator& rng) : rng_(&rng) {}

  // Largest payload that fits a packet of kMaxPacketSize.
  static constexpr std::size_t kMaxPayload = kMaxPacketSize - 1 - 255;

  // Appends the header and room for payload_len bytes to out (Bytes or PacketBuffer); returns
  // the payload area to be filled by the caller before finish(). payload_len must be <=
  // kMaxPayload.
  template <class Buffer>
  MutableByteSpan begin(Buffer& out, std::size_t payload_len) {
    packet_start_ = out.size();
    payload_len_ = payload_len;
    out.resize(packet_start_ + 5 + payload_len);
    return MutableByteSpan(out.data() + packet_start_ + 5, payload_len);
  }
  // The packet begun last carries only payload_len bytes (<= what begin() reserved).
  void shrink(std::size_t payload_len) noexcept {
    if (payload_len < payload_len_) payload_len_ = payload_len;
  }
  // Drops the packet begun last (nothing was sealed; the sequence number is not used).
  template <class Buffer>
  void abandon(Buffer& out) {
    out.resize(packet_start_);
  }
  // Pads, encrypts in place and appends the tag of the packet begun last.
  template <class Buffer>
  void finish(Buffer& out) {
    out.resize(packet_start_ + pending_wire_size());
    seal_pending(out.data() + packet_start_);
  }
  // begin + copy + finish.
  template <class Buffer>
  void encode(ByteSpan payload, Buffer& out) {
    MutableByteSpan room = begin(out, payload.size());
    if (!payload.empty()) std::memcpy(room.data(), payload.data(), payload.size());
    finish(out);
  }

  void set_cipher(std::unique_ptr<PacketCipher> cipher) noexcept;
  void reset_sequence() noexcept { seq_ = 0; }
  std::uint32_t sequence() const noexcept { return seq_; }
  bool sequence_wrapped() const noexcept { return wrapped_; }
  const PacketCounters& counters() const noexcept { return counters_; }
  // Wire bytes one packet with payload_len bytes takes at most.
  std::size_t max_wire_size(std::size_t payload_len) const noexcept;

 private:
  std::size_t padding_length() const noexcept;
  std::size_t pending_wire_size() const noexcept;
  void seal_pending(std::uint8_t* packet);
  void random_padding(std::uint8_t* out, std::size_t n);

  Botan::RandomNumberGenerator* rng_;
  // Padding bytes drawn from rng_ in batches: one randomize() (which costs a getpid() syscall
  // for Botan's fork check) per ~20 packets instead of one per packet.
  std::array<std::uint8_t, 512> padding_pool_{};
  std::size_t padding_used_ = 512;
  std::unique_ptr<PacketCipher> cipher_;
  std::size_t packet_start_ = 0;
  std::size_t payload_len_ = 0;
  std::uint32_t seq_ = 0;
  bool wrapped_ = false;
  PacketCounters counters_;
};

}  // namespace vtunnel::ssh
