// Protocol v5 framing (native_protocol_v5.spec §2): after the STARTUP handshake, envelopes (the
// v4 "frames": 9-byte header + body) travel inside segments with a CRC24-protected header and a
// CRC32 trailer, optionally LZ4-compressed. All segment integers are little-endian.
//
//   uncompressed: [3: payload length (17 bits) | self-contained (bit 17)][3: CRC24]
//                 [payload][4: CRC32 of payload]                                    (§2.1)
//   LZ4:          [5: compressed length (17 bits) | uncompressed length (17 bits, 0 = stored
//                 uncompressed) | self-contained (bit 34)][3: CRC24]
//                 [compressed payload][4: CRC32 of compressed payload]               (§2.2)
//
// A self-contained segment holds one or more whole envelopes; a larger envelope is split across
// several segments that are not self-contained. (§2.2 says the LZ4 header is 4+4 bytes; the
// fields need 35 bits, and Cassandra and the drivers use 5+3, as here.)
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "common/cql/compression.h"
#include "common/cql/frame.h"

namespace zdm::cql {

/// Largest segment payload (compressed or not): 2^17 - 1 bytes (v5 §2.1).
inline constexpr std::size_t kMaxSegmentPayload = 131071;
/// Segment header sizes in bytes, CRC24 included: uncompressed 3+3, LZ4 5+3.
inline constexpr std::size_t kSegmentHeaderSize = 6;
inline constexpr std::size_t kCompressedSegmentHeaderSize = 8;
/// The CRC32 trailer after the payload, in bytes.
inline constexpr std::size_t kSegmentTrailerSize = 4;

/// CRC24 of a segment header (v5 §2.1): the low `n` bytes (3 or 5) of `header`, least
/// significant first, with polynomial 0x1974F0B and initial value 0x875060.
uint32_t segment_crc24(uint64_t header, int n);

/// CRC32 of a segment payload: standard CRC-32 (zlib's crc32) over the bytes
/// {0xFA, 0x2D, 0x55, 0xCA} followed by the payload (Cassandra's Crc.crc32, python-driver
/// segment.py CRC32_INITIAL).
uint32_t segment_crc32(BytesView payload);

/// Wraps whole envelopes into segments. Cheap: payload bytes are copied once, straight into
/// `out` (LZ4 also uses one reused scratch buffer); no allocation per frame.
class SegmentEncoder {
 public:
  /// kNone or kLz4; throws std::invalid_argument for kSnappy (v5 §2.3.2: only LZ4).
  explicit SegmentEncoder(Compression c = Compression::kNone);

  /// Appends to `out` the segments carrying `frames` (whole envelopes, in order). Consecutive
  /// frames share self-contained segments of up to kMaxSegmentPayload bytes; a frame larger
  /// than that is split across non-self-contained segments of kMaxSegmentPayload bytes (the
  /// last one shorter). With LZ4, a payload that does not shrink is stored uncompressed.
  /// `frames` must not point into `out`.
  void encode(std::span<const BytesView> frames, Bytes& out);
  void encode(BytesView frame, Bytes& out) { encode(std::span<const BytesView>(&frame, 1), out); }

  Compression compression() const { return compression_; }

 private:
  void write_segment(std::span<const BytesView> parts, std::size_t length, bool self_contained,
                     Bytes& out);
  Compression compression_;
  Bytes scratch_;
};

/// Incremental segment reader: feed socket bytes, take whole envelopes. Returns "need more"
/// (false) until an envelope is complete, whether it came in a self-contained segment or was
/// reassembled from several. Throws ProtocolError on: "segment header CRC mismatch ...",
/// "segment payload CRC mismatch ...", a corrupt LZ4 payload, an envelope body over `max_body`
/// bytes (checked on the segment carrying its header, before the rest is accepted), a
/// self-contained segment that does not hold whole envelopes, or a multi-segment envelope
/// interleaved with anything else. Segment and decompressed sizes are 17-bit fields, so no
/// segment allocates more than kMaxSegmentPayload bytes.
class SegmentDecoder {
 public:
  /// `c` is kNone or kLz4 (the header format depends on it); throws std::invalid_argument for
  /// kSnappy.
  explicit SegmentDecoder(Compression c = Compression::kNone, uint32_t max_body = kMaxBodyLength);

