// The data store and executor of zdm-testcluster: one catalog and one set of tables shared by
// every node of the cluster, the system tables each node describes itself with, and the
// prepared statement caches. Messages in, RESULT or ERROR out; no sockets.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/cql/classifier.h"
#include "common/cql/messages.h"

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
  std::string release_version = "4.1.5";
  std::string cql_version = "3.4.6";
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

/// A traced request, written to system_traces.sessions and .events (TRACING ON).
struct Trace {
  cql::Bytes session_id;  // a timeuuid: the id the response carries
  std::size_t node = 0;   // the coordinator
  cql::Bytes client;      // client address bytes
  std::string command;    // "QUERY", "EXECUTE", ...
  std::string request;    // "Execute CQL3 query", ...
  std::vector<std::pair<std::string, std::string>> parameters;
  int64_t started_at_ms = 0;
  int32_t duration_us = 0;
  std::vector<std::pair<std::string, int32_t>> events;  // activity, µs since the start
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
  /// Forgets every statement prepared on `node` (as a restarted node does); with a cache
  /// shared by every node (no --prepared-per-node) there is nothing per node to forget.
  void forget_prepared(std::size_t node);
  std::size_t prepared_count(std::size_t node) const;
  /// What a prepared id runs on `node` (for the fault admin's reads/writes filter).
  std::optional<cql::StatementInfo> prepared_info(std::size_t node, const cql::Bytes& id) const;

  /// Fault admin: a stopped node holds no replica the others can reach. Requests on user
  /// tables whose partition (or, for a scan, any range) has fewer live replicas than their
  /// consistency level needs get UNAVAILABLE, as from a Cassandra coordinator; replicas are
  /// the first replication_factor nodes clockwise from the partition's token. Thread-safe.
  void set_node_up(std::size_t node, bool up);
  bool node_up(std::size_t node) const;

  /// Writes a traced request into system_traces (rows expire after a day, as Cassandra's).
  void record_trace(const Trace& trace);

  /// Persistence (--data-dir): loads DIR's snapshot and log, writes a fresh snapshot, then
  /// appends every change to the log. Throws std::runtime_error on an unreadable directory.
  void open_data_dir(const std::string& dir);
  /// Writes a snapshot and empties the log (also done on destruction).
  void checkpoint();

 private:
  struct State;  // catalog, rows, prepared cache: all in store.cpp
  std::unique_ptr<State> state_;
};

}  // namespace zdm::testcluster
