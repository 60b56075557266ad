// The requests of one client connection between the proxy and the clusters: each gets a
// request id and a stream id on every cluster connection it goes to (stream_ids.h; the client's
// own stream id is restored on the answer, native_protocol_v4.spec §2.3), waits in order when a
// connection has no free stream id, and ends exactly once: answered, lost with its connection,
// timed out, or abandoned when the session closes (request.h counts each). One per client
// session, on its worker thread; it sends through the session's connectors and never calls the
// session.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "proxy/async_mirror.h"
#include "proxy/client_handshake.h"
#include "proxy/connector.h"
#include "proxy/request.h"
#include "proxy/shared_state.h"

namespace zdm::proxy {

class InFlight {
 public:
  /// Requests waiting for a stream id, at most: a client connection cannot have more in flight
  /// (its stream ids are 15 bits, native_protocol_v4.spec §2.3).
  static constexpr std::size_t kMaxWaiting = 32768;

  /// `client`: where the errors of failed requests go; `client_addr`: the client's "ip:port",
  /// for logs.
  /// `complete(p)`: answers the client once every awaited cluster answered (the same as
  /// on_answer's `done`), for requests that end without another answer (isolate mode gave up on
  /// target).
  InFlight(SharedState& shared, ClusterConnections& clusters, AsyncMirror& async,
           net::FrameWriter& client, const std::string& client_addr,
           std::function<void(PendingRequest&)> complete)
      : complete_(std::move(complete)),
        shared_(shared),
        config_(shared.config),
        clusters_(clusters),
        async_(async),
        client_(client),
        client_addr_(client_addr) {}

  /// Sends `o` to its clusters (and mirrors it), or queues it until stream ids free up or a
  /// reconnecting cluster connection is back. A request for a cluster whose link is down is
  /// answered SERVER_ERROR at once (counted), unless the primary alone serves it
  /// (down_cluster()). False when kMaxWaiting requests already wait: the
  /// caller answers OVERLOADED.
  bool dispatch(Outgoing&& o);
  /// An answer `frame` on stream `stream` of `from`: once every cluster has answered the
  /// request it belongs to, `done(PendingRequest&)` makes the client's response, then the
  /// request ends and waiting requests are sent. A late answer (the request timed out) frees
  /// its stream id. `compression`: of the frame's body.
  template <class Done>
  void on_answer(Connector& from, int16_t stream, cql::Bytes frame, cql::Compression compression,
                 Done done);
  /// Connection `lost` failed (`why`: how): the requests that await its cluster end as failed
  /// there, each answered SERVER_ERROR (what a driver's retry policy treats as it treats a
  /// lost connection: retried on the next host if idempotent), and the cluster's control
  /// connection checks the cluster now. Requests not yet sent keep waiting.
  void fail(const Connector& lost, const std::string& why);
  /// No node of cluster `c` could be reached (`why`): the waiting requests that need it end,
  /// answered SERVER_ERROR (counted); the others go out.
  void unreachable(Cluster c, const std::string& why);
  /// A cluster connection is up again: waiting requests go out.
  void resume() { send_waiting(); }
  /// Ends what was started before `deadline` (proxy_request_timeout_ms ago): counted as timed
  /// out, their stream ids kept until an answer comes (a new request must not get the old
  /// answer). A request older than `suspicious` asks its cluster's control connection to check
  /// the cluster.
  /// Returns, by Cluster, whether its connection fell silent: requests on it timed out in this
  /// sweep and nothing was read from it since the last one (the session replaces it).
  /// isolate mode: a journaled write (or a request the primary alone can serve) started before
  /// `target_deadline` (target_write_timeout_ms ago) stops waiting for target and ends on
  /// origin's answer.
  std::array<bool, 2> sweep(std::chrono::steady_clock::time_point deadline,
                            std::chrono::steady_clock::time_point suspicious,
                            std::chrono::steady_clock::time_point target_deadline);
  /// The session closed: every request ends, nothing counted as failed.
  void abandon();
  /// True if a request sent to `c` still awaits its answer.
  bool awaits(Cluster c) const;
  /// No request in flight or waiting.
  bool empty() const { return pending_.empty() && waiting_.empty(); }

 private:
  bool try_send(Outgoing& o);
  /// isolate mode: true if `p` may end without target's answer (a journaled write, or the
  /// primary alone serves it).
  bool may_skip_target(const PendingRequest& p) const;
  /// isolate mode: target's link is not up: `p` goes to origin alone (counted as missed).
  void skip_unreachable_target(PendingRequest& p);
  /// isolate mode: target's answer is no longer awaited (`why`); counted as missed.
  void give_up_target(PendingRequest& p, journal::Reason why);
  void send_waiting();
  /// The cluster `p` needs whose link is down, if any. While the secondary is down, a request
  /// the primary alone can answer (PendingRequest::primary_suffices) is narrowed to the primary
  /// first: a driver's heartbeat (OPTIONS), REGISTER, USE and PREPARE keep working.
  std::optional<Cluster> down_cluster(PendingRequest& p) const;
  /// Answers `p` SERVER_ERROR `message` on its client stream.
  void reply_failed(const PendingRequest& p, const std::string& message);
  void time_out(const PendingRequest& p);

  std::function<void(PendingRequest&)> complete_;
  SharedState& shared_;
  const Config& config_;
  ClusterConnections& clusters_;
  AsyncMirror& async_;
  net::FrameWriter& client_;
  const std::string& client_addr_;
  std::unordered_map<uint64_t, PendingRequest> pending_;  // by request id
  std::deque<Outgoing> waiting_;                          // for stream ids, oldest first
  uint64_t next_request_id_ = 1;
};

template <class Done>
void InFlight::on_answer(Connector& from, int16_t stream, cql::Bytes frame,
                         cql::Compression compression, Done done) {
  const uint64_t id = from.release(stream);
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    // The late answer to a request that timed out: its stream id is free again.
    if (id != 0 && from.unanswered > 0) --from.unanswered;
    if (!waiting_.empty()) send_waiting();
    return;
  }
  PendingRequest& p = it->second;
  if (from.cluster() == Cluster::kTarget && p.target_missed == journal::Reason::kTargetTimeout &&
      from.unanswered > 0)
    --from.unanswered;  // the late answer of a request isolate mode stopped waiting for
  if (!p.answer(from.cluster(), std::move(frame), from.metrics, compression)) return;
  done(p);
  pending_.erase(it);
  shared_.inflight--;
  if (!waiting_.empty()) send_waiting();
}

}  // namespace zdm::proxy
