#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <cstdint>
#include <thread>

#include "core/frame_pool.hpp"
#include "core/loop.hpp"
#include "core/scope.hpp"
#include "core/sync.hpp"
#include "core/timer.hpp"
#include "support/fd_check.hpp"

using namespace vtunnel;
using namespace std::chrono_literals;

namespace {
Task<int> add(int a, int b) { co_return a + b; }

Task<int> deep(int n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await deep(n - 1);
}

Task<int> thrower() {
  throw std::runtime_error("boom");
  co_return 0;
}

Task<std::string> catches() {
  try {
    co_await thrower();
  } catch (const std::runtime_error& e) {
    co_return std::string("caught ") + e.what();
  }
  co_return "not caught";
}

// Counts live frames so the tests can show none leak.
struct Counted {
  static inline int live = 0;
  Counted() { ++live; }
  ~Counted() { --live; }
};

Task<void> counted_sleep(Duration d, int& finished) {
  Counted c;
  auto r = co_await sleep_for(d);
  if (r) ++finished;
}
}  // namespace

TEST_CASE("Task: values, nesting, exceptions", "[core]") {
  int fds = test::open_fd_count();
  {
    Loop loop;
    REQUIRE(sync_wait(loop, add(2, 3)) == 5);
    // Nested awaits (symmetric transfer; optimised builds turn it into tail calls).
    REQUIRE(sync_wait(loop, deep(1000)) == 1000);
    REQUIRE(sync_wait(loop, catches()) == "caught boom");
    REQUIRE_THROWS_AS(sync_wait(loop, thrower()), std::runtime_error);
  }
  REQUIRE(test::open_fd_count() == fds);
}

TEST_CASE("Task is lazy and an unawaited task frees its frame", "[core]") {
  int started = 0;
  {
    auto t = [](int& s) -> Task<void> {
      ++s;
      co_return;
    }(started);
    REQUIRE(started == 0);
  }
  REQUIRE(started == 0);
}

TEST_CASE("sleep_for waits at least the given time", "[core]") {
  Loop loop;
  auto start = Clock::now();
  auto r = sync_wait(loop, []() -> Task<Result<void>> { co_return co_await sleep_for(20ms); }());
  REQUIRE(r.ok());
  REQUIRE(Clock::now() - start >= 20ms);
}

TEST_CASE("timers fire in deadline order", "[core]") {
  Loop loop;
  std::vector<int> order;
  auto body = [](std::vector<int>& out) -> Task<void> {
    Scope scope;
    for (int i : {5, 1, 4, 2, 3}) {
      scope.spawn([](int n, std::vector<int>& o) -> Task<void> {
        (void)co_await sleep_for(std::chrono::milliseconds(n * 5));
        o.push_back(n);
      }(i, out));
    }
    co_await scope.join();
  };
  sync_wait(loop, body(order));
  REQUIRE(order == std::vector<int>{1, 2, 3, 4, 5});
}

TEST_CASE("with_timeout cancels the inner task and reports timed_out", "[core]") {
  Loop loop;
  auto slow = []() -> Task<Result<int>> {
    auto r = co_await sleep_for(10s);
    if (!r) co_return r.error();
    co_return 1;
  };
  auto start = Clock::now();
  auto r = sync_wait(loop, with_timeout(slow(), 30ms));
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.error() == errc::timed_out);
  REQUIRE(Clock::now() - start < 5s);

  auto fast = []() -> Task<Result<int>> { co_return 7; };
  auto ok = sync_wait(loop, with_timeout(fast(), 1s));
  REQUIRE(ok.ok());
  REQUIRE(*ok == 7);
}

TEST_CASE("Scope: cancel ends every child, join waits for all, no frame leaks", "[core]") {
  Loop loop;
  int finished = 0;
  auto body = [](int& fin) -> Task<void> {
    Scope scope;
    for (int i = 0; i < 100; ++i) scope.spawn(counted_sleep(10s, fin));
    for (int i = 0; i < 10; ++i) scope.spawn(counted_sleep(1ms, fin));
    (void)co_await sleep_for(50ms);  // the short ones finish
    REQUIRE(scope.size() == 100);
    REQUIRE(Counted::live == 100);
    scope.cancel();
    co_await scope.join();
    REQUIRE(scope.size() == 0);
  };
  auto start = Clock::now();
  sync_wait(loop, body(finished));
  REQUIRE(finished == 10);
  REQUIRE(Counted::live == 0);
  REQUIRE(Clock::now() - start < 5s);
}

TEST_CASE("Scope: a child's exception is rethrown by join; others carry on", "[core]") {
  Loop loop;
  int done = 0;
  auto body = [](int& d) -> Task<void> {
    Scope scope;
    scope.spawn([]() -> Task<void> {
      throw std::runtime_error("child failed");
      co_return;
    }());
    scope.spawn([](int& x) -> Task<void> {
      (void)co_await sleep_for(5ms);
      ++x;
    }(d));
    co_await scope.join();
  };
  REQUIRE_THROWS_WITH(sync_wait(loop, body(done)), "child failed");
  REQUIRE(done == 1);
}

TEST_CASE("cancelling the task that joins a scope cancels its children", "[core]") {
  Loop loop;
  int finished = 0;
  auto inner = [](int& fin) -> Task<Result<int>> {
    Scope scope;
    for (int i = 0; i < 5; ++i) scope.spawn(counted_sleep(10s, fin));
    co_await scope.join();
    co_return 0;
  };
  auto r = sync_wait(loop, with_timeout(inner(finished), 20ms));
  REQUIRE(r.ok());  // join itself does not fail; the children were cancelled
  REQUIRE(finished == 0);
  REQUIRE(Counted::live == 0);
}

