// The frames cqlbench sends, built on the project's codec (common/cql) and nothing else: the
// handshake and setup messages, and the hot-path EXECUTE frames, made from a template per
// statement with only the stream id, the key and the write timestamp patched in (plus LZ4 when
// negotiated), so a request costs the load generator one copy. Pure: no sockets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/cql/compression.h"
#include "common/cql/frame.h"
#include "common/cql/notation.h"

namespace zdm::bench {

using cql::Bytes;
using cql::BytesView;

/// The table every workload reads and writes: one bigint partition key, one blob.
struct Schema {
  std::string keyspace = "zdmbench";
  std::string table = "kv";

  std::string create_keyspace() const;
  std::string create_table() const;
  /// The prepared read and write, as a driver's application would run them.
  std::string select() const;
  std::string insert() const;
};

enum class Op : uint8_t { kRead, kWrite };

/// Hot-path EXECUTE frames of the two prepared statements, in protocol v3 or v4 (same EXECUTE
/// layout; v5 needs segments and is not supported). Reads ask for skip-metadata and a page size
/// of 5000, as drivers do; writes carry a client timestamp, as drivers do (so the proxy never
/// has to add one).
class RequestBuilder {
 public:
  RequestBuilder(uint8_t version, cql::Compression compression, BytesView select_id,
                 BytesView insert_id, std::size_t value_size,
                 cql::Consistency consistency = cql::Consistency::kLocalOne);

  /// Appends one whole EXECUTE frame (header + body, compressed when negotiated) to `out`.
  void append(Op op, int16_t stream, int64_t key, int64_t timestamp_us, Bytes& out);

  /// The uncompressed body `append` would send (for tests).
  Bytes body(Op op, int64_t key, int64_t timestamp_us);

 private:
  void fill(Op op, int64_t key, int64_t timestamp_us);

  uint8_t version_;
  cql::Compression compression_;
  Bytes read_, write_;  // body templates
  std::size_t read_key_at_ = 0, write_key_at_ = 0, write_ts_at_ = 0;
  Bytes scratch_;  // the body before compression
};

/// STARTUP with CQL_VERSION 3.0.0 and COMPRESSION when `compression` is not kNone.
Bytes startup_frame(uint8_t version, cql::Compression compression);
/// QUERY of `query` (no values) at `consistency`.
Bytes query_frame(uint8_t version, int16_t stream, std::string_view query,
                  cql::Consistency consistency = cql::Consistency::kLocalOne);
Bytes prepare_frame(uint8_t version, int16_t stream, std::string_view query);
/// AUTH_RESPONSE carrying `token`.
Bytes auth_response_frame(uint8_t version, int16_t stream, BytesView token);
/// Compresses the body of a whole frame (sets the flag) when `compression` is not kNone: the
/// setup frames after STARTUP go out as every other frame does.
Bytes compress_frame(const Bytes& frame, cql::Compression compression);

/// Big-endian helpers for the fixed-layout patches.
inline void put_be64(std::byte* at, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) at[i] = static_cast<std::byte>(v & 0xff);
}
inline void put_be32(std::byte* at, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) at[i] = static_cast<std::byte>(v & 0xff);
}

}  // namespace zdm::bench
