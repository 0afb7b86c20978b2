#include "ssh/packet_codec.hpp"

#include <cstring>

namespace vtunnel::ssh {

namespace {
// Without a cipher (before the first NEWKEYS) the whole packet, length included, is aligned to 8.
constexpr std::size_t kClearBlockSize = 8;
}  // namespace

MutableByteSpan PacketDecoder::prepare(std::size_t min_size) {
  if (start_ == end_) {
    start_ = end_ = 0;
  } else if (start_ > 0 && buf_.size() - end_ < min_size) {
    std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (buf_.size() - end_ < min_size) {
    std::size_t want = std::min(kBufferLimit, std::max(end_ + min_size, buf_.size() * 2));
    if (want > buf_.size()) buf_.resize(want);
  }
  return MutableByteSpan(buf_).subspan(end_);
}

std::size_t PacketDecoder::feed(ByteSpan data) {
  MutableByteSpan room = prepare(data.size());
  std::size_t n = std::min(room.size(), data.size());
  if (n) std::memcpy(room.data(), data.data(), n);
  commit(n);
  return n;
}

void PacketDecoder::set_cipher(std::unique_ptr<PacketCipher> cipher) noexcept {
  cipher_ = std::move(cipher);
  counters_ = {};
}

Result<std::optional<MutableByteSpan>> PacketDecoder::next() noexcept {
  const std::size_t have = end_ - start_;
  if (!packet_length_) {
    if (have < 4) return std::optional<MutableByteSpan>{};
    const std::uint8_t* p = buf_.data() + start_;
    std::uint32_t len = cipher_ ? cipher_->peek_length(seq_, ByteSpan(p, 4)) : load_be32(p);
    // Checked before anything is allocated or waited for.
    if (len > kMaxPacketSize) return errc::packet_too_large;
    if (len < 1 + 4) return errc::bad_padding;
    bool aligned = cipher_ ? len % cipher_->block_size() == 0 : (len + 4) % kClearBlockSize == 0;
    if (!aligned) return errc::bad_padding;
    packet_length_ = len;
  }
  const std::size_t tag = cipher_ ? cipher_->tag_size() : 0;
  const std::size_t total = 4 + std::size_t{*packet_length_} + tag;
  if (have < total) return std::optional<MutableByteSpan>{};

  MutableByteSpan packet(buf_.data() + start_, 4 + *packet_length_);
  if (cipher_) {
    auto opened = cipher_->open(seq_, packet, ByteSpan(packet.data() + packet.size(), tag));
    if (!opened) return opened.error();
  }
  const std::size_t padding = packet[4];
  if (padding < 4 || padding + 1 > *packet_length_) return errc::bad_padding;
  const std::size_t payload_len = *packet_length_ - 1 - padding;

  start_ += total;
  packet_length_.reset();
  if (++seq_ == 0) wrapped_ = true;
  counters_.bytes += total;
  counters_.packets += 1;
  return std::optional<MutableByteSpan>(packet.subspan(5, payload_len));
}

void PacketEncoder::set_cipher(std::unique_ptr<PacketCipher> cipher) noexcept {
  cipher_ = std::move(cipher);
  counters_ = {};
}

std::size_t PacketEncoder::max_wire_size(std::size_t payload_len) const noexcept {
  std::size_t block = cipher_ ? cipher_->block_size() : kClearBlockSize;
  return 4 + 1 + payload_len + 4 + block + (cipher_ ? cipher_->tag_size() : 0);
}

std::size_t PacketEncoder::padding_length() const noexcept {
  const std::size_t block = cipher_ ? cipher_->block_size() : kClearBlockSize;
  // AEAD and EtM modes align packet_length; the clear mode aligns the whole packet.
  const std::size_t aligned_part = 1 + payload_len_ + (cipher_ ? 0 : 4);
  std::size_t padding = block - aligned_part % block;
  if (padding < 4) padding += block;
  return padding;
}

std::size_t PacketEncoder::pending_wire_size() const noexcept {
  return 4 + 1 + payload_len_ + padding_length() + (cipher_ ? cipher_->tag_size() : 0);
}

void PacketEncoder::random_padding(std::uint8_t* out, std::size_t n) {
  if (n > padding_pool_.size()) {
    rng_->randomize(out, n);
    return;
  }
  if (n > padding_pool_.size() - padding_used_) {
    rng_->randomize(padding_pool_.data(), padding_pool_.size());
    padding_used_ = 0;
  }
  std::memcpy(out, padding_pool_.data() + padding_used_, n);
  padding_used_ += n;
}

void PacketEncoder::seal_pending(std::uint8_t* p) {
  const std::size_t padding = padding_length();
  const std::size_t tag = cipher_ ? cipher_->tag_size() : 0;
  const std::size_t packet_length = 1 + payload_len_ + padding;
  store_be32(p, static_cast<std::uint32_t>(packet_length));
  p[4] = static_cast<std::uint8_t>(padding);
  random_padding(p + 5 + payload_len_, padding);
  if (cipher_) {
    cipher_->seal(seq_, MutableByteSpan(p, 4 + packet_length),
                  MutableByteSpan(p + 4 + packet_length, tag));
  }
  if (++seq_ == 0) wrapped_ = true;
  counters_.bytes += 4 + packet_length + tag;
  counters_.packets += 1;
}

}  // namespace vtunnel::ssh
