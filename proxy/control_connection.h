// Control connection to one cluster (ZDM's is datastax/zdm-proxy
// proxy/pkg/zdmproxy/controlconn.go): TLS and authentication as configured, protocol negotiated
// down from control_conn_max_protocol_version, OPTIONS (SUPPORTED kept), system.local /
// system.peers, OPTIONS heartbeats every heartbeat_interval_ms, reconnect with exponential backoff.
// Its state feeds /health/readiness, host assignment, and the client handshake (which clusters want
// authentication, which compression both support). Readiness also weighs what the request
// connections see (DataPathEvidence): a cluster whose data path is silent while its heartbeats
// still answer is stalled, and a cluster that answers requests again ends the reconnection wait.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/common.h>

#include "common/net/node_connection.h"
#include "proxy/asio.h"
#include "proxy/config.h"
#include "proxy/topology.h"

namespace zdm::proxy {

/// The reasons of one failed attempt, one per node tried, as one line: reasons that differ only
/// in the node's "ip:port" once, naming the other nodes ("127.0.3.1:9042: Connection refused
/// (the same for 127.0.3.2:9042, 127.0.3.3:9042)").
std::string summarize_failures(const std::vector<std::string>& failures);

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

/// What the request connections to one cluster showed (thread-safe), reported by each client
/// session once a second and never per request: a connection that read answers, or one whose
/// requests have waited over kStuckAfter while nothing came from its node ("stuck"). The
/// cluster is stalled while stuck requests were reported within the last kFresh and no request
/// connection to it read anything for kSilent: every session reports each second, so a cluster
/// that answers anyone shows within that, and a stall shows within 2 s.
class DataPathEvidence {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kStuckAfter = std::chrono::seconds(1);
  static constexpr auto kFresh = std::chrono::milliseconds(1500);
  static constexpr auto kSilent = std::chrono::milliseconds(1000);

  void answered(Clock::time_point now);
  /// `requests` waited over kStuckAfter on one connection that read nothing since the last
  /// report.
  void stuck(int requests, Clock::time_point now);
  /// While stalled at `now`: "12 requests unanswered for over 1 s, and no request connection
  /// read anything for 3.2 s"; otherwise "".
  std::string stalled(Clock::time_point now) const;

 private:
  static int64_t ticks(Clock::time_point t) { return t.time_since_epoch().count(); }
  static constexpr int64_t kNever = INT64_MIN / 2;
  std::atomic<int64_t> answered_at_{kNever};
  std::atomic<int64_t> stuck_at_{kNever};   // the last report of stuck requests
  std::atomic<int64_t> window_at_{kNever};  // the first report of the current round
  std::atomic<int> stuck_requests_{0};      // reported in the current round
};

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
  /// Data-path evidence (thread-safe; each client session, once a second): a request connection
  /// to this cluster read answers since the last report. While disconnected, the reconnection
  /// waiting out its backoff tries again within half a second, its backoff reset.
  void data_path_answered();
  /// Requests waited over DataPathEvidence::kStuckAfter on a request connection that read
  /// nothing since the last report.
  void data_path_stuck(int requests);
  /// Why this cluster is stalled though its control connection is up ("12 requests unanswered
  /// for over 2 s, ..."), or "".
  std::string stalled() const { return evidence_.stalled(DataPathEvidence::Clock::now()); }
  /// Why the last attempt or heartbeat failed ("127.0.3.1:9042: Connection refused"); "" once
  /// connected.
  std::string last_failure() const;

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
                        uint8_t version);
  /// One failed step: logged at `level` (debug in a quiet round: a cluster down for long logs
  /// at failures 1, 2, 4, 8... and at least every 30 s) and kept as the reason readiness gives.
  /// `unreachable`: the node did not answer at all (refused, closed, silent), which is retried
  /// within a second whatever the backoff; otherwise (credentials, TLS, errors) the backoff
  /// holds.
  void failed(spdlog::level::level_enum level, bool unreachable, const std::string& reason,
              const std::string& line);
  awaitable<bool> heartbeat(std::string& why);
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
  std::atomic<bool> wake_requested_{false};  // data_path_answered() while disconnected
  DataPathEvidence evidence_;
  // Of the current attempt (run()'s coroutine only): every node failed unreachable; its
  // failures, one per node; logged at debug only.
  bool unreachable_ = true;
  std::vector<std::string> round_failures_;
  bool quiet_ = false;
  std::string failure_;  // under mu_: last_failure()
};

}  // namespace zdm::proxy
