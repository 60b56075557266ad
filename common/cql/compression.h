// Frame-body compression of protocol v3/v4 (native_protocol_v4.spec §5) and the STARTUP
// COMPRESSION option that selects it (§4.1.1). v5 compresses segments instead (segment.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/cql/frame.h"

namespace zdm::cql {

/// A compression algorithm a connection negotiated in STARTUP.
enum class Compression { kNone, kLz4, kSnappy };

/// Parses a STARTUP "COMPRESSION" value: "lz4" or "snappy", in any case (Cassandra lowercases
/// it). Anything else, including "", is std::nullopt: the caller answers with an ERROR.
std::optional<Compression> parse_compression(std::string_view name);

/// The STARTUP "COMPRESSION" value: "lz4", "snappy"; "" for kNone (send no option).
std::string_view compression_name(Compression c);

/// Compresses a frame body for a frame carrying the compression flag (v4 §5):
///   kLz4:    [4-byte big-endian uncompressed length][LZ4 block] (Cassandra's v3/v4 format);
///   kSnappy: raw snappy (no framing);
///   kNone:   a copy of `body`.
/// Throws ProtocolError if `body` is longer than kMaxBodyLength bytes.
Bytes compress_body(Compression c, BytesView body);

/// Inverse of compress_body. The uncompressed size (kLz4: the length prefix; kSnappy: the
/// varint preamble) is checked before anything is allocated: against `max_uncompressed` bytes,
/// and against what the compressed bytes can expand to (LZ4: 255 per byte; Snappy: 22).
/// Throws ProtocolError: "compressed frame body declares N bytes uncompressed, limit M"; on
/// corrupt or truncated input (never reads past `body`); for kNone (a compressed frame on a
/// connection that negotiated no compression).
Bytes decompress_body(Compression c, BytesView body, uint32_t max_uncompressed = kMaxBodyLength);

/// The uncompressed size a compressed frame body declares (kLz4: its 4-byte prefix; kSnappy:
/// its varint preamble), read without inflating anything: what decompress_body() would
/// allocate. std::nullopt when the body is too short or corrupt to say (decompress_body() then
/// throws), and for kNone.
std::optional<std::size_t> uncompressed_length(Compression c, BytesView body);

/// The first bytes of an LZ4 frame body (kLz4's 4-byte length prefix, then a block), inflated
/// into `out` without inflating the rest: min(`n`, declared) bytes, or fewer when the block is
/// shorter than it declares (what is returned is then all there is; decompress_body() would
/// refuse the body). Enough to read a request's leading fields (its query string) without
/// paying for a body that inflates to hundreds of MiB. `out` keeps its capacity between calls.
/// Throws ProtocolError on a missing prefix or a malformed block (never reads past `body`).
BytesView lz4_body_prefix(BytesView body, std::size_t n, Bytes& out);

/// Raw LZ4 block helpers shared with v5 segments (no length prefix).
/// lz4_compress_block appends the block to `out` and returns its size in bytes.
std::size_t lz4_compress_block(BytesView in, Bytes& out);
/// Decompresses a block that must expand to exactly `out.size()` bytes; throws ProtocolError
/// naming `what` otherwise.
void lz4_decompress_block(BytesView in, std::span<std::byte> out, const char* what);

}  // namespace zdm::cql
