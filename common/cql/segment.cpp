#include "common/cql/segment.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

namespace zdm::cql {
namespace {

constexpr uint32_t kCrc24Init = 0x875060;
constexpr uint32_t kCrc24Poly = 0x1974F0B;
constexpr uint64_t kLengthMask = 0x1FFFF;  // 17 bits
constexpr unsigned char kCrc32Initial[] = {0xFA, 0x2D, 0x55, 0xCA};

uint64_t read_le(const std::byte* p, std::size_t n) {
  uint64_t v = 0;
  for (std::size_t i = n; i-- > 0;) v = (v << 8) | std::to_integer<uint64_t>(p[i]);
  return v;
}

void write_le(std::byte* p, uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

std::string hex24(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%06x", v);
  return buf;
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

Compression check_segment_compression(Compression c) {
  if (c == Compression::kSnappy) {
    throw std::invalid_argument("v5 segments support only lz4 compression, not snappy");
  }
  return c;
}

}  // namespace

uint32_t segment_crc24(uint64_t header, int n) {
  uint32_t crc = kCrc24Init;
  for (int i = 0; i < n; ++i) {
    crc ^= static_cast<uint32_t>(header & 0xff) << 16;
    header >>= 8;
    for (int bit = 0; bit < 8; ++bit) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= kCrc24Poly;  // also clears bit 24: crc stays 24 bits
    }
  }
  return crc;
}

uint32_t segment_crc32(BytesView payload) {
  static const uLong initial = crc32_z(0L, kCrc32Initial, sizeof kCrc32Initial);
  // zlib returns 0, not `initial`, for a null buffer (an empty span's data()).
  if (payload.empty()) return static_cast<uint32_t>(initial);
  return static_cast<uint32_t>(
      crc32_z(initial, reinterpret_cast<const Bytef*>(payload.data()), payload.size()));
}

// ---------------------------------------------------------------------------------------------
// SegmentEncoder

SegmentEncoder::SegmentEncoder(Compression c) : compression_(check_segment_compression(c)) {}

void SegmentEncoder::encode(std::span<const BytesView> frames, Bytes& out) {
  // One allocation up front for the usual case (uncompressed size plus worst-case overhead),
  // growing geometrically so that repeated calls on one buffer stay linear.
  std::size_t need = out.size();
  for (BytesView f : frames) {
    need += f.size() + (f.size() / kMaxSegmentPayload + 1) *
                           (kCompressedSegmentHeaderSize + kSegmentTrailerSize);
  }
  if (out.capacity() < need) out.reserve(std::max(need, 2 * out.capacity()));
  std::size_t i = 0;
  while (i < frames.size()) {
    BytesView frame = frames[i];
    if (frame.size() > kMaxSegmentPayload) {
      for (std::size_t off = 0; off < frame.size(); off += kMaxSegmentPayload) {
        BytesView chunk = frame.subspan(off, std::min(kMaxSegmentPayload, frame.size() - off));
        write_segment(std::span<const BytesView>(&chunk, 1), chunk.size(), false, out);
      }
      ++i;
      continue;
    }
    std::size_t j = i;
    std::size_t length = 0;
    while (j < frames.size() && length + frames[j].size() <= kMaxSegmentPayload) {
      length += frames[j++].size();
    }
    write_segment(frames.subspan(i, j - i), length, true, out);
    i = j;
  }
}

void SegmentEncoder::write_segment(std::span<const BytesView> parts, std::size_t length,
                                   bool self_contained, Bytes& out) {
  const bool lz4 = compression_ == Compression::kLz4;
  const std::size_t header_size = lz4 ? kCompressedSegmentHeaderSize : kSegmentHeaderSize;
  const std::size_t at = out.size();
  out.resize(at + header_size);  // filled in below, once the payload length is known
  uint64_t header = 0;
  if (!lz4) {
    for (BytesView p : parts) out.insert(out.end(), p.begin(), p.end());
    header = length | (uint64_t{self_contained} << 17);
  } else {
    BytesView payload = parts.empty() ? BytesView() : parts[0];
    if (parts.size() > 1) {
      scratch_.clear();
      for (BytesView p : parts) scratch_.insert(scratch_.end(), p.begin(), p.end());
      payload = scratch_;
    }
    std::size_t stored = lz4_compress_block(payload, out);
    uint64_t uncompressed = length;
    if (stored >= length) {  // did not shrink: store as is, uncompressed length 0 (§2.2)
      out.resize(at + header_size);
      out.insert(out.end(), payload.begin(), payload.end());
      stored = length;
      uncompressed = 0;
    }
    header = stored | (uncompressed << 17) | (uint64_t{self_contained} << 34);
  }
  const std::size_t n = header_size - 3;
  write_le(out.data() + at, header, n);
  write_le(out.data() + at + n, segment_crc24(header, static_cast<int>(n)), 3);
  const uint32_t crc = segment_crc32(BytesView(out).subspan(at + header_size));
  out.resize(out.size() + kSegmentTrailerSize);
  write_le(out.data() + out.size() - kSegmentTrailerSize, crc, kSegmentTrailerSize);
}

// ---------------------------------------------------------------------------------------------
// SegmentDecoder

SegmentDecoder::SegmentDecoder(Compression c, uint32_t max_body)
    : compression_(check_segment_compression(c)), max_body_(max_body), frames_(max_body) {}

void SegmentDecoder::set_max_body(uint32_t max_body) {
  max_body_ = max_body;
  frames_.set_max_body(max_body);
}

void SegmentDecoder::feed(BytesView data) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 65536 && pos_ * 2 > buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
}

bool SegmentDecoder::next(Frame& out) {
  while (!frames_.next(out)) {
    if (!decode_segment()) return false;
  }
  return true;
}

bool SegmentDecoder::next_raw(Header& header, Bytes& out) {
  while (!frames_.next_raw(header, out)) {
    if (!decode_segment()) return false;
  }
  return true;
}

// Decodes one whole segment from buf_ into frames_; false if it has not fully arrived.
bool SegmentDecoder::decode_segment() {
  const bool lz4 = compression_ == Compression::kLz4;
  const std::size_t header_size = lz4 ? kCompressedSegmentHeaderSize : kSegmentHeaderSize;
  const std::size_t avail = buf_.size() - pos_;
  if (avail < header_size) return false;
  const std::byte* p = buf_.data() + pos_;
  const std::size_t n = header_size - 3;
  const uint64_t header = read_le(p, n);
  const auto received = static_cast<uint32_t>(read_le(p + n, 3));
  const uint32_t computed = segment_crc24(header, static_cast<int>(n));
  if (received != computed) {
    throw ProtocolError("segment header CRC mismatch (received " + hex24(received) + ", computed " +
                        hex24(computed) + ")");
  }
  // 17-bit fields: no length below can exceed kMaxSegmentPayload.
  const std::size_t length = header & kLengthMask;
  const std::size_t uncompressed = lz4 ? (header >> 17) & kLengthMask : 0;
  const bool self_contained = (header >> (lz4 ? 34 : 17)) & 1;
  if (avail < header_size + length + kSegmentTrailerSize) return false;

  BytesView payload(p + header_size, length);
  const auto crc = static_cast<uint32_t>(read_le(p + header_size + length, kSegmentTrailerSize));
  if (crc != segment_crc32(payload)) {
    throw ProtocolError("segment payload CRC mismatch (received " + hex32(crc) + ", computed " +
                        hex32(segment_crc32(payload)) + ")");
  }
  if (uncompressed > 0) {
    scratch_.resize(uncompressed);
    lz4_decompress_block(payload, scratch_, "lz4 segment payload");
    payload = scratch_;
  }

  if (self_contained) {
    if (large_left_ > 0) {
      throw ProtocolError("self-contained segment inside a multi-segment envelope (" +
                          std::to_string(large_left_) + " bytes of it still due)");
    }
    check_self_contained(payload);
  } else if (large_left_ == 0) {
    // First segment of a large envelope: its header gives the total, checked before the rest
    // of the envelope is accepted.
    if (payload.size() < kHeaderSize) {
      throw ProtocolError("multi-segment envelope starts with a " + std::to_string(payload.size()) +
                          "-byte segment, shorter than its header");
    }
    const Header h = decode_header(payload, max_body_);
    const uint64_t total = kHeaderSize + uint64_t{h.length};
    if (total < payload.size()) {
      throw ProtocolError("segment that is not self-contained holds more than one envelope");
    }
    large_left_ = total - payload.size();
  } else {
    if (payload.size() > large_left_) {
      throw ProtocolError("segment continues a multi-segment envelope past its end (" +
                          std::to_string(payload.size()) + " bytes, " +
                          std::to_string(large_left_) + " due)");
    }
    large_left_ -= payload.size();
  }
  frames_.feed(payload);
  pos_ += header_size + length + kSegmentTrailerSize;
  return true;
}

// A self-contained payload is a sequence of whole envelopes (v5 §1).
void SegmentDecoder::check_self_contained(BytesView payload) const {
  std::size_t off = 0;
  while (off < payload.size()) {
    if (payload.size() - off < kHeaderSize) {
      throw ProtocolError("self-contained segment ends inside an envelope header");
    }
    const Header h = decode_header(payload.subspan(off), max_body_);
    if (payload.size() - off - kHeaderSize < h.length) {
      throw ProtocolError("self-contained segment ends inside an envelope body");
    }
    off += kHeaderSize + h.length;
  }
}

// ---------------------------------------------------------------------------------------------
// FrameStream

void FrameStream::feed(BytesView data) {
  if (segments_) {
    segments_->feed(data);
  } else {
    plain_.feed(data);
  }
}

bool FrameStream::next(Frame& out) {
  const bool got = segments_ ? segments_->next(out) : plain_.next(out);
  taken_ += got;
  return got;
}

bool FrameStream::next_raw(Header& header, Bytes& out) {
  const bool got = segments_ ? segments_->next_raw(header, out) : plain_.next_raw(header, out);
  taken_ += got;
  return got;
}

void FrameStream::enable_segments(Compression c) {
  if (segments_) throw std::logic_error("v5 segments are already enabled");
  segments_.emplace(c, max_body_);
  segments_->feed(plain_.take_buffered());
}

void FrameStream::set_max_body(uint32_t max_body) {
  max_body_ = max_body;
  plain_.set_max_body(max_body);
  if (segments_) segments_->set_max_body(max_body);
}

}  // namespace zdm::cql
