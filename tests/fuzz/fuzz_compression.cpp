// Harness: compressed v3/v4 frame bodies (common/cql/compression.h decompress_body,
// compress_body): LZ4 with Cassandra's 4-byte length prefix, and Snappy.
//
// Input: [mode][compressed body]
//   mode bit 0: Snappy (else LZ4)
// Properties: a body decompresses or throws ProtocolError, with the limit the proxy uses
// (kMaxBodyLength); what decompresses re-compresses and decompresses to the same bytes; any
// input (as uncompressed bytes) survives compress → decompress.
#include "common/cql/compression.h"
#include "tests/fuzz/fuzz_util.h"

using namespace zdm::cql;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Compression c = (data[0] & 1) ? Compression::kSnappy : Compression::kLz4;
  const BytesView in = zdm::fuzz::bytes_of(data + 1, size - 1);

  try {
    const Bytes plain = decompress_body(c, in);
    FUZZ_CHECK(plain.size() <= kMaxBodyLength);
    FUZZ_CHECK(decompress_body(c, compress_body(c, plain)) == plain);
  } catch (const ProtocolError&) {
  }

  const Bytes packed = compress_body(c, in);
  FUZZ_CHECK(decompress_body(c, packed, static_cast<uint32_t>(in.size())) ==
             Bytes(in.begin(), in.end()));
  return 0;
}
