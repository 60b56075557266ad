// What each protocol version carries, one predicate per spec concept (native_protocol_v5.spec
// §9 "Changes from v4"). DSE's private versions 0x41 (DSE_V1) and 0x42 (DSE_V2) compare above 5,
// so every "v5 or later" test must decide for them explicitly; the answers follow the DataStax
// python-driver (cassandra/__init__.py ProtocolVersion).
#pragma once

#include <cstdint>

#include "common/cql/frame.h"

namespace zdm::cql {

/// The header's version byte of the DSE versions (ProtocolVersion in frame.h).
inline constexpr uint8_t kDseV1 = static_cast<uint8_t>(ProtocolVersion::DseV1);
inline constexpr uint8_t kDseV2 = static_cast<uint8_t>(ProtocolVersion::DseV2);

/// Query, EXECUTE and BATCH flags are an [int], not a [byte] (v5 §4.1.4). v5, DSE_V1, DSE_V2.
constexpr bool uses_int_query_flags(uint8_t version) {
  return version >= 5;
}

/// PREPARE carries an [int] <flags> after the query (v5 §4.1.5). v5 and DSE_V2.
constexpr bool uses_prepare_flags(uint8_t version) {
  return version >= 5 && version != kDseV1;
}

/// The "with keyspace" flag: QUERY/BATCH flag 0x80 and PREPARE flag 0x01 are followed by a
/// [string] keyspace (v5 §4.1.4, §4.1.5, §4.1.7). v5 and DSE_V2.
constexpr bool uses_keyspace_flag(uint8_t version) {
  return version >= 5 && version != kDseV1;
}

/// EXECUTE and the Prepared result carry a <result_metadata_id>, and Rows metadata its
/// <new_metadata_id> (v5 §4.1.6, §4.2.5.2, §4.2.5.4). v5 and DSE_V2 (python-driver:
/// uses_prepared_metadata).
constexpr bool uses_result_metadata_id(uint8_t version) {
  return version >= 5 && version != kDseV1;
}

/// Prepared metadata carries <pk_count> and the pk indices (v4 §4.2.5.4; absent in v3).
constexpr bool uses_pk_indices(uint8_t version) {
  return version >= 4;
}

/// READ_FAILURE and WRITE_FAILURE carry a <reasonmap> instead of <numfailures> (v5 §8).
/// v5, DSE_V1, DSE_V2 (python-driver: uses_error_code_map).
constexpr bool uses_error_code_map(uint8_t version) {
  return version >= 5;
}

/// After the STARTUP handshake, envelopes travel inside checksummed segments (v5 §2). Only
/// v5: the DSE versions keep v4's plain frames (python-driver: has_checksumming_support).
constexpr bool uses_segments(uint8_t version) {
  return version >= 5 && version < kDseV1;
}

/// The header's compression flag (0x01) means a compressed body (v4 §2.2, §5). In v5 the flag
/// is deprecated and ignored: segments are compressed instead (v5 §2.4.1.2).
constexpr bool uses_body_compression_flag(uint8_t version) {
  return !uses_segments(version);
}

}  // namespace zdm::cql
