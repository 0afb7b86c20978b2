// libFuzzer target: the proxy's request head parser and, on what follows a complete head, the
// chunked-body scanner. Neither may crash, hang or consume more than it was given.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "proxy/chunked_body.hpp"
#include "proxy/request_head.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vtunnel;
  using namespace vtunnel::proxy;
  ByteSpan in(data, size);
  HeadParse p = parse_request_head(in);
  if (p.status == HeadParse::Status::complete) {
    if (p.request.head_size > size) std::abort();
    ChunkedBodyScanner scanner;
    ByteSpan rest = in.subspan(p.request.head_size);
    // Feed in two pieces to exercise the resumable state.
    std::size_t half = rest.size() / 2;
    auto a = scanner.scan(rest.first(half));
    if (a.ok() && *a > half) std::abort();
    if (a.ok() && !scanner.done()) {
      auto b = scanner.scan(rest.subspan(half));
      if (b.ok() && *b > rest.size() - half) std::abort();
    }
  }
  return 0;
}
