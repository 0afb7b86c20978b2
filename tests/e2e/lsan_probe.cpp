// Sanitizer builds only: a process that leaks on purpose, for the e2e suite to prove that
// LeakSanitizer runs in the processes the harness starts and that the harness fails a scenario
// on its report. Prints "ready", waits for SIGTERM, exits 0 (LeakSanitizer then reports).
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace {
volatile std::sig_atomic_t stop_requested = 0;

extern "C" void on_term(int) { stop_requested = 1; }

__attribute__((noinline)) void leak() {
  for (int i = 0; i < 4; ++i) {
    void* volatile p = std::malloc(4000 + std::size_t(i));
    (void)p;
  }
}
}  // namespace

int main() {
  std::signal(SIGTERM, on_term);
  leak();
  std::puts("ready");
  std::fflush(stdout);
  while (!stop_requested) ::pause();
  return 0;
}
