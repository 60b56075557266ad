#include "proxy/prepared_ids.h"

#include "common/cql/version.h"
#include "proxy/wire.h"

namespace zdm::proxy {

using cql::Bytes;
using cql::BytesView;

Bytes execute_for_target(BytesView body, std::size_t prefix_end, uint8_t version,
                         BytesView target_id, BytesView target_result_metadata_id) {
  cql::Reader r(body);
  r.read_raw(prefix_end);
  r.read_short_bytes_view();                                             // <id>
  if (cql::uses_result_metadata_id(version)) r.read_short_bytes_view();  // <result_metadata_id>
  const std::size_t rest = r.position();
  Bytes out(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(prefix_end));
  cql::Writer w(out);
  w.write_short_bytes(target_id);
  if (cql::uses_result_metadata_id(version)) w.write_short_bytes(target_result_metadata_id);
  out.insert(out.end(), body.begin() + static_cast<std::ptrdiff_t>(rest), body.end());
  return out;
}

cql::ErrorMsg unknown_execute_id(BytesView id) {
  return cql::ErrorMsg::unprepared("Prepared query with ID " + std::to_string(id.size()) +
                                       "-byte id not found in ZDM proxy cache",
                                   id);
}

cql::ErrorMsg unknown_batch_child(BytesView id) {
  return cql::ErrorMsg::unprepared("Prepared query in BATCH not found in ZDM proxy cache", id);
}

std::optional<Bytes> unprepared_id(const Bytes& frame, cql::Compression compression,
                                   Bytes& scratch) {
  if (frame.size() < cql::kHeaderSize || frame_opcode(frame) != cql::Opcode::kError)
    return std::nullopt;
  cql::Reader r(BytesView{});
  try {
    r = response_reader(frame, compression, scratch);
    cql::Reader code = r;
    if (code.read_int() != static_cast<int32_t>(cql::ErrorCode::kUnprepared)) return std::nullopt;
  } catch (const cql::ProtocolError&) {
    return std::nullopt;  // unreadable: not known to be UNPREPARED, passed on as it is
  }
  return cql::ErrorMsg::decode(r).unprepared_id();
}

Bytes reprepare_frame(uint8_t version, int16_t stream, const std::string& query,
                      const std::string& keyspace) {
  cql::PrepareMsg prep;
  prep.query = query;
  if (cql::uses_keyspace_flag(version)) prep.keyspace = keyspace;
  return cql::encode_message(version, false, stream, cql::Opcode::kPrepare, prep);
}

namespace detail {

cql::BatchMsg decode_batch(BytesView body, std::size_t prefix_end, uint8_t version) {
  cql::Reader r(body);
  r.read_raw(prefix_end);
  return cql::BatchMsg::decode(r, version);
}

Bytes encode_batch(BytesView body, std::size_t prefix_end, uint8_t version,
                   const cql::BatchMsg& batch) {
  Bytes out(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(prefix_end));
  cql::Writer w(out);
  batch.encode(w, version);
  return out;
}

Bytes unprepared_frame(uint8_t version, BytesView origin_id) {
  return cql::encode_message(
      version, true, 0, cql::Opcode::kError,
      cql::ErrorMsg::unprepared("Prepared statement unknown on TARGET", origin_id));
}

}  // namespace detail

}  // namespace zdm::proxy
