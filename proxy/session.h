// One client connection and its cluster connections (reference/zdm-proxy.md §1 "Connection
// model"): a connector to an origin node, one to a target node and, in DUAL_ASYNC_ON_SECONDARY,
// an async connector to the secondary. All of them live on one worker thread's io_context, so
// nothing here takes a lock.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/config.h"
#include "proxy/control_connection.h"
#include "proxy/metrics.h"
#include "proxy/net.h"
#include "proxy/prepared_cache.h"
#include "proxy/router.h"

namespace zdm::proxy {

/// State shared by every session of the process: immutable config, thread-safe parts only.
struct SharedState {
  const Config& config;
  ProxyMetrics& metrics;
  PreparedCache& prepared;
  ControlConnection& origin_cc;
  ControlConnection& target_cc;
  VirtualTopology topology;
  std::atomic<bool> draining{false};
  std::atomic<int> sessions{0};
  std::atomic<int64_t> inflight{0};

  ControlConnection& cc(Cluster c) { return c == Cluster::kOrigin ? origin_cc : target_cc; }
};

class ClientSession;

/// A connection to one cluster node on behalf of one client connection. Stream ids on it are
/// the proxy's own (client ids are remapped, spec §2.3).
class Connector {
 public:
  enum class Role : uint8_t { kOrigin, kTarget, kAsync };

  Connector(asio::io_context& ioc, Role role, Cluster cluster, int max_stream_ids);

  /// Connects with a deadline; false on failure (logged by the caller).
  awaitable<boost::system::error_code> connect(tcp::endpoint ep, std::chrono::milliseconds timeout);
  /// Reads frames and hands them to the session until the socket closes.
  awaitable<void> read_loop(std::shared_ptr<ClientSession> session);

  /// Takes a free stream id for request `request_id`; nullopt if all are in use.
  std::optional<int16_t> acquire(uint64_t request_id);
  /// Frees a stream id and returns the request it belonged to (0 if none).
  uint64_t release(int16_t stream);
  void send(cql::Bytes frame) { writer_.push(std::move(frame)); }
  void close();

  Role role() const { return role_; }
  Cluster cluster() const { return cluster_; }
  const std::string& node() const { return node_; }
  NodeMetrics* metrics = nullptr;
  FrameWriter& writer() { return writer_; }
  tcp::socket& socket() { return socket_; }

 private:
  Role role_;
  Cluster cluster_;
  tcp::socket socket_;
  FrameWriter writer_;
  std::string node_;
  std::vector<int16_t> free_;
  std::vector<uint64_t> owner_;  // stream id → request id (0 = free)
};

/// A request in flight: where it went, what came back.
struct PendingRequest {
  int16_t client_stream = 0;
  cql::Opcode opcode = cql::Opcode::kQuery;
  uint8_t version = 4;
  Decision decision;
  std::chrono::steady_clock::time_point start;
  cql::Bytes responses[2];  // by Cluster
  bool expected[2] = {false, false};
  bool received[2] = {false, false};
  // PREPARE: what to cache when both succeed. EXECUTE/BATCH: the origin id (for UNPREPARED).
  std::string query;
  cql::Bytes origin_prepared_id;
  Decision execute_decision;
};

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  ClientSession(asio::io_context& ioc, tcp::socket socket, SharedState& shared);
  ~ClientSession();

  /// Runs the session to its end: reader, writer, connectors.
  awaitable<void> run();
  /// Stop reading new requests; answer those in flight; then close (graceful shutdown).
  void drain();

  // Connector callbacks
  void on_cluster_frame(Connector& from, cql::Header header, cql::Bytes frame);
  void on_connector_closed(Connector& c);

 private:
  awaitable<bool> ensure_connected();
  void on_client_frame(const cql::Header& h, cql::Bytes frame);
  void dispatch(const cql::Header& h, cql::Bytes frame, Decision d, PendingRequest p,
                std::optional<cql::Bytes> target_frame);
  void send_async(const cql::Header& h, const cql::Bytes& frame,
                  const std::optional<cql::Bytes>& target_frame);
  void complete(uint64_t id, PendingRequest& p);
  void reply(cql::Bytes frame, int16_t stream);
  void reply_error(uint8_t version, int16_t stream, cql::ErrorCode code, std::string message);
  void answer_local(const cql::Header& h, LocalTable table, const cql::StatementInfo& info);
  void close();
  void sweep_timeouts();
  Connector* connector(Cluster c) { return c == Cluster::kOrigin ? origin_.get() : target_.get(); }

  asio::io_context& ioc_;
  tcp::socket client_;
  FrameWriter client_writer_;
  SharedState& shared_;
  const Config& config_;
  std::string client_addr_;
  std::unique_ptr<Connector> origin_, target_, async_;
  std::unordered_map<uint64_t, PendingRequest> pending_;
  uint64_t next_request_id_ = 1;
  uint8_t version_ = 0;  // negotiated protocol version, 0 until the first accepted frame
  bool registered_ = false;
  bool ready_ = false;
  bool draining_ = false;
  bool closed_ = false;
  bool async_ready_ = false;
  std::string keyspace_;
  // Async (mirrored) requests in flight: request id → start time and type.
  std::unordered_map<uint64_t, std::pair<std::chrono::steady_clock::time_point, RequestType>>
      async_started_;
  asio::steady_timer sweep_timer_;
  asio::steady_timer drained_;  // fires (cancel) when draining and no request is pending
};

}  // namespace zdm::proxy
