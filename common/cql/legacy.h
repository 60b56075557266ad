// Frames of protocol v1/v2, which zdm speaks only to refuse them: their header is 8 bytes with a
// one-byte stream id (native_protocol_v2.spec §2), so a v1/v2 client can read the error.
#pragma once

#include <string>

#include "common/cql/frame.h"

namespace zdm::cql {

/// Size of a v1/v2 frame header in bytes.
inline constexpr std::size_t kLegacyHeaderSize = 8;

/// An ERROR response (PROTOCOL_ERROR 0x000A) with a v1/v2 header: version | 0x80, flags 0,
/// `stream` (one byte), opcode ERROR, body length; body = [int] code + [string] message.
Bytes encode_legacy_protocol_error(uint8_t version, int8_t stream, const std::string& message);

}  // namespace zdm::cql
