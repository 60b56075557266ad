// One client connection and its cluster connections (ZDM's connection model, datastax/zdm-proxy
// proxy/pkg/zdmproxy/clienthandler.go): a connector to an origin node, one to a target node and,
// in DUAL_ASYNC_ON_SECONDARY, an async connector to the secondary (async_mirror.h). All of them
// live on one worker thread's io_context, so nothing here takes a lock. The session owns its
// connectors and hears from them through ConnectorListener. The handshake's rules are
// handshake.h's; a request in flight is a PendingRequest (request.h); prepared ids are
// translated by prepared_ids.h.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/asio.h"
#include "proxy/async_mirror.h"
#include "proxy/config.h"
#include "proxy/connector.h"
#include "proxy/frame_budget.h"
#include "proxy/handshake.h"
#include "proxy/metrics.h"
#include "proxy/request.h"
#include "proxy/request_router.h"
#include "proxy/router.h"
#include "proxy/shared_state.h"
#include "proxy/system_queries.h"

namespace zdm::proxy {

class ClientSession final : public std::enable_shared_from_this<ClientSession>,
                            public ConnectorListener {
 public:
  ClientSession(asio::io_context& ioc, tcp::socket socket, SharedState& shared);
  ~ClientSession();

  /// Runs the session to its end: TLS, handshake, then requests until the client leaves.
  awaitable<void> run();
  /// Stop reading new requests; answer those in flight; then close (graceful shutdown).
  void drain();
  /// Sends `event` (a TOPOLOGY_CHANGE or STATUS_CHANGE the proxy makes up) if the client
  /// registered for its type.
  void push_event(const cql::EventMsg& event);
  /// True if the client registered for TOPOLOGY_CHANGE or STATUS_CHANGE (a driver's control
  /// connection).
  bool watches_topology() const { return !events_.empty(); }

  // ConnectorListener: what the session's connectors report.
  void on_cluster_frame(Connector& from, cql::Header header, cql::Bytes frame) override;
  void on_connector_closed(Connector& c) override;
  awaitable<void> client_writable() override;

 private:
  awaitable<void> serve();
  awaitable<void> take_frames();
  void start_timers();

  // Handshake (before READY/AUTH_SUCCESS reaches the client).
  awaitable<void> handshake_frame(const cql::Header& h, cql::Bytes frame);
  awaitable<void> on_startup(const cql::Header& h, cql::Bytes frame);
  awaitable<void> on_auth_response(const cql::Header& h, cql::Bytes frame);
  awaitable<void> finish_handshake(const cql::Header& h, const cql::Frame& final_response);
  awaitable<bool> connect_clusters(const cql::Header& h);
  /// Version checks of every client frame; false when the frame was answered and the
  /// connection is to close.
  bool accept_version(const cql::Header& h);
  cql::Bytes supported_frame(const cql::Header& h) const;
  /// A response to the client carrying `f`'s opcode and body on `stream`.
  cql::Bytes client_frame(const cql::Frame& f, int16_t stream) const;
  void switch_client_framing();
  Connector& connector_for(Cluster c) { return c == Cluster::kOrigin ? *origin_ : *target_; }

  // Requests (after the handshake).
  void on_client_frame(const cql::Header& h, cql::Bytes frame);
  /// Sends `o`, or queues it until stream ids free up (a client may have more requests in
  /// flight than a cluster connection has ids: it waits, it does not fail).
  void dispatch(Outgoing&& o);
  bool try_send(Outgoing& o);
  void send_waiting();
  /// Ends the requests in flight that await `c` as failed there (its connection was lost) and
  /// asks its control connection to check the cluster now.
  void fail_pending(Cluster c);
  /// Every cluster answered `p`: the client gets the aggregated answer.
  void complete(PendingRequest& p);
  /// Both clusters prepared the statement: the ids go to the cache; the client's PREPARED
  /// `resp` loses the proxy's generated markers.
  void cache_prepared(PendingRequest& p, cql::Bytes& resp);
  /// A request unanswered after proxy_request_timeout_ms: counted, its stream ids kept until
  /// an answer comes.
  void time_out(const PendingRequest& p);
  void reply(cql::Bytes frame, int16_t stream);
  void reply_error(uint8_t version, int16_t stream, cql::ErrorCode code, std::string message);
  /// Answers what was queued, then closes (after a fatal protocol or handshake error).
  void close_after_flush();
  void close();
  void sweep_timeouts();
  Connector* connector(Cluster c) { return c == Cluster::kOrigin ? origin_.get() : target_.get(); }

  asio::io_context& ioc_;
  net::Stream client_;
  net::FrameWriter client_writer_;
  cql::FrameStream client_frames_;
  SharedState& shared_;
  const Config& config_;
  std::string client_addr_;
  std::shared_ptr<Connector> origin_, target_;
  AsyncMirror async_;  // DUAL_ASYNC_ON_SECONDARY: reads mirrored to the secondary
  std::unordered_map<uint64_t, PendingRequest> pending_;
  std::deque<Outgoing> waiting_;                         // for stream ids, oldest first
  std::chrono::steady_clock::time_point last_activity_;  // last frame from the client
  uint64_t next_request_id_ = 1;
  uint8_t version_ = 0;  // negotiated protocol version, 0 until the first accepted frame
  cql::Compression compression_ = cql::Compression::kNone;
  cql::Bytes scratch_;  // decompressed bodies, reused

  Handshake handshake_;

  bool registered_ = false;
  std::vector<std::string> events_;  // TOPOLOGY_CHANGE / STATUS_CHANGE registered for
  /// Where the connection is in its life: open; draining (drain(): no new requests, those in
  /// flight answered, then closed); closing (close_after_flush(): the same after a fatal error);
  /// closed.
  enum class Lifecycle : uint8_t { kOpen, kDraining, kClosing, kClosed };
  Lifecycle life_ = Lifecycle::kOpen;
  bool closed() const { return life_ == Lifecycle::kClosed; }
  /// Draining or closing: requests in flight are answered, then the connection closes.
  bool winding_down() const {
    return life_ == Lifecycle::kDraining || life_ == Lifecycle::kClosing;
  }
  std::string keyspace_;
  TraceRouting traces_;  // system_traces reads go to the cluster that served the traced request
  RequestRouter router_{shared_, traces_};
  /// Backpressure: waits until no cluster write queue is over its high watermark.
  awaitable<void> clusters_writable();
  /// Memory budget of the worker for large frames: before more of a frame over 1 MiB is read,
  /// its declared size is reserved (waiting while others hold the budget).
  awaitable<void> reserve_for_large_frame();
  FrameBudget budget_;  // the worker's memory budget for large frames: this session's share
  void watch_writer(net::FrameWriter& w, asio::steady_timer& resume);
  asio::steady_timer client_resume_;   // a cluster writer drained: the client may be read again
  asio::steady_timer cluster_resume_;  // the client writer drained: clusters may be read again
  asio::steady_timer sweep_timer_;
  asio::steady_timer drained_;  // fires (cancel) when draining and no request is pending
};

}  // namespace zdm::proxy
