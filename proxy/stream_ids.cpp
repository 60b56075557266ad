#include "proxy/stream_ids.h"

#include <algorithm>

namespace zdm::proxy {

StreamIds::StreamIds(int count)
    : capacity_(static_cast<std::size_t>(std::clamp(count, 1, 32768))) {}

std::optional<int16_t> StreamIds::acquire(uint64_t request) {
  int16_t s;
  if (!free_.empty()) {
    s = free_.back();
    free_.pop_back();
  } else if (owner_.size() < capacity_) {
    s = static_cast<int16_t>(owner_.size());
    owner_.push_back(0);
  } else {
    return std::nullopt;
  }
  owner_[static_cast<std::size_t>(s)] = request;
  return s;
}

uint64_t StreamIds::release(int16_t stream) {
  if (stream < 0 || static_cast<std::size_t>(stream) >= owner_.size()) return 0;
  uint64_t id = owner_[static_cast<std::size_t>(stream)];
  if (id == 0) return 0;
  owner_[static_cast<std::size_t>(stream)] = 0;
  free_.push_back(stream);
  return id;
}

uint64_t StreamIds::owner(int16_t stream) const {
  if (stream < 0 || static_cast<std::size_t>(stream) >= owner_.size()) return 0;
  return owner_[static_cast<std::size_t>(stream)];
}

}  // namespace zdm::proxy
