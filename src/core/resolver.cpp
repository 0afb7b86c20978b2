#include "core/resolver.hpp"

#include <netdb.h>

#include <charconv>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "core/error.hpp"
#include "core/loop.hpp"
#include "core/stop.hpp"

namespace vtunnel {
namespace {

// A tiny process-wide pool: getaddrinfo blocks, so it never runs on a loop thread.
class WorkerPool {
 public:
  static WorkerPool& instance() {
    static WorkerPool pool(2);
    return pool;
  }
  void submit(std::function<void()> job) {
    {
      std::lock_guard lock(m_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }
  ~WorkerPool() {
    {
      std::lock_guard lock(m_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  explicit WorkerPool(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
  }
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(m_);
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

// Shared between the awaiting coroutine and the worker: the worker may finish after the
// waiter was cancelled and gone.
struct ResolveState {
  std::vector<SocketAddress> addresses;
  int gai_error = 0;
  bool done = false;
  std::coroutine_handle<> waiter;
  bool cancelled = false;
};

class ResolveAwaiter final : public Cancellable {
 public:
  ResolveAwaiter(std::string host, std::uint16_t port) : host_(std::move(host)), port_(port) {}
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    stop_ = detail::stop_state_of(h);
    if (stop_ && stop_->stop_requested()) {
      state_->cancelled = true;
      return false;
    }
    state_->waiter = h;
    Loop* loop = &Loop::current();
    auto poster = loop->poster();
    WorkerPool::instance().submit([state = state_, host = host_, port = port_, poster] {
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_ADDRCONFIG;
      addrinfo* res = nullptr;
      std::string service = std::to_string(port);
      int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
      std::vector<SocketAddress> out;
      if (rc == 0) {
        for (addrinfo* ai = res; ai; ai = ai->ai_next) out.emplace_back(ai->ai_addr, ai->ai_addrlen);
        ::freeaddrinfo(res);
      }
      poster->post([state, out = std::move(out), rc]() mutable {
        state->addresses = std::move(out);
        state->gai_error = rc;
        state->done = true;
        if (!state->cancelled && state->waiter) Loop::current().schedule(state->waiter);
      });
    });
    if (stop_) stop_->set_current(this);
    return true;
  }
  void cancel() noexcept override {
    if (state_->done) return;  // the answer already scheduled the waiter
    state_->cancelled = true;
    Loop::current().schedule(state_->waiter);
  }
  std::shared_ptr<ResolveState> await_resume() noexcept {
    if (stop_) stop_->clear_current(this);
    return state_;
  }

 private:
  std::string host_;
  std::uint16_t port_;
  StopState* stop_ = nullptr;
  std::shared_ptr<ResolveState> state_ = std::make_shared<ResolveState>();
};

}  // namespace

bool split_host_port(std::string_view hp, std::string& host, std::uint16_t& port) {
  std::string_view h, p;
  if (!hp.empty() && hp.front() == '[') {
    auto close = hp.find(']');
    if (close == std::string_view::npos || close + 1 >= hp.size() || hp[close + 1] != ':') return false;
    h = hp.substr(1, close - 1);
    p = hp.substr(close + 2);
  } else {
    auto colon = hp.rfind(':');
    if (colon == std::string_view::npos) return false;
    h = hp.substr(0, colon);
    p = hp.substr(colon + 1);
    if (h.find(':') != std::string_view::npos) return false;  // bare IPv6 needs brackets
  }
  if (p.empty() || p.size() > 5) return false;
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec != std::errc() || ptr != p.data() + p.size() || v == 0 || v > 65535) return false;
  host.assign(h);
  port = std::uint16_t(v);
  return true;
}

Task<Result<std::vector<SocketAddress>>> resolve(std::string host, std::uint16_t port) {
  if (auto numeric = SocketAddress::parse(host, port)) co_return std::vector<SocketAddress>{*numeric};
  if (host == "localhost") {
    co_return std::vector<SocketAddress>{SocketAddress::loopback_v4(port), *SocketAddress::parse("::1", port)};
  }
  if (host.empty()) co_return errc::resolve_failed;
  auto state = co_await ResolveAwaiter(host, port);
  if (state->cancelled && !state->done) co_return errc::cancelled;
  if (state->gai_error != 0 || state->addresses.empty()) co_return errc::resolve_failed;
  co_return std::move(state->addresses);
}

Task<Result<TcpStream>> connect_host(std::string host, std::uint16_t port, ConnectOptions options) {
  auto addrs = co_await resolve(host, port);
  if (!addrs) co_return addrs.error();
  std::error_code last = errc::resolve_failed;
  for (const auto& a : *addrs) {
    auto s = co_await TcpStream::connect(a, options);
    if (s) co_return std::move(*s);
    last = s.error();
    if (last == errc::cancelled) break;
  }
  co_return last;
}

}  // namespace vtunnel
