#include "proxy/request.h"

#include <spdlog/spdlog.h>

#include "common/cql/version.h"
#include "proxy/prepared_ids.h"
#include "proxy/wire.h"

namespace zdm::proxy {

using cql::Bytes;
using cql::BytesView;
using cql::Opcode;

namespace {

/// The clusters that got the statement prepared it: the ids go to the cache; the client's
/// PREPARED `resp` loses the proxy's generated markers. Prepared by one cluster alone (the
/// other was down: PendingRequest::primary_suffices), its id stands for both: an EXECUTE the
/// other cluster does not know comes back UNPREPARED and the driver prepares it again.
void cache_prepared(PendingRequest& p, Bytes& resp, ResponseContext& ctx) {
  const bool both = p.expected[0] && p.expected[1] && p.received[1];
  Bytes scratch_t;
  cql::Reader ro = response_reader(resp, ctx.compression, ctx.scratch);
  cql::Reader rt = both ? response_reader(p.responses[1], ctx.compression, scratch_t)
                        : response_reader(resp, ctx.compression, scratch_t);
  auto ko = ro.read_int(), kt = rt.read_int();
  if (ko != static_cast<int32_t>(cql::ResultKind::kPrepared) ||
      kt != static_cast<int32_t>(cql::ResultKind::kPrepared))
    return;
  PreparedEntry e;
  e.origin_id = ro.read_short_bytes();
  e.target_id = rt.read_short_bytes();
  if (cql::uses_result_metadata_id(p.version)) {
    e.origin_result_metadata_id = ro.read_short_bytes();
    e.target_result_metadata_id = rt.read_short_bytes();
  }
  try {
    // <metadata> of the bound variables: flags, columns count, then (v4+) the partition key's
    // indices (native_protocol_v4.spec §4.2.5.4).
    ro.read_int();
    ro.read_int();
    if (p.version >= 4) {
      const int32_t n = ro.read_int();
      ro.check_count(static_cast<uint64_t>(std::max(n, 0)), 2, "partition key indices");
      for (int32_t i = 0; i < n; ++i) e.pk_indices.push_back(ro.read_short());
    }
  } catch (const cql::ProtocolError&) {
    e.pk_indices.clear();
  }
  e.decision = p.execute_decision;
  e.query = p.query;
  e.keyspace = ctx.keyspace;
  e.plan = p.plan;
  auto& shared = ctx.shared;
  if (shared.prepared.put(e)) shared.metrics.pscache_evictions().inc();
  shared.metrics.pscache_entries().set(static_cast<int64_t>(shared.prepared.size()));
  if (!p.plan.generated.empty()) {
    // The client sees the statement it prepared: without the proxy's markers.
    cql::Reader rr = response_reader(resp, ctx.compression, ctx.scratch);
    auto msg = hide_generated(cql::ResultMsg::decode(rr, p.version), p.plan);
    resp = cql::encode_message(p.version, true, 0, Opcode::kResult, msg);
  }
}

}  // namespace

Bytes client_response(PendingRequest& p, const Outcome& o, ResponseContext& ctx) {
  const bool* err = o.error;
  const Cluster chosen = o.chosen;
  Bytes resp = std::move(p.responses[static_cast<int>(chosen)]);
  try {
    if (p.opcode == Opcode::kPrepare && !err[0] && !err[1]) cache_prepared(p, resp, ctx);
    if (err[static_cast<int>(chosen)] && chosen == Cluster::kTarget &&
        !p.origin_prepared_id.empty()) {
      // The client only knows origin ids: target's id of the statement target does not know
      // (the right child of a BATCH) maps back to origin's.
      auto origin_id_of = [&](BytesView id) {
        return ctx.shared.prepared.origin_id_for_target(id);
      };
      if (auto mapped = unprepared_for_client(resp, ctx.compression, p.version,
                                              p.origin_prepared_id, origin_id_of, ctx.scratch))
        resp = std::move(*mapped);
    }
    if (frame_opcode(resp) == Opcode::kResult) {
      cql::Reader r = response_reader(resp, ctx.compression, ctx.scratch);
      if (r.read_int() == static_cast<int32_t>(cql::ResultKind::kSetKeyspace))
        ctx.keyspace = r.read_string();
    }
  } catch (const cql::ProtocolError& e) {
    spdlog::warn("Malformed response from {}: {}", cluster_name(chosen), e.what());
  }
  if (std::to_integer<uint8_t>(resp[1]) & cql::flag::kTracing) {
    // Traced: its session id leads later system_traces reads to this cluster.
    ctx.traces.record(resp, ctx.compression, ctx.scratch, chosen);
  }
  return resp;
}

void protect_outcome(PendingRequest& p, Outcome& o, TargetGuard& guard) {
  if (p.unreplayable && p.received[1] && o.error[1] && !p.unprepared[1])
    guard.unjournaled(p.journal_table, "lwt_or_counter");
  if (p.journal_seq == 0) return;
  const bool origin_ok = p.received[0] && !o.error[0];
  if (!origin_ok) {  // an ERROR (UNPREPARED too: the driver prepares and sends it again)
    guard.settle(p.journal_seq, journal::Settlement::kOriginFailed);
    return;
  }
  if (!p.expected[1]) return;  // held back: counted when it was routed
  const bool target_answered = p.received[1] && p.target_missed == journal::Reason::kInFlight;
  if (target_answered && !o.error[1]) {
    guard.settle(p.journal_seq, journal::Settlement::kTargetApplied);
    guard.target_succeeded();
    return;
  }
  if (target_answered && p.unprepared[1]) {
    // Target restarted and lost its statements: the client gets the UNPREPARED, so the driver
    // prepares the statement again on both clusters and retries; this try stays for replay.
    guard.missed(p.journal_table, journal::Reason::kTargetError);
    return;
  }
  if (target_answered) {
    guard.missed(p.journal_table, journal::Reason::kTargetError);
    guard.target_failed();
  }
  // Given up (timeout, lost, unreachable): counted when it was given up.
  if (origin_ok) {
    o.chosen = Cluster::kOrigin;
    o.error[1] = false;
  }
}

void PendingRequest::sent(ProxyMetrics& m, bool to_origin, bool to_target) {
  expected[0] = to_origin;
  expected[1] = to_target;
  if (decision.metric != RequestType::kNone) m.inflight(decision.metric).add();
}

bool PendingRequest::answer(Cluster c, cql::Bytes frame, NodeMetrics* node,
                            cql::Compression compression) {
  if (frame_opcode(frame) == cql::Opcode::kError) {
    const int32_t code = error_code_of(frame, compression);
    unprepared[static_cast<int>(c)] = code == static_cast<int32_t>(cql::ErrorCode::kUnprepared);
    if (node && decision.metric != RequestType::kNone)
      node->requests_failed[error_label(code)]->inc();
  }
  if (node && decision.metric != RequestType::kNone) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    (decision.metric == RequestType::kWrites ? node->writes : node->reads)->observe(secs);
  }
  responses[static_cast<int>(c)] = std::move(frame);
  received[static_cast<int>(c)] = true;
  return !awaits(Cluster::kOrigin) && !awaits(Cluster::kTarget);
}

