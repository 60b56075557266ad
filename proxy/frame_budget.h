// The memory budget of a worker thread for large client frames (proxy_max_inflight_frame_bytes):
// before more of a frame over 1 MiB is read, its declared size (the header's body length,
// native_protocol_v4.spec §2.5) is reserved, waiting while other sessions of the same worker hold
// the budget. Many clients sending large frames at once then cost at most the budget, not the sum
// of their frames. One per client session; the budget is the worker thread's.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "proxy/asio.h"

namespace zdm::proxy {

class FrameBudget {
 public:
  /// Frames over this many bytes count against the budget.
  static constexpr uint32_t kLargeFrame = 1 << 20;

  /// Bytes of the worker's budget this session holds.
  std::size_t reserved() const { return reserved_; }
  /// Bytes of large frames being received on the calling thread, all sessions together.
  static std::size_t worker_bytes();

  /// Reserves `length` bytes for the frame being received, giving back what this session held:
  /// at once while the worker's reservations and `length` fit in `budget` bytes (or nothing else
  /// is reserved); otherwise polls every 10 ms as other sessions release theirs. False when it
  /// did not fit within `timeout` (nothing reserved: the caller closes the connection). Once
  /// `stopped()` is true (the session closed while it waited) it stops waiting and reserves
  /// nothing: true, as there is nothing left to refuse.
  template <class Stopped>
  awaitable<bool> reserve(asio::io_context& ioc, uint32_t length, std::size_t budget,
                          std::chrono::milliseconds timeout, Stopped stopped);
  /// Gives the reservation back (the frame was passed on, or the session closed).
  void release();

 private:
  void take(std::size_t length);
  std::size_t reserved_ = 0;
};

template <class Stopped>
awaitable<bool> FrameBudget::reserve(asio::io_context& ioc, uint32_t length, std::size_t budget,
                                     std::chrono::milliseconds timeout, Stopped stopped) {
  release();
  asio::steady_timer wait(ioc);
  // The wait ends: the budget frees up as other sessions pass their frames on (they already
  // hold their reservations and keep reading), or the request times out.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (worker_bytes() + length > budget && worker_bytes() > 0 && !stopped()) {
    if (std::chrono::steady_clock::now() > deadline) co_return false;
    boost::system::error_code ec;
    wait.expires_after(std::chrono::milliseconds(10));
    co_await wait.async_wait(nothrow(ec));
  }
  if (stopped()) co_return true;  // closed meanwhile: its release() already ran
  take(length);
  co_return true;
}

}  // namespace zdm::proxy
