#include "ssh/wire.hpp"

namespace vtunnel::ssh {

Result<std::uint8_t> Reader::u8() noexcept {
  if (remaining() < 1) return errc::truncated;
  return data_[pos_++];
}

Result<bool> Reader::boolean() noexcept {
  auto v = u8();
  if (!v) return v.error();
  return *v != 0;
}

Result<std::uint32_t> Reader::u32() noexcept {
  if (remaining() < 4) return errc::truncated;
  std::uint32_t v = load_be32(data_.data() + pos_);
  pos_ += 4;
  return v;
}

Result<std::uint64_t> Reader::u64() noexcept {
  if (remaining() < 8) return errc::truncated;
  std::uint64_t v = load_be64(data_.data() + pos_);
  pos_ += 8;
  return v;
}

Result<ByteSpan> Reader::fixed(std::size_t n) noexcept {
  if (remaining() < n) return errc::truncated;
  ByteSpan v = data_.subspan(pos_, n);
  pos_ += n;
  return v;
}

Result<ByteSpan> Reader::string() noexcept {
  auto len = u32();
  if (!len) return len.error();
  // The length is checked against what is actually left before it is used.
  if (*len > remaining()) return errc::truncated;
  return fixed(*len);
}

Result<std::string_view> Reader::text() noexcept {
  auto s = string();
  if (!s) return s.error();
  return as_string(*s);
}

Result<std::string_view> Reader::name_list() noexcept {
  auto s = text();
  if (!s) return s.error();
  std::string_view list = *s;
  bool at_start = true;
  for (char c : list) {
    auto uc = static_cast<unsigned char>(c);
    if (c == ',') {
      if (at_start) return errc::protocol_error;  // empty name
      at_start = true;
      continue;
    }
    if (uc <= 0x20 || uc >= 0x7f) return errc::protocol_error;
    at_start = false;
  }
  if (!list.empty() && at_start) return errc::protocol_error;  // trailing comma
  return list;
}

Result<ByteSpan> Reader::mpint_unsigned() noexcept {
  auto s = string();
  if (!s) return s.error();
  ByteSpan v = *s;
  if (v.empty()) return v;
  if (v[0] & 0x80) return errc::protocol_error;                     // negative
  if (v[0] == 0 && (v.size() == 1 || !(v[1] & 0x80))) return errc::protocol_error;  // not minimal
  return v;
}

ByteSpan Reader::rest() noexcept {
  ByteSpan v = data_.subspan(pos_);
  pos_ = data_.size();
  return v;
}

Result<void> Reader::expect_end() const noexcept {
  if (remaining() != 0) return errc::trailing_bytes;
  return {};
}

Writer& Writer::u8(std::uint8_t v) {
  out_->push_back(v);
  return *this;
}

Writer& Writer::u32(std::uint32_t v) {
  std::size_t at = out_->size();
  out_->resize(at + 4);
  store_be32(out_->data() + at, v);
  return *this;
}

Writer& Writer::u64(std::uint64_t v) {
  std::size_t at = out_->size();
  out_->resize(at + 8);
  store_be64(out_->data() + at, v);
  return *this;
}

Writer& Writer::raw(ByteSpan s) {
  out_->insert(out_->end(), s.begin(), s.end());
  return *this;
}

Writer& Writer::string(ByteSpan s) {
  u32(static_cast<std::uint32_t>(s.size()));
  return raw(s);
}

Writer& Writer::mpint_unsigned(ByteSpan magnitude) {
  std::size_t skip = 0;
  while (skip < magnitude.size() && magnitude[skip] == 0) ++skip;
  ByteSpan m = magnitude.subspan(skip);
  bool pad = !m.empty() && (m[0] & 0x80);
  u32(static_cast<std::uint32_t>(m.size() + (pad ? 1 : 0)));
  if (pad) u8(0);
  return raw(m);
}

bool name_list_contains(std::string_view list, std::string_view name) noexcept {
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    if (item == name) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace vtunnel::ssh
