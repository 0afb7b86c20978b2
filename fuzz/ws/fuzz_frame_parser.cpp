// libFuzzer target: the frame parser and Connection, both roles, input split where the
// fuzzer says. Checks the parser's own contract (consumed <= input, need_more consumes all).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ws/connection.hpp"
#include "ws/frame_parser.hpp"

using namespace vtunnel;
using namespace vtunnel::ws;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void run_parser(Role role, std::uint64_t limit, std::size_t chunk, const std::uint8_t* data, std::size_t size) {
  FrameParser parser(role, ParserLimits{limit});
  Bytes copy(data, data + size);
  for (std::size_t pos = 0; pos < size; pos += chunk) {
    MutableByteSpan input(copy.data() + pos, std::min(chunk, size - pos));
    while (true) {
      const ParseStep step = parser.parse(input);
      check(step.consumed <= input.size());
      input = input.subspan(step.consumed);
      if (step.kind == ParseStep::Kind::need_more) {
        check(input.empty());
        break;
      }
      if (step.kind == ParseStep::Kind::error) return;
      if (step.kind == ParseStep::Kind::data) check(step.payload.size() == step.consumed);
      if (step.kind == ParseStep::Kind::control) check(step.control_payload.size() <= kMaxControlPayload);
    }
  }
}

void run_connection(Role role, std::size_t chunk, const std::uint8_t* data, std::size_t size) {
  Connection conn(role, ParserLimits{1 << 16});
  Bytes copy(data, data + size);
  for (std::size_t pos = 0; pos < size; pos += chunk) {
    MutableByteSpan input(copy.data() + pos, std::min(chunk, size - pos));
    while (true) {
      const ReadStep step = conn.read(input);
      check(step.consumed <= input.size());
      input = input.subspan(step.consumed);
      if (step.kind != ReadStep::Kind::data) break;
    }
    conn.consume_output(conn.pending_output().size() / 2);
    if (conn.state() == Connection::State::closed) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t chunk = 1 + data[0] % 32;
  const Role role = (data[1] & 1) ? Role::server : Role::client;
  const std::uint64_t limit = (data[1] & 2) ? 300 : kDefaultMaxMessageSize;
  run_parser(role, limit, chunk, data + 2, size - 2);
  run_connection(role, chunk, data + 2, size - 2);
  return 0;
}
