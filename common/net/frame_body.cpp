#include "common/net/frame_body.h"

namespace zdm::net {

cql::BytesView frame_body(const cql::Bytes& frame, cql::Compression compression,
                          cql::Bytes& scratch, uint32_t max_uncompressed) {
  cql::BytesView body(frame.data() + cql::kHeaderSize, frame.size() - cql::kHeaderSize);
  if (!(std::to_integer<uint8_t>(frame[1]) & cql::flag::kCompression)) return body;
  if (compression == cql::Compression::kNone)
    throw cql::ProtocolError("compressed frame on a connection without compression");
  scratch = cql::decompress_body(compression, body, max_uncompressed);
  return scratch;
}

}  // namespace zdm::net
