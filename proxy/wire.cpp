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

bool set_consistency(Bytes& frame, uint16_t level) {
  const cql::Header h = cql::decode_header(cql::BytesView(frame.data(), cql::kHeaderSize));
  cql::BytesView body(frame.data() + cql::kHeaderSize, frame.size() - cql::kHeaderSize);
  cql::Reader r(body);
  cql::skip_request_prefix(r, h.flags);
  const auto at = cql::consistency_offset(body, r.position(), h.opcode, h.version);
  if (!at) return false;
  frame[cql::kHeaderSize + *at] = static_cast<std::byte>(level >> 8);
  frame[cql::kHeaderSize + *at + 1] = static_cast<std::byte>(level & 0xff);
  return true;
}

Bytes with_body(const Bytes& original, cql::BytesView body) {
  cql::Header h = cql::decode_header(cql::BytesView(original.data(), cql::kHeaderSize));
  h.flags &= static_cast<uint8_t>(~cql::flag::kCompression);
  return cql::encode_frame(h, body);
}

}  // namespace zdm::proxy
