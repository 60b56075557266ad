#include "proxy/in_flight.h"

#include <array>

#include <spdlog/spdlog.h>

#include "common/cql/messages.h"

namespace zdm::proxy {

using cql::Bytes;

namespace {
// Readiness evidence (issue 19), once a second per session and nothing per request: a cluster
// connection that read anything since the last sweep shows its cluster answers; one that read
// nothing while `stuck` requests wait on it for over DataPathEvidence::kStuckAfter shows it may
// be stalled.
// Returns, by Cluster, whether its connection read anything.
std::array<bool, 2> report_data_path(SharedState& shared, ClusterConnections& clusters,
                                     const int (&stuck)[2]) {
  std::array<bool, 2> read{false, false};
  for (Cluster c : {Cluster::kOrigin, Cluster::kTarget}) {
    Connector* k = c == Cluster::kOrigin ? clusters.origin.get() : clusters.target.get();
    if (!k || clusters.state(c) != Link::kUp) continue;
    read[static_cast<int>(c)] = k->read_since_last_sweep();
    if (read[static_cast<int>(c)])
      shared.cc(c).data_path_answered();
    else if (stuck[static_cast<int>(c)] > 0)
      shared.cc(c).data_path_stuck(stuck[static_cast<int>(c)]);
  }
  return read;
}
}  // namespace

bool InFlight::may_skip_target(const PendingRequest& p) const {
  return shared_.target.isolating() && p.decision.destination == Destination::kBoth &&
         (p.journal_seq != 0 || p.primary_suffices);
}

void InFlight::skip_unreachable_target(PendingRequest& p) {
  if (!may_skip_target(p) || clusters_.state(Cluster::kTarget) == Link::kUp) return;
  p.decision.destination = Destination::kOrigin;
  if (config_.secondary() == Cluster::kTarget) p.decision.async_mirror = false;
  if (p.journal_seq) {
    shared_.target.missed(p.journal_table, journal::Reason::kTargetUnreachable);
    shared_.target.target_failed();
  }
}

void InFlight::give_up_target(PendingRequest& p, journal::Reason why) {
  p.give_up_target(why);
  if (p.journal_seq) {
    shared_.target.missed(p.journal_table, why);
    shared_.target.target_failed();
  }
}

bool InFlight::dispatch(Outgoing&& o) {
  if (o.pending.decision.destination == Destination::kDrop) return true;
  skip_unreachable_target(o.pending);
  if (auto down = down_cluster(o.pending)) {
    o.pending.unreachable(shared_.metrics, *down, config_.primary_cluster);
    reply_failed(o.pending, std::string("zdm-proxy: no ") + cluster_name(*down) +
                                " node is reachable for this client connection");
    return true;
  }
  if (waiting_.empty() && try_send(o)) return true;
  if (waiting_.size() >= kMaxWaiting) return false;
  waiting_.push_back(std::move(o));
  return true;
}

void InFlight::send_waiting() {
  while (!waiting_.empty() && try_send(waiting_.front())) waiting_.pop_front();
}

bool InFlight::try_send(Outgoing& o) {
  PendingRequest& p = o.pending;
  skip_unreachable_target(p);
  const Decision& d = p.decision;
  const uint64_t id = next_request_id_;
  const bool to_origin =
      d.destination == Destination::kOrigin || d.destination == Destination::kBoth;
  const bool to_target =
      d.destination == Destination::kTarget || d.destination == Destination::kBoth;
  if ((to_origin && clusters_.state(Cluster::kOrigin) != Link::kUp) ||
      (to_target && clusters_.state(Cluster::kTarget) != Link::kUp))
    return false;  // reconnecting: waits
  std::optional<int16_t> so, st;
  if (to_origin) so = clusters_.origin->acquire(id);
  if (to_target) st = clusters_.target->acquire(id);
  if ((to_origin && !so) || (to_target && !st)) {
    if (so) clusters_.origin->release(*so);
    if (st) clusters_.target->release(*st);
    return false;
  }
  ++next_request_id_;
  p.id = id;
  if (d.async_mirror && async_.ready()) {
    const bool target_copy = config_.secondary() == Cluster::kTarget && o.target_frame;
    if (async_.mirror(id, target_copy ? *o.target_frame : o.frame, p.opcode, p.start, d.metric) &&
        config_.read_compare && !p.compare_table.empty())
      async_.expect_compare(id, std::move(p.compare_table), std::move(p.compare_key));
  }
  if (to_target) {
    Bytes tf =
        o.target_frame ? std::move(*o.target_frame) : (to_origin ? o.frame : std::move(o.frame));
    cql::patch_stream(tf.data(), *st);
    clusters_.target->send(std::move(tf));
  }
  if (to_origin) {
    cql::patch_stream(o.frame.data(), *so);
    clusters_.origin->send(std::move(o.frame));
  }
  p.sent(shared_.metrics, to_origin, to_target);
  shared_.inflight++;
  pending_.emplace(id, std::move(p));
  return true;
}

std::optional<Cluster> InFlight::down_cluster(PendingRequest& p) const {
  if (p.primary_suffices && p.decision.destination == Destination::kBoth &&
      clusters_.state(config_.secondary()) == Link::kDown &&
      clusters_.state(config_.primary_cluster) != Link::kDown) {
    p.decision.destination = only(config_.primary_cluster);
    p.decision.async_mirror = false;
  }
  const Destination d = p.decision.destination;
  if ((d == Destination::kOrigin || d == Destination::kBoth) &&
      clusters_.state(Cluster::kOrigin) == Link::kDown)
    return Cluster::kOrigin;
  if ((d == Destination::kTarget || d == Destination::kBoth) &&
      clusters_.state(Cluster::kTarget) == Link::kDown)
    return Cluster::kTarget;
  return std::nullopt;
}

bool InFlight::awaits(Cluster c) const {
  for (const auto& [id, p] : pending_)
    if (p.awaits(c)) return true;
  return false;
}

void InFlight::reply_failed(const PendingRequest& p, const std::string& message) {
  client_.push(
      cql::encode_error(p.version, p.client_stream, cql::ErrorCode::kServerError, message));
}

void InFlight::fail(const Connector& lost, const std::string& why) {
  const Cluster c = lost.cluster();
  const std::string message = std::string("zdm-proxy: the connection to ") + cluster_name(c) +
                              " node " + lost.node() + " failed (" + why +
                              ") with this request in flight";
  std::size_t failed = 0;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (!it->second.awaits(c)) {
      ++it;
      continue;
    }
    if (c == Cluster::kTarget && may_skip_target(it->second)) {
      give_up_target(it->second, journal::Reason::kTargetUnreachable);
      if (it->second.awaits(Cluster::kOrigin)) {
        ++it;
        continue;
      }
      complete_(it->second);
      shared_.inflight--;
      it = pending_.erase(it);
      continue;
    }
    it->second.lost(shared_.metrics, c, config_.primary_cluster);
    reply_failed(it->second, it->second.decision.metric != RequestType::kWrites &&
                                     it->second.decision.metric != RequestType::kNone
                                 ? message
                                 : message + "; it may have been applied");
    shared_.inflight--;
    it = pending_.erase(it);
    ++failed;
  }
  if (failed)
    spdlog::warn("{} requests of client {} in flight on {} node {} failed", failed, client_addr_,
                 cluster_name(c), lost.node());
  shared_.cc(c).check_now();
}

