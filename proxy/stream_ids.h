// The stream ids of one cluster connection (native_protocol_v4.spec §2.3): a free list and the
// request each id in use belongs to. Pure; the client session maps its clients' ids onto these.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace zdm::proxy {

class StreamIds {
 public:
  /// `count` ids, 0 to count-1 (at most 32768: the spec's positive int16 range). Memory grows
  /// with the most ids ever in use at once, not with `count`: an idle connection costs nothing.
  explicit StreamIds(int count);
  /// A free id for `request` (non-zero); nullopt when all are in use. Lowest ids first.
  std::optional<int16_t> acquire(uint64_t request);
  /// Frees `stream` and returns the request it belonged to; 0 if it was free or out of range.
  uint64_t release(int16_t stream);
  /// The request `stream` belongs to, 0 if free.
  uint64_t owner(int16_t stream) const;
  std::size_t in_use() const { return owner_.size() - free_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  std::vector<int16_t> free_;    // released ids, the next to hand out at the back
  std::vector<uint64_t> owner_;  // stream id → request (0 = free); ids beyond are unused
};

}  // namespace zdm::proxy
