// Topology virtualization (reference/zdm-proxy.md §1): the proxy answers system.local and
// system.peers itself, listing the proxies (proxy_topology_addresses) instead of cluster nodes,
// so drivers connect to every proxy and to nothing else.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "proxy/cql/classifier.h"
#include "proxy/cql/messages.h"
#include "proxy/router.h"

namespace zdm::proxy {

/// What the origin control connection read: `SELECT * FROM system.local` (one row) and the
/// column metadata of `SELECT * FROM system.peers`.
struct SystemSnapshot {
  cql::RowsResult local;
  cql::RowsMetadata peers_metadata;
};

/// The proxies as virtual Cassandra nodes.
struct VirtualTopology {
  std::vector<std::string> addresses;  // IPv4 literals, same order on every proxy
  int index = 0;                       // this proxy's position in `addresses`
  int num_tokens = 8;
  int port = 9042;  // the proxy's CQL listen port
};

/// Tokens of virtual host i of n with t tokens each: (2^64/(t·n))·(k·n+i) − 2^63, k < t,
/// as decimal strings (Murmur3 ring).
std::vector<std::string> virtual_tokens(int i, int n, int t);

/// host_id of a virtual host: UUIDv5(SHA-1, nil namespace, the 16-byte IPv4-mapped IPv6 form
/// of `ip`), 16 bytes.
cql::Bytes virtual_host_id(const std::string& ip);

/// 4 or 16 address bytes of an IP literal; throws std::invalid_argument if it is not one.
cql::Bytes inet_bytes(const std::string& ip);

/// Answers a SELECT on system.local / system.peers / system.peers_v2 from the snapshot.
/// Unknown column → INVALID "Undefined column name X"; peers_v2 → INVALID
/// "unconfigured table peers_v2" (what Cassandra 3.x answers, so drivers fall back to peers).
std::variant<cql::RowsResult, cql::ErrorMsg> answer_system_select(LocalTable table,
                                                                  const cql::StatementInfo& info,
                                                                  const SystemSnapshot& snapshot,
                                                                  const VirtualTopology& topology);

}  // namespace zdm::proxy
