#pragma once
// Counts this process's open file descriptors, so tests can show they leak none.
#include <dirent.h>
#include <sys/resource.h>

namespace vtunnel::test {

inline int open_fd_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
  }
  return n;
}

// Raises the soft descriptor limit to the hard one (tests open thousands of sockets).
inline void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace vtunnel::test
