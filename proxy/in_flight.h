// The requests of one client connection between the proxy and the clusters: each gets a
// request id and a stream id on every cluster connection it goes to (stream_ids.h; the client's
// own stream id is restored on the answer, native_protocol_v4.spec §2.3), waits in order when a
// connection has no free stream id, and ends exactly once: answered, lost with its connection,
// timed out, or abandoned when the session closes (request.h counts each). One per client
// session, on its worker thread; it sends through the session's connectors and never calls the
// session.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
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

  /// `client_addr`: the client's "ip:port", for logs.
  InFlight(SharedState& shared, ClusterConnections& clusters, AsyncMirror& async,
           const std::string& client_addr)
      : shared_(shared),
        config_(shared.config),
        clusters_(clusters),
        async_(async),
        client_addr_(client_addr) {}

  /// Sends `o` to its clusters (and mirrors it), or queues it until stream ids free up. False
  /// when kMaxWaiting requests already wait: the caller answers OVERLOADED.
  bool dispatch(Outgoing&& o);
  /// An answer `frame` on stream `stream` of `from`: once every cluster has answered the
  /// request it belongs to, `done(PendingRequest&)` makes the client's response, then the
  /// request ends and waiting requests are sent. A late answer (the request timed out) frees
  /// its stream id. `compression`: of the frame's body.
  template <class Done>
  void on_answer(Connector& from, int16_t stream, cql::Bytes frame, cql::Compression compression,
                 Done done);
  /// `c`'s connection was lost: the requests that await it end as failed there, and its
  /// control connection checks the cluster now.
  void fail(Cluster c);
  /// Ends what was started before `deadline` (proxy_request_timeout_ms ago): counted as timed
  /// out, their stream ids kept until an answer comes (a new request must not get the old
  /// answer). A request older than `suspicious` asks its cluster's control connection to check
  /// the cluster.
  void sweep(std::chrono::steady_clock::time_point deadline,
             std::chrono::steady_clock::time_point suspicious);
  /// The session closed: every request ends, nothing counted as failed.
  void abandon();
  /// No request in flight or waiting.
  bool empty() const { return pending_.empty() && waiting_.empty(); }

 private:
  bool try_send(Outgoing& o);
  void send_waiting();
  void time_out(const PendingRequest& p);

  SharedState& shared_;
  const Config& config_;
  ClusterConnections& clusters_;
  AsyncMirror& async_;
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
  if (!p.answer(from.cluster(), std::move(frame), from.metrics, compression)) return;
  done(p);
  pending_.erase(it);
  shared_.inflight--;
  if (!waiting_.empty()) send_waiting();
}

}  // namespace zdm::proxy