Outcome PendingRequest::answered(ProxyMetrics& m, Cluster primary) const {
  Outcome o;
  bool failed[2];
  for (int c = 0; c < 2; ++c) {
    o.error[c] = expected[c] && received[c] && frame_opcode(responses[c]) == cql::Opcode::kError;
    failed[c] = o.error[c] && !unprepared[c];
  }
  if (target_missed != journal::Reason::kInFlight && expected[1] && !received[1])
    failed[1] = true;  // isolate gave up on target: failed there (no answer to pass on)
  o.chosen = end(m, failed, primary, true);
  if (failed[0] != o.error[0] || failed[1] != o.error[1])
    o.chosen = aggregate(expected, o.error, opcode, decision.metric, primary).chosen;
  if (target_missed != journal::Reason::kInFlight && !received[1])
    o.chosen = Cluster::kOrigin;  // target has no answer to give
  return o;
}

void PendingRequest::lost(ProxyMetrics& m, Cluster lost, Cluster primary) const {
  const int l = static_cast<int>(lost), o = 1 - l;
  bool failed[2];
  failed[l] = true;
  failed[o] = expected[o] && received[o] && frame_opcode(responses[o]) == cql::Opcode::kError;
  end(m, failed, primary, false);
  if (decision.metric == RequestType::kNone)
    m.client_errors(ProxyMetrics::ClientError::kNodeFailed).inc();
}

void PendingRequest::unreachable(ProxyMetrics& m, Cluster unreachable, Cluster primary) {
  const Destination d = decision.destination;
  expected[0] = d == Destination::kOrigin || d == Destination::kBoth;
  expected[1] = d == Destination::kTarget || d == Destination::kBoth;
  bool failed[2] = {false, false};
  failed[static_cast<int>(unreachable)] = true;
  end(m, failed, primary, false, false);
  if (decision.metric == RequestType::kNone)
    m.client_errors(ProxyMetrics::ClientError::kNodeFailed).inc();
}

void PendingRequest::timed_out(ProxyMetrics& m, Cluster primary) const {
  const bool failed[2] = {awaits(Cluster::kOrigin), awaits(Cluster::kTarget)};
  end(m, failed, primary, false);
}

void PendingRequest::abandoned(ProxyMetrics& m) const {
  const bool failed[2] = {false, false};
  end(m, failed, Cluster::kOrigin, false);
}

Cluster PendingRequest::end(ProxyMetrics& m, const bool failed[2], Cluster primary, bool answered,
                            bool sent) const {
  const Aggregate a = aggregate(expected, failed, opcode, decision.metric, primary);
  switch (a.failed_write) {
    case Aggregate::FailedWrite::kBoth:
      m.failed_writes_both().inc();
      break;
    case Aggregate::FailedWrite::kOrigin:
      m.failed_writes_origin().inc();
      break;
    case Aggregate::FailedWrite::kTarget:
      m.failed_writes_target().inc();
      break;
    case Aggregate::FailedWrite::kNone:
      break;
  }
  if (a.failed_read) m.failed_reads(a.chosen).inc();
  if (decision.metric != RequestType::kNone && sent) {
    if (answered)
      m.request_duration(decision.metric)
          .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    m.inflight(decision.metric).sub();
  }
  return a.chosen;
}

}  // namespace zdm::proxy
