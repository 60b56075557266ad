// The network side of zdm-testcluster: one listening socket per node address, one reader and
// one writer coroutine per client connection, all on one io_context thread. It demands what
// Cassandra demands of a client: the protocol versions it is told to speak (v1/v2 and unknown
// versions refused at once), TLS when configured, PasswordAuthenticator or DseAuthenticator,
// and LZ4/Snappy compression (v3/v4 frame bodies; v5 LZ4 segments).
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/cql/compression.h"
#include "testcluster/bench_backend.h"
#include "testcluster/faults.h"
#include "testcluster/store.h"

namespace zdm::testcluster {

class Connection;

/// Which SASL authenticator the nodes announce in AUTHENTICATE.
enum class Authenticator : uint8_t {
  kNone,      // AllowAllAuthenticator: STARTUP → READY
  kPassword,  // org.apache.cassandra.auth.PasswordAuthenticator: SASL PLAIN token
  kDse,  // com.datastax.bdp.cassandra.auth.DseAuthenticator: "PLAIN" → "PLAIN-START" → token
};

struct ServerOptions {
  uint16_t port = 9042;
  /// Protocol versions accepted (header version byte without the direction bit: 3, 4, 5,
  /// 0x41 DSE_V1, 0x42 DSE_V2).
  std::vector<uint8_t> versions = {3, 4, 5};
  /// Compression algorithms offered in SUPPORTED and accepted in STARTUP.
  std::vector<cql::Compression> compression = {cql::Compression::kLz4, cql::Compression::kSnappy};
  Authenticator authenticator = Authenticator::kNone;
  std::map<std::string, std::string> users;  // user name → password
  /// TLS for every node's CQL port; null = plaintext.
  std::shared_ptr<boost::asio::ssl::context> tls;
  /// --bench-backend: prepared key-value reads and writes answered from a map (bench_backend.h).
  std::shared_ptr<BenchBackend> bench;
};

/// "Invalid or unsupported protocol version (N); supported versions are (3/v3, 4/v4, 5/v5)".
std::string unsupported_version_message(uint8_t version, const std::vector<uint8_t>& supported);

class Server {
 public:
  Server(boost::asio::io_context& ioc, Store& store, ServerOptions options);

  /// Binds every node's address (never the wildcard) and starts accepting.
  /// Throws boost::system::system_error when an address cannot be bound.
  void start();
  /// Stops accepting and closes every connection; io_context::run then returns.
  void stop();

  // The fault admin (admin.h). Called on the io_context's thread.
  /// `node` stops listening and its connections close, as a stopped Cassandra node's; the
  /// others answer UNAVAILABLE for the replicas it held (Store::set_node_up).
  void stop_node(std::size_t node);
  /// Listens again, with no prepared statement: a restarted node. Throws
  /// boost::system::system_error when the address cannot be bound again.
  void start_node(std::size_t node);
  bool node_listening(std::size_t node) const { return acceptors_.at(node) != nullptr; }
  /// Closes every connection of `node` now; returns how many.
  std::size_t drop_connections(std::size_t node);
  std::size_t connection_count(std::size_t node) const;
  NodeFaults& faults(std::size_t node) { return faults_.at(node); }
  /// Requests a node received (QUERY, EXECUTE, BATCH) by the consistency level they asked for:
  /// {"QUERY": {"LOCAL_QUORUM": 3}, ...}, opcodes and levels never seen left out. What a proxy
  /// in front forwarded, as a test reads it (target_consistency_level).
  nlohmann::json consistency_seen(std::size_t node) const;
  /// Counts one request `op` at level `cl` for `node`.
  void count_consistency(std::size_t node, cql::Opcode op, cql::Consistency cl);
  std::mt19937_64& rng() { return rng_; }

  // For connections.
  Store& store() { return store_; }
  const ServerOptions& options() const { return options_; }
  void add(Connection* c) { connections_.insert(c); }
  void remove(Connection* c) { connections_.erase(c); }
  /// Pushes a SCHEMA_CHANGE event to every connection that sent REGISTER for it.
  void broadcast(const cql::SchemaChange& change);

 private:
  void listen(std::size_t node);

  boost::asio::io_context& ioc_;
  Store& store_;
  ServerOptions options_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;  // null: stopped
  std::set<Connection*> connections_;
  std::vector<NodeFaults> faults_;  // per node
  // Per node: [QUERY, EXECUTE, BATCH][consistency 0..10] requests received.
  std::vector<std::array<std::array<uint64_t, 11>, 3>> consistency_;
  std::mt19937_64 rng_{std::random_device{}()};
  bool stopping_ = false;
};

}  // namespace zdm::testcluster
