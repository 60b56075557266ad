// Backpressure between a client connection and its cluster connections: when a socket's write
// queue is over its high watermark, the reading that feeds it pauses until the queue is back
// under the low one. A client that does not read its answers stops the proxy reading its
// cluster connections; a slow cluster stops the proxy reading the client. Memory per connection
// stays near the watermark instead of growing with what the peer sends. One per client session,
// on its worker thread.
#pragma once

#include <chrono>
#include <cstddef>

#include "common/net/frame_writer.h"
#include "proxy/asio.h"

namespace zdm::proxy {

class FlowControl {
 public:
  /// Write-queue watermarks (bytes) of every socket of a session.
  static constexpr std::size_t kHighWatermark = 4 << 20;
  static constexpr std::size_t kLowWatermark = 1 << 20;

  explicit FlowControl(asio::io_context& ioc) : client_resume_(ioc), cluster_resume_(ioc) {
    client_resume_.expires_at(std::chrono::steady_clock::time_point::max());
    cluster_resume_.expires_at(std::chrono::steady_clock::time_point::max());
  }

  /// The client's writer: while it is full, the cluster connections are not read.
  void watch_client(net::FrameWriter& w) { watch(w, cluster_resume_); }
  /// A cluster connection's writer: while it is full, the client is not read.
  void watch_cluster(net::FrameWriter& w) { watch(w, client_resume_); }

  /// Returns once none of `writers` (null ones skipped) is full, or `stopped()` is true.
  template <class Stopped>
  awaitable<void> clusters_writable(const net::FrameWriter* a, const net::FrameWriter* b,
                                    Stopped stopped) {
    auto full = [&] { return (a && a->full()) || (b && b->full()); };
    while (full() && !stopped()) co_await wait(client_resume_);
  }
  /// Returns once the client's writer `w` is not full, or `stopped()` is true. The cluster
  /// connections wait here before reading more answers, and the client's reads before reading
  /// more requests: answers the proxy makes itself (SUPPORTED, errors, system tables) queue on
  /// the same writer, so a client that does not read stops being read.
  template <class Stopped>
  awaitable<void> client_writable(const net::FrameWriter& w, Stopped stopped) {
    while (w.full() && !stopped()) co_await wait(cluster_resume_);
  }
  /// Wakes every wait (the session closed).
  void cancel() {
    client_resume_.cancel();
    cluster_resume_.cancel();
  }

 private:
  static void watch(net::FrameWriter& w, asio::steady_timer& resume) {
    w.set_watermarks(kHighWatermark, kLowWatermark, [&resume] { resume.cancel(); });
  }
  // The timers never expire (their expiry is set once, to the end of time): a wait ends when
  // the watermark callback or cancel() cancels it. Re-arming a timer would cancel the other
  // waits on it (both cluster connections wait on one), and they would wake each other in turn.
  static awaitable<void> wait(asio::steady_timer& resume) {
    boost::system::error_code ec;
    co_await resume.async_wait(nothrow(ec));
  }

  asio::steady_timer client_resume_;   // a cluster writer drained: the client may be read again
  asio::steady_timer cluster_resume_;  // the client writer drained: clusters may be read again
};

}  // namespace zdm::proxy
