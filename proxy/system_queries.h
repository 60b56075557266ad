// Queries the proxy answers or routes by itself: SELECTs on system.local, system.peers and
// system.peers_v2 answered from its virtual topology (the proxies as the cluster's nodes, as ZDM
// does: datastax/zdm-proxy proxy/pkg/zdmproxy/systemqueries.go), and reads of system_traces sent
// to the cluster that served the traced request.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/cql/compression.h"
#include "common/cql/messages.h"
#include "proxy/control_connection.h"
#include "proxy/prepared_cache.h"
#include "proxy/router.h"
#include "proxy/topology.h"

namespace zdm::proxy {

/// The response frame (version and stream id of `h`) to a SELECT on system.local/peers/peers_v2:
/// RESULT Rows (§4.2.5.2), with a WHERE col = value applied (`params`: an EXECUTE's, for its
/// bound value and skip-metadata flag; null for a QUERY); ERROR INVALID for a bad filter value or
/// an unknown column; SERVER_ERROR "ZDM proxy has no <CLUSTER> topology yet" while `snapshot`
/// (of `snapshot_cluster`'s control connection) is null.
cql::Bytes local_select(const cql::Header& h, LocalTable table, const cql::StatementInfo& info,
                        std::string_view query, const cql::QueryParameters* params,
                        const SystemSnapshot* snapshot, Cluster snapshot_cluster,
                        const VirtualTopology& topology);

/// The response frame to a PREPARE of such a SELECT, prepared by the proxy itself: RESULT
/// Prepared with id md5(query + keyspace) and result metadata id md5 of its column names (as
/// ZDM does), the statement put in `cache` for its EXECUTEs; or an ERROR as local_select() gives
/// ("ZDM proxy has no topology yet" while `snapshot` is null).
cql::Bytes local_prepare(const cql::Header& h, LocalTable table, const cql::StatementInfo& info,
                         const std::string& query, const std::string& keyspace,
                         const SystemSnapshot* snapshot, const VirtualTopology& topology,
                         PreparedCache& cache);

/// The first UUID literal (8-4-4-4-12 hex digits) of `text`, as 16 bytes: the trace session id
/// a system_traces query names.
std::optional<cql::Bytes> uuid_in(std::string_view text);

/// The trace session ids of the last 256 traced responses of a connection and the cluster that
/// served each: a system_traces read naming one goes there (ZDM sends them all to origin, which
/// loses the traces of requests target served).
class TraceRouting {
 public:
  /// Records traced response `frame` (tracing flag set: its body starts with the 16-byte trace
  /// session id, spec §2.2; decompressed into `scratch`), served by `cluster`. Unreadable bodies
  /// are skipped.
  void record(const cql::Bytes& frame, cql::Compression compression, cql::Bytes& scratch,
              Cluster cluster);
  /// Sends system_traces query `query` to the cluster that served the session it names, if
  /// recorded (`d` left as it is otherwise).
  void route(std::string_view query, Decision& d) const;

 private:
  std::deque<std::pair<cql::Bytes, Cluster>> traced_;
};

}  // namespace zdm::proxy
