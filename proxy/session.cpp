#include "proxy/session.h"

#include <spdlog/spdlog.h>

#include <cstring>

#include "common/cql/classifier.h"
#include "common/cql/legacy.h"
#include "common/cql/messages.h"
#include "common/cql/version.h"
#include "common/net/tls.h"
#include "proxy/handshake.h"
#include "proxy/prepared_ids.h"
#include "proxy/topology.h"
#include "proxy/wire.h"

namespace zdm::proxy {

using cql::Bytes;
using cql::BytesView;
using cql::Opcode;

namespace {

// Handshake exchanges on a fresh cluster connection use this stream id: nothing else is in
// flight on it yet.
constexpr int16_t kHandshakeStream = 0;
// Before the handshake completes, bodies are small: an unauthenticated client cannot make the
// proxy buffer much.
constexpr uint32_t kMaxHandshakeBody = 256 * 1024;
// Write-queue watermarks (bytes) of every socket: over the high one, the reading that feeds it
// pauses until the queue is back under the low one.
constexpr std::size_t kHighWatermark = 4 << 20;
constexpr std::size_t kLowWatermark = 1 << 20;

// COMPRESSION of SUPPORTED as both clusters offer it: the algorithm a client picks must work on
// both connections.
std::vector<std::string> common(const std::vector<std::string>& a,
                                const std::vector<std::string>& b) {
  std::vector<std::string> out;
  for (const auto& x : a)
    if (std::find(b.begin(), b.end(), x) != b.end()) out.push_back(x);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ClientSession: construction, run loop, handshake

ClientSession::ClientSession(asio::io_context& ioc, tcp::socket socket, SharedState& shared)
    : ioc_(ioc),
      client_(std::move(socket)),
      client_writer_(client_),
      client_frames_(kMaxHandshakeBody),
      shared_(shared),
      config_(shared.config),
      async_(ioc, shared, client_addr_),
      client_resume_(ioc),
      cluster_resume_(ioc),
      sweep_timer_(ioc),
      drained_(ioc) {
  boost::system::error_code ec;
  auto ep = client_.socket().remote_endpoint(ec);
  client_addr_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  client_.socket().set_option(tcp::no_delay(true), ec);
  drained_.expires_at(std::chrono::steady_clock::time_point::max());
  watch_writer(client_writer_, cluster_resume_);
  shared_.sessions++;
  shared_.metrics.client_connections().add();
}

ClientSession::~ClientSession() {
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
    while ((!pending_.empty() || !waiting_.empty()) && !closed()) {
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
          self->sweep_timer_.expires_after(std::chrono::seconds(1));
          co_await self->sweep_timer_.async_wait(nothrow(ec));
          if (self->closed()) break;
          if (!self->handshake_.ready() && std::chrono::steady_clock::now() > handshake_deadline) {
            // Connected and silent, or a slowloris: it must not hold a connection slot.
            spdlog::info("Closing client {}: no handshake within {} ms", self->client_addr_,
                         self->config_.proxy_handshake_timeout_ms);
            self->shared_.metrics.client_errors(ProxyMetrics::ClientError::kHandshakeTimeout).inc();
            self->close();
            break;
          }
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
    co_await clusters_writable();
    if (life_ != Lifecycle::kOpen) break;
    boost::system::error_code ec;
    auto data = co_await client_.receive(
        ec, static_cast<std::size_t>(config_.request_read_buffer_size_bytes));
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
    if (!handshake_.ready()) {
      co_await handshake_frame(h, std::move(frame));
      if (handshake_.ready())
        client_frames_.set_max_body(static_cast<uint32_t>(config_.proxy_max_frame_size_bytes));
      continue;
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
  }
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

Bytes ClientSession::supported_frame(const cql::Header& h) const {
  const Cluster primary = config_.primary_cluster;
  ClusterFacts p = shared_.cc(primary).facts();
  ClusterFacts s = shared_.cc(other(primary)).facts();
  cql::SupportedMsg msg{p.supported};
  msg.options["COMPRESSION"] = common(p.supported["COMPRESSION"], s.supported["COMPRESSION"]);
  if (p.supported.count("PROTOCOL_VERSIONS") && s.supported.count("PROTOCOL_VERSIONS"))
    msg.options["PROTOCOL_VERSIONS"] =
        common(p.supported["PROTOCOL_VERSIONS"], s.supported["PROTOCOL_VERSIONS"]);
  return cql::encode_message(h.version, true, h.stream, Opcode::kSupported, msg);
}

Bytes ClientSession::client_frame(const cql::Frame& f, int16_t stream) const {
  cql::Header h = f.header;
  h.version = version_;
  h.response = true;
  h.stream = stream;
  h.flags &= static_cast<uint8_t>(~cql::flag::kCompression);
  return cql::encode_frame(h, f.body);
}

void ClientSession::switch_client_framing() {
  if (!cql::uses_segments(version_)) return;
  client_frames_.enable_segments(compression_);
  client_writer_.enable_segments(compression_);
}

awaitable<void> ClientSession::handshake_frame(const cql::Header& h, Bytes frame) {
  HandshakeStep step = handshake_.step(h.opcode, h.stream);
  switch (step.action) {
    case HandshakeAction::kSupported:
      client_writer_.push(supported_frame(h));
      break;
    case HandshakeAction::kStartup:
      co_await on_startup(h, std::move(frame));
      break;
    case HandshakeAction::kAuthResponse:
      co_await on_auth_response(h, std::move(frame));
      break;
    case HandshakeAction::kRefuse:
    case HandshakeAction::kRequest:  // not before READY
      reply_error(h.version, h.stream, cql::ErrorCode::kProtocolError, std::move(step.error));
      break;
  }
}

awaitable<bool> ClientSession::connect_clusters(const cql::Header& h) {
  auto self = shared_from_this();
  for (Cluster c : {Cluster::kOrigin, Cluster::kTarget}) {
    const bool is_origin = c == Cluster::kOrigin;
    auto& cc = shared_.cc(c);
    std::shared_ptr<Connector> conn;
    std::string why;
    // A node that refuses goes to the back: the next assigned node is tried (each once).
    const std::size_t tries = std::max<std::size_t>(1, cc.assigned_count());
    for (std::size_t attempt = 0; attempt < tries && !conn && !closed(); ++attempt) {
      tcp::endpoint ep;
      try {
        ep = cc.pick_node();
      } catch (const std::exception& e) {
        why = e.what();
        break;
      }
      auto k = std::make_shared<Connector>(
          ioc_, is_origin ? Connector::Role::kOrigin : Connector::Role::kTarget, c,
          config_.proxy_max_stream_ids);
      k->listener = self;
      std::string err;
      bool ok = co_await k->open(ep, ep.address().to_string(), cc.hop(), err);
      k->metrics = &shared_.metrics.node(is_origin ? "origin" : "target", k->node());
      if (ok) {
        conn = std::move(k);
        break;
      }
      k->metrics->failed_connections->inc();
      shared_.metrics.failed_connections(c).inc();
      why = k->node() + ": " + err;
      spdlog::warn("Cannot open {} connection to {} for client {}: {}", cluster_name(c), k->node(),
                   client_addr_, err);
      cc.check_now();
    }
    if (!conn) {
      spdlog::error("Cannot open {} connection for client {}: {}", cluster_name(c), client_addr_,
                    why);
      reply_error(h.version, h.stream, cql::ErrorCode::kServerError,
                  std::string("ZDM proxy could not connect to ") + cluster_name(c) + ": " + why);
      co_return false;
    }
    spdlog::debug("[{}-CONNECTOR] Opened request connection to {} ({}) for client {}",
                  cluster_name(c), cluster_name(c), conn->node(), client_addr_);
    conn->metrics->connections->add();
    conn->set_protocol(version_, compression_);
    watch_writer(conn->writer(), client_resume_);
    (is_origin ? origin_ : target_) = std::move(conn);
  }
  co_return true;
}

awaitable<void> ClientSession::on_startup(const cql::Header& h, Bytes frame) {
  // Who authenticates the client, with which credentials.
  handshake_.started(shared_.origin_cc.facts().auth_required,
                     shared_.target_cc.facts().auth_required, config_, frame);
  cql::StartupMsg startup;
  try {
    cql::Reader r(BytesView(frame.data() + cql::kHeaderSize, frame.size() - cql::kHeaderSize));
    cql::skip_request_prefix(r, h.flags);
    startup = cql::StartupMsg::decode(r);
  } catch (const cql::ProtocolError& e) {
    reply_error(h.version, h.stream, cql::ErrorCode::kProtocolError, e.what());
    close_after_flush();
    co_return;
  }
  if (auto it = startup.options.find("COMPRESSION");
      it != startup.options.end() && !it->second.empty()) {
    auto c = cql::parse_compression(it->second);
    if (!c) {
      reply_error(h.version, h.stream, cql::ErrorCode::kProtocolError,
                  "Unknown compression algorithm: " + it->second);
      close_after_flush();
      co_return;
    }
    compression_ = *c;
  }
  const Cluster primary = handshake_.auth().primary, secondary = other(primary);
  if (!co_await connect_clusters(h)) {
    close_after_flush();
    co_return;
  }
  const auto timeout = std::chrono::milliseconds(config_.proxy_request_timeout_ms);
  for (Connector* k : {origin_.get(), target_.get()}) {
    Bytes f = frame;
    cql::patch_stream(f.data(), kHandshakeStream);
    k->send(std::move(f));
  }
  auto r_origin = co_await origin_->receive(kHandshakeStream, timeout);
  auto r_target = co_await target_->receive(kHandshakeStream, timeout);
  if (closed()) co_return;
  std::optional<cql::Frame>* resp[2] = {&r_origin, &r_target};
  for (Cluster c : {primary, secondary}) {
    auto& r = *resp[static_cast<int>(c)];
    if (!r) {
      reply_error(h.version, h.stream, cql::ErrorCode::kServerError,
                  std::string("No answer to STARTUP from ") + cluster_name(c) + " within " +
                      std::to_string(config_.proxy_request_timeout_ms) + " ms");
      close_after_flush();
      co_return;
    }
    if (r->header.opcode == Opcode::kError) {
      // E.g. a PROTOCOL_ERROR for a version this cluster does not speak: forwarded, so the
      // driver downgrades on a new connection. On the request's stream (python-driver and the
      // Node.js driver match it there) and, once, on stream 0 (gocql only believes a version
      // error there: CASSGO-97, ZDM's behaviour); nothing else is in flight on the connection.
      spdlog::info("{} refused the STARTUP of client {} (protocol {}): {}", cluster_name(c),
                   client_addr_, version_, cql::error_text(*r));
      client_writer_.push(client_frame(*r, h.stream));
      if (h.stream != 0 && error_code_of(client_frame(*r, 0), cql::Compression::kNone) ==
                               static_cast<int32_t>(cql::ErrorCode::kProtocolError))
        client_writer_.push(client_frame(*r, 0));
      close_after_flush();
      co_return;
    }
  }
  const cql::Frame& secondary_resp = **resp[static_cast<int>(secondary)];
  if (secondary_resp.header.opcode == Opcode::kAuthenticate) {
    cql::Reader r(secondary_resp.body);
    handshake_.secondary_authenticator = cql::AuthenticateMsg::decode(r).authenticator;
  }
  const cql::Frame& primary_resp = **resp[static_cast<int>(primary)];
  if (primary_resp.header.opcode == Opcode::kAuthenticate) {
    handshake_.authenticating();
    client_writer_.push(client_frame(primary_resp, h.stream));
    switch_client_framing();
    co_return;
  }
  co_await finish_handshake(h, primary_resp);
}

awaitable<void> ClientSession::on_auth_response(const cql::Header& h, Bytes frame) {
  const auto timeout = std::chrono::milliseconds(config_.proxy_request_timeout_ms);
  std::optional<Bytes> token;
  try {
    cql::Reader r(net::frame_body(frame, compression_, scratch_));
    cql::skip_request_prefix(r, h.flags);
    token = r.read_bytes();
  } catch (const cql::ProtocolError& e) {
    reply_error(h.version, h.stream, cql::ErrorCode::kProtocolError, e.what());
    close_after_flush();
    co_return;
  }
  // Each cluster gets its own credentials: the other one's come from the configuration.
  Bytes out = frame;
  if (auto replaced = handshake_.auth_response(token, config_)) {
    Bytes body;
    cql::Writer w(body);
    w.write_bytes(*replaced);
    out = with_body(frame, body);
  }
  const Cluster primary = handshake_.auth().primary;
  cql::patch_stream(out.data(), kHandshakeStream);
  auto resp = co_await connector_for(primary).exchange(std::move(out), timeout);
  if (closed()) co_return;
  if (!resp) {
    reply_error(h.version, h.stream, cql::ErrorCode::kServerError,
                std::string("No answer to AUTH_RESPONSE from ") + cluster_name(primary));
    close_after_flush();
    co_return;
  }
  switch (sasl_answer(resp->header.opcode)) {
    case SaslAnswer::kFinish:
      co_await finish_handshake(h, *resp);
      break;
    case SaslAnswer::kForward:
      client_writer_.push(client_frame(*resp, h.stream));
      break;
    case SaslAnswer::kFail:
      client_writer_.push(client_frame(*resp, h.stream));
      spdlog::info("Client {} failed to authenticate with {}: {}", client_addr_,
                   cluster_name(primary), cql::error_text(*resp));
      close_after_flush();
      break;
  }
}

awaitable<void> ClientSession::finish_handshake(const cql::Header& h,
                                                const cql::Frame& final_resp) {
  const Cluster secondary = other(handshake_.auth().primary);
  if (!handshake_.secondary_authenticator.empty()) {
    if (handshake_.auth().secondary.empty()) {
      const std::string p = secondary == Cluster::kOrigin ? "origin" : "target";
      reply_error(h.version, h.stream, cql::ErrorCode::kAuthenticationError,
                  std::string(cluster_name(secondary)) + " requires authentication but " + p +
                      "_username/" + p + "_password are not set in the ZDM proxy configuration");
      close_after_flush();
      co_return;
    }
    auto r = co_await connector_for(secondary).authenticate(
        handshake_.secondary_authenticator, handshake_.auth().secondary, kHandshakeStream,
        std::chrono::milliseconds(config_.proxy_request_timeout_ms));
    if (closed()) co_return;
    if (!r || r->header.opcode != Opcode::kAuthSuccess) {
      spdlog::warn("Secondary ({}) handshake for client {} failed: {}", cluster_name(secondary),
                   client_addr_, r ? cql::error_text(*r) : "no answer");
      if (r && r->header.opcode == Opcode::kError) {
        client_writer_.push(client_frame(*r, h.stream));
      } else {
        reply_error(h.version, h.stream, cql::ErrorCode::kServerError,
                    std::string("No answer to authentication from ") + cluster_name(secondary));
      }
      close_after_flush();
      co_return;
    }
  }
  client_writer_.push(client_frame(final_resp, h.stream));
  if (final_resp.header.opcode == Opcode::kReady) switch_client_framing();
  handshake_.completed();
  spdlog::info("Handshake successful with client {} (ProtocolVersion {}, Compression: {})",
               client_addr_, version_name(version_), cql::compression_name(compression_));
  auto self = shared_from_this();
  for (Connector* k : {origin_.get(), target_.get()}) {
    asio::co_spawn(
        ioc_, k->read_loop(self, static_cast<std::size_t>(config_.response_read_buffer_size_bytes)),
        asio::detached);
  }
  // The async connector replays the client's handshake on the secondary.
  if (config_.read_mode == ReadMode::kDualAsyncOnSecondary)
    async_.start(self, version_, compression_, handshake_.startup_frame(), handshake_.auth().async);
}

void ClientSession::watch_writer(net::FrameWriter& w, asio::steady_timer& resume) {
  resume.expires_at(std::chrono::steady_clock::time_point::max());
  w.set_watermarks(kHighWatermark, kLowWatermark, [&resume] { resume.cancel(); });
}

awaitable<void> ClientSession::clusters_writable() {
  auto full = [this] {
    return (origin_ && origin_->writer().full()) || (target_ && target_->writer().full());
  };
  while (full() && !closed()) {
    boost::system::error_code ec;
    client_resume_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await client_resume_.async_wait(nothrow(ec));
  }
}

awaitable<void> ClientSession::client_writable() {
  while (client_writer_.full() && !closed()) {
    boost::system::error_code ec;
    cluster_resume_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await cluster_resume_.async_wait(nothrow(ec));
  }
}

awaitable<void> ClientSession::reserve_for_large_frame() {
  auto len = client_frames_.pending_length();
  if (!len || *len <= FrameBudget::kLargeFrame || budget_.reserved() >= *len) co_return;
  const auto budget = static_cast<std::size_t>(config_.proxy_max_inflight_frame_bytes);
  const auto timeout = std::chrono::milliseconds(config_.proxy_request_timeout_ms);
  if (!co_await budget_.reserve(ioc_, *len, budget, timeout, [this] { return closed(); })) {
    spdlog::warn(
        "Closing client {}: its {}-byte frame did not fit in the worker's memory "
        "budget (proxy_max_inflight_frame_bytes {}) within {} ms",
        client_addr_, *len, budget, config_.proxy_request_timeout_ms);
    shared_.metrics.client_errors(ProxyMetrics::ClientError::kOverloaded).inc();
    close();
  }
}

void ClientSession::push_event(const cql::EventMsg& event) {
  if (closed() || !handshake_.ready() ||
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
  if (!handshake_.ready()) {
    // Nothing is in flight before the handshake completes: the cluster connections go now.
    for (auto* k : {origin_.get(), target_.get()})
      if (k) k->close();
    client_writer_.close();
  }
}

// ---------------------------------------------------------------------------------------------
// ClientSession: requests

void ClientSession::reply(Bytes frame, int16_t stream) {
  cql::patch_stream(frame.data(), stream);
  client_writer_.push(std::move(frame));
}

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
    client_writer_.push(supported_frame(h));
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
    dispatch(std::move(o));
  } else if (!routed.answer.empty()) {
    client_writer_.push(std::move(routed.answer));
  }
}

void ClientSession::dispatch(Outgoing&& o) {
  if (o.pending.decision.destination == Destination::kDrop) return;
  if (waiting_.empty() && try_send(o)) return;
  // Bounded by the client's own stream ids (32768): more cannot be in flight on one connection.
  if (waiting_.size() >= 32768) {
    shared_.metrics.client_errors(ProxyMetrics::ClientError::kOverloaded).inc();
    reply_error(o.pending.version, o.pending.client_stream, cql::ErrorCode::kOverloaded,
                "zdm-proxy: 32768 requests of this connection are already waiting for a cluster "
                "stream id; retry later");
    return;
  }
  waiting_.push_back(std::move(o));
}

void ClientSession::send_waiting() {
  while (!waiting_.empty() && !closed() && try_send(waiting_.front())) waiting_.pop_front();
}

bool ClientSession::try_send(Outgoing& o) {
  PendingRequest& p = o.pending;
  const Decision& d = p.decision;
  const uint64_t id = next_request_id_;
  const bool to_origin =
      d.destination == Destination::kOrigin || d.destination == Destination::kBoth;
  const bool to_target =
      d.destination == Destination::kTarget || d.destination == Destination::kBoth;
  std::optional<int16_t> so, st;
  if (to_origin) so = origin_->acquire(id);
  if (to_target) st = target_->acquire(id);
  if ((to_origin && !so) || (to_target && !st)) {
    if (so) origin_->release(*so);
    if (st) target_->release(*st);
    return false;
  }
  ++next_request_id_;
  if (d.async_mirror && async_.ready()) {
    const bool target_copy = config_.secondary() == Cluster::kTarget && o.target_frame;
    async_.mirror(id, target_copy ? *o.target_frame : o.frame, p.opcode, p.start, d.metric);
  }
  if (to_target) {
    Bytes tf =
        o.target_frame ? std::move(*o.target_frame) : (to_origin ? o.frame : std::move(o.frame));
    cql::patch_stream(tf.data(), *st);
    target_->send(std::move(tf));
  }
  if (to_origin) {
    cql::patch_stream(o.frame.data(), *so);
    origin_->send(std::move(o.frame));
  }
  p.sent(shared_.metrics, to_origin, to_target);
  shared_.inflight++;
  pending_.emplace(id, std::move(p));
  return true;
}

void ClientSession::fail_pending(Cluster c) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (!it->second.awaits(c)) {
      ++it;
      continue;
    }
    it->second.lost(shared_.metrics, c, config_.primary_cluster);
    shared_.inflight--;
    it = pending_.erase(it);
  }
  shared_.cc(c).check_now();
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
  const uint64_t id = from.release(h.stream);
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    // The late answer to a request that timed out: its stream id is free again.
    if (id != 0 && from.unanswered > 0) --from.unanswered;
    if (!waiting_.empty()) send_waiting();
    return;
  }
  PendingRequest& p = it->second;
  if (!p.answer(from.cluster(), std::move(frame), from.metrics, compression_)) return;
  complete(p);
  pending_.erase(it);
  shared_.inflight--;
  if (!waiting_.empty()) send_waiting();
  if (winding_down() && pending_.empty() && waiting_.empty()) drained_.cancel();
}

void ClientSession::cache_prepared(PendingRequest& p, Bytes& resp) {
  Bytes scratch_t;
  cql::Reader ro = response_reader(resp, compression_, scratch_);
  cql::Reader rt = response_reader(p.responses[1], compression_, scratch_t);
  auto ko = ro.read_int(), kt = rt.read_int();
  if (ko == static_cast<int32_t>(cql::ResultKind::kPrepared) &&
      kt == static_cast<int32_t>(cql::ResultKind::kPrepared)) {
    PreparedEntry e;
    e.origin_id = ro.read_short_bytes();
    e.target_id = rt.read_short_bytes();
    if (cql::uses_result_metadata_id(p.version)) {
      e.origin_result_metadata_id = ro.read_short_bytes();
      e.target_result_metadata_id = rt.read_short_bytes();
    }
    e.decision = p.execute_decision;
    e.query = p.query;
    e.keyspace = keyspace_;
    e.plan = p.plan;
    if (shared_.prepared.put(e)) shared_.metrics.pscache_evictions().inc();
    shared_.metrics.pscache_entries().set(static_cast<int64_t>(shared_.prepared.size()));
    if (!p.plan.generated.empty()) {
      // The client sees the statement it prepared: without the proxy's markers.
      cql::Reader rr = response_reader(resp, compression_, scratch_);
      auto msg = hide_generated(cql::ResultMsg::decode(rr, p.version), p.plan);
      resp = cql::encode_message(p.version, true, 0, Opcode::kResult, msg);
    }
  }
}

void ClientSession::complete(PendingRequest& p) {
  const bool both = p.expected[0] && p.expected[1];
  const Outcome o = p.answered(shared_.metrics, config_.primary_cluster);
  const bool* err = o.error;
  const Cluster chosen = o.chosen;
  Bytes resp = std::move(p.responses[static_cast<int>(chosen)]);
  try {
    if (p.opcode == Opcode::kPrepare && both && !err[0] && !err[1]) cache_prepared(p, resp);
    if (err[static_cast<int>(chosen)] && chosen == Cluster::kTarget &&
        !p.origin_prepared_id.empty()) {
      // The client only knows origin ids: target's id of the statement target does not know
      // (the right child of a BATCH) maps back to origin's.
      auto origin_id_of = [&](BytesView id) { return shared_.prepared.origin_id_for_target(id); };
      if (auto mapped = unprepared_for_client(resp, compression_, p.version, p.origin_prepared_id,
                                              origin_id_of, scratch_))
        resp = std::move(*mapped);
    }
    if (frame_opcode(resp) == Opcode::kResult) {
      cql::Reader r = response_reader(resp, compression_, scratch_);
      if (r.read_int() == static_cast<int32_t>(cql::ResultKind::kSetKeyspace))
        keyspace_ = r.read_string();
    }
  } catch (const cql::ProtocolError& e) {
    spdlog::warn("Malformed response from {}: {}", cluster_name(chosen), e.what());
  }
  if (std::to_integer<uint8_t>(resp[1]) & cql::flag::kTracing) {
    // Traced: its session id leads later system_traces reads to this cluster.
    traces_.record(resp, compression_, scratch_, chosen);
  }
  reply(std::move(resp), p.client_stream);
}

void ClientSession::time_out(const PendingRequest& p) {
  // ZDM sends nothing for a timed-out request; the driver times out on its own. Its stream
  // ids stay taken until an answer comes (a new request must not get the old answer).
  spdlog::warn("Request {} on stream {} from client {} timed out after {} ms",
               cql::opcode_name(p.opcode), p.client_stream, client_addr_,
               config_.proxy_request_timeout_ms);
  for (Cluster c : {Cluster::kOrigin, Cluster::kTarget}) {
    Connector* k = connector(c);
    if (!p.awaits(c) || !k) continue;
    ++k->unanswered;
    if (k->metrics) k->metrics->requests_failed["client_timeout"]->inc();
  }
  p.timed_out(shared_.metrics, config_.primary_cluster);
  shared_.inflight--;
}

void ClientSession::sweep_timeouts() {
  const auto now = std::chrono::steady_clock::now();
  const auto deadline = now - std::chrono::milliseconds(config_.proxy_request_timeout_ms);
  // A request unanswered this long may mean a silent cluster: its control connection checks.
  const auto suspicious = now - std::chrono::seconds(2);
  for (auto it = pending_.begin(); it != pending_.end();) {
    const PendingRequest& p = it->second;
    for (Cluster c : {Cluster::kOrigin, Cluster::kTarget})
      if (p.awaits(c) && p.start < suspicious) shared_.cc(c).check_now();
    if (p.start >= deadline) {
      ++it;
      continue;
    }
    time_out(p);
    it = pending_.erase(it);
  }
  while (!waiting_.empty() && waiting_.front().pending.start < deadline) {
    shared_.metrics.client_errors(ProxyMetrics::ClientError::kOverloaded).inc();
    waiting_.pop_front();
  }
  async_.sweep(deadline);
  for (Connector* k : {origin_.get(), target_.get()}) {
    if (!k || k->unanswered * 4 <= k->capacity() * 3) continue;
    // Most stream ids wait for answers that do not come: the node is not answering this
    // connection. Closing it lets the driver reconnect (and the proxy pick a node again).
    spdlog::warn(
        "{} of {} stream ids to {} node {} await answers that never came; closing "
        "client connection {}",
        k->unanswered, k->capacity(), cluster_name(k->cluster()), k->node(), client_addr_);
    shared_.metrics.client_errors(ProxyMetrics::ClientError::kUnansweredStreams).inc();
    close();
    return;
  }
  if (config_.proxy_idle_timeout_ms > 0 && pending_.empty() && waiting_.empty() &&
      handshake_.ready() &&
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
  for (Connector* k : {origin_.get(), target_.get(), async_.connector()}) {
    if (!k) continue;
    k->frames().release_if_idle();
    k->writer().release_if_idle();
  }
  if (winding_down() && pending_.empty() && waiting_.empty()) drained_.cancel();
}

void ClientSession::on_connector_closed(Connector& c) {
  if (closed()) return;
  if (c.role() == Connector::Role::kAsync) {
    async_.on_closed(c);
    return;
  }
  if (!handshake_.ready()) return;  // the handshake notices on its own (no answer)
  if (life_ == Lifecycle::kOpen) {
    spdlog::warn("[{}-CONNECTOR] Connection to {} closed; closing client connection {}",
                 cluster_name(c.cluster()), c.node(), client_addr_);
    fail_pending(c.cluster());
  }
  close();
}

void ClientSession::close() {
  if (closed()) return;
  life_ = Lifecycle::kClosed;
  spdlog::info("[CLIENT-CONNECTOR] {} disconnected", client_addr_);
  client_.close();
  client_writer_.close();
  for (auto* k : {origin_.get(), target_.get()}) {
    if (!k) continue;
    if (k->metrics) k->metrics->connections->sub();
    k->close();
  }
  async_.close();
  for (auto& [id, p] : pending_) {
    p.abandoned(shared_.metrics);
    shared_.inflight--;
  }
  pending_.clear();
  waiting_.clear();
  sweep_timer_.cancel();
  drained_.cancel();
  client_resume_.cancel();
  cluster_resume_.cancel();
  budget_.release();
}

}  // namespace zdm::proxy