  /// Appends bytes read from the socket.
  void feed(BytesView data);
  /// Moves the next complete envelope into `out`; false if more bytes are needed.
  bool next(Frame& out);
  /// Like next(), but the whole envelope (header + body, contiguous), as FrameDecoder::next_raw.
  bool next_raw(Header& header, Bytes& out);
  /// Bytes held: undecoded segment bytes plus decoded envelope bytes not yet taken.
  std::size_t buffered() const { return buf_.size() - pos_ + frames_.buffered(); }
  void set_max_body(uint32_t max_body);
  /// Body length declared by the frame being reassembled from segments, if its header arrived.
  std::optional<uint32_t> pending_length() const { return frames_.pending_length(); }
  /// FrameDecoder::reserve_pending for the envelope being reassembled.
  void reserve_pending() { frames_.reserve_pending(); }
  /// Frees buffers when nothing is buffered.
  void release_if_idle() {
    if (pos_ == buf_.size() && buf_.capacity() > 0) Bytes().swap(buf_), pos_ = 0;
    if (scratch_.capacity() > 0) Bytes().swap(scratch_);
    frames_.release_if_idle();
  }

 private:
  bool decode_segment();
  void check_self_contained(BytesView payload) const;
  Compression compression_;
  uint32_t max_body_;
  Bytes buf_;  // segment bytes, read from pos_
  std::size_t pos_ = 0;
  Bytes scratch_;            // decompressed payload, reused
  FrameDecoder frames_;      // envelopes carried by the payloads
  uint64_t large_left_ = 0;  // bytes still due of an envelope split across segments
};

/// The reading side of a connection: plain envelopes (v3/v4, and v5 before the handshake
/// completes), switched to v5 segments at a frame boundary by enable_segments().
class FrameStream {
 public:
  explicit FrameStream(uint32_t max_body = kMaxBodyLength)
      : plain_(max_body), max_body_(max_body) {}

  void feed(BytesView data);
  bool next(Frame& out);
  bool next_raw(Header& header, Bytes& out);

  /// From now on the bytes are v5 segments (compression `c`: kNone or kLz4). Call it right
  /// after taking the READY or AUTHENTICATE frame that ends the handshake (v5 §2.3.1); bytes
  /// already buffered after that frame are parsed as segments. Throws std::logic_error if
  /// segments are already enabled, std::invalid_argument for kSnappy.
  void enable_segments(Compression c);
  bool segmented() const { return segments_.has_value(); }

  std::size_t buffered() const { return segments_ ? segments_->buffered() : plain_.buffered(); }
  void set_max_body(uint32_t max_body);
  /// Body length declared by the frame not yet complete (to budget memory before reading it).
  std::optional<uint32_t> pending_length() const {
    return segments_ ? segments_->pending_length() : plain_.pending_length();
  }
  /// FrameDecoder::reserve_pending for the frame not yet complete.
  void reserve_pending() { segments_ ? segments_->reserve_pending() : plain_.reserve_pending(); }
  /// Frames taken so far: while it does not change and bytes stay buffered, the same frame is
  /// still incomplete (proxy_partial_frame_timeout_ms).
  uint64_t frames_taken() const { return taken_; }
  /// Frees buffers when nothing is buffered (call after taking every complete frame).
  void release_if_idle() {
    plain_.release_if_idle();
    if (segments_) segments_->release_if_idle();
  }

 private:
  FrameDecoder plain_;
  std::optional<SegmentDecoder> segments_;
  uint32_t max_body_;
  uint64_t taken_ = 0;
};

}  // namespace zdm::cql
