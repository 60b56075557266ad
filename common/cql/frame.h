// Frame header of the CQL native protocol (native_protocol_v4.spec §2, v5 §2.1-§2.4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace zdm::cql {

using Bytes = std::vector<std::byte>;
using BytesView = std::span<const std::byte>;

/// Protocol versions as carried in the header's version byte, without the direction bit (0x80).
/// native_protocol_v4.spec §2.1; DSE private versions 0x41/0x42.
enum class ProtocolVersion : uint8_t { V3 = 3, V4 = 4, V5 = 5, DseV1 = 0x41, DseV2 = 0x42 };

/// Opcodes, native_protocol_v4.spec §2.4.
enum class Opcode : uint8_t {
  kError = 0x00,
  kStartup = 0x01,
  kReady = 0x02,
  kAuthenticate = 0x03,
  kOptions = 0x05,
  kSupported = 0x06,
  kQuery = 0x07,
  kResult = 0x08,
  kPrepare = 0x09,
  kExecute = 0x0A,
  kRegister = 0x0B,
  kEvent = 0x0C,
  kBatch = 0x0D,
  kAuthChallenge = 0x0E,
  kAuthResponse = 0x0F,
  kAuthSuccess = 0x10,
};

/// Spec name of an opcode ("QUERY"), or "UNKNOWN(0x1f)".
std::string opcode_name(Opcode op);
/// True if `raw` is one of the opcodes of §2.4.
bool is_known_opcode(uint8_t raw);

/// Header flags, native_protocol_v4.spec §2.2.
namespace flag {
inline constexpr uint8_t kCompression = 0x01;
inline constexpr uint8_t kTracing = 0x02;
inline constexpr uint8_t kCustomPayload = 0x04;
inline constexpr uint8_t kWarning = 0x08;
inline constexpr uint8_t kUseBeta = 0x10;
}  // namespace flag

/// Size of a v3+ frame header in bytes (spec §2).
inline constexpr std::size_t kHeaderSize = 9;
/// Largest body the spec allows: 256 MB (spec §2.5).
inline constexpr uint32_t kMaxBodyLength = 256u * 1024u * 1024u;
/// Direction bit of the version byte: set on responses (spec §2.1).
inline constexpr uint8_t kResponseBit = 0x80;

/// A malformed frame or body. The message follows the spec's wording where it has one.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The fields of a v3+ frame header, in wire order (spec §2).
struct Header {
  uint8_t version = 4;    // without the direction bit
  bool response = false;  // direction bit 0x80
  uint8_t flags = 0;
  int16_t stream = 0;  // stream id, spec §2.3
  Opcode opcode = Opcode::kError;
  uint32_t length = 0;  // body length in bytes

  bool operator==(const Header&) const = default;
};

/// Decodes the 9 header bytes at `in` (which must hold at least kHeaderSize bytes).
/// Throws ProtocolError if the body length exceeds `max_body` bytes. The version is not
/// checked here: the caller decides which versions it speaks.
Header decode_header(BytesView in, uint32_t max_body = kMaxBodyLength);

/// Writes the 9 header bytes to `out` (which must hold at least kHeaderSize bytes).
void encode_header(const Header& h, std::byte* out);

/// Reads the stream id of the frame starting at `frame` (bytes 2-3, big endian).
inline int16_t frame_stream(const std::byte* frame) {
  return static_cast<int16_t>((std::to_integer<uint16_t>(frame[2]) << 8) |
                              std::to_integer<uint16_t>(frame[3]));
}
/// Overwrites the stream id of the frame starting at `frame` in place.
inline void patch_stream(std::byte* frame, int16_t stream) {
  frame[2] = static_cast<std::byte>(static_cast<uint16_t>(stream) >> 8);
  frame[3] = static_cast<std::byte>(static_cast<uint16_t>(stream) & 0xff);
}

/// A complete frame: header + body bytes (body.size() == header.length).
struct Frame {
  Header header;
  Bytes body;
};

/// Encodes header + body into one buffer; header.length is set from body.size().
Bytes encode_frame(Header header, BytesView body);

/// Incremental frame splitter for a byte stream: feed bytes, take whole frames.
/// Returns "need more" (std::nullopt-like false) until a frame is complete.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_body = kMaxBodyLength) : max_body_(max_body) {}
  /// Appends bytes read from the socket.
  void feed(BytesView data);
  /// Reserves the buffer for the whole of the frame not yet complete, when it declares
  /// kMoveFrameBytes or more (up to the body limit), so that it never grows by copying. Address
  /// space only: memory is used as the bytes arrive. Call it once the frame's size is accepted
  /// (the proxy: once the worker's large-frame budget holds it), not for any header a peer
  /// sends.
  void reserve_pending();
  /// Moves the next complete frame into `out`; false if more bytes are needed.
  /// Throws ProtocolError on a corrupt header (body too long).
  bool next(Frame& out);
  /// Like next(), but moves the whole frame (header + body, contiguous) into `out`, ready to be
  /// forwarded with only the stream id patched. A frame of kMoveFrameBytes or more that is all
  /// the decoder holds is handed over without a copy (its buffer becomes `out`); after one
  /// followed by a few bytes, those move to a buffer of their size (the large one is freed).
  bool next_raw(Header& header, Bytes& out);
  static constexpr std::size_t kMoveFrameBytes = 1 << 20;
  std::size_t buffered() const { return buf_.size() - pos_; }
  void set_max_body(uint32_t max_body) { max_body_ = max_body; }
  /// Body length declared by the header of the frame not yet complete (nullopt before its 9
  /// header bytes arrived, or when nothing is buffered).
  std::optional<uint32_t> pending_length() const {
    if (buf_.size() - pos_ < kHeaderSize) return std::nullopt;
    const std::byte* h = buf_.data() + pos_;
    return (std::to_integer<uint32_t>(h[5]) << 24) | (std::to_integer<uint32_t>(h[6]) << 16) |
           (std::to_integer<uint32_t>(h[7]) << 8) | std::to_integer<uint32_t>(h[8]);
  }
  /// Frees the buffer's memory when nothing is buffered (an idle connection costs no buffer).
  void release_if_idle() {
    if (pos_ == buf_.size() && buf_.capacity() > 0) Bytes().swap(buf_), pos_ = 0;
  }
  /// Moves out the bytes not yet taken as frames and empties the decoder (to hand them to a
  /// different framing, as FrameStream::enable_segments does).
  Bytes take_buffered();

 private:
  Bytes buf_;
  std::size_t pos_ = 0;
  uint32_t max_body_;
};

}  // namespace zdm::cql
