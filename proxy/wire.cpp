#include "proxy/wire.h"

#include "common/net/node_connection.h"

namespace zdm::proxy {

using cql::Bytes;

cql::Reader response_reader(const Bytes& frame, cql::Compression compression, Bytes& scratch) {
  cql::Reader r(net::frame_body(frame, compression, scratch));
  cql::skip_response_prefix(r, std::to_integer<uint8_t>(frame[1]));
  return r;
}

int32_t error_code_of(const Bytes& frame, cql::Compression compression) {
  try {
    Bytes scratch;
    cql::Reader r = response_reader(frame, compression, scratch);
    return r.read_int();
  } catch (const cql::ProtocolError&) {
    return static_cast<int32_t>(cql::ErrorCode::kServerError);
  }
}

Bytes with_body(const Bytes& original, cql::BytesView body) {
  cql::Header h = cql::decode_header(cql::BytesView(original.data(), cql::kHeaderSize));
  h.flags &= static_cast<uint8_t>(~cql::flag::kCompression);
  return cql::encode_frame(h, body);
}

}  // namespace zdm::proxy
