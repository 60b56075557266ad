#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "proxy/frame_budget.h"

using namespace zdm::proxy;
using namespace std::chrono_literals;

namespace {

// Runs reserve() to its end on `ioc`; the result.
bool run_reserve(asio::io_context& ioc, FrameBudget& b, uint32_t length, std::size_t budget,
                 std::chrono::milliseconds timeout, bool& stopped) {
  bool result = false;
  asio::co_spawn(
      ioc,
      [&]() -> awaitable<void> {
        result = co_await b.reserve(ioc, length, budget, timeout, [&] { return stopped; });
      },
      asio::detached);
  ioc.run();
  ioc.restart();
  return result;
}

}  // namespace

TEST_CASE("the worker's memory budget for large frames") {
  asio::io_context ioc;
  const std::size_t mib = 1 << 20;
  bool stopped = false;
  FrameBudget a, b;
  REQUIRE(FrameBudget::worker_bytes() == 0);

  SUBCASE("a frame that fits is reserved at once; release gives it back") {
    CHECK(run_reserve(ioc, a, 3 * mib, 4 * mib, 1000ms, stopped));
    CHECK(a.reserved() == 3 * mib);
    CHECK(FrameBudget::worker_bytes() == 3 * mib);
    a.release();
    CHECK(a.reserved() == 0);
    CHECK(FrameBudget::worker_bytes() == 0);
  }
  SUBCASE("alone, a frame over the budget is still reserved (it cannot wait for anyone)") {
    CHECK(run_reserve(ioc, a, 8 * mib, 4 * mib, 1000ms, stopped));
    CHECK(FrameBudget::worker_bytes() == 8 * mib);
    a.release();
  }
  SUBCASE("a session's new frame replaces its own reservation") {
    CHECK(run_reserve(ioc, a, 2 * mib, 4 * mib, 1000ms, stopped));
    CHECK(run_reserve(ioc, a, 3 * mib, 4 * mib, 1000ms, stopped));
    CHECK(FrameBudget::worker_bytes() == 3 * mib);
    a.release();
  }
  SUBCASE("over the budget while another session holds it: no reservation after the timeout") {
    CHECK(run_reserve(ioc, a, 3 * mib, 4 * mib, 1000ms, stopped));
    const auto start = std::chrono::steady_clock::now();
    CHECK(!run_reserve(ioc, b, 2 * mib, 4 * mib, 50ms, stopped));
    CHECK(std::chrono::steady_clock::now() - start >= 50ms);
    CHECK(b.reserved() == 0);
    CHECK(FrameBudget::worker_bytes() == 3 * mib);
    a.release();
  }
  SUBCASE("the wait ends when the other session releases") {
    CHECK(run_reserve(ioc, a, 3 * mib, 4 * mib, 1000ms, stopped));
    asio::steady_timer later(ioc);
    later.expires_after(30ms);
    later.async_wait([&](boost::system::error_code) { a.release(); });
    CHECK(run_reserve(ioc, b, 2 * mib, 4 * mib, 1000ms, stopped));
    CHECK(FrameBudget::worker_bytes() == 2 * mib);
    b.release();
  }
  SUBCASE("a session that closes while it waits holds nothing afterwards") {
    CHECK(run_reserve(ioc, a, 3 * mib, 4 * mib, 1000ms, stopped));
    asio::steady_timer later(ioc);
    later.expires_after(30ms);
    later.async_wait([&](boost::system::error_code) { stopped = true; });
    CHECK(run_reserve(ioc, b, 2 * mib, 4 * mib, 1000ms, stopped));
    CHECK(b.reserved() == 0);
    CHECK(FrameBudget::worker_bytes() == 3 * mib);
    a.release();
  }
  CHECK(FrameBudget::worker_bytes() == 0);
}
