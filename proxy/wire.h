// Frame-level helpers of the proxy's request path (native_protocol_v4.spec §2): a frame here is
// the whole of it, the 9 header bytes then the body.
#pragma once

#include <cstdint>

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

/// Sets the [consistency] of request `frame` (uncompressed) to `level` in place (found by
/// cql::consistency_offset); false when `frame` is not a QUERY, EXECUTE or BATCH. Serial
/// consistency is left as it is. Throws cql::ProtocolError on a truncated body.
bool set_consistency(cql::Bytes& frame, uint16_t level);

}  // namespace zdm::proxy
