#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "proxy/handshake_budget.h"

using namespace zdm::proxy;

TEST_CASE("connections in their handshake have their own budget, oldest evicted first") {
  HandshakeBudget b(3);
  std::vector<int> evicted;
  auto admit = [&](int who) { return b.admit([&evicted, who] { evicted.push_back(who); }); };
  const auto t1 = admit(1), t2 = admit(2), t3 = admit(3);
  CHECK(b.size() == 3);
  CHECK(evicted.empty());

  SUBCASE("a fourth evicts the oldest; then the next oldest") {
    admit(4);
    CHECK(evicted == std::vector<int>{1});
    CHECK(b.size() == 3);
    admit(5);
    CHECK(evicted == std::vector<int>{1, 2});
    CHECK(b.evicted() == 2);
    b.leave(t1);  // an evicted ticket is gone already: nothing happens
    CHECK(b.size() == 3);
  }
  SUBCASE("a connection that completed its handshake leaves: no eviction for the next one") {
    b.leave(t2);
    b.leave(t2);  // idempotent
    CHECK(b.size() == 2);
    admit(4);
    CHECK(evicted.empty());
    admit(5);
    CHECK(evicted == std::vector<int>{1});  // the oldest still handshaking, not 2
    b.leave(t3);
    CHECK(b.size() == 2);
  }
  SUBCASE("ticket 0 is none") {
    b.leave(0);
    CHECK(b.size() == 3);
  }
}

TEST_CASE("a flood of handshaking connections: the newest always gets in") {
  HandshakeBudget b(100);
  int evicted = 0;
  HandshakeBudget::Ticket newest = 0;
  for (int i = 0; i < 2000; ++i) newest = b.admit([&] { ++evicted; });
  CHECK(evicted == 1900);
  CHECK(b.size() == 100);
  // The legitimate client admitted after the flood completes its handshake: it was not evicted.
  const auto legit = b.admit([] { FAIL("the newest connection must not be evicted"); });
  b.leave(legit);
  CHECK(b.size() == 99);
  b.leave(newest);
  CHECK(b.size() == 98);
}

TEST_CASE("the handshake budget is shared by worker threads") {
  HandshakeBudget b(50);
  std::atomic<int> evicted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        auto ticket = b.admit([&] { evicted++; });
        if (i % 2) b.leave(ticket);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(b.size() <= 50);
  CHECK(static_cast<uint64_t>(evicted.load()) == b.evicted());
  // Each of the 4000 admitted is still in, evicted, or removed by one of the 2000 leave() calls
  // (a leave() of a ticket another thread's admit() already evicted removes nothing).
  CHECK(b.size() + b.evicted() >= 2000);
  CHECK(b.size() + b.evicted() <= 4000);
}
