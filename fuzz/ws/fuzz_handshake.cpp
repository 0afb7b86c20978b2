// libFuzzer target: both handshake parsers and the URL parser, input split where the fuzzer
// says. Checks that the bytes reported consumed never exceed the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ws/client_handshake.hpp"
#include "ws/server_handshake.hpp"
#include "ws/url.hpp"

using namespace vtunnel;
using namespace vtunnel::ws;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  const ByteSpan input(data + 1, size - 1);

  ServerHandshake server(HandshakeLimits{1024});
  for (std::size_t pos = 0; pos < input.size(); pos += chunk) {
    const ByteSpan piece = input.subspan(pos, std::min(chunk, input.size() - pos));
    const auto step = server.feed(piece);
    check(step.consumed <= piece.size());
    if (step.outcome != ServerHandshake::Outcome::need_more) {
      check(!server.response().empty());
      break;
    }
  }

  std::array<std::uint8_t, kClientKeyBytes> key{};
  auto client = ClientHandshake::create({"h", "/", {}}, key, HandshakeLimits{1024});
  check(client.ok());
  for (std::size_t pos = 0; pos < input.size(); pos += chunk) {
    const ByteSpan piece = input.subspan(pos, std::min(chunk, input.size() - pos));
    const auto step = client->feed(piece);
    check(step.consumed <= piece.size());
    if (step.outcome != ClientHandshake::Outcome::need_more) break;
  }

  (void)parse_ws_url(as_string(input));
  return 0;
}
