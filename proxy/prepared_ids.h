// Prepared-id translation between a client and target. Clients only ever see origin's prepared
// ids (ZDM's rule, datastax/zdm-proxy proxy/pkg/zdmproxy/cqlparser.go): the copy of an EXECUTE
// or BATCH sent to target carries target's ids, and target's UNPREPARED error goes back to the
// client with origin's id. Pure: bodies and frames in, bytes out; the prepared cache is a lookup
// passed in. Wire formats: native_protocol_v4.spec §4.1.6 (EXECUTE), §4.1.7 (BATCH), §4.2.1
// (ERROR 0x2500 Unprepared); native_protocol_v5.spec §4.1.6 (<result_metadata_id>).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/cql/compression.h"
#include "common/cql/messages.h"

namespace zdm::proxy {

/// The EXECUTE body target gets. `body`: the client's EXECUTE message body (decompressed), the
/// first `prefix_end` bytes of which (a custom payload, spec §2.2) are kept verbatim. <id>
/// becomes `target_id` and, in versions with one (v5, DSE_V2), <result_metadata_id> becomes
/// `target_result_metadata_id`; the query parameters follow byte for byte. Throws
/// cql::ProtocolError ("truncated frame: expected N bytes, length is M") when the body ends
/// within its ids.
cql::Bytes execute_for_target(cql::BytesView body, std::size_t prefix_end, uint8_t version,
                              cql::BytesView target_id, cql::BytesView target_result_metadata_id);

/// A BATCH for target, from batch_for_target().
struct BatchForTarget {
  /// Target's BATCH body (the client's prefix kept); nullopt when no child is prepared (target
  /// gets the client's frame) or when a child's id is unknown.
  std::optional<cql::Bytes> body;
  /// The id of the first prepared child (origin's): target's UNPREPARED for an id the cache no
  /// longer maps goes back to the client with it.
  cql::Bytes first_origin_id;
  /// A prepared child's id `target_id_of` does not know: nothing is sent, the client gets
  /// unknown_batch_child(*unknown_id).
  std::optional<cql::Bytes> unknown_id;
};

/// Target's copy of a BATCH: each prepared child's <id> (origin's) becomes `target_id_of(id)`,
/// a callable (cql::BytesView origin_id) -> std::optional<cql::Bytes>. Children, values,
/// consistency and flags are re-encoded unchanged. Throws cql::ProtocolError on a malformed
/// body (the messages of cql::BatchMsg::decode).
template <class TargetIdOf>
BatchForTarget batch_for_target(cql::BytesView body, std::size_t prefix_end, uint8_t version,
                                TargetIdOf&& target_id_of);

/// UNPREPARED (0x2500) for an EXECUTE of an id the cache does not know (never prepared through
/// this proxy, or evicted): "Prepared query with ID <n>-byte id not found in ZDM proxy cache".
/// The driver prepares the statement again and retries.
cql::ErrorMsg unknown_execute_id(cql::BytesView id);
/// UNPREPARED (0x2500) for a BATCH child of an id the cache does not know: "Prepared query in
/// BATCH not found in ZDM proxy cache".
cql::ErrorMsg unknown_batch_child(cql::BytesView id);

/// The <id> of an UNPREPARED error response: nullopt when `frame` (a whole response frame, its
/// body compressed with `compression` when its flag says so) is not an ERROR with code 0x2500.
/// Decompressed bodies go to `scratch`. Throws cql::ProtocolError when the error is malformed.
std::optional<cql::Bytes> unprepared_id(const cql::Bytes& frame, cql::Compression compression,
                                        cql::Bytes& scratch);

/// Target's UNPREPARED as the client gets it: an ERROR frame (`version`, stream 0, no flags)
/// with code 0x2500, message "Prepared statement unknown on TARGET" and origin's id for the
/// target id it named: `origin_id_of(target_id)` (a callable (cql::BytesView) ->
/// std::optional<cql::Bytes>), or `fallback_origin_id` (the request's first origin id) when the
/// cache does not map it. nullopt when `frame` is not UNPREPARED. Throws cql::ProtocolError when
/// it is malformed.
template <class OriginIdOf>
std::optional<cql::Bytes> unprepared_for_client(const cql::Bytes& frame,
                                                cql::Compression compression, uint8_t version,
                                                cql::BytesView fallback_origin_id,
                                                OriginIdOf&& origin_id_of, cql::Bytes& scratch);

/// The PREPARE request frame (`version`, `stream`) that prepares `query` again on a connection
/// that answered UNPREPARED; `keyspace` goes in the message in versions with the keyspace flag
/// (v5), as the client's PREPARE carried it (spec v5 §4.1.5).
cql::Bytes reprepare_frame(uint8_t version, int16_t stream, const std::string& query,
                           const std::string& keyspace);

// ---------------------------------------------------------------------------------------------

namespace detail {
cql::BatchMsg decode_batch(cql::BytesView body, std::size_t prefix_end, uint8_t version);
cql::Bytes encode_batch(cql::BytesView body, std::size_t prefix_end, uint8_t version,
                        const cql::BatchMsg& batch);
cql::Bytes unprepared_frame(uint8_t version, cql::BytesView origin_id);
}  // namespace detail

template <class TargetIdOf>
BatchForTarget batch_for_target(cql::BytesView body, std::size_t prefix_end, uint8_t version,
                                TargetIdOf&& target_id_of) {
  cql::BatchMsg batch = detail::decode_batch(body, prefix_end, version);
  BatchForTarget out;
  bool any_prepared = false;
  for (auto& child : batch.children) {
    if (!child.prepared) continue;
    std::optional<cql::Bytes> target_id = target_id_of(cql::BytesView(child.id));
    if (!target_id) {
      out.unknown_id = std::move(child.id);
      return out;
    }
    if (out.first_origin_id.empty()) out.first_origin_id = child.id;
    child.id = std::move(*target_id);
    any_prepared = true;
  }
  if (any_prepared) out.body = detail::encode_batch(body, prefix_end, version, batch);
  return out;
}

template <class OriginIdOf>
std::optional<cql::Bytes> unprepared_for_client(const cql::Bytes& frame,
                                                cql::Compression compression, uint8_t version,
                                                cql::BytesView fallback_origin_id,
                                                OriginIdOf&& origin_id_of, cql::Bytes& scratch) {
  std::optional<cql::Bytes> target_id = unprepared_id(frame, compression, scratch);
  if (!target_id) return std::nullopt;
  std::optional<cql::Bytes> origin_id = origin_id_of(cql::BytesView(*target_id));
  return detail::unprepared_frame(version,
                                  origin_id ? cql::BytesView(*origin_id) : fallback_origin_id);
}

}  // namespace zdm::proxy
