#pragma once
// Child processes for e2e tests: run one to completion with a deadline, or keep one running
// in the background (a server that prints "PORT n" when ready). Only the pids started here are
// ever signalled.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace vtunnel::test {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
};

namespace detail {
// The current environment without proxy settings (they would redirect our clients), plus `extra`.
inline std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string s = *e;
    std::string name = s.substr(0, s.find('='));
    std::string lower;
    for (char c : name) lower.push_back(char(std::tolower(static_cast<unsigned char>(c))));
    if (lower == "http_proxy" || lower == "https_proxy" || lower == "all_proxy" || lower == "no_proxy") continue;
    env.push_back(s);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

inline pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env, int out_fd,
                   int err_fd, const std::vector<int>& close_fds) {
  std::vector<std::string> env = child_environment(extra_env);
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  for (int fd : close_fds) posix_spawn_file_actions_addclose(&fa, fd);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawnp " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

// Reads from the fds until both reach EOF or the deadline passes; false on timeout.
inline bool drain(int out_fd, int err_fd, std::string& out, std::string& err,
                  std::chrono::steady_clock::time_point deadline) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open = 2;
  char buf[65536];
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    int r = ::poll(fds, 2, int(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        fds[i].fd = -1;
        --open;
      } else {
        (i == 0 ? out : err).append(buf, std::size_t(n));
      }
    }
  }
  return true;
}
}  // namespace detail

inline ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                 const std::vector<std::string>& extra_env = {}) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_t pid = detail::spawn(argv, extra_env, out_pipe[1], err_pipe[1], {});
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProcessResult r;
  bool finished = detail::drain(out_pipe[0], err_pipe[0], r.out, r.err, std::chrono::steady_clock::now() + timeout);
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  if (!finished) {
    r.timed_out = true;
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!r.timed_out && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

// A server process that prints "PORT <n>" on its first stdout line when ready.
class BackgroundServer {
 public:
  BackgroundServer(const std::vector<std::string>& argv, std::chrono::milliseconds ready_timeout) {
    int out_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    pid_ = detail::spawn(argv, {}, out_pipe[1], 2, {});
    ::close(out_pipe[1]);
    out_fd_ = out_pipe[0];
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + ready_timeout;
    char c;
    while (line.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{out_fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, int(left.count())) <= 0) break;
      if (::read(out_fd_, &c, 1) != 1) break;
      line.push_back(c);
    }
    if (line.rfind("PORT ", 0) == 0) port_ = std::stoi(line.substr(5));
  }
  BackgroundServer(const BackgroundServer&) = delete;
  BackgroundServer& operator=(const BackgroundServer&) = delete;
  ~BackgroundServer() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_fd_);
  }
  int port() const noexcept { return port_; }  // 0 if it never became ready

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
};

}  // namespace vtunnel::test
