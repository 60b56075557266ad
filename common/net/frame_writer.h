// The one writer of a socket (only this coroutine writes to it): whole frames are queued by push()
// and written by the run() coroutine, every frame queued meanwhile in the same gathered write.
// After enable_segments() (protocol v5, once READY or AUTHENTICATE went by: native_protocol_v5.spec
// §2.2) frames are packed into v5 segments, LZ4-compressed when negotiated.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "common/cql/compression.h"
#include "common/cql/frame.h"
#include "common/cql/segment.h"
#include "common/net/stream.h"

namespace zdm::net {

class FrameWriter {
 public:
  explicit FrameWriter(Stream& stream);

  /// Queues one whole frame (9-byte header + body, as v3/v4 frames are laid out).
  void push(cql::Bytes frame);
  /// Frames pushed from now on are written in v5 segments (frames already queued are not).
  void enable_segments(cql::Compression compression);
  bool segments() const { return segments_; }
  /// Stop once the queue is written.
  void close();
  bool idle() const { return queue_.empty() && !writing_; }
  std::size_t queued() const { return queue_.size(); }
  /// Bytes queued or being written (frames as queued, before segment framing).
  std::size_t queued_bytes() const { return queued_bytes_; }

  /// Backpressure, as Envoy's write-buffer watermarks: above `high` bytes pending the writer is
  /// full() (its producer should stop reading); `on_low` is called once, when pending bytes
  /// drop back to `low` or under.
  void set_watermarks(std::size_t high, std::size_t low, std::function<void()> on_low) {
    high_ = high;
    low_ = low;
    on_low_ = std::move(on_low);
  }
  bool full() const { return queued_bytes_ > high_; }

  /// Frees the memory kept between writes when nothing is queued (idle connections).
  void release_if_idle() {
    if (!idle()) return;
    std::vector<cql::Bytes>().swap(batch_);
    std::vector<asio::const_buffer>().swap(buffers_);
    std::vector<cql::BytesView>().swap(views_);
    cql::Bytes().swap(joined_);
  }

  /// The writer coroutine. Returns when closed and drained, or on a write error.
  awaitable<error_code> run();

 private:
  void take_batch();

  Stream& stream_;
  asio::steady_timer signal_;
  std::deque<cql::Bytes> queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t high_ = SIZE_MAX, low_ = 0;
  bool above_high_ = false;
  std::function<void()> on_low_;
  std::size_t plain_left_ =
      0;  // queued frames to write without segments (pushed before the switch)
  bool segments_ = false;
  cql::SegmentEncoder encoder_;
  bool closing_ = false;
  bool writing_ = false;
  std::size_t batch_bytes_ = 0;
  // Reused between writes.
  std::vector<cql::Bytes> batch_;
  std::vector<asio::const_buffer> buffers_;
  std::vector<cql::BytesView> views_;
  cql::Bytes joined_;
};

}  // namespace zdm::net
