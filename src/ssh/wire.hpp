#pragma once
// RFC 4251 §5 data types. Reader is the one checked cursor every peer byte goes through: each
// read returns a Result, never reads out of bounds and never throws. Writer builds messages.
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ssh/errc.hpp"

namespace vtunnel::ssh {

class Reader {
 public:
  explicit Reader(ByteSpan data) noexcept : data_(data) {}

  Result<std::uint8_t> u8() noexcept;
  Result<bool> boolean() noexcept;  // any non-zero byte is true (RFC 4251)
  Result<std::uint32_t> u32() noexcept;
  Result<std::uint64_t> u64() noexcept;
  // A length-prefixed string as a view into the input (no copy).
  Result<ByteSpan> string() noexcept;
  Result<std::string_view> text() noexcept;  // string() viewed as characters
  // A name-list (comma-separated, no empty names, ASCII without commas).
  Result<std::string_view> name_list() noexcept;
  // An mpint as its two's-complement bytes; rejects non-minimal encodings and negatives.
  Result<ByteSpan> mpint_unsigned() noexcept;
  Result<ByteSpan> fixed(std::size_t n) noexcept;
  ByteSpan rest() noexcept;  // all remaining bytes (consumed)
  Result<void> expect_end() const noexcept;

  std::size_t remaining() const noexcept { return data_.size() - pos_; }

 private:
  ByteSpan data_;
  std::size_t pos_ = 0;
};

class Writer {
 public:
  Writer() = default;
  explicit Writer(Bytes& out) : out_(&out) {}
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Writer& u8(std::uint8_t v);
  Writer& boolean(bool v) { return u8(v ? 1 : 0); }
  Writer& u32(std::uint32_t v);
  Writer& u64(std::uint64_t v);
  Writer& string(ByteSpan s);
  Writer& string(std::string_view s) { return string(as_bytes(s)); }
  // An unsigned big-endian magnitude (leading zeros allowed) written as a minimal mpint.
  Writer& mpint_unsigned(ByteSpan magnitude);
  Writer& raw(ByteSpan s);
  Writer& raw(std::string_view s) { return raw(as_bytes(s)); }

  Bytes& bytes() noexcept { return *out_; }
  Bytes take() { return std::move(*out_); }

 private:
  Bytes own_;
  Bytes* out_ = &own_;
};

// Is `name` an element of the comma-separated `list`?
bool name_list_contains(std::string_view list, std::string_view name) noexcept;

}  // namespace vtunnel::ssh
