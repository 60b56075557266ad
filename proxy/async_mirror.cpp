#include "proxy/async_mirror.h"

#include <spdlog/spdlog.h>

#include "common/cql/messages.h"
#include "proxy/failover.h"
#include "proxy/prepared_ids.h"
#include "proxy/wire.h"

namespace zdm::proxy {

using cql::Bytes;
using cql::Opcode;

namespace {

// Request ids on the async connector carry this bit: a stream id is never taken for id 0.
constexpr uint64_t kAsyncBit = 1ull << 63;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void AsyncMirror::start(std::shared_ptr<ConnectorListener> listener, uint8_t version,
                        cql::Compression compression, Bytes startup, net::Credentials creds) {
  const Cluster sec = config_.secondary();
  version_ = version;
  compression_ = compression;
  connector_ =
      std::make_shared<Connector>(ioc_, Connector::Role::kAsync, sec, config_.proxy_max_stream_ids);
  connector_->listener = listener;
  asio::co_spawn(
      ioc_,
      [this, listener, k = connector_, sec, startup = std::move(startup),
       creds = std::move(creds)]() mutable -> awaitable<void> {
        // `listener` (the session that owns this mirror) keeps `this` alive.
        const auto timeout = std::chrono::milliseconds(config_.async_handshake_timeout_ms);
        std::string why;
        tcp::endpoint ep;
        try {
          ep = shared_.cc(sec).pick_node();
        } catch (const std::exception& e) {
          why = e.what();
        }
        auto hop = shared_.cc(sec).hop();
        hop.connect_timeout = timeout;
        bool opened = false;
        if (why.empty()) {
          opened = co_await k->open(ep, ep.address().to_string(), hop, why);
          // The node's series, also when it refused: a failed open is a failed connection.
          k->metrics = &shared_.metrics.node("async", k->node());
        }
        if (opened) {
          k->set_protocol(version_, compression_);
          // Named, not temporaries: GCC 12 destroys a co_await operand's temporaries twice.
          const HandshakeReplay replay{version_, compression_, std::move(startup), creds};
          const std::string no_keyspace;
          why = co_await replay_handshake(*k, replay, no_keyspace, timeout);
          if (why.empty()) {
            if (closed_) co_return;
            k->metrics->connections->add();
            ready_ = true;
            co_await k->read_loop(
                listener, static_cast<std::size_t>(config_.response_read_buffer_size_bytes));
            co_return;
          }
        }
        if (k->metrics) k->metrics->failed_connections->inc();
        k->close();
        if (!closed_)
          spdlog::warn(
              "Async connector to {} for client {} failed: {}; async reads disabled for this "
              "connection",
              cluster_name(sec), client_addr_, why);
      },
      asio::detached);
}

bool AsyncMirror::mirror(uint64_t id, const Bytes& frame, Opcode opcode,
                         std::chrono::steady_clock::time_point start, RequestType metric) {
  // Before READY/AUTH_SUCCESS a frame queued on the connector would reach the node ahead of the
  // replayed STARTUP (and take its stream id 0): the node's error would end the replay.
  if (!ready_) return false;
  if (started_.size() >=
      static_cast<std::size_t>(config_.async_connector_write_queue_size_frames)) {
    // Bounded: a slow secondary must not grow memory; the mirrored read is dropped.
    if (connector_->metrics) connector_->metrics->requests_failed["other"]->inc();
    return false;
  }
  auto s = connector_->acquire(id | kAsyncBit);
  if (!s) return false;
  Bytes copy = frame;
  cql::patch_stream(copy.data(), *s);
  Request& r = started_[id];
  r = Request{start, metric, {}, false};
  if (opcode == Opcode::kExecute) r.execute = copy;
  connector_->send(std::move(copy));
  if (connector_->metrics) connector_->metrics->inflight->add();
  return true;
}

void AsyncMirror::expect_compare(uint64_t id, std::string table, std::string key) {
  Comparison& c = comparisons_[id];
  c.start = std::chrono::steady_clock::now();
  c.table = std::move(table);
  c.key = std::move(key);
}

void AsyncMirror::primary_answered(uint64_t id, const Bytes& frame) {
  auto it = comparisons_.find(id);
  if (it == comparisons_.end()) return;
  it->second.primary_done = true;
  it->second.primary =
      rows_digest(frame, compression_, compare_scratch_, config_.read_compare_max_rows);
  if (it->second.secondary_done) compared(it);
}

void AsyncMirror::compared(std::unordered_map<uint64_t, Comparison>::iterator it) {
  const Comparison& c = it->second;
  if (c.primary && c.secondary)
    shared_.read_compare.record(c.table, *c.primary == *c.secondary, c.key);
  comparisons_.erase(it);
}

void AsyncMirror::on_frame(Connector& from, const cql::Header& h, Bytes frame) {
  const uint64_t id = from.release(h.stream) & ~kAsyncBit;
  auto it = started_.find(id);
  if (it == started_.end()) return;
  Request& r = it->second;
  if (r.repreparing) {
    // The answer to our PREPARE: retry the mirrored EXECUTE once, whatever it said.
    r.repreparing = false;
    if (h.opcode == Opcode::kResult) {
      if (auto s = from.acquire(id | kAsyncBit)) {
        Bytes retry = std::move(r.execute);
        r.execute.clear();
        cql::patch_stream(retry.data(), *s);
        from.send(std::move(retry));
        return;
      }
    }
  } else if (h.opcode == Opcode::kError && !r.execute.empty() &&
             error_code_of(frame, compression_) ==
                 static_cast<int32_t>(cql::ErrorCode::kUnprepared) &&
             reprepare(id, r, frame)) {
    return;
  }
  if (from.metrics) {
    from.metrics->inflight->sub();
    // Only requests the proxy tracks (reads, USE) count; OPTIONS heartbeats do not.
    if (r.metric != RequestType::kNone) {
      from.metrics->reads->observe(seconds_since(r.start));
      if (h.opcode == Opcode::kError)
        from.metrics->requests_failed[error_label(error_code_of(frame, compression_))]->inc();
    }
  }
  started_.erase(it);
  if (auto c = comparisons_.find(id); c != comparisons_.end()) {
    c->second.secondary_done = true;
    c->second.secondary =
        rows_digest(frame, compression_, compare_scratch_, config_.read_compare_max_rows);
    if (c->second.primary_done) compared(c);
  }
}

bool AsyncMirror::reprepare(uint64_t id, Request& r, const Bytes& error_frame) {
  std::shared_ptr<const PreparedEntry> entry;
  try {
    Bytes scratch;
    auto unknown = unprepared_id(error_frame, compression_, scratch);
    if (!unknown) return false;
    // The id is origin's, or target's when the secondary is target.
    entry = shared_.prepared.by_origin_id(*unknown);
    if (!entry)
      if (auto origin_id = shared_.prepared.origin_id_for_target(*unknown))
        entry = shared_.prepared.by_origin_id(*origin_id);
  } catch (const cql::ProtocolError&) {
    return false;
  }
  if (!entry) return false;
  auto s = connector_->acquire(id | kAsyncBit);
  if (!s) return false;
  connector_->send(reprepare_frame(version_, *s, entry->query, entry->keyspace));
  r.repreparing = true;
  spdlog::debug("Async connector: statement unprepared on {}; re-preparing and retrying once",
                connector_->node());
  return true;
}

void AsyncMirror::on_closed(Connector& c) {
  if (ready_ && c.metrics) c.metrics->connections->sub();
  ready_ = false;
  c.close();
}

void AsyncMirror::sweep(std::chrono::steady_clock::time_point deadline) {
  std::erase_if(comparisons_, [&](const auto& kv) { return kv.second.start < deadline; });
  for (auto it = started_.begin(); it != started_.end();) {
    if (it->second.start < deadline) {
      if (connector_ && connector_->metrics) {
        connector_->metrics->requests_failed["client_timeout"]->inc();
        connector_->metrics->inflight->sub();
      }
      it = started_.erase(it);
    } else {
      ++it;
    }
  }
}

void AsyncMirror::close() {
  closed_ = true;
  if (connector_) {
    if (connector_->metrics && ready_) connector_->metrics->connections->sub();
    connector_->close();
    if (connector_->metrics)
      for (std::size_t i = 0; i < started_.size(); ++i) connector_->metrics->inflight->sub();
  }
  ready_ = false;
  started_.clear();
}

}  // namespace zdm::proxy
