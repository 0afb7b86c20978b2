#pragma once
// RFC 6455 frame vocabulary shared by the parser, the writer and the connection.
#include <array>
#include <cstddef>
#include <cstdint>

namespace vtunnel::ws {

// Which end of the connection we are: clients mask what they send, servers must not.
enum class Role : std::uint8_t { client, server };

enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

constexpr bool is_control(Opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }

using MaskKey = std::array<std::uint8_t, 4>;

// Largest payload of a close/ping/pong frame.
inline constexpr std::size_t kMaxControlPayload = 125;
// 2 bytes + 8 bytes of 64-bit length + 4 bytes of mask.
inline constexpr std::size_t kMaxFrameHeaderSize = 14;
// Largest message we accept unless told otherwise. Payloads are streamed, never buffered
// whole, so this bounds what a peer can make us process, not what we allocate.
inline constexpr std::uint64_t kDefaultMaxMessageSize = 64ULL * 1024 * 1024;

struct FrameHeader {
  bool fin = true;
  Opcode opcode = Opcode::binary;
  bool masked = false;
  MaskKey mask{};
  std::uint64_t payload_size = 0;
};

}  // namespace vtunnel::ws
