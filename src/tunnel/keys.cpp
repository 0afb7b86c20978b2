#include "tunnel/keys.hpp"

#include <botan/auto_rng.h>
#include <botan/ed25519.h>
#include <botan/hash.h>
#include <botan/mem_ops.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "tunnel/errc.hpp"

namespace vtunnel {
namespace {
constexpr std::string_view kPrivPrefix = "vt-priv-";
constexpr std::string_view kPubPrefix = "vt-pub-";
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

Result<std::array<std::uint8_t, 32>> decode_key(std::string_view text, std::string_view prefix, tunnel_errc prefix_error) {
  if (text.substr(0, prefix.size()) != prefix) return prefix_error;
  auto raw = base64_decode_unpadded(text.substr(prefix.size()));
  if (!raw) return raw.error();
  if (raw->size() != 32) {
    Botan::secure_scrub_memory(raw->data(), raw->size());
    return tunnel_errc::bad_key_length;
  }
  std::array<std::uint8_t, 32> out;
  std::copy(raw->begin(), raw->end(), out.begin());
  Botan::secure_scrub_memory(raw->data(), raw->size());
  return out;
}
}  // namespace

PrivateKey::~PrivateKey() { Botan::secure_scrub_memory(seed_.data(), seed_.size()); }

PublicKey PrivateKey::public_key() const {
  Botan::secure_vector<std::uint8_t> seed(seed_.begin(), seed_.end());
  Botan::Ed25519_PrivateKey key(seed);
  PublicKey pub;
  const auto& p = key.get_public_key();
  std::copy(p.begin(), p.end(), pub.bytes.begin());
  return pub;
}

PrivateKey generate_private_key() {
  Botan::AutoSeeded_RNG rng;
  std::array<std::uint8_t, 32> seed;
  rng.randomize(seed.data(), seed.size());
  PrivateKey k(seed);
  Botan::secure_scrub_memory(seed.data(), seed.size());
  return k;
}

Result<PrivateKey> parse_private_key(std::string_view text) {
  auto seed = decode_key(text, kPrivPrefix, tunnel_errc::bad_private_key_prefix);
  if (!seed) return seed.error();
  PrivateKey k(*seed);
  Botan::secure_scrub_memory(seed->data(), seed->size());
  return k;
}

Result<PublicKey> parse_public_key(std::string_view text) {
  auto bytes = decode_key(text, kPubPrefix, tunnel_errc::bad_public_key_prefix);
  if (!bytes) return bytes.error();
  return PublicKey{*bytes};
}

std::string format_private_key(const PrivateKey& key) {
  return std::string(kPrivPrefix) + base64_encode_unpadded(key.seed());
}

std::string format_public_key(const PublicKey& key) {
  return std::string(kPubPrefix) + base64_encode_unpadded(key.bytes);
}

Bytes ssh_ed25519_blob(const PublicKey& key) {
  constexpr std::string_view kName = "ssh-ed25519";
  Bytes out(4 + kName.size() + 4 + key.bytes.size());
  store_be32(out.data(), std::uint32_t(kName.size()));
  std::copy(kName.begin(), kName.end(), out.begin() + 4);
  store_be32(out.data() + 4 + kName.size(), std::uint32_t(key.bytes.size()));
  std::copy(key.bytes.begin(), key.bytes.end(), out.begin() + 8 + long(kName.size()));
  return out;
}

PrivateKey derive_host_key(const PublicKey& client_key) {
  auto sha = Botan::HashFunction::create_or_throw("SHA-256");
  Bytes blob = ssh_ed25519_blob(client_key);
  sha->update(blob.data(), blob.size());
  auto digest = sha->final();
  std::array<std::uint8_t, 32> seed;
  std::copy(digest.begin(), digest.end(), seed.begin());
  PrivateKey k(seed);
  Botan::secure_scrub_memory(seed.data(), seed.size());
  return k;
}

std::string fingerprint_sha256(ByteSpan ssh_blob) {
  auto sha = Botan::HashFunction::create_or_throw("SHA-256");
  sha->update(ssh_blob.data(), ssh_blob.size());
  auto digest = sha->final();
  return "SHA256:" + base64_encode_unpadded(ByteSpan(digest.data(), digest.size()));
}

std::string host_key_fingerprint(const PublicKey& key) { return fingerprint_sha256(ssh_ed25519_blob(key)); }

Result<PrivateKey> read_private_key_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return std::error_code(errno, std::system_category());
  struct ::stat st {};
  if (::fstat(fd, &st) != 0) {
    std::error_code ec(errno, std::system_category());
    ::close(fd);
    return ec;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return tunnel_errc::key_file_format;
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    ::close(fd);
    return tunnel_errc::key_file_permissions;
  }
  // A key is ~51 characters; anything much longer is not a key file.
  std::array<char, 512> buf{};
  std::size_t used = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data() + used, buf.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::error_code ec(errno, std::system_category());
      ::close(fd);
      Botan::secure_scrub_memory(buf.data(), buf.size());
      return ec;
    }
    if (n == 0) break;
    used += std::size_t(n);
    if (used == buf.size()) break;
  }
  ::close(fd);
  std::string_view text(buf.data(), used);
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  Result<PrivateKey> key = tunnel_errc::key_file_format;
  if (used < buf.size() && !text.empty() && text.substr(0, kPrivPrefix.size()) == kPrivPrefix) {
    key = parse_private_key(text);
  }
  Botan::secure_scrub_memory(buf.data(), buf.size());
  return key;
}

std::string base64_encode_unpadded(ByteSpan data) {
  std::string out;
  out.reserve((data.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    std::uint32_t v = (std::uint32_t(data[i]) << 16) | (std::uint32_t(data[i + 1]) << 8) | data[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  std::size_t rest = data.size() - i;
  if (rest == 1) {
    std::uint32_t v = std::uint32_t(data[i]) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    std::uint32_t v = (std::uint32_t(data[i]) << 16) | (std::uint32_t(data[i + 1]) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

Result<Bytes> base64_decode_unpadded(std::string_view text) {
  if (text.size() % 4 == 1) return tunnel_errc::bad_key_encoding;
  Bytes out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = base64_value(c);
    if (v < 0) return tunnel_errc::bad_key_encoding;
    acc = (acc << 6) | std::uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(std::uint8_t(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  return out;
}

}  // namespace vtunnel
