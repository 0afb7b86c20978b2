// Pre-authentication attack surface of our server: identification line, packet framing,
// KEXINIT parsing and negotiation, the client's key share (past that, packets are encrypted
// with fresh keys: fuzz_ssh_messages covers them). Input: control byte, then raw client bytes.
#include <cstdint>
#include <memory>

#include "ssh/connection.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;

namespace {
const std::shared_ptr<const SigningKey>& host_key() {
  static const auto key =
      std::make_shared<const SigningKey>(std::move(*SigningKey::ed25519_from_seed(Bytes(32, 9))));
  return key;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  Config c;
  c.role = Role::server;
  c.host_key = host_key();
  c.authorized_client_key = host_key()->public_blob();
  Connection server(c);
  ByteSpan in(data + 1, size - 1);
  // Bit 0: a valid identification line first, so the fuzzer reaches the packet layer.
  if (data[0] & 1) server.feed(as_bytes("SSH-2.0-fuzz\r\n"));
  const std::size_t chunk = 1 + (data[0] >> 2) * 61;
  std::size_t at = 0;
  while (!server.closed()) {
    std::size_t n = server.feed(in.subspan(at, std::min<std::size_t>(in.size() - at, chunk)));
    at += n;
    while (server.poll()) {
    }
    if (server.has_output()) server.recycle(server.take_output().storage);
    if (n == 0 || at == in.size()) break;
  }
  while (server.poll()) {
  }
  return 0;
}
