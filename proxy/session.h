// One client connection and its cluster connections (ZDM's connection model, datastax/zdm-proxy
// proxy/pkg/zdmproxy/clienthandler.go): a connector to an origin node, one to a target node and,
// in DUAL_ASYNC_ON_SECONDARY, an async connector to the secondary (async_mirror.h). All of them
// live on one worker thread's io_context, so nothing here takes a lock. The session owns its
// connectors and hears from them through ConnectorListener. The handshake is
// client_handshake.h's; a request is routed by request_router.h and, in flight, is a
// PendingRequest (request.h); backpressure is flow_control.h's.
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "proxy/asio.h"
#include "proxy/async_mirror.h"
#include "proxy/client_handshake.h"
#include "proxy/config.h"
#include "proxy/connector.h"
#include "proxy/failover.h"
#include "proxy/flow_control.h"
#include "proxy/frame_budget.h"
#include "proxy/in_flight.h"
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
  bool client_full() const override { return client_writer_.full(); }

  /// Bytes this connection holds in buffers: its write queue, the frame being read, an inflated
  /// body, and the same of its cluster connections (sizes the writers and readers already keep:
  /// nothing is counted per request). On the session's thread.
  std::size_t held_bytes();
  /// Closes the connection for the process-wide memory ceiling (memory_guard.h), counted and
  /// logged with what it held. On the session's thread.
  void shed_for_memory(std::size_t rss, std::size_t ceiling);

 private:
  awaitable<void> serve();
  awaitable<void> take_frames();
  void start_timers();
  /// A handshake frame (client_handshake.h); once READY or AUTH_SUCCESS went to the client,
  /// requests flow.
  awaitable<void> handshake_frame(const cql::Header& h, cql::Bytes frame);
  /// The handshake completed: the cluster connections are read, the async mirror starts.
  void on_ready();
  /// Reads cluster connection `k` (kept alive while its read loop runs).
  void start_reading(std::shared_ptr<Connector> k);
  /// Cluster connection `k` failed (`why`): the requests in flight on it fail; another node of
  /// its cluster takes its place (failover.h), or the client connection closes when the
  /// handshake cannot be replayed.
  void fail_over(Connector& k, const std::string& why);
  /// Connects cluster `c` again after its node `failed` failed ("" when the connection started
  /// without `c`), until it succeeds or the session closes: each round tries every node once;
  /// after a failed round the link is down (requests for `c` fail at once, but those the primary
  /// alone can answer: InFlight::dispatch) and the next round starts kReconnectInterval later.
  awaitable<void> reconnect(Cluster c, std::string failed);
  /// Once a second: a connection on a node not assigned to this proxy (its assigned nodes had
  /// failed) moves back to an assigned node, at most every kReturnInterval, when one accepts
  /// and nothing is in flight on the old connection at that moment.
  void maybe_return(Cluster c, std::chrono::steady_clock::time_point now);
  awaitable<void> return_to_assigned(Cluster c);
  /// What a replacement connection to `c` replays of this client's handshake.
  std::optional<HandshakeReplay> replay_for(Cluster c) const;
  /// Version checks of every client frame; false when the frame was answered and the
  /// connection is to close.
  bool accept_version(const cql::Header& h);

  // Requests (after the handshake).
  void on_client_frame(const cql::Header& h, cql::Bytes frame);
  /// Every awaited cluster answered `p`: the client gets its response.
  void finish(PendingRequest& p);
  void reply_error(uint8_t version, int16_t stream, cql::ErrorCode code, std::string message);
  /// Answers what was queued, then closes (after a fatal protocol or handshake error).
  void close_after_flush();
  void close();
  void sweep_timeouts();
  /// Between sweeps: 1 s; isolate mode, a quarter of target_write_timeout_ms (50 ms to 1 s)
  /// so a client waits on a sick target about that long and no more.
  std::chrono::milliseconds sweep_interval() const {
    if (!shared_.target.isolating()) return std::chrono::milliseconds(1000);
    return std::chrono::milliseconds(std::clamp(config_.target_write_timeout_ms / 4, 50, 1000));
  }
  /// True (and the connection closed) when a frame has been incomplete for
  /// proxy_partial_frame_timeout_ms while the proxy was reading it.
  bool partial_frame_expired(std::chrono::steady_clock::time_point now);
  /// Closed to admit a newer connection: the handshake budget was full (handshake_budget.h).
  void evict_handshaking();
  /// Memory budget of the worker for large frames: before more of a frame over 1 MiB is read,
  /// its declared size is reserved (waiting while others hold the budget).
  awaitable<void> reserve_for_large_frame();
  /// Reserves `len` bytes of the worker's budget for large frames (`what`: for the log); false,
  /// with the connection closed, when they did not fit within proxy_request_timeout_ms.
  awaitable<bool> reserve_budget(std::size_t len, const char* what);
  /// What the compressed body of client frame `frame` declares it inflates to; 0 when it is not
  /// compressed.
  std::size_t inflated_size(const cql::Header& h, const cql::Bytes& frame) const;
  bool ready() const { return handshake_.state().ready(); }

  asio::io_context& ioc_;
  net::Stream client_;
  net::FrameWriter client_writer_;
  cql::FrameStream client_frames_;
  SharedState& shared_;
  const Config& config_;
  std::string client_addr_;
  uint8_t version_ = 0;  // negotiated protocol version, 0 until the first accepted frame
  cql::Compression compression_ = cql::Compression::kNone;
  ClusterConnections clusters_;  // opened by the handshake
  AsyncMirror async_;            // DUAL_ASYNC_ON_SECONDARY: reads mirrored to the secondary
  ClientHandshake handshake_;
  InFlight in_flight_{shared_,        clusters_,    async_,
                      client_writer_, client_addr_, [this](PendingRequest& p) { finish(p); }};
  std::chrono::steady_clock::time_point last_activity_;  // last frame from the client
  cql::Bytes scratch_;                                   // decompressed bodies, reused
  bool receiving_ = false;  // the run loop waits for client bytes (is not pausing the client)
  // The incomplete frame seen by the sweep: since when, and the frames taken until then.
  std::chrono::steady_clock::time_point partial_since_{};
  uint64_t partial_taken_ = 0;
  HandshakeBudget::Ticket handshake_ticket_ = 0;  // while in the handshake budget
  bool established_ = false;                      // counted in SharedState::established

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
  RequestRouter router_{shared_, traces_, ioc_};
  FrameBudget budget_;  // the worker's memory budget for large frames: this session's share
  FlowControl flow_;
  asio::steady_timer sweep_timer_;
  asio::steady_timer reconnect_timer_;  // between rounds of reconnect()
  bool returning_[2] = {false, false};  // by Cluster: return_to_assigned() runs
  std::chrono::steady_clock::time_point next_return_[2];
  asio::steady_timer drained_;  // fires (cancel) when draining and no request is pending
};

}  // namespace zdm::proxy