TEST_CASE("Event, Mutex and Channel", "[core]") {
  Loop loop;
  SECTION("event wakes every waiter") {
    auto body = []() -> Task<int> {
      Event ev;
      int woken = 0;
      Scope scope;
      for (int i = 0; i < 3; ++i) {
        scope.spawn([](Event& e, int& w) -> Task<void> {
          auto r = co_await e.wait();
          if (r) ++w;
        }(ev, woken));
      }
      (void)co_await sleep_for(1ms);
      REQUIRE(woken == 0);
      ev.set();
      co_await scope.join();
      co_return woken;
    };
    REQUIRE(sync_wait(loop, body()) == 3);
  }
  SECTION("mutex serialises critical sections") {
    auto body = []() -> Task<std::vector<int>> {
      Mutex m;
      std::vector<int> trace;
      Scope scope;
      for (int i = 0; i < 3; ++i) {
        scope.spawn([](Mutex& mu, std::vector<int>& t, int id) -> Task<void> {
          auto g = co_await mu.lock();
          REQUIRE(g.ok());
          t.push_back(id);
          (void)co_await sleep_for(2ms);
          t.push_back(id);
        }(m, trace, i));
      }
      co_await scope.join();
      REQUIRE_FALSE(m.locked());
      co_return trace;
    };
    auto t = sync_wait(loop, body());
    REQUIRE(t.size() == 6);
    for (std::size_t i = 0; i < 6; i += 2) REQUIRE(t[i] == t[i + 1]);
  }
  SECTION("bounded channel applies back-pressure and drains after close") {
    auto body = []() -> Task<std::vector<int>> {
      Channel<int> ch(2);
      std::vector<int> got;
      int sent = 0;
      Scope scope;
      scope.spawn([](Channel<int>& c, int& s) -> Task<void> {
        for (int i = 0; i < 10; ++i) {
          auto r1_ = co_await c.send(i);
          REQUIRE(r1_.ok());
          ++s;
        }
        c.close();
      }(ch, sent));
      (void)co_await sleep_for(2ms);
      REQUIRE(sent == 2);  // capacity reached, sender waits
      for (;;) {
        auto v = co_await ch.recv();
        if (!v) {
          REQUIRE(v.error() == errc::closed);
          break;
        }
        got.push_back(*v);
      }
      co_await scope.join();
      co_return got;
    };
    auto got = sync_wait(loop, body());
    REQUIRE(got == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  }
  SECTION("a wait is cancellable") {
    auto body = []() -> Task<Result<void>> {
      Event never;
      co_return co_await with_timeout(never.wait(), 10ms);
    };
    auto r = sync_wait(loop, body());
    REQUIRE(r.error() == errc::timed_out);
  }
}

TEST_CASE("post() from another thread runs on the loop", "[core]") {
  Loop loop;
  auto body = [](Loop& l) -> Task<int> {
    Event ev;
    int value = 0;
    std::thread t([&] { l.post([&] { value = 42; ev.set(); }); });
    (void)co_await ev.wait();
    t.join();
    co_return value;
  };
  REQUIRE(sync_wait(loop, body(loop)) == 42);
}

namespace {
Task<int> big_frame(int x) {
  volatile unsigned char scratch[4096];  // a frame above the pool's largest class
  scratch[0] = static_cast<unsigned char>(x);
  scratch[4095] = static_cast<unsigned char>(x);
  (void)co_await sleep_for(Duration::zero());
  co_return scratch[0] + scratch[4095];
}
}  // namespace

TEST_CASE("coroutine frames are recycled on their thread", "[core]") {
  Loop loop;
  REQUIRE(sync_wait(loop, deep(100)) == 100);  // fills the cache
  const auto before = detail::frame_pool_stats();
  REQUIRE(sync_wait(loop, deep(100)) == 100);
  const auto after = detail::frame_pool_stats();
  if (detail::frame_pool_enabled()) {
    // The second run's 101 frames all come from the first run's.
    CHECK(after.reused - before.reused >= 101);
    CHECK(after.cached * 64 <= 2 * 1024 * 1024);
  } else {
    CHECK(after.reused == 0);  // sanitizer builds: every frame is a fresh allocation
  }
  // Frames larger than the largest class and reused frames of other sizes still work.
  REQUIRE(sync_wait(loop, big_frame(3)) == 6);
  REQUIRE(sync_wait(loop, add(20, 22)) == 42);
  // Frames freed on another thread go to that thread's cache and are freed when it exits.
  std::thread([] {
    Loop other;
    REQUIRE(sync_wait(other, deep(10)) == 10);
  }).join();
}

TEST_CASE("coroutines woken during a turn run in that turn", "[core]") {
  Loop loop;
  auto body = [&loop]() -> Task<std::uint64_t> {
    // A chain of wakeups: each waiter sets the next event (relay -> write pump -> ...).
    Event events[4];
    int reached = 0;
    Scope scope;
    for (int i = 0; i < 3; ++i) {
      scope.spawn([](Event& mine, Event& next, int& r) -> Task<void> {
        auto w = co_await mine.wait();
        if (w) {
          ++r;
          next.set();
        }
      }(events[i], events[i + 1], reached));
    }
    (void)co_await sleep_for(1ms);  // every waiter is parked
    REQUIRE(reached == 0);
    const std::uint64_t start = loop.turns();
    events[0].set();
    auto last = co_await events[3].wait();
    REQUIRE(last);
    const std::uint64_t turns = loop.turns() - start;
    co_await scope.join();
    REQUIRE(reached == 3);
    co_return turns;
  };
  // Four hops (three waiters, then this task); one turn per hop before.
  CHECK(sync_wait(loop, body()) <= 1);
}
