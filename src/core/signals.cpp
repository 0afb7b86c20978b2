#include "core/signals.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "core/io_error.hpp"
#include "core/op.hpp"

namespace vtunnel {
namespace {
sigset_t make_set(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  return set;
}
}  // namespace

void SignalSet::block(std::initializer_list<int> signals) {
  sigset_t set = make_set(signals);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SignalSet::SignalSet(std::initializer_list<int> signals) {
  block(signals);
  sigset_t set = make_set(signals);
  fd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd_ < 0) throw std::system_error(errno, std::system_category(), "signalfd");
}

SignalSet::~SignalSet() {
  if (fd_ >= 0) ::close(fd_);
}

Task<Result<int>> SignalSet::wait() {
  signalfd_siginfo info{};
  int res = co_await io_op([fd = fd_, &info](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, &info, sizeof info, 0); });
  if (res < 0) co_return io_error(res);
  if (res != int(sizeof info)) co_return from_errno(-EIO);
  co_return int(info.ssi_signo);
}

}  // namespace vtunnel
