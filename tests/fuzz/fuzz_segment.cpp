// Harness: v5 segments (common/cql/segment.h SegmentDecoder, SegmentEncoder), uncompressed and
// LZ4, including envelopes split over several segments.
//
// Input: [mode][segment bytes]
//   mode bit 0:    LZ4 segments (else uncompressed)
//   mode bit 1:    also wrap the input as the body of one envelope larger than a segment
//                  (kMaxSegmentPayload) and round-trip it through the encoder and decoder
//   mode bits 2-7: chunk size - 1 of the socket reads (1..64 bytes)
// Properties: chunking changes nothing; the envelopes decoded re-encode (SegmentEncoder) into
// segments that decode to the same envelopes.
#include <optional>
#include <string>
#include <vector>

#include "common/cql/segment.h"
#include "tests/fuzz/fuzz_util.h"

using namespace zdm::cql;

namespace {

struct Outcome {
  std::vector<Bytes> envelopes;
  std::optional<std::string> error;
};

Outcome decode(BytesView in, Compression c, std::size_t chunk) {
  Outcome o;
  SegmentDecoder dec(c);
  auto take = [&] {
    Header h;
    Bytes env;
    while (dec.next_raw(h, env)) {
      FUZZ_CHECK(env.size() == kHeaderSize + h.length);
      o.envelopes.push_back(std::move(env));
    }
  };
  try {
    zdm::fuzz::feed_in_chunks(
        in, chunk, [&](BytesView b) { dec.feed(b); }, take);
  } catch (const ProtocolError& e) {
    o.error = e.what();
  }
  return o;
}

// Encodes `envelopes` into segments and decodes them again: the same envelopes, no error.
void round_trip(const std::vector<Bytes>& envelopes, Compression c, std::size_t chunk) {
  std::vector<BytesView> views(envelopes.begin(), envelopes.end());
  SegmentEncoder enc(c);
  Bytes wire;
  enc.encode(views, wire);
  const Outcome again = decode(wire, c, chunk);
  FUZZ_CHECK(!again.error);
  FUZZ_CHECK(again.envelopes == envelopes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const Compression c = (mode & 1) ? Compression::kLz4 : Compression::kNone;
  const std::size_t chunk = 1 + (mode >> 2);
  const BytesView in = zdm::fuzz::bytes_of(data + 1, size - 1);

  const Outcome small = decode(in, c, chunk);
  const Outcome whole = decode(in, c, in.size());
  FUZZ_CHECK(small.envelopes == whole.envelopes);
  FUZZ_CHECK(small.error == whole.error);
  if (!whole.envelopes.empty()) round_trip(whole.envelopes, c, 4096);

  if ((mode & 2) && !in.empty()) {
    // One envelope whose body is the input repeated past a segment's payload limit.
    Bytes body;
    while (body.size() <= kMaxSegmentPayload) body.insert(body.end(), in.begin(), in.end());
    Header h{5, true, 0, 1, Opcode::kResult, 0};
    round_trip({encode_frame(h, body)}, c, 65536);
  }
  return 0;
}
