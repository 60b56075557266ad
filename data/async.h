// Coroutine helpers for one io_context's thread (no locks: one thread uses them): a semaphore that
// bounds requests in flight, and a group that waits for spawned writes to finish.
#pragma once

#include <boost/asio.hpp>
#include <deque>

#include "common/net/stream.h"

namespace zdm::data {

/// Counts permits; acquire() waits while none is left. Waiters are served in order.
class Semaphore {
 public:
  Semaphore(boost::asio::io_context& ioc, std::size_t permits) : ioc_(ioc), free_(permits) {}
  boost::asio::awaitable<void> acquire() {
    if (free_ > 0 && waiters_.empty()) {
      --free_;
      co_return;
    }
    boost::asio::steady_timer t(ioc_, boost::asio::steady_timer::time_point::max());
    Waiter w{&t, false};
    waiters_.push_back(&w);
    while (!w.granted) {
      net::error_code ec;
      co_await t.async_wait(net::nothrow(ec));
    }
  }
  void release() {
    if (!waiters_.empty()) {  // hand the permit over
      Waiter* w = waiters_.front();
      waiters_.pop_front();
      w->granted = true;
      w->timer->cancel();
      return;
    }
    ++free_;
  }

 private:
  struct Waiter {
    boost::asio::steady_timer* timer;
    bool granted;
  };
  boost::asio::io_context& ioc_;
  std::size_t free_;
  std::deque<Waiter*> waiters_;
};

/// Tracks work spawned by one coroutine; wait() returns when all of it is done.
class WaitGroup {
 public:
  explicit WaitGroup(boost::asio::io_context& ioc)
      : timer_(ioc, boost::asio::steady_timer::time_point::max()) {}
  void add() { ++pending_; }
  void done() {
    if (--pending_ == 0) timer_.cancel();
  }
  std::size_t pending() const { return pending_; }
  boost::asio::awaitable<void> wait() {
    while (pending_ > 0) {
      net::error_code ec;
      co_await timer_.async_wait(net::nothrow(ec));
    }
  }

 private:
  boost::asio::steady_timer timer_;
  std::size_t pending_ = 0;
};

}  // namespace zdm::data
