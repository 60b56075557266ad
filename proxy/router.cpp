#include "proxy/router.h"

namespace zdm::proxy {

Decision route_statement(const cql::StatementInfo& info, const std::string& session_keyspace,
                         const Config& config) {
  using cql::StatementKind;
  Decision d;
  switch (info.kind) {
    case StatementKind::kSelect: {
      const std::string& ks = info.keyspace.empty() ? session_keyspace : info.keyspace;
      if (ks == "system") {
        if (info.table == "local")
          return {Destination::kLocal, false, RequestType::kNone, LocalTable::kSystemLocal};
        if (info.table == "peers")
          return {Destination::kLocal, false, RequestType::kNone, LocalTable::kSystemPeers};
        if (info.table == "peers_v2")
          return {Destination::kLocal, false, RequestType::kNone, LocalTable::kSystemPeersV2};
      }
      if (cql::is_system_keyspace(ks)) {
        // System keyspace reads go to system_queries_mode's cluster (origin by default), never
        // mirrored (ZDM #41).
        d.destination = only(config.system_queries_mode);
        d.metric = read_metric(config.system_queries_mode);
        return d;
      }
      d.destination = only(config.primary_cluster);
      d.metric = read_metric(config.primary_cluster);
      d.async_mirror = config.read_mode == ReadMode::kDualAsyncOnSecondary;
      return d;
    }
    case StatementKind::kUse:
      d.destination = Destination::kBoth;
      d.metric = RequestType::kWrites;
      d.async_mirror = config.read_mode == ReadMode::kDualAsyncOnSecondary;
      return d;
    default:
      d.destination = Destination::kBoth;
      d.metric = RequestType::kWrites;
      return d;
  }
}

Decision route_opcode(cql::Opcode op, const Config& config) {
  Decision d;
  switch (op) {
    case cql::Opcode::kBatch:
      d.destination = Destination::kBoth;
      d.metric = RequestType::kWrites;
      return d;
    case cql::Opcode::kOptions:
      d.destination = Destination::kBoth;
      d.async_mirror = config.read_mode == ReadMode::kDualAsyncOnSecondary;
      return d;
    default:  // STARTUP, REGISTER, AUTH_RESPONSE and anything else: both, not tracked
      d.destination = Destination::kBoth;
      return d;
  }
}

Aggregate aggregate(const bool expected[2], const bool error[2], cql::Opcode op, RequestType metric,
                    Cluster primary) {
  Aggregate a;
  if (!(expected[0] && expected[1])) {
    a.chosen = expected[0] ? Cluster::kOrigin : Cluster::kTarget;
    a.failed_read = error[static_cast<int>(a.chosen)] && metric != RequestType::kNone;
    return a;
  }
  if (error[0]) {
    a.chosen = Cluster::kOrigin;  // origin failed (alone or with target): origin's error
  } else if (error[1]) {
    a.chosen = Cluster::kTarget;
  } else {
    a.chosen = op == cql::Opcode::kPrepare ? Cluster::kOrigin : primary;
  }
  if (metric == RequestType::kWrites) {
    if (error[0] && error[1]) {
      a.failed_write = Aggregate::FailedWrite::kBoth;
    } else if (error[0]) {
      a.failed_write = Aggregate::FailedWrite::kOrigin;
    } else if (error[1]) {
      a.failed_write = Aggregate::FailedWrite::kTarget;
    }
  }
  return a;
}

}  // namespace zdm::proxy
