// Routing decisions, as ZDM makes them (datastax/zdm-proxy proxy/pkg/zdmproxy/cqlparser.go): pure
// functions from a request's opcode and statement to the clusters it goes to. No I/O.
#pragma once

#include <string>

#include "common/cql/classifier.h"
#include "common/cql/frame.h"
#include "proxy/config.h"
#include "proxy/metrics.h"

namespace zdm::proxy {

enum class Destination : uint8_t {
  kOrigin,  // origin only
  kTarget,  // target only
  kBoth,    // origin and target; the client waits for both
  kLocal,   // answered by the proxy itself (system.local / system.peers / peers_v2)
  kDrop,    // no cluster, no response (CALL InsightsRpc.*)
};

enum class LocalTable : uint8_t { kNone, kSystemLocal, kSystemPeers, kSystemPeersV2 };

struct Decision {
  Destination destination = Destination::kBoth;
  bool async_mirror = false;  // also sent to the secondary on the async connector
  RequestType metric = RequestType::kNone;
  LocalTable local = LocalTable::kNone;
  bool operator==(const Decision&) const = default;
};

/// Routes a QUERY/PREPARE/EXECUTE statement. `session_keyspace` is the connection's keyspace
/// (from USE) for unqualified table names.
Decision route_statement(const cql::StatementInfo& info, const std::string& session_keyspace,
                         const Config& config);

/// Routes requests that carry no statement: STARTUP, OPTIONS, REGISTER, AUTH_RESPONSE, BATCH.
Decision route_opcode(cql::Opcode op, const Config& config);

/// What the client gets for a request that went to `expected` clusters, given which answered
/// with an ERROR (reference §2 "Aggregation"): both OK → the primary's answer (PREPARE: always
/// origin's); one failed → that cluster's error; both failed → origin's. And what is counted.
struct Aggregate {
  Cluster chosen = Cluster::kOrigin;
  enum class FailedWrite : uint8_t {
    kNone,
    kOrigin,
    kTarget,
    kBoth
  } failed_write = FailedWrite::kNone;
  bool failed_read = false;  // a single-cluster request (tracked) failed on `chosen`
  bool operator==(const Aggregate&) const = default;
};
/// `expected`/`error` are indexed by Cluster. `metric` is the request's RequestType.
Aggregate aggregate(const bool expected[2], const bool error[2], cql::Opcode op, RequestType metric,
                    Cluster primary);

/// Who authenticates a client (reference §1 "Handshake/auth", ZDM's forwardAuthToTarget), from
/// which clusters' control connections were asked to authenticate.
struct AuthRoles {
  Cluster primary = Cluster::kOrigin;   // the client's SASL exchange goes to this cluster
  bool client_creds_are_target = true;  // the client sends target's credentials
  bool operator==(const AuthRoles&) const = default;
};
/// Auth on target only → target hears the client; otherwise origin does, and with auth on both
/// the client's credentials are target's unless `forward_client_credentials_to_origin`.
AuthRoles auth_roles(bool auth_origin, bool auth_target, bool forward_client_credentials_to_origin);

/// Which cluster a single-cluster read went to, for the metric type.
inline RequestType read_metric(Cluster c) {
  return c == Cluster::kOrigin ? RequestType::kReadsOrigin : RequestType::kReadsTarget;
}
inline Destination only(Cluster c) {
  return c == Cluster::kOrigin ? Destination::kOrigin : Destination::kTarget;
}

}  // namespace zdm::proxy
