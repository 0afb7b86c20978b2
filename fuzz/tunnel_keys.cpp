// vt-priv-/vt-pub- key text (flags, environment, files) and the strict unpadded base64 under
// it. A key that parses must format to text that parses to the same key. (Not necessarily the
// same text: like Go's base64.RawStdEncoding, unused trailing bits of the last character are
// ignored, so a key has up to 4 spellings; formatting gives the canonical one.)
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tunnel/keys.hpp"

using namespace vtunnel;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto pub = parse_public_key(text)) {
    auto again = parse_public_key(format_public_key(*pub));
    check(again && *again == *pub);
  }
  if (auto priv = parse_private_key(text)) {
    auto again = parse_private_key(format_private_key(*priv));
    check(again && again->seed() == priv->seed());
    (void)priv->public_key();
  }
  if (auto raw = base64_decode_unpadded(text)) {
    check(raw->size() == text.size() * 3 / 4);
    auto again = base64_decode_unpadded(base64_encode_unpadded(*raw));
    check(again && *again == *raw);
  }
  return 0;
}
