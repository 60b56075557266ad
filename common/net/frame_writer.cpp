#include "common/net/frame_writer.h"

#include <cstring>

namespace zdm::net {

namespace {
constexpr std::size_t kMaxBatchFrames = 256;
constexpr std::size_t kMaxBatchBytes = 1u << 20;
// With TLS every buffer is its own record: small frames are joined into one buffer first.
constexpr std::size_t kJoinBelow = 16 * 1024;
}  // namespace

FrameWriter::FrameWriter(Stream& stream)
    : stream_(stream), signal_(stream.socket().get_executor()) {
  signal_.expires_at(std::chrono::steady_clock::time_point::max());
}

void FrameWriter::push(cql::Bytes frame) {
  queued_bytes_ += frame.size();
  if (queued_bytes_ > high_) above_high_ = true;
  queue_.push_back(std::move(frame));
  signal_.cancel_one();
}

void FrameWriter::enable_segments(cql::Compression compression) {
  plain_left_ = queue_.size();
  segments_ = true;
  encoder_ = cql::SegmentEncoder(compression);
}

void FrameWriter::close() {
  closing_ = true;
  signal_.cancel();
}

void FrameWriter::take_batch() {
  batch_.clear();
  buffers_.clear();
  std::size_t bytes = 0;
  // Frames queued before the switch to segments go out alone, as they were.
  const bool plain = !segments_ || plain_left_ > 0;
  while (!queue_.empty() && batch_.size() < kMaxBatchFrames && bytes < kMaxBatchBytes &&
         (!segments_ || plain == (plain_left_ > 0))) {
    bytes += queue_.front().size();
    batch_.push_back(std::move(queue_.front()));
    queue_.pop_front();
    if (plain_left_ > 0) --plain_left_;
  }
  batch_bytes_ = bytes;
  if (!plain) {
    joined_.clear();
    views_.clear();
    for (const auto& f : batch_) views_.emplace_back(f);
    encoder_.encode(views_, joined_);
    buffers_.emplace_back(joined_.data(), joined_.size());
    return;
  }
  if (stream_.tls() && batch_.size() > 1 && bytes <= kJoinBelow * batch_.size()) {
    joined_.clear();
    joined_.reserve(bytes);
    for (const auto& f : batch_) joined_.insert(joined_.end(), f.begin(), f.end());
    buffers_.emplace_back(joined_.data(), joined_.size());
    return;
  }
  for (const auto& f : batch_) buffers_.emplace_back(f.data(), f.size());
}

awaitable<error_code> FrameWriter::run() {
  for (;;) {
    if (queue_.empty()) {
      if (closing_) co_return error_code{};
      error_code ec;
      co_await signal_.async_wait(nothrow(ec));
      continue;
    }
    take_batch();
    error_code ec;
    writing_ = true;
    co_await stream_.write(buffers_, ec);
    writing_ = false;
    batch_.clear();  // the frames written are freed now, not at the next write
    queued_bytes_ -= batch_bytes_;
    if (above_high_ && queued_bytes_ <= low_) {
      above_high_ = false;
      if (on_low_) on_low_();
    }
    if (joined_.capacity() > 256 * 1024) cql::Bytes().swap(joined_);
    if (ec) co_return ec;
  }
}

}  // namespace zdm::net
