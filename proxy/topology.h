// Topology virtualization (as datastax/zdm-proxy proxy/pkg/zdmproxy/nativeprotocol.go does): the
// proxy answers system.local and system.peers itself, listing the proxies
// (proxy_topology_addresses) instead of cluster nodes, so drivers connect to every proxy and to
// nothing else.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/cql/classifier.h"
#include "common/cql/messages.h"
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
  /// Addresses of proxies being restarted: left out of system.peers / peers_v2 so drivers move
  /// their connections off them (a rolling update's hand-over).
  std::vector<std::string> leaving;
};

/// Tokens of virtual host i of n with t tokens each: (2^64/(t·n))·(k·n+i) − 2^63, k < t,
/// as decimal strings (Murmur3 ring).
std::vector<std::string> virtual_tokens(int i, int n, int t);

/// host_id of a virtual host: UUIDv5(SHA-1, nil namespace, the 16-byte IPv4-mapped IPv6 form
/// of `ip`), 16 bytes.
cql::Bytes virtual_host_id(const std::string& ip);

/// 4 or 16 address bytes of an IP literal; throws std::invalid_argument if it is not one.
cql::Bytes inet_bytes(const std::string& ip);

/// `column = value` in the WHERE clause of a query on a system table the proxy answers (drivers
/// send `WHERE key='local'`, `WHERE peer = ?`): a literal, or the index of a bind marker.
struct SystemFilter {
  std::string column;
  std::string literal;  // unquoted text of a literal value
  int marker = -1;      // index of the bind marker, or -1 for a literal
};

/// The filter of `cql`, nullopt when it has no WHERE. Only `col = value` is understood: other
/// WHERE clauses throw std::invalid_argument with Cassandra's wording.
std::optional<SystemFilter> parse_system_filter(std::string_view cql);

/// The value of a filter on `column` of `table` as stored (inet bytes for peer/native_address,
/// text for key); throws std::invalid_argument on a literal that is not one.
cql::Bytes filter_value(const std::string& column, const std::string& literal);

/// Answers a SELECT on system.local / system.peers / system.peers_v2 from the snapshot (the
/// proxies as Cassandra 4 nodes; peers_v2 with native_address/native_port, so drivers connect
/// to the proxies' own port). Only rows whose `filter_column` equals `filter_value` when a
/// filter is given. Unknown column → INVALID "Undefined column name X".
std::variant<cql::RowsResult, cql::ErrorMsg> answer_system_select(
    LocalTable table, const cql::StatementInfo& info, const SystemSnapshot& snapshot,
    const VirtualTopology& topology, const std::string& filter_column = "",
    const std::optional<cql::Bytes>& filter_value = std::nullopt);

}  // namespace zdm::proxy
