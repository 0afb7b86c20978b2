#pragma once
// Payload masking (RFC 6455 5.3): XOR with a 4-byte key, in place. A frame's payload may arrive
// in several chunks, so the position inside the key ("phase") carries over between calls.
#include <cstddef>

#include "core/bytes.hpp"
#include "ws/frame.hpp"

namespace vtunnel::ws {

// XORs `data` with `key`, starting at key byte `phase` (0..3). Returns the phase of the byte
// after `data`. Masking twice with the same key and phase restores the data.
std::size_t apply_mask(MutableByteSpan data, const MaskKey& key, std::size_t phase = 0) noexcept;

}  // namespace vtunnel::ws
