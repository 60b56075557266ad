#include "proxy/wire.h"

#include "common/cql/version.h"
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

std::optional<std::size_t> consistency_offset(cql::BytesView body, std::size_t prefix_end,
                                              cql::Opcode op, uint8_t version) {
  cql::Reader r(body);
  r.read_raw(prefix_end);
  switch (op) {
    case cql::Opcode::kQuery:
      r.read_raw(static_cast<std::size_t>(r.read_int()));  // [long string] query
      return r.position();
    case cql::Opcode::kExecute:
      r.read_short_bytes_view();  // id
      if (cql::uses_result_metadata_id(version)) r.read_short_bytes_view();
      return r.position();
    case cql::Opcode::kBatch: {
      r.read_byte();  // type
      const uint16_t n = r.read_short();
      for (uint16_t i = 0; i < n; ++i) {
        if (r.read_byte() == 0)
          r.read_raw(static_cast<std::size_t>(r.read_int()));  // [long string] query
        else
          r.read_short_bytes_view();  // id
        const uint16_t values = r.read_short();
        for (uint16_t v = 0; v < values; ++v) {
          const int32_t len = r.read_int();  // [value]: < 0 is null or unset
          if (len > 0) r.read_raw(static_cast<std::size_t>(len));
        }
      }
      return r.position();
    }
    default:
      return std::nullopt;
  }
}

bool set_consistency(Bytes& frame, uint16_t level) {
  const cql::Header h = cql::decode_header(cql::BytesView(frame.data(), cql::kHeaderSize));
  cql::BytesView body(frame.data() + cql::kHeaderSize, frame.size() - cql::kHeaderSize);
  cql::Reader r(body);
  cql::skip_request_prefix(r, h.flags);
  const auto at = consistency_offset(body, r.position(), h.opcode, h.version);
  if (!at) return false;
  if (*at + 2 > body.size()) throw cql::ProtocolError("request too short for its consistency");
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
