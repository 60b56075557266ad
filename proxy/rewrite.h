// Writes rewritten so origin and target store the same thing (issue 12 "one value for both
// clusters"): now(), uuid() and friends replaced by one value the proxy generates, and one write
// timestamp set by the proxy when the client sets none, so last-write-wins resolves the same way
// on both clusters. Pure: request bodies in, request bodies out (native_protocol_v4.spec §4.1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/cql/functions.h"
#include "common/cql/messages.h"

namespace zdm::proxy {

/// A bind marker the proxy added to a prepared statement in place of a function call: its
/// index among the statement's markers, what it generates, its name (named-marker statements).
struct GeneratedMarker {
  int index = 0;
  cql::Generated value = cql::Generated::kTimeUuid;
  std::string name;
};

/// How EXECUTEs of a prepared write are completed (kept in the prepared cache).
struct WritePlan {
  std::vector<GeneratedMarker> generated;  // values the proxy adds
  bool timestamp_allowed = false;          // a plain write: the proxy may set its timestamp
  std::string table;                       // "ks.table" written (journal records, metrics)
};

/// Microseconds since the epoch for a write timestamp: the system clock, strictly increasing
/// on each thread (so two writes of one connection never share a timestamp).
int64_t write_timestamp_us();

/// The plan for a write statement's text: markers for its calls when `replace_calls`, and
/// whether a timestamp may be set (not for lightweight transactions or counter updates, where
/// Cassandra refuses one).
WritePlan plan_write(const cql::StatementScan& scan, bool replace_calls);

/// True if `cql` may contain a call rewrite_query() replaces (an empty argument list "()"), a
/// cheap test before scan_statement().
bool may_have_calls(std::string_view cql);

/// True if the <query_parameters> at `params_at` of `body` carry a default timestamp.
bool has_default_timestamp(cql::BytesView body, std::size_t params_at, uint8_t version);

/// QUERY body of a write (custom payload prefix of `prefix_end` bytes kept): calls replaced by
/// literals, a default timestamp set if the client set none and the plan allows. nullopt when
/// nothing changes. Throws cql::ProtocolError on a malformed body.
std::optional<cql::Bytes> rewrite_query(cql::BytesView body, std::size_t prefix_end,
                                        uint8_t version, const cql::StatementScan& scan,
                                        int64_t now_us);

/// EXECUTE body: generated values inserted at their markers, and a default timestamp if the
/// plan allows and the client set none. nullopt when nothing changes. Throws cql::ProtocolError.
std::optional<cql::Bytes> rewrite_execute(cql::BytesView body, std::size_t prefix_end,
                                          uint8_t version, const WritePlan& plan, int64_t now_us);

/// BATCH body: each simple child's calls replaced by literals, each prepared child completed by
/// `plan_of(id)` (nullptr: leave it), a default timestamp when no child forbids one (counter
/// batches and conditional children do). nullopt when nothing changes. Throws cql::ProtocolError.
template <class PlanOf>
std::optional<cql::Bytes> rewrite_batch(cql::BytesView body, std::size_t prefix_end,
                                        uint8_t version, PlanOf&& plan_of, int64_t now_us);

/// The PREPARED result the client sees for a statement whose calls became markers: those
/// bind variables removed from the metadata (and the partition-key indices with them).
cql::ResultMsg hide_generated(cql::ResultMsg prepared, const WritePlan& plan);

// ---------------------------------------------------------------------------------------------

namespace detail {
std::optional<cql::Bytes> finish_batch(cql::BytesView body, std::size_t prefix_end, uint8_t version,
                                       cql::BatchMsg& batch, bool changed, bool timestamp_allowed,
                                       int64_t now_us);
void complete_values(std::vector<cql::Value>& values, std::vector<std::string>* names,
                     const WritePlan& plan, int64_t now_us);
std::string with_literals(std::string_view query, const cql::StatementScan& scan, int64_t now_us);
}  // namespace detail

template <class PlanOf>
std::optional<cql::Bytes> rewrite_batch(cql::BytesView body, std::size_t prefix_end,
                                        uint8_t version, PlanOf&& plan_of, int64_t now_us) {
  cql::Reader r(body.subspan(prefix_end));
  cql::BatchMsg batch = cql::BatchMsg::decode(r, version);
  bool changed = false;
  bool timestamp_allowed = batch.type != cql::BatchType::kCounter;
  for (auto& child : batch.children) {
    if (child.prepared) {
      const WritePlan* plan = plan_of(child.id);
      if (!plan) {
        timestamp_allowed = false;
        continue;
      }
      if (!plan->generated.empty()) {
        detail::complete_values(child.values, nullptr, *plan, now_us);
        changed = true;
      }
      timestamp_allowed = timestamp_allowed && plan->timestamp_allowed;
    } else {
      cql::StatementScan scan = cql::scan_statement(child.query);
      if (!scan.calls.empty()) {
        child.query = detail::with_literals(child.query, scan, now_us);
        changed = true;
      }
      timestamp_allowed = timestamp_allowed && !scan.conditional && !scan.counter_update;
    }
  }
  return detail::finish_batch(body, prefix_end, version, batch, changed, timestamp_allowed, now_us);
}

}  // namespace zdm::proxy
