// The body of a frame as read from a socket, inflated when its compression flag is set. Apart
// from node_connection.h (which includes it) so that code without sockets (the fuzz harnesses)
// uses the very function the proxy does.
#pragma once

#include <cstdint>

#include "common/cql/compression.h"
#include "common/cql/frame.h"

namespace zdm::net {

/// Reads the body of `frame` (header included), decompressing it into `scratch` when its
/// compression flag is set. Throws cql::ProtocolError on a corrupt body, or one that declares
/// more than `max_uncompressed` bytes uncompressed (checked before inflating).
cql::BytesView frame_body(const cql::Bytes& frame, cql::Compression compression,
                          cql::Bytes& scratch, uint32_t max_uncompressed = cql::kMaxBodyLength);

}  // namespace zdm::net
