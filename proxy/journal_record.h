// The journal's copy of a write (journal.h): a QUERY or BATCH body that target can apply on its
// own, long after the client's connection and its prepared statements are gone. Pure: request
// bodies in, bodies out (native_protocol_v4.spec §4.1.4 QUERY, §4.1.6 EXECUTE, §4.1.7 BATCH;
// v5 the same sections).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/cql/frame.h"

namespace zdm::proxy {

/// The <query_parameters> of EXECUTE `body` (after its prepared id and, v5, result metadata id):
/// a view into `body`. Throws cql::ProtocolError on a malformed body.
cql::BytesView execute_parameters(cql::BytesView body, std::size_t prefix_end, uint8_t version);

/// The QUERY body equivalent to EXECUTE `body` of statement `query`: the same <query_parameters>
/// (consistency, bound values, default timestamp…) after the query string instead of the
/// prepared id (v5: and result metadata id). Throws cql::ProtocolError on a malformed body.
std::string replayable_execute(cql::BytesView body, std::size_t prefix_end, uint8_t version,
                               std::string_view query);

/// The BATCH body equivalent to BATCH `body` with each prepared child turned into its query
/// string (from `query_of(id)`, nullopt: unknown) and the same values. nullopt when a child's id
/// is unknown. Throws cql::ProtocolError on a malformed body.
std::optional<std::string> replayable_batch(
    cql::BytesView body, std::size_t prefix_end, uint8_t version,
    const std::function<std::optional<std::string>(cql::BytesView id)>& query_of);

}  // namespace zdm::proxy
