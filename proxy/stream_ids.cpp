#include "proxy/stream_ids.h"

#include <algorithm>

namespace zdm::proxy {

StreamIds::StreamIds(int count) {
  int n = std::clamp(count, 1, 32768);
  owner_.assign(static_cast<std::size_t>(n), 0);
  free_.reserve(static_cast<std::size_t>(n));
  for (int i = n - 1; i >= 0; --i) free_.push_back(static_cast<int16_t>(i));
}

std::optional<int16_t> StreamIds::acquire(uint64_t request) {
  if (free_.empty()) return std::nullopt;
  int16_t s = free_.back();
  free_.pop_back();
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
