// Pre-authentication attack surface of our server: identification line, packet framing,
// KEXINIT parsing and negotiation, the client's key share. Input: raw bytes from a client.
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
  Config c;
  c.role = Role::server;
  c.host_key = host_key();
  c.authorized_client_key = host_key()->public_blob();
  Connection server(c);
  // Half the inputs get a valid identification line, so the fuzzer reaches the packet layer.
  ByteSpan in(data, size);
  if (size > 0 && (data[0] & 1)) server.feed(as_bytes("SSH-2.0-fuzz\r\n"));
  std::size_t at = 0;
  while (!server.closed()) {
    std::size_t n = server.feed(in.subspan(at, std::min<std::size_t>(in.size() - at, 997)));
    at += n;
    while (server.poll()) {
    }
    if (n == 0 || at == in.size()) break;
  }
  while (server.poll()) {
  }
  return 0;
}
