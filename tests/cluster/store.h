// The data store and executor of zdm-testcluster: one catalog and one set of tables shared by
// every node of the cluster, the system tables each node describes itself with, and the
// prepared statement cache. Messages in, RESULT or ERROR out; no sockets.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "proxy/cql/messages.h"

namespace zdm::testcluster {

/// One node of the cluster as system.local / system.peers describe it.
struct NodeInfo {
  std::string address;  // "127.0.2.1"
  cql::Bytes address_bytes;
  cql::Bytes host_id;               // deterministic per address
  std::vector<std::string> tokens;  // Murmur3 tokens as decimal strings
};

struct ClusterInfo {
  std::string name = "zdm-testcluster";
  std::string datacenter = "dc1";
  std::string rack = "rack1";
  std::string release_version = "3.11.16";
  std::string cql_version = "3.4.4";
  /// DSE's version in system.local/peers (drivers pick DSE protocol versions from it); empty
  /// for Apache Cassandra.
  std::string dse_version;
  int native_port = 9042;  // the CQL port every node listens on
  std::vector<NodeInfo> nodes;
  /// Each node keeps its own prepared statements, as real nodes do: an id prepared on one node
  /// is UNPREPARED on another until prepared there too.
  bool prepared_per_node = false;
};

/// Builds the nodes for `addresses`: host ids and 16 tokens each, spread over the ring.
/// Throws std::invalid_argument on an address that is not IPv4/IPv6.
std::vector<NodeInfo> make_nodes(const std::vector<std::string>& addresses);

/// Murmur3Partitioner's token of a serialized partition key, as Cassandra computes it
/// (MurmurHash3 x64 128 with Cassandra's sign-extended tail bytes; the minimum maps to the
/// maximum).
int64_t murmur3_token(cql::BytesView key);

/// A partition key as the partitioner hashes it: one column's value as is; several as
/// <u16 length><value><0x00> each (CompositeType).
cql::Bytes partition_key_bytes(const std::vector<cql::Bytes>& components);

/// Per-connection state: the keyspace set by USE, the connection's protocol version.
struct Session {
  std::string keyspace;
  uint8_t version = 4;
};

/// The answer to one request: a RESULT or an ERROR, plus a SCHEMA_CHANGE event to push to
/// registered connections after DDL.
struct Outcome {
  std::variant<cql::ResultMsg, cql::ErrorMsg> response;
  std::optional<cql::SchemaChange> event;
};

class Store {
 public:
  explicit Store(ClusterInfo info);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Each call is answered as `node` (an index into info().nodes) would answer it. Thread-safe.
  Outcome query(std::size_t node, Session& session, const cql::QueryMsg& msg);
  Outcome prepare(std::size_t node, Session& session, const cql::PrepareMsg& msg);
  Outcome execute(std::size_t node, Session& session, const cql::ExecuteMsg& msg);
  Outcome batch(std::size_t node, Session& session, const cql::BatchMsg& msg);

  const ClusterInfo& info() const;
  /// Forgets every statement prepared on `node` (as a restarted node does).
  void forget_prepared(std::size_t node);

  /// Fault admin: a stopped node holds no replica the others can reach. Requests on user
  /// tables whose partition (or, for a scan, any range) has fewer live replicas than their
  /// consistency level needs get UNAVAILABLE, as from a Cassandra coordinator; replicas are
  /// the first replication_factor nodes clockwise from the partition's token. Thread-safe.
  void set_node_up(std::size_t node, bool up);
  bool node_up(std::size_t node) const;

 private:
  struct State;  // catalog, rows, prepared cache: all in store.cpp
  std::unique_ptr<State> state_;
};

}  // namespace zdm::testcluster
