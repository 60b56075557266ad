// A client request in flight on the proxy: the clusters it was sent to, their answers, when it
// started, and how it ended. The session keeps one per request id in its pending map (no other
// allocation per request). How a request ends is counted in one place, end(): the failed reads
// and writes (ZDM's zdm_proxy_failed_{reads,writes}_total), its duration and the in-flight
// gauge, whatever ended it: the answers, a lost cluster connection, the request timeout or the
// session closing.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/cql/compression.h"
#include "common/cql/frame.h"
#include "common/journal/journal.h"
#include "proxy/metrics.h"
#include "proxy/rewrite.h"
#include "proxy/router.h"
#include "proxy/shared_state.h"
#include "proxy/system_queries.h"

namespace zdm::proxy {

/// What the client gets for a request every cluster answered, from PendingRequest::answered().
struct Outcome {
  Cluster chosen = Cluster::kOrigin;  // whose answer goes to the client
  bool error[2] = {false, false};     // by Cluster: an expected cluster answered with an ERROR
};

struct PendingRequest {
  int16_t client_stream = 0;  // the client's stream id (spec §2.3)
  cql::Opcode opcode = cql::Opcode::kQuery;
  uint8_t version = 4;  // protocol version of the request
  Decision decision;
  std::chrono::steady_clock::time_point start;
  cql::Bytes responses[2];  // whole response frames, by Cluster
  bool expected[2] = {false, false};
  bool received[2] = {false, false};
  bool unprepared[2] = {false, false};  // the answer was UNPREPARED (not counted as failed)
  // For both clusters, but the primary's answer alone serves the client (USE, PREPARE,
  // REGISTER, OPTIONS): while the secondary is down it goes to the primary alone.
  bool primary_suffices = false;
  // PREPARE: what to cache when both succeed. EXECUTE/BATCH: the origin id (for UNPREPARED).
  std::string query;
  cql::Bytes origin_prepared_id;
  Decision execute_decision;
  WritePlan plan;  // PREPARE of a write: how its EXECUTEs are completed
  // Target protection (target_guard.h): the write's journal record (0: not journaled), its
  // "ks.table", and why target's answer is no longer awaited (isolate: target failed, timed out
  // or was unreachable; the client gets origin's answer). kInFlight: still awaited.
  uint64_t id = 0;  // the session's request id (set when sent)
  // read_compare: the mirrored read's "ks.table" and partition key for logs.
  std::string compare_table, compare_key;
  uint64_t journal_seq = 0;
  bool unreplayable = false;  // a write never journaled (LWT, counter update): isolate counts
                              // target's failure of it apart
  std::string journal_table;
  journal::Reason target_missed = journal::Reason::kInFlight;

  /// The request went to origin and/or target: it counts as in flight (by its metric type).
  void sent(ProxyMetrics& m, bool to_origin, bool to_target);
  /// True while `c` owes this request an answer.
  bool awaits(Cluster c) const {
    return expected[static_cast<int>(c)] && !received[static_cast<int>(c)] &&
           !(c == Cluster::kTarget && target_missed != journal::Reason::kInFlight);
  }
  /// isolate: target's answer is no longer awaited (`why`); the request ends on origin's.
  void give_up_target(journal::Reason why) { target_missed = why; }
  /// Records `c`'s answer `frame` (a whole response frame; its body compressed with
  /// `compression` when its flag says so). A tracked request observes the node's latency in
  /// `node` (seconds) and counts an ERROR by its label. True once no cluster owes an answer.
  bool answer(Cluster c, cql::Bytes frame, NodeMetrics* node, cql::Compression compression);

  // How the request ended: each counts it once, then the request is dropped from the session.

  /// Every expected cluster answered: which answer the client gets (router.h aggregate(), with
  /// `primary` the cluster whose answer wins when both succeed); failures counted from the
  /// ERROR answers but UNPREPARED (a step of the protocol the driver takes without failing the
  /// request: it prepares the statement again and retries, native_protocol_v4.spec §8), the
  /// duration observed.
  Outcome answered(ProxyMetrics& m, Cluster primary) const;
  /// `lost`'s connection closed while it owed an answer: counted as failed there (and on the
  /// other cluster too if that one answered with an ERROR).
  void lost(ProxyMetrics& m, Cluster lost, Cluster primary) const;
  /// Never sent: no node of `unreachable` could be reached (request.decision says where it was
  /// to go). Counted as failed there, as lost() would.
  void unreachable(ProxyMetrics& m, Cluster unreachable, Cluster primary);
  /// No answer within proxy_request_timeout_ms: failed on each cluster that owes one.
  void timed_out(ProxyMetrics& m, Cluster primary) const;
  /// The session closed with the request in flight: nothing counted as failed.
  void abandoned(ProxyMetrics& m) const;

 private:
  /// The one place a request's end is counted: `failed` by Cluster, aggregated as an answer
  /// with those ERRORs would be; `answered`: the duration is observed.
  /// `sent`: false for a request that never went out (no in-flight gauge to take back).
  Cluster end(ProxyMetrics& m, const bool failed[2], Cluster primary, bool answered,
              bool sent = true) const;
};

/// Target protection once every awaited cluster answered (`o` from answered()), for a journaled
/// write (p.journal_seq != 0): origin refused it → settled (the client learns it failed);
/// target applied it → settled; target failed it (an ERROR other than UNPREPARED, or given up)
/// → its record stays for replay, counted by table, and the client gets origin's answer
/// (o.chosen), as isolate mode promises. A write that cannot be journaled (p.unreplayable) keeps
/// fail mode's outcome; target's failure of it is counted in
/// zdm_proxy_target_unjournaled_writes_total. Nothing for other requests.
void protect_outcome(PendingRequest& p, Outcome& o, TargetGuard& guard);

/// What a response needs from its client connection on the way to the client.
struct ResponseContext {
  SharedState& shared;           // the prepared cache (PREPARED results go there)
  cql::Compression compression;  // of the connection's frame bodies
  cql::Bytes& scratch;           // decompressed bodies, reused
  std::string& keyspace;         // the connection's keyspace: a SET_KEYSPACE result changes it
  TraceRouting& traces;          // a traced response's session id is recorded here
};

/// The response the client gets for `p` once every cluster answered (`o` from answered()), its
/// stream id not yet set: `o.chosen`'s answer, after what the proxy does on the way:
/// - PREPARE answered PREPARED by the clusters it went to: the ids go to the prepared cache
///   (one cluster's id stands for both when it went to the primary alone), and the client's
///   PREPARED loses the proxy's generated bind markers (rewrite.h hide_generated);
/// - target's UNPREPARED for an EXECUTE or BATCH: target's id mapped back to origin's, the only
///   one the client knows (prepared_ids.h);
/// - a SET_KEYSPACE result (USE) sets ctx.keyspace; a traced answer's session id is recorded.
/// A malformed answer is logged and passed on as it is; nothing throws.
cql::Bytes client_response(PendingRequest& p, const Outcome& o, ResponseContext& ctx);

/// A client request ready for the clusters: the frame origin gets, target's when it differs
/// (target's prepared ids), and the request as it will be tracked.
struct Outgoing {
  cql::Bytes frame;
  std::optional<cql::Bytes> target_frame;
  PendingRequest pending;
};

}  // namespace zdm::proxy
