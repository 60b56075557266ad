#include "proxy/session.h"

#include <spdlog/spdlog.h>

#include <cstring>

#include "common/cql/classifier.h"
#include "common/cql/legacy.h"
#include "common/cql/messages.h"
#include "common/cql/version.h"
#include "common/net/tls.h"
#include "proxy/handshake.h"
#include "proxy/memory_guard.h"
#include "proxy/prepared_ids.h"
#include "proxy/topology.h"
#include "proxy/wire.h"

namespace zdm::proxy {

using cql::Bytes;
using cql::BytesView;
using cql::Opcode;

namespace {

/// Between rounds of reconnect() once every node of a cluster failed.
constexpr auto kReconnectInterval = std::chrono::seconds(1);
/// Between attempts to move a connection back to a node assigned to this proxy.
constexpr auto kReturnInterval = std::chrono::seconds(5);
/// At most this long for one node to connect and accept the replayed handshake (less when
/// proxy_request_timeout_ms is shorter): a silent node must not hold requests up for long.
constexpr auto kReconnectTimeout = std::chrono::milliseconds(2000);

}  // namespace

// ---------------------------------------------------------------------------------------------
// ClientSession: construction, run loop, handshake

ClientSession::ClientSession(asio::io_context& ioc, tcp::socket socket, SharedState& shared)
    : ioc_(ioc),
      client_(std::move(socket)),
      client_writer_(client_),
      client_frames_(ClientHandshake::kMaxBody),
      shared_(shared),
      config_(shared.config),
      async_(ioc, shared, client_addr_),
      handshake_(ioc, shared,
                 ClientSide{client_writer_, client_frames_, client_addr_, version_, compression_},
                 clusters_, [this] { return closed(); }),
      flow_(ioc),
      sweep_timer_(ioc),
      reconnect_timer_(ioc),
      drained_(ioc) {
  boost::system::error_code ec;
  auto ep = client_.socket().remote_endpoint(ec);
  client_addr_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  client_.socket().set_option(tcp::no_delay(true), ec);
  drained_.expires_at(std::chrono::steady_clock::time_point::max());
  flow_.watch_client(client_writer_);
  shared_.sessions++;
  shared_.metrics.client_connections().add();
}

ClientSession::~ClientSession() {
  shared_.handshaking.leave(handshake_ticket_);
  if (established_) shared_.established--;
  shared_.sessions--;
  shared_.sessions_ended.fetch_add(1, std::memory_order_relaxed);
  shared_.metrics.client_connections().sub();
}

awaitable<void> ClientSession::run() {
  auto self = shared_from_this();
  // Whatever ends this coroutine (an exception included), the session and its cluster
  // connections end too.
  try {
    co_await serve();
  } catch (const std::exception& e) {
    spdlog::error("Client session {} failed: {}; closing it", client_addr_, e.what());
    shared_.metrics.client_errors(ProxyMetrics::ClientError::kServerError).inc();
  }
  if (winding_down()) {
    // Answer what is in flight, then the writer flushes and closes the session.
    while (!in_flight_.empty() && !closed()) {
      boost::system::error_code ec;
      drained_.expires_after(std::chrono::milliseconds(config_.proxy_request_timeout_ms));
      co_await drained_.async_wait(nothrow(ec));
      if (!ec) break;  // deadline passed
    }
    client_writer_.close();
  } else {
    close();
  }
}

void ClientSession::start_timers() {
  auto self = shared_from_this();
  // The handshake budget: when it is full, the oldest connection still handshaking closes (on
  // its own thread) to admit this one.
  handshake_ticket_ =
      shared_.handshaking.admit([weak = std::weak_ptr<ClientSession>(self), ioc = &ioc_] {
        asio::post(*ioc, [weak] {
          if (auto s = weak.lock()) s->evict_handshaking();
        });
      });
  asio::co_spawn(
      ioc_,
      [self]() -> awaitable<void> {
        co_await self->client_writer_.run();
        self->close();
      },
      asio::detached);
  asio::co_spawn(
      ioc_,
      [self]() -> awaitable<void> {
        const auto handshake_deadline =
            std::chrono::steady_clock::now() +
            std::chrono::milliseconds(self->config_.proxy_handshake_timeout_ms);
        while (!self->closed()) {
          boost::system::error_code ec;
          self->sweep_timer_.expires_after(self->sweep_interval());
          co_await self->sweep_timer_.async_wait(nothrow(ec));
          if (self->closed()) break;
          if (!self->ready() && std::chrono::steady_clock::now() > handshake_deadline) {
            // Connected and silent, or a slowloris: it must not hold a connection slot.
            spdlog::info("Closing client {}: no handshake within {} ms", self->client_addr_,
                         self->config_.proxy_handshake_timeout_ms);
            self->shared_.metrics.client_errors(ProxyMetrics::ClientError::kHandshakeTimeout).inc();
            self->close();
            break;
          }
          if (self->partial_frame_expired(std::chrono::steady_clock::now())) break;
          self->sweep_timeouts();
        }
      },
      asio::detached);
}

awaitable<void> ClientSession::serve() {
  spdlog::info("Accepted connection from {}", client_addr_);
  last_activity_ = std::chrono::steady_clock::now();
  start_timers();
  if (shared_.client_tls) {
    client_.use_tls(*shared_.client_tls);
    auto ec = co_await client_.handshake(
        ssl::stream_base::server, std::chrono::milliseconds(config_.proxy_handshake_timeout_ms));
    if (ec) {
      std::string reason = net::verify_failure(*client_.tls_stream());
      spdlog::warn("TLS handshake with client {} failed: {}{}", client_addr_, ec.message(),
                   reason.empty() ? "" : " (" + reason + ")");
      close();
      co_return;
    }
  }
  bool first = true;
  while (life_ == Lifecycle::kOpen) {
    // Backpressure (checked inline first: a coroutine call costs an allocation).
    const net::FrameWriter* ow = clusters_.origin ? &clusters_.origin->writer() : nullptr;
    const net::FrameWriter* tw = clusters_.target ? &clusters_.target->writer() : nullptr;
    if ((ow && ow->full()) || (tw && tw->full()))
      co_await flow_.clusters_writable(ow, tw, [this] { return closed(); });
    if (client_writer_.full())
      co_await flow_.client_writable(client_writer_, [this] { return closed(); });
    if (life_ != Lifecycle::kOpen) break;
    boost::system::error_code ec;
    receiving_ = true;
    auto data = co_await client_.receive(
        ec, static_cast<std::size_t>(config_.request_read_buffer_size_bytes));
    receiving_ = false;
    if (ec) break;
    const std::size_t n = data.size();
    last_activity_ = std::chrono::steady_clock::now();
    if (first) {
      first = false;
      // v1/v2 headers are 8 bytes, unknown versions any size: answer from the first byte rather
      // than wait for a 9-byte header that may never come.
      uint8_t v = std::to_integer<uint8_t>(data[0]) & 0x7f;
      if (!known_version(v)) {
        int16_t stream = 0;
        if (v < 3 && n > 2) stream = static_cast<int8_t>(data[2]);
        if (v >= 3 && n > 3) stream = cql::frame_stream(data.data());
        cql::Header h{v, false, 0, stream, Opcode::kOptions, 0};
        accept_version(h);
        break;
      }
    }
    try {
      client_frames_.feed(data);
      co_await take_frames();
      co_await reserve_for_large_frame();
    } catch (const cql::ProtocolError& e) {
      spdlog::warn("Closing client {}: {}", client_addr_, e.what());
      shared_.metrics.client_errors(ProxyMetrics::ClientError::kProtocolError).inc();
      reply_error(version_ ? version_ : 4, 0, cql::ErrorCode::kProtocolError, e.what());
      close_after_flush();
    }
  }
}

awaitable<void> ClientSession::take_frames() {
  cql::Header h;
  Bytes frame;
  while ((life_ == Lifecycle::kOpen || life_ == Lifecycle::kDraining) &&
         client_frames_.next_raw(h, frame)) {
    if (budget_.reserved() > 0 && h.length >= budget_.reserved())
      budget_.release();  // passed on below
    if (!accept_version(h)) break;
    if (!ready()) {
      co_await handshake_frame(h, std::move(frame));
      continue;
    }
    // A compressed body is inflated by routing: what it declares counts against the worker's
    // budget for large frames first, so many clients sending small bodies that inflate to
    // hundreds of MiB cost at most the budget together.
    // (Over proxy_max_frame_size_bytes the router refuses it without inflating.)
    std::size_t inflated = inflated_size(h, frame);
    if (inflated > static_cast<std::size_t>(config_.proxy_max_frame_size_bytes)) inflated = 0;
    if (inflated > FrameBudget::kLargeFrame) {
      const bool fits = co_await reserve_budget(inflated, "body inflating to");
      if (!fits) break;
    }
    try {
      on_client_frame(h, std::move(frame));
    } catch (const std::exception& e) {
      // A bug or an unexpected input in one request: that request fails, the connection lives.
      spdlog::error("Request {} on stream {} from client {} failed in the proxy: {}",
                    cql::opcode_name(h.opcode), h.stream, client_addr_, e.what());
      shared_.metrics.client_errors(ProxyMetrics::ClientError::kServerError).inc();
      reply_error(h.version, h.stream, cql::ErrorCode::kServerError,
                  std::string("zdm-proxy: ") + e.what());
    }
    if (inflated > FrameBudget::kLargeFrame) {
      Bytes().swap(scratch_);  // the inflated body is not kept for the next request
      budget_.release();
    }
  }
}

std::size_t ClientSession::inflated_size(const cql::Header& h, const Bytes& frame) const {
  if (!(h.flags & cql::flag::kCompression) || compression_ == cql::Compression::kNone) return 0;
  return cql::uncompressed_length(compression_, BytesView(frame.data() + cql::kHeaderSize,
                                                          frame.size() - cql::kHeaderSize))
      .value_or(0);
}

bool ClientSession::accept_version(const cql::Header& h) {
  // The connection's version passed the checks at its first frame: every later request costs
  // one comparison (the control connections' facts are not copied per request).
  if (version_ != 0 && h.version == version_ && !h.response) return true;
  const VersionVerdict v =
      check_version(h, version_, config_.blocked_protocol_versions,
                    shared_.origin_cc.facts().version, shared_.target_cc.facts().version);
  if (v.accepted) {
    version_ = h.version;
    return true;
  }
  // Answered in a version the client can read (v1/v2 headers are 8 bytes), then closed: the
  // driver retries with a lower version on a new connection.
  if (v.legacy) {
    client_writer_.push(cql::encode_legacy_protocol_error(
        v.answer_version, static_cast<int8_t>(h.stream), v.message));
  } else {
    reply_error(v.answer_version, h.stream, cql::ErrorCode::kProtocolError, v.message);
  }
  if (v.unsupported)
    spdlog::info("Client {} asked for protocol version {}: refused", client_addr_, h.version);
  close_after_flush();
  return false;
}

awaitable<void> ClientSession::handshake_frame(const cql::Header& h, Bytes frame) {
  // The result goes through a variable: GCC 12 destroys the temporaries of a co_await in a
  // switch condition twice.
  const auto next = co_await handshake_.on_frame(h, std::move(frame), shared_from_this());
  switch (next) {
    case ClientHandshake::Next::kContinue:
      break;
    case ClientHandshake::Next::kReady:
      on_ready();
      break;
    case ClientHandshake::Next::kClose:
      close_after_flush();
      break;
  }
}

void ClientSession::on_ready() {
  shared_.handshaking.leave(handshake_ticket_);
  handshake_ticket_ = 0;
  if (!established_) shared_.established++;
  established_ = true;
  client_frames_.set_max_body(static_cast<uint32_t>(config_.proxy_max_frame_size_bytes));
  auto self = shared_from_this();
  for (Cluster c : {Cluster::kOrigin, Cluster::kTarget}) {
    if (clusters_.state(c) == Link::kUp) {
      start_reading(clusters_.slot(c));
    } else if (replay_for(c)) {
      // Started without `c` (ClientHandshake::start_without): reached once one of its nodes is.
      asio::co_spawn(ioc_, reconnect(c, ""), asio::detached);
    }
  }
  // The async connector replays the client's handshake on the secondary.
  if (config_.read_mode == ReadMode::kDualAsyncOnSecondary)
    async_.start(self, version_, compression_, handshake_.state().startup_frame(),
                 handshake_.state().auth().async);
}

void ClientSession::start_reading(std::shared_ptr<Connector> k) {
  flow_.watch_cluster(k->writer());
  const auto buffer = static_cast<std::size_t>(config_.response_read_buffer_size_bytes);
  asio::co_spawn(
      ioc_,
      [k, self = shared_from_this(), buffer]() -> awaitable<void> {
        co_await k->read_loop(self, buffer);
      },
      asio::detached);
}

awaitable<void> ClientSession::client_writable() {
  co_await flow_.client_writable(client_writer_, [this] { return closed(); });
}

awaitable<void> ClientSession::reserve_for_large_frame() {
  auto len = client_frames_.pending_length();
  if (!len || *len <= FrameBudget::kLargeFrame || budget_.reserved() >= *len) co_return;
  // A named result, not a co_await in a condition (GCC 12 and co_await operands).
  const bool reserved = co_await reserve_budget(*len, "frame of");
  if (reserved) client_frames_.reserve_pending();
}

awaitable<bool> ClientSession::reserve_budget(std::size_t len, const char* what) {
  const auto budget = static_cast<std::size_t>(config_.proxy_max_inflight_frame_bytes);
  const auto timeout = std::chrono::milliseconds(config_.proxy_request_timeout_ms);
  const bool fits = co_await budget_.reserve(ioc_, static_cast<uint32_t>(len), budget, timeout,
                                             [this] { return closed(); });
  if (fits) co_return true;
  spdlog::warn(
      "Closing client {}: its {} {} bytes did not fit in the worker's memory budget "
      "(proxy_max_inflight_frame_bytes {}) within {} ms",
      client_addr_, what, len, budget, config_.proxy_request_timeout_ms);
  shared_.metrics.client_errors(ProxyMetrics::ClientError::kOverloaded).inc();
  close();
  co_return false;
}

void ClientSession::push_event(const cql::EventMsg& event) {
  if (closed() || !ready() ||
      std::find(events_.begin(), events_.end(), event.type) == events_.end())
    return;
  client_writer_.push(cql::encode_message(version_, true, -1, Opcode::kEvent, event));
}

void ClientSession::drain() {
  if (life_ != Lifecycle::kOpen) return;
  life_ = Lifecycle::kDraining;
  boost::system::error_code ec;
  client_.socket().shutdown(tcp::socket::shutdown_receive, ec);
}

void ClientSession::close_after_flush() {
  if (life_ == Lifecycle::kClosing || life_ == Lifecycle::kClosed) return;
  life_ = Lifecycle::kClosing;
  boost::system::error_code ec;
  client_.socket().shutdown(tcp::socket::shutdown_receive, ec);
  if (!ready()) {
    // Nothing is in flight before the handshake completes: the cluster connections go now.
    for (auto* k : {clusters_.origin.get(), clusters_.target.get()})
      if (k) k->close();
    client_writer_.close();
  }
}

// ---------------------------------------------------------------------------------------------
// ClientSession: requests

void ClientSession::reply_error(uint8_t version, int16_t stream, cql::ErrorCode code,
                                std::string message) {
  client_writer_.push(cql::encode_error(version, stream, code, std::move(message)));
}

void ClientSession::on_client_frame(const cql::Header& h, Bytes frame) {
  if (h.stream < 0) {
    reply_error(h.version, h.stream, cql::ErrorCode::kProtocolError,
                "Invalid stream id " + std::to_string(h.stream) +
                    ": client requests must use non-negative stream ids");
    return;
  }
  if (h.opcode == Opcode::kOptions) {
    client_writer_.push(supported_frame(shared_, h));
    return;
  }
  Routed routed;
  Outgoing o;
  try {
    routed = router_.route(h, std::move(frame), compression_, scratch_, keyspace_, o);
  } catch (const cql::ProtocolError& e) {
    spdlog::warn("Malformed {} from client {}: {}; closing the connection",
                 cql::opcode_name(h.opcode), client_addr_, e.what());
    shared_.metrics.client_errors(ProxyMetrics::ClientError::kProtocolError).inc();
    reply_error(h.version, h.stream, cql::ErrorCode::kProtocolError, e.what());
    close_after_flush();
    return;
  }
  if (routed.registered) {
    for (auto& e : routed.events) events_.push_back(std::move(e));
    registered_ = true;
  }
  if (routed.forward) {
    if (!in_flight_.dispatch(std::move(o))) {
      shared_.metrics.client_errors(ProxyMetrics::ClientError::kOverloaded).inc();
      reply_error(o.pending.version, o.pending.client_stream, cql::ErrorCode::kOverloaded,
                  "zdm-proxy: 32768 requests of this connection are already waiting for a "
                  "cluster stream id; retry later");
    }
  } else if (!routed.answer.empty()) {
    client_writer_.push(std::move(routed.answer));
  }
}

void ClientSession::on_cluster_frame(Connector& from, cql::Header h, Bytes frame) {
  if (h.stream < 0) {
    // Events: only SCHEMA_CHANGE from origin reaches the client (as with ZDM; topology and
    // status events are the proxy's own, see push_event).
    if (from.role() != Connector::Role::kOrigin || !registered_ || h.opcode != Opcode::kEvent)
      return;
    try {
      cql::Reader r = response_reader(frame, compression_, scratch_);
      if (r.read_string() == "SCHEMA_CHANGE") client_writer_.push(std::move(frame));
    } catch (const cql::ProtocolError& e) {
      spdlog::debug("Unreadable EVENT from {} dropped: {}", from.node(), e.what());
    }
    return;
  }
  if (from.role() == Connector::Role::kAsync) {
    async_.on_frame(from, h, std::move(frame));
    return;
  }
  in_flight_.on_answer(from, h.stream, std::move(frame), compression_,
                       [&](PendingRequest& p) { finish(p); });
  if (winding_down() && in_flight_.empty()) drained_.cancel();
}

void ClientSession::finish(PendingRequest& p) {
  ResponseContext ctx{shared_, compression_, scratch_, keyspace_, traces_};
  Outcome o = p.answered(shared_.metrics, config_.primary_cluster);
  protect_outcome(p, o, shared_.target);
  if (config_.read_compare && p.decision.async_mirror)
    async_.primary_answered(p.id, p.responses[static_cast<int>(o.chosen)]);
  Bytes resp = client_response(p, o, ctx);
  cql::patch_stream(resp.data(), p.client_stream);
  client_writer_.push(std::move(resp));
}

void ClientSession::sweep_timeouts() {
  const auto now = std::chrono::steady_clock::now();
  const auto deadline = now - std::chrono::milliseconds(config_.proxy_request_timeout_ms);
  // A request unanswered this long may mean a silent cluster: its control connection checks.
  const auto suspicious = now - DataPathEvidence::kStuckAfter;
  const auto silent = in_flight_.sweep(
      deadline, suspicious, now - std::chrono::milliseconds(config_.target_write_timeout_ms));
  async_.sweep(deadline);
  for (Cluster c : {Cluster::kOrigin, Cluster::kTarget}) {
    // Requests timed out and nothing came back since the last sweep: the node stopped answering
    // this connection (a stall, a half-open socket). Another node takes its place.
    if (!silent[static_cast<int>(c)] || !ready() || clusters_.state(c) != Link::kUp) continue;
    fail_over(clusters_.of(c), "no answer within proxy_request_timeout_ms (" +
                                   std::to_string(config_.proxy_request_timeout_ms) + " ms)");
    if (closed()) return;
  }
  for (Connector* k : {clusters_.origin.get(), clusters_.target.get()}) {
    if (!k || k->unanswered * 4 <= k->capacity() * 3) continue;
    // Most stream ids wait for answers that do not come: the node is not answering this
    // connection. Another node takes its place.
    if (clusters_.state(k->cluster()) != Link::kUp) continue;
    shared_.metrics.client_errors(ProxyMetrics::ClientError::kUnansweredStreams).inc();
    fail_over(*k, std::to_string(k->unanswered) + " of " + std::to_string(k->capacity()) +
                      " stream ids await answers that never came");
    return;
  }
  for (Cluster c : {Cluster::kOrigin, Cluster::kTarget}) maybe_return(c, now);
  if (config_.proxy_idle_timeout_ms > 0 && in_flight_.empty() && ready() &&
      now - last_activity_ > std::chrono::milliseconds(config_.proxy_idle_timeout_ms)) {
    spdlog::info("Closing client {}: idle for {} ms (proxy_idle_timeout_ms)", client_addr_,
                 config_.proxy_idle_timeout_ms);
    shared_.metrics.client_errors(ProxyMetrics::ClientError::kIdleTimeout).inc();
    close();
    return;
  }
  // Idle connections give their buffers back: an idle client costs little memory.
  client_frames_.release_if_idle();
  client_writer_.release_if_idle();
  for (Connector* k : {clusters_.origin.get(), clusters_.target.get(), async_.connector()}) {
    if (!k) continue;
    k->frames().release_if_idle();
    k->writer().release_if_idle();
  }
  if (winding_down() && in_flight_.empty()) drained_.cancel();
}

bool ClientSession::partial_frame_expired(std::chrono::steady_clock::time_point now) {
  // A frame is incomplete while the run loop waits for more client bytes and bytes are
  // buffered (every complete frame was taken before it waited). The same frame is incomplete as
  // long as no frame was taken since the sweep that first saw it. The first byte came at most a
  // sweep (1 s) before that, so the connection closes 0 to 1 s after the timeout, never before.
  const bool partial = receiving_ && client_frames_.buffered() > 0;
  if (!partial || client_frames_.frames_taken() != partial_taken_ ||
      partial_since_ == std::chrono::steady_clock::time_point{}) {
    partial_since_ = partial ? now : std::chrono::steady_clock::time_point{};
    partial_taken_ = client_frames_.frames_taken();
    return false;
  }
  const auto timeout = std::chrono::milliseconds(config_.proxy_partial_frame_timeout_ms);
  if (config_.proxy_partial_frame_timeout_ms == 0 || now - partial_since_ < timeout) return false;
  const auto declared = client_frames_.pending_length();
  spdlog::info(
      "Closing client {}: a frame incomplete for {} ms (proxy_partial_frame_timeout_ms), {} bytes "
      "of it received{}",
      client_addr_, config_.proxy_partial_frame_timeout_ms, client_frames_.buffered(),
      declared ? ", its body declared " + std::to_string(*declared) + " bytes" : "");
  shared_.metrics.client_errors(ProxyMetrics::ClientError::kPartialFrameTimeout).inc();
  close();
  return true;
}

void ClientSession::evict_handshaking() {
  if (closed() || ready()) return;  // completed its handshake meanwhile: nothing to evict
  spdlog::info(
      "Closing client {}: still in its handshake when a newer connection needed its place "
      "(proxy_max_handshaking_connections {})",
      client_addr_, shared_.handshaking.limit());
  shared_.metrics.client_errors(ProxyMetrics::ClientError::kHandshakeEvicted).inc();
  close();
}

std::size_t ClientSession::held_bytes() {
  if (closed()) return 0;
  // Bytes held, not reserved: a frame of 64 MiB whose first 2 MiB came holds 2 MiB.
  std::size_t n = client_writer_.queued_bytes() + client_frames_.buffered() + scratch_.capacity();
  for (Connector* k : {clusters_.origin.get(), clusters_.target.get(), async_.connector()})
    if (k) n += k->writer().queued_bytes() + k->frames().buffered();
  return n;
}

void ClientSession::shed_for_memory(std::size_t rss, std::size_t ceiling) {
  if (closed()) return;
  spdlog::warn(
      "Closing client {}: it holds {} bytes in buffers, among the most of any connection, while "
      "the proxy's resident memory ({} bytes) is over {} % of its ceiling "
      "(proxy_max_memory_bytes {})",
      client_addr_, held_bytes(), rss, kShedAbovePercent, ceiling);
  shared_.metrics.client_errors(ProxyMetrics::ClientError::kMemoryCeiling).inc();
  close();
}

void ClientSession::on_connector_closed(Connector& c) {
  if (closed()) return;
  if (c.role() == Connector::Role::kAsync) {
    async_.on_closed(c);
    return;
  }
  if (!ready()) return;  // the handshake notices on its own (no answer)
  // Reported once per connection that is in use (a replaced one, or a second report, is not).
  if (&c != clusters_.slot(c.cluster()).get() || clusters_.state(c.cluster()) != Link::kUp) return;
  fail_over(c, "connection closed");
}

void ClientSession::maybe_return(Cluster c, std::chrono::steady_clock::time_point now) {
  const int i = static_cast<int>(c);
  if (life_ != Lifecycle::kOpen || !ready() || clusters_.state(c) != Link::kUp || returning_[i] ||
      now < next_return_[i] || shared_.cc(c).assigned(clusters_.of(c).node()) || !replay_for(c))
    return;
  returning_[i] = true;
  next_return_[i] = now + kReturnInterval;
  asio::co_spawn(ioc_, return_to_assigned(c), asio::detached);
}

awaitable<void> ClientSession::return_to_assigned(Cluster c) {
  auto self = shared_from_this();
  const auto timeout = std::min<std::chrono::milliseconds>(
      kReconnectTimeout, std::chrono::milliseconds(config_.proxy_request_timeout_ms));
  std::string why;
  // Named, not temporaries: GCC 12 destroys a co_await operand's temporaries twice.
  const HandshakeReplay replay = *replay_for(c);
  const std::string no_failed_node;
  auto k = co_await zdm::proxy::reconnect(ioc_, shared_, c, no_failed_node, replay, keyspace_, self,
                                          timeout, true, why);
  returning_[static_cast<int>(c)] = false;
  if (!k) co_return;
  if (closed() || life_ != Lifecycle::kOpen || clusters_.state(c) != Link::kUp ||
      in_flight_.awaits(c)) {
    k->close();  // tried again later
    co_return;
  }
  std::shared_ptr<Connector> old = clusters_.slot(c);
  spdlog::info("[{}-CONNECTOR] Client {} is back on {} node {}, assigned to this proxy (was on {})",
               cluster_name(c), client_addr_, cluster_name(c), k->node(), old->node());
  if (old->metrics) old->metrics->connections->sub();
  k->metrics->connections->add();
  clusters_.slot(c) = k;
  old->close();
  start_reading(std::move(k));
}

std::optional<HandshakeReplay> ClientSession::replay_for(Cluster c) const {
  auto creds = handshake_.state().replay_credentials(c);
  if (!creds) return std::nullopt;
  return HandshakeReplay{version_, compression_, handshake_.state().startup_frame(),
                         std::move(*creds)};
}

void ClientSession::fail_over(Connector& k, const std::string& why) {
  const Cluster c = k.cluster();
  if (k.metrics) k.metrics->connections->sub();
  in_flight_.fail(k, why);
  if (life_ != Lifecycle::kOpen || !replay_for(c)) {
    // Draining (it ends soon anyway), or a SASL exchange the proxy cannot replay.
    spdlog::warn("[{}-CONNECTOR] Connection to {} failed ({}); closing client connection {}",
                 cluster_name(c), k.node(), why, client_addr_);
    clusters_.set(c, Link::kDown);
    close();
    return;
  }
  spdlog::warn(
      "[{}-CONNECTOR] Connection to {} for client {} failed ({}); connecting another {} "
      "node",
      cluster_name(c), k.node(), client_addr_, why, cluster_name(c));
  clusters_.set(c, Link::kReconnecting);
  k.close();
  asio::co_spawn(ioc_, reconnect(c, k.node()), asio::detached);
}

awaitable<void> ClientSession::reconnect(Cluster c, std::string failed) {
  auto self = shared_from_this();
  const auto timeout = std::min<std::chrono::milliseconds>(
      kReconnectTimeout, std::chrono::milliseconds(config_.proxy_request_timeout_ms));
  // Named, not temporaries: GCC 12 destroys a co_await operand's temporaries twice.
  const HandshakeReplay replay = *replay_for(c);
  for (int round = 0; !closed(); ++round) {
    std::string why;
    auto k = co_await zdm::proxy::reconnect(ioc_, shared_, c, failed, replay, keyspace_, self,
                                            timeout, false, why);
    if (closed()) {
      if (k) k->close();
      co_return;
    }
    if (k) {
      spdlog::info("[{}-CONNECTOR] Client {} now uses {} node {} ({})", cluster_name(c),
                   client_addr_, cluster_name(c), k->node(),
                   failed.empty() ? "none was reachable at its handshake" : failed + " failed");
      k->metrics->connections->add();
      clusters_.slot(c) = k;
      clusters_.set(c, Link::kUp);
      start_reading(std::move(k));
      in_flight_.resume();
      co_return;
    }
    if (round == 0 && !failed.empty()) {
      spdlog::error(
          "[{}-CONNECTOR] No {} node reachable for client {}: {}; its requests for {} "
          "fail until one is",
          cluster_name(c), cluster_name(c), client_addr_, why, cluster_name(c));
      clusters_.set(c, Link::kDown);
      in_flight_.unreachable(c, why);
    }
    boost::system::error_code ec;
    reconnect_timer_.expires_after(kReconnectInterval);
    co_await reconnect_timer_.async_wait(nothrow(ec));
  }
}

void ClientSession::close() {
  if (closed()) return;
  life_ = Lifecycle::kClosed;
  spdlog::info("[CLIENT-CONNECTOR] {} disconnected", client_addr_);
  client_.close();
  client_writer_.close();
  for (Cluster c : {Cluster::kOrigin, Cluster::kTarget}) {
    Connector* k = clusters_.slot(c).get();
    if (!k) continue;
    if (k->metrics && clusters_.state(c) == Link::kUp) k->metrics->connections->sub();
    k->close();
  }
  async_.close();
  reconnect_timer_.cancel();
  in_flight_.abandon();
  sweep_timer_.cancel();
  drained_.cancel();
  flow_.cancel();
  budget_.release();
}

}  // namespace zdm::proxy
