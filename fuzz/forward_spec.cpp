// The client's -forward spec (remotePort=host:port or remotePort=tls://host:port), from the
// command line or VTUNNEL_FORWARD. A spec that parses must have a port and a host.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tunnel/messages.hpp"

using namespace vtunnel;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view spec(reinterpret_cast<const char*>(data), size);
  auto f = parse_forward(spec);
  if (f && (f->remote_port == 0 || f->host.empty() || f->local_addr.empty())) std::abort();
  return 0;
}
