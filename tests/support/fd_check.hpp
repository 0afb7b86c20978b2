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

#include <unistd.h>

#include <string>

namespace vtunnel::test {
// "fd -> target" lines, for a failure message that says what leaked.
inline std::string describe_fds() {
  std::string out;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char target[256] = {};
      std::string path = std::string("/proc/self/fd/") + e->d_name;
      ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
      out += std::string(e->d_name) + " -> " + (n > 0 ? std::string(target, std::size_t(n)) : "?") + "\n";
    }
    ::closedir(d);
  }
  return out;
}
}  // namespace vtunnel::test
