// zdm-data's client of one cluster: discovery (protocol version negotiated down, nodes and
// tokens from system.local/system.peers, the schema from system_schema.columns), then a
// Session per worker thread with one connection per node, token-aware routing, prepared
// statements per node (re-prepared on UNPREPARED), paging, and retries with exponential
// backoff on timeouts, unavailable and overloaded nodes.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/client/connection.h"
#include "data/client/page.h"
#include "data/ring.h"
#include "data/schema.h"
#include "common/cql/messages.h"

namespace zdm::data {

/// Everything needed to reach one cluster.
struct ClusterConfig {
  std::string label;  // "origin" or "target": names the cluster in messages and metrics
  std::vector<std::string> contact_points;
  int port = 9042;
  ConnectSettings connect;
  uint8_t max_version = 5;  // negotiated down to 4 (v3 lacks unset values: refused)
  std::chrono::milliseconds request_timeout{12000};
  cql::Consistency read_consistency = cql::Consistency::kLocalQuorum;
  cql::Consistency write_consistency = cql::Consistency::kLocalQuorum;
  int max_attempts = 10;  // tries of one request, the first included
  std::chrono::milliseconds backoff_min{100}, backoff_max{5000};
};

/// A problem the user must fix (unreachable cluster, refused credentials, wrong partitioner):
/// what() is one line naming the cluster.
class ClusterError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A request that failed for good: a non-retryable error, or every attempt used.
class RequestError : public std::runtime_error {
 public:
  RequestError(const std::string& what, std::optional<cql::ErrorCode> code)
      : std::runtime_error(what), code(code) {}
  std::optional<cql::ErrorCode> code;  // nullopt: timeouts / connection failures
};

struct Node {
  std::string host;  // address as dialled (TLS names are checked against it)
  tcp::endpoint endpoint;
  std::string datacenter;
};

struct ClusterInfo {
  std::string label, cluster_name, release_version, partitioner;
  uint8_t version = 4;
  std::vector<Node> nodes;
  Ring ring;
  std::vector<ColumnRow> columns;  // the whole of system_schema.columns
};

/// Connects to the first contact point that answers and reads the cluster. Throws ClusterError.
awaitable<ClusterInfo> discover(asio::io_context& ioc, const ClusterConfig& config);

/// A statement prepared on the nodes of one Session (each node prepares it on first use).
struct Statement {
  std::string query;
  Bytes id, result_metadata_id;
  std::vector<bool> prepared_on;  // by node index
};

/// One execution of a prepared statement.
struct Call {
  std::vector<cql::Value> values;
  std::optional<int64_t> routing_token;         // the partition's token: sent to its owner
  std::optional<cql::Consistency> consistency;  // default: the cluster's read or write level
  bool write = true;
  /// False for counter increments: a failed attempt is not repeated (it may have applied).
  bool idempotent = true;
  int32_t page_size = -1;
  std::optional<Bytes> paging_state;
  /// Called before every attempt; may update `values` (a TTL counting down) and return false to
  /// drop the call (then execute returns nullopt).
  std::function<bool(std::vector<cql::Value>&)> before_attempt;
};

/// Called on every retry: the reason ("write_timeout", "unavailable", "client_timeout", ...).
using RetryHook = std::function<void(const std::string& reason)>;

class Session {
 public:
  Session(asio::io_context& ioc, ClusterConfig config, const ClusterInfo& info, RetryHook on_retry);
  ~Session();

  /// Prepares `query` on a node (others prepare it when first used). Throws RequestError.
  awaitable<std::shared_ptr<Statement>> prepare(std::string query);
  /// Executes with retries; returns the RESULT frame (nullopt when before_attempt dropped it).
  /// Throws RequestError.
  awaitable<std::optional<cql::Frame>> execute(Statement& stmt, Call call);
  /// execute() of a SELECT, decoded.
  awaitable<Page> select(Statement& stmt, Call call);

  const ClusterInfo& info() const { return info_; }
  const ClusterConfig& config() const { return config_; }
  void close();

 private:
  awaitable<std::shared_ptr<Connection>> connection(std::size_t node, std::string& why);
  awaitable<bool> ensure_prepared(Statement& stmt, std::size_t node, Connection& conn,
                                  std::string& why);

  asio::io_context& ioc_;
  ClusterConfig config_;
  const ClusterInfo& info_;
  RetryHook on_retry_;
  std::vector<std::shared_ptr<Connection>> conns_;
  std::vector<std::chrono::steady_clock::time_point> down_until_;
  std::vector<bool> opening_;
  std::vector<std::vector<asio::steady_timer*>> open_waiters_;
  uint64_t rotation_ = 0;
};

/// "WriteTimeout" → "write_timeout" etc., for metrics labels and messages.
std::string error_reason(cql::ErrorCode code);
/// Whether a request failing with `code` may be tried again (writes are idempotent: they carry
/// their timestamp).
bool retryable(cql::ErrorCode code);

}  // namespace zdm::data
