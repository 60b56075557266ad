// Harness: the decompression path of client frames with its memory budget — what the proxy does
// with a compressed body before and while inflating it: cql::uncompressed_length() (read without
// inflating, to reserve the worker's budget for large frames), net::frame_body(frame, ...,
// max_uncompressed) and cql::decompress_body(..., max_uncompressed).
//
// Input: [mode][4: max_uncompressed, big-endian][4: declared size, big-endian][payload]
//   mode bit 0: Snappy (else LZ4, with the 4-byte declared length of the native protocol)
//   mode bit 1: the payload is plain bytes, compressed here, and its declared size is then
//               replaced by the one of the input: valid compressed data claiming any size
//               (else the payload is the compressed body as it comes)
//   mode bit 2: through net::frame_body (a whole frame, compression flag set), else
//               cql::decompress_body
//   mode bit 3: frame_body on a connection that negotiated no compression
// Invariants: nothing inflates beyond max_uncompressed, nor beyond what the compressed bytes can
// expand to (LZ4 255 per byte, Snappy 22); a body declaring more than max_uncompressed is refused
// before anything is allocated; what inflates has the size uncompressed_length() read; every
// error is a cql::ProtocolError.
#include <exception>

#include "common/cql/compression.h"
#include "common/net/frame_body.h"
#include "tests/fuzz/fuzz_util.h"

using namespace zdm::cql;

namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Replaces the declared uncompressed size of a compressed body by `declared`.
Bytes with_declared(Compression c, Bytes body, uint32_t declared) {
  if (c == Compression::kLz4) {
    for (int i = 0; i < 4; ++i)
      body[static_cast<std::size_t>(i)] = std::byte(declared >> (24 - 8 * i));
    return body;
  }
  // Snappy: a little-endian base-128 varint preamble.
  std::size_t old = 0;
  while (old < body.size() && (std::to_integer<uint8_t>(body[old]) & 0x80)) ++old;
  ++old;
  Bytes out;
  uint32_t v = declared;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    out.push_back(std::byte(v ? b | 0x80 : b));
  } while (v);
  out.insert(out.end(), body.begin() + static_cast<std::ptrdiff_t>(std::min(old, body.size())),
             body.end());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 9) return 0;
  const uint8_t mode = data[0];
  const Compression c = (mode & 1) ? Compression::kSnappy : Compression::kLz4;
  // Limits the proxy uses range from 256 KiB (before the handshake) to 256 MiB; any value here.
  const uint32_t max_uncompressed = be32(data + 1);
  const uint32_t declared = be32(data + 5);
  const BytesView payload = zdm::fuzz::bytes_of(data + 9, size - 9);

  Bytes body;
  if (mode & 2) {
    body = with_declared(c, compress_body(c, payload), declared);
  } else {
    body.assign(payload.begin(), payload.end());
  }
  const uint64_t ratio = c == Compression::kLz4 ? 255 : 22;
  const std::optional<std::size_t> says = uncompressed_length(c, body);

  std::size_t inflated = 0;
  bool ok = false;
  try {
    if (mode & 4) {
      // A v4 request frame: 9-byte header with the compression flag, then the body.
      Bytes frame = {std::byte{0x04}, std::byte{flag::kCompression}, std::byte{0}, std::byte{1},
                     std::byte{0x07}};
      const auto n = static_cast<uint32_t>(body.size());
      for (int i = 0; i < 4; ++i) frame.push_back(std::byte(n >> (24 - 8 * i)));
      frame.insert(frame.end(), body.begin(), body.end());
      Bytes scratch;
      const Compression on = (mode & 8) ? Compression::kNone : c;
      const BytesView got = zdm::net::frame_body(frame, on, scratch, max_uncompressed);
      FUZZ_CHECK(on != Compression::kNone);  // a compressed frame without compression: refused
      FUZZ_CHECK(got.data() == scratch.data() && got.size() == scratch.size());
      inflated = scratch.size();
    } else {
      inflated = decompress_body(c, body, max_uncompressed).size();
    }
    ok = true;
  } catch (const ProtocolError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "not a ProtocolError: %s\n", e.what());
    FUZZ_CHECK(!"every error is a cql::ProtocolError");
  }
  if (ok) {
    FUZZ_CHECK(inflated <= max_uncompressed);
    FUZZ_CHECK(inflated <= body.size() * ratio);
    FUZZ_CHECK(says && *says == inflated);  // what the budget reserved is what was inflated
  }
  // A declared size over the limit is refused before anything is allocated: the checks above
  // (inflated == declared <= limit), and tests/fuzz/run's 128 MB allocation limit against a
  // declared size of up to 4 GiB.
  // A body within the limit that compress_body made and whose size was not rewritten inflates.
  if ((mode & 2) && !(mode & 8) && declared == payload.size() && payload.size() <= max_uncompressed)
    FUZZ_CHECK(ok);
  return 0;
}
