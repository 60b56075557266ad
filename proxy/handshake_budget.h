// The budget of client connections still in their handshake (proxy_max_handshaking_connections):
// TLS, STARTUP, authentication. It is separate from proxy_max_client_connections, which counts
// connections that completed theirs, so sockets that connect and never send STARTUP cannot lock
// out established applications nor new clients: when the budget is full, the oldest connection
// still handshaking is closed to admit the new one. A legitimate driver completes its handshake
// in milliseconds; a flood of silent sockets only evicts its own oldest members.
// Sessions of every worker thread share one budget: each call takes a mutex, once per
// connection (admitted, then done), never per request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace zdm::proxy {

class HandshakeBudget {
 public:
  /// A connection's place in the budget; 0 is none.
  using Ticket = uint64_t;

  explicit HandshakeBudget(std::size_t limit) : limit_(limit < 1 ? 1 : limit) {}

  /// Admits a new connection still in its handshake. When `limit` connections already are, the
  /// oldest (admitted first) leaves the budget and its `evict` is called, outside the lock, on
  /// the calling thread: it must only arrange for that connection to close (post to its thread).
  Ticket admit(std::function<void()> evict);
  /// The connection completed its handshake or closed: it no longer counts. Idempotent (an
  /// evicted ticket is already gone).
  void leave(Ticket ticket);

  /// Connections counted now.
  std::size_t size() const;
  std::size_t limit() const { return limit_; }
  /// Connections evicted since start.
  uint64_t evicted() const;

 private:
  mutable std::mutex mu_;
  std::map<Ticket, std::function<void()>> handshaking_;  // oldest first: tickets only grow
  Ticket next_ = 1;
  uint64_t evicted_ = 0;
  const std::size_t limit_;
};

}  // namespace zdm::proxy
