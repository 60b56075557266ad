// Frame-level helpers of the proxy's request path (native_protocol_v4.spec §2): a frame here is
// the whole of it, the 9 header bytes then the body.
#pragma once

#include <cstdint>
#include <optional>

#include "common/cql/compression.h"
#include "common/cql/messages.h"

namespace zdm::proxy {

/// The opcode of `frame` (header byte 4).
inline cql::Opcode frame_opcode(const cql::Bytes& frame) {
  return static_cast<cql::Opcode>(frame[4]);
}

/// A reader positioned at the message body of response `frame`: decompressed into `scratch`
/// when its compression flag is set; tracing id, warnings and custom payload skipped (§2.2).
/// Throws cql::ProtocolError on a corrupt body.
cql::Reader response_reader(const cql::Bytes& frame, cql::Compression compression,
                            cql::Bytes& scratch);

/// The error code of ERROR response `frame` (§4.2.1), SERVER_ERROR (0x0000) when unreadable.
int32_t error_code_of(const cql::Bytes& frame, cql::Compression compression);

/// A new frame with `original`'s header (compression flag cleared, length set) and `body`.
cql::Bytes with_body(const cql::Bytes& original, cql::BytesView body);

/// Where the [consistency] short of request `op` sits in `body` (uncompressed, protocol
/// `version`; `prefix_end`: where the message starts, after a custom payload): QUERY after its
/// query string (§4.1.4), EXECUTE after its id (and, v5, its result metadata id, §4.1.6), BATCH
/// after its statements (§4.1.7). nullopt for other opcodes. Throws cql::ProtocolError on a
/// truncated body.
std::optional<std::size_t> consistency_offset(cql::BytesView body, std::size_t prefix_end,
                                              cql::Opcode op, uint8_t version);
/// Sets the [consistency] of request `frame` (uncompressed) to `level` in place; false when
/// `frame` is not a QUERY, EXECUTE or BATCH. Serial consistency is left as it is. Throws
/// cql::ProtocolError on a truncated body.
bool set_consistency(cql::Bytes& frame, uint16_t level);

}  // namespace zdm::proxy
