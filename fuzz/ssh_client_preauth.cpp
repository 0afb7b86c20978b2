// Pre-authentication attack surface of our client (a hostile or impersonating server):
// identification line and banner lines, packet framing, the server's KEXINIT, its key-exchange
// reply (host key blob, key share, signature) and whatever follows. Input: raw bytes from a
// server, fed in pieces of a size the first byte chooses.
#include <cstdint>
#include <memory>

#include "ssh/connection.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;

namespace {
const std::shared_ptr<const SigningKey>& client_key() {
  static const auto key =
      std::make_shared<const SigningKey>(std::move(*SigningKey::ed25519_from_seed(Bytes(32, 7))));
  return key;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  Config c;
  c.role = Role::client;
  c.client_key = client_key();
  // Bit 1: accept any host key, so signed replies (none will verify) reach the signature check.
  c.verify_host_key = (data[0] & 2) ? accept_any_host_key() : accept_only_host_key(client_key()->public_blob());
  Connection client(c);
  ByteSpan in(data + 1, size - 1);
  // Bit 0: a valid identification line first, so the fuzzer reaches the packet layer.
  if (data[0] & 1) client.feed(as_bytes("SSH-2.0-fuzz\r\n"));
  const std::size_t chunk = 1 + (data[0] >> 2) * 61;
  std::size_t at = 0;
  while (!client.closed()) {
    std::size_t n = client.feed(in.subspan(at, std::min<std::size_t>(in.size() - at, chunk)));
    at += n;
    while (client.poll()) {
    }
    if (client.has_output()) client.recycle(client.take_output().storage);
    if (n == 0 || at == in.size()) break;
  }
  while (client.poll()) {
  }
  return 0;
}