void InFlight::unreachable(Cluster c, const std::string& why) {
  const std::string message = std::string("zdm-proxy: no ") + cluster_name(c) +
                              " node is reachable for this client connection (" + why + ")";
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (down_cluster(it->pending) != c) {
      ++it;
      continue;
    }
    it->pending.unreachable(shared_.metrics, c, config_.primary_cluster);
    reply_failed(it->pending, message);
    it = waiting_.erase(it);
  }
  send_waiting();
}

void InFlight::time_out(const PendingRequest& p) {
  // ZDM sends nothing for a timed-out request; the driver times out on its own.
  spdlog::warn("Request {} on stream {} from client {} timed out after {} ms",
               cql::opcode_name(p.opcode), p.client_stream, client_addr_,
               config_.proxy_request_timeout_ms);
  for (Cluster c : {Cluster::kOrigin, Cluster::kTarget}) {
    Connector* k = c == Cluster::kOrigin ? clusters_.origin.get() : clusters_.target.get();
    if (!p.awaits(c) || !k) continue;
    ++k->unanswered;
    if (k->metrics) k->metrics->requests_failed["client_timeout"]->inc();
  }
  p.timed_out(shared_.metrics, config_.primary_cluster);
  shared_.inflight--;
}

std::array<bool, 2> InFlight::sweep(std::chrono::steady_clock::time_point deadline,
                                    std::chrono::steady_clock::time_point suspicious,
                                    std::chrono::steady_clock::time_point target_deadline) {
  int stuck[2] = {0, 0};  // readiness evidence: requests older than `suspicious`, per cluster
  int timed_out[2] = {0, 0};
  for (auto it = pending_.begin(); it != pending_.end();) {
    PendingRequest& p = it->second;
    if (p.start < target_deadline && p.awaits(Cluster::kTarget) && may_skip_target(p)) {
      give_up_target(p, journal::Reason::kTargetTimeout);
      if (clusters_.target) ++clusters_.target->unanswered;  // its stream id waits for the answer
      if (!p.awaits(Cluster::kOrigin)) {
        complete_(p);
        shared_.inflight--;
        it = pending_.erase(it);
        continue;
      }
    }
    for (Cluster c : {Cluster::kOrigin, Cluster::kTarget})
      if (p.awaits(c) && p.start < suspicious) {
        shared_.cc(c).check_now();
        ++stuck[static_cast<int>(c)];
      }
    if (p.start >= deadline) {
      ++it;
      continue;
    }
    for (Cluster c : {Cluster::kOrigin, Cluster::kTarget})
      if (p.awaits(c)) ++timed_out[static_cast<int>(c)];
    time_out(p);
    it = pending_.erase(it);
  }
  while (!waiting_.empty() && waiting_.front().pending.start < deadline) {
    shared_.metrics.client_errors(ProxyMetrics::ClientError::kOverloaded).inc();
    waiting_.pop_front();
  }
  const auto read = report_data_path(shared_, clusters_, stuck);
  return {timed_out[0] > 0 && !read[0] && clusters_.state(Cluster::kOrigin) == Link::kUp,
          timed_out[1] > 0 && !read[1] && clusters_.state(Cluster::kTarget) == Link::kUp};
}

void InFlight::abandon() {
  for (auto& [id, p] : pending_) {
    p.abandoned(shared_.metrics);
    shared_.inflight--;
  }
  pending_.clear();
  waiting_.clear();
}

}  // namespace zdm::proxy
