#include "proxy/handshake_budget.h"

#include <utility>

namespace zdm::proxy {

HandshakeBudget::Ticket HandshakeBudget::admit(std::function<void()> evict) {
  std::function<void()> oldest;
  Ticket ticket = 0;
  {
    std::lock_guard lock(mu_);
    if (handshaking_.size() >= limit_) {
      auto it = handshaking_.begin();
      oldest = std::move(it->second);
      handshaking_.erase(it);
      ++evicted_;
    }
    ticket = next_++;
    handshaking_.emplace(ticket, std::move(evict));
  }
  if (oldest) oldest();
  return ticket;
}

void HandshakeBudget::leave(Ticket ticket) {
  if (ticket == 0) return;
  std::function<void()> gone;  // destroyed outside the lock
  std::lock_guard lock(mu_);
  auto it = handshaking_.find(ticket);
  if (it == handshaking_.end()) return;
  gone = std::move(it->second);
  handshaking_.erase(it);
}

std::size_t HandshakeBudget::size() const {
  std::lock_guard lock(mu_);
  return handshaking_.size();
}

uint64_t HandshakeBudget::evicted() const {
  std::lock_guard lock(mu_);
  return evicted_;
}

}  // namespace zdm::proxy
