// Harness: the reading side of a connection (common/cql/segment.h FrameStream over
// common/cql/frame.h FrameDecoder): plain v3/v4/v5 envelopes, switching to v5 segments (plain or
// LZ4) after the frame that ends the handshake, as a session does.
//
// Input: [mode][stream bytes]
//   mode bits 0-1: 0, 3 plain frames only; 1 v5 segments after the handshake; 2 the same, LZ4
//   mode bits 2-6: chunk size - 1 of the socket reads (1..32 bytes)
//   mode bit 7:    a 4096-byte body limit (the limit before STARTUP) instead of 256 MB
// Properties: the stream decodes to the same frames and the same error whether it arrives in
// small chunks through next() or at once through next_raw(); each frame re-encodes to its raw
// bytes.
#include <optional>
#include <string>
#include <vector>

#include "common/cql/segment.h"
#include "tests/fuzz/fuzz_util.h"

using namespace zdm::cql;

namespace {

struct Outcome {
  std::vector<Bytes> frames;
  std::optional<std::string> error;
};

// The frame after which the handshake ends on one side of a v5 connection: STARTUP (client
// side, no authentication), READY or AUTHENTICATE (server side) (v5 §2.3.1).
bool ends_handshake(const Header& h) {
  return h.opcode == Opcode::kStartup || h.opcode == Opcode::kReady ||
         h.opcode == Opcode::kAuthenticate;
}

Outcome decode(BytesView in, std::size_t chunk, bool raw, int segments, uint32_t max_body) {
  Outcome o;
  FrameStream stream(max_body);
  auto take = [&] {
    for (;;) {
      Header h;
      Bytes frame;
      if (raw) {
        if (!stream.next_raw(h, frame)) return;
        FUZZ_CHECK(frame.size() == kHeaderSize + h.length);
        FUZZ_CHECK(decode_header(frame, max_body) == h);
      } else {
        Frame f;
        if (!stream.next(f)) return;
        FUZZ_CHECK(f.body.size() == f.header.length);
        h = f.header;
        frame = encode_frame(f.header, f.body);
      }
      FUZZ_CHECK(h.length <= max_body);
      o.frames.push_back(std::move(frame));
      if (segments && !stream.segmented() && ends_handshake(h))
        stream.enable_segments(segments == 2 ? Compression::kLz4 : Compression::kNone);
    }
  };
  try {
    zdm::fuzz::feed_in_chunks(
        in, chunk, [&](BytesView c) { stream.feed(c); }, take);
  } catch (const ProtocolError& e) {
    o.error = e.what();
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const int segments = (mode & 3) == 3 ? 0 : mode & 3;
  const std::size_t chunk = 1 + ((mode >> 2) & 0x1f);
  const uint32_t max_body = (mode & 0x80) ? 4096 : kMaxBodyLength;
  const BytesView in = zdm::fuzz::bytes_of(data + 1, size - 1);

  const Outcome small = decode(in, chunk, false, segments, max_body);
  const Outcome whole = decode(in, in.size(), true, segments, max_body);
  FUZZ_CHECK(small.frames == whole.frames);
  FUZZ_CHECK(small.error == whole.error);
  return 0;
}
