// Built by tests/install/run.sh with nothing but `pkg-config --cflags --libs vtunnel` against an
// installed copy: keys (Botan), the io_uring loop (liburing), a timer and log formatting (fmt).
#include <cstdio>

#include "core/log.hpp"
#include "core/loop.hpp"
#include "core/timer.hpp"
#include "tunnel/keys.hpp"

using namespace vtunnel;

Task<int> check() {
  PrivateKey key = generate_private_key();
  std::string pub = format_public_key(key.public_key());
  auto parsed = parse_public_key(pub);
  if (!parsed || format_public_key(*parsed) != pub) co_return 1;
  auto slept = co_await sleep_for(std::chrono::milliseconds(1));
  if (!slept) co_return 1;
  std::printf("pkg-config build: %s\n", pub.substr(0, 7).c_str());
  co_return 0;
}

int main() {
  Loop loop;
  return sync_wait(loop, check());
}
