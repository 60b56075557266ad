#include "proxy/frame_budget.h"

namespace zdm::proxy {

namespace {
// Bytes of large frames being received on this worker thread.
thread_local std::size_t worker_large_frame_bytes = 0;
}  // namespace

std::size_t FrameBudget::worker_bytes() {
  return worker_large_frame_bytes;
}

void FrameBudget::take(std::size_t length) {
  reserved_ = length;
  worker_large_frame_bytes += reserved_;
}

void FrameBudget::release() {
  worker_large_frame_bytes -= reserved_;
  reserved_ = 0;
}

}  // namespace zdm::proxy
