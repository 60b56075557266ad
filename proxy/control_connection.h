// Control connection to one cluster (ZDM's is datastax/zdm-proxy
// proxy/pkg/zdmproxy/controlconn.go): TLS and authentication as configured, protocol negotiated
// down from control_conn_max_protocol_version, OPTIONS (SUPPORTED kept), system.local /
// system.peers, OPTIONS heartbeats every heartbeat_interval_ms, reconnect with exponential backoff.
// Its state feeds /health/readiness, host assignment, and the client handshake (which clusters want
// authentication, which compression both support).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/net/node_connection.h"
#include "proxy/asio.h"
#include "proxy/config.h"
#include "proxy/topology.h"

namespace zdm::proxy {

/// What a client connection needs to know of a cluster, read by the control connection.
struct ClusterFacts {
  bool auth_required = false;     // STARTUP was answered with AUTHENTICATE
  std::string authenticator;      // its class name
  cql::StringMultimap supported;  // the SUPPORTED answer to OPTIONS
  uint8_t version = 4;            // the version negotiated by the control connection
};

/// The nodes of datacenter `dc` (native protocol port `port`), sorted, without duplicates: the
/// contacted node (`contacted`, its system.local row `local`) if it is in `dc`, and each row of
/// system.peers `peers` in `dc` at its rpc_address (its peer address when that is unset or
/// 0.0.0.0).
std::vector<tcp::endpoint> datacenter_nodes(const cql::RowsResult& local,
                                            const cql::RowsResult& peers,
                                            const asio::ip::address& contacted, int port,
                                            const std::string& dc);

/// ZDM's host assignment (datastax/zdm-proxy proxy/pkg/zdmproxy/controlconn.go): the nodes this
/// proxy, number `index` of `proxies`, sends its client connections to. `nodes`: sorted, at
/// least one. With assignment off (`enabled` false), only `contacted`. Otherwise the positions
/// p with p mod proxies == index mod proxies when there are at least `proxies` nodes, else the
/// one node at index mod nodes.size().
std::vector<tcp::endpoint> assigned_nodes(const std::vector<tcp::endpoint>& nodes,
                                          const tcp::endpoint& contacted, bool enabled,
                                          std::size_t proxies, std::size_t index);

class ControlConnection {
 public:
  /// `hop`: TLS and timeouts to reach this cluster (shared with request connections).
  ControlConnection(asio::io_context& ioc, const Config& config, Cluster cluster,
                    net::HopSettings hop);

  /// Runs forever (until stop()): connect, refresh, heartbeat, reconnect. Any failure (a
  /// refused connection, a bad reply, an exception) is retried with backoff over every contact
  /// point.
  awaitable<void> run();
  void stop();
  /// Heartbeat now instead of at the next interval: a request connection saw its node fail or
  /// fall silent, so readiness should reflect it within a second or two. Thread-safe.
  void check_now();

  Cluster cluster() const { return cluster_; }
  bool connected() const { return connected_.load(); }
  /// True once the first attempt finished (successfully or not).
  bool attempted() const { return attempted_.load(); }
  int failure_count() const { return failures_.load(); }
  /// "ip:port" of the node in use, or "NOT_CONNECTED".
  std::string address() const;
  /// The last system.local / system.peers read (null before the first success).
  std::shared_ptr<const SystemSnapshot> snapshot() const;
  /// Authentication, SUPPORTED and version as last seen (valid once snapshot() is set).
  ClusterFacts facts() const;
  const net::HopSettings& hop() const { return hop_; }
  /// Next node for a client connection: round-robin over the nodes of the local datacenter
  /// assigned to this proxy (positions p of the sorted node list with p mod N == index mod N
  /// when there are at least N nodes, else node index mod H); only the control connection's
  /// node when host assignment is off. Throws std::runtime_error before the first refresh.
  tcp::endpoint pick_node();
  /// How many nodes pick_node() rotates over.
  std::size_t assigned_count() const;
  /// Where a client connection goes when its node failed: the assigned nodes, in pick_node()'s
  /// turn, then the local datacenter's other nodes (sorted). Empty before the first refresh.
  std::vector<tcp::endpoint> failover_order();
  /// True if `node` ("ip:port") is one of the nodes assigned to this proxy.
  bool assigned(const std::string& node) const;

 private:
  awaitable<bool> open_and_refresh();
  /// One attempt at `ep` with protocol `version`; sets `downgrade` when the node refused the
  /// version (PROTOCOL_ERROR), so the caller retries lower.
  awaitable<bool> try_node(const tcp::endpoint& ep, const std::string& host, uint8_t version,
                           bool& downgrade);
  /// Logs why the handshake `shake` with `ep` at `version` failed; true when the node refused
  /// the version (the caller retries lower).
  bool handshake_failed(const net::HandshakeResult& shake, const tcp::endpoint& ep,
                        uint8_t version) const;
  awaitable<bool> heartbeat();
  awaitable<std::optional<cql::RowsResult>> query(const char* cql, int16_t stream);

  asio::io_context& ioc_;
  const Config& config_;
  Cluster cluster_;
  net::HopSettings hop_;
  std::shared_ptr<net::NodeConnection> conn_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> attempted_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<int> failures_{0};
  std::atomic<uint64_t> next_node_{0};
  mutable std::mutex mu_;
  std::string address_ = "NOT_CONNECTED";
  std::shared_ptr<const SystemSnapshot> snapshot_;
  ClusterFacts facts_;
  std::vector<tcp::endpoint> assigned_;
  std::vector<tcp::endpoint> local_nodes_;  // the local datacenter's, sorted
  asio::steady_timer sleep_;
  std::atomic<bool> check_requested_{false};
};

}  // namespace zdm::proxy
