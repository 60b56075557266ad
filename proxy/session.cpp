#include "proxy/session.h"

#include <spdlog/spdlog.h>

#include <cstring>

#include "proxy/cql/classifier.h"
#include "proxy/cql/messages.h"
#include "proxy/topology.h"

namespace zdm::proxy {

using cql::Bytes;
using cql::BytesView;
using cql::Opcode;

namespace {

constexpr uint64_t kAsyncBit = 1ull << 63;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Opcode frame_opcode(const Bytes& frame) {
  return static_cast<Opcode>(frame[4]);
}

BytesView frame_body(const Bytes& frame) {
  return BytesView(frame.data() + cql::kHeaderSize, frame.size() - cql::kHeaderSize);
}

// A reader positioned at the message body of a response frame (tracing id, warnings and
// custom payload skipped, spec §2.2).
cql::Reader response_reader(const Bytes& frame) {
  cql::Reader r(frame_body(frame));
  cql::skip_response_prefix(r, std::to_integer<uint8_t>(frame[1]));
  return r;
}

int32_t error_code_of(const Bytes& frame) {
  try {
    cql::Reader r = response_reader(frame);
    return r.read_int();
  } catch (const cql::ProtocolError&) {
    return static_cast<int32_t>(cql::ErrorCode::kServerError);
  }
}

// Builds a frame with `header` and a new body (length fixed up).
Bytes with_body(const Bytes& original, const Bytes& body) {
  Bytes out(cql::kHeaderSize + body.size());
  std::memcpy(out.data(), original.data(), cql::kHeaderSize);
  cql::Header h = cql::decode_header(BytesView(out.data(), cql::kHeaderSize));
  h.length = static_cast<uint32_t>(body.size());
  cql::encode_header(h, out.data());
  if (!body.empty()) std::memcpy(out.data() + cql::kHeaderSize, body.data(), body.size());
  return out;
}

bool supported_version(uint8_t v) {
  return v == 3 || v == 4;
}

std::string blocked_name(uint8_t v) {
  switch (v) {
    case 0x41:
      return "DSEV1";
    case 0x42:
      return "DSEV2";
    default:
      return std::to_string(v);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Connector

Connector::Connector(asio::io_context& ioc, Role role, Cluster cluster, int max_stream_ids)
    : role_(role), cluster_(cluster), socket_(ioc), writer_(socket_) {
  int n = std::min(max_stream_ids, 2048);
  owner_.assign(static_cast<std::size_t>(n), 0);
  free_.reserve(static_cast<std::size_t>(n));
  for (int i = n - 1; i >= 0; --i) free_.push_back(static_cast<int16_t>(i));
}

awaitable<boost::system::error_code> Connector::connect(tcp::endpoint ep,
                                                        std::chrono::milliseconds timeout) {
  node_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  asio::steady_timer watchdog(socket_.get_executor());
  watchdog.expires_after(timeout);
  watchdog.async_wait([this](boost::system::error_code ec) {
    if (!ec) {
      boost::system::error_code ignored;
      socket_.close(ignored);
    }
  });
  boost::system::error_code ec;
  co_await socket_.async_connect(ep, nothrow(ec));
  watchdog.cancel();
  if (!ec) socket_.set_option(tcp::no_delay(true), ec);
  co_return ec;
}

std::optional<int16_t> Connector::acquire(uint64_t request_id) {
  if (free_.empty()) return std::nullopt;
  int16_t s = free_.back();
  free_.pop_back();
  owner_[static_cast<std::size_t>(s)] = request_id;
  if (metrics) metrics->used_stream_ids->add();
  return s;
}

uint64_t Connector::release(int16_t stream) {
  if (stream < 0 || static_cast<std::size_t>(stream) >= owner_.size()) return 0;
  uint64_t id = owner_[static_cast<std::size_t>(stream)];
  if (id == 0) return 0;
  owner_[static_cast<std::size_t>(stream)] = 0;
  free_.push_back(stream);
  if (metrics) metrics->used_stream_ids->sub();
  return id;
}

void Connector::close() {
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  writer_.close();
}

awaitable<void> Connector::read_loop(std::shared_ptr<ClientSession> session) {
  cql::FrameDecoder decoder;
  std::vector<std::byte> buf(64 * 1024);
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = co_await socket_.async_read_some(asio::buffer(buf), nothrow(ec));
    if (ec) break;
    decoder.feed(BytesView(buf.data(), n));
    try {
      cql::Header h;
      Bytes frame;
      while (decoder.next_raw(h, frame)) session->on_cluster_frame(*this, h, std::move(frame));
    } catch (const cql::ProtocolError& e) {
      spdlog::error("Corrupt frame from {} node {}: {}", cluster_name(cluster_), node_, e.what());
      break;
    }
  }
  session->on_connector_closed(*this);
}

// ---------------------------------------------------------------------------------------------
// ClientSession

ClientSession::ClientSession(asio::io_context& ioc, tcp::socket socket, SharedState& shared)
    : ioc_(ioc),
      client_(std::move(socket)),
      client_writer_(client_),
      shared_(shared),
      config_(shared.config),
      sweep_timer_(ioc),
      drained_(ioc) {
  boost::system::error_code ec;
  auto ep = client_.remote_endpoint(ec);
  client_addr_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  client_.set_option(tcp::no_delay(true), ec);
  drained_.expires_at(std::chrono::steady_clock::time_point::max());
  shared_.sessions++;
  shared_.metrics.client_connections().add();
}

ClientSession::~ClientSession() {
  shared_.sessions--;
  shared_.metrics.client_connections().sub();
}

awaitable<bool> ClientSession::ensure_connected() {
  if (origin_) co_return true;
  auto self = shared_from_this();
  for (Cluster c : {Cluster::kOrigin, Cluster::kTarget}) {
    auto conn = std::make_unique<Connector>(
        ioc_, c == Cluster::kOrigin ? Connector::Role::kOrigin : Connector::Role::kTarget, c,
        config_.proxy_max_stream_ids);
    tcp::endpoint ep;
    try {
      ep = shared_.cc(c).pick_node();
    } catch (const std::exception& e) {
      spdlog::error("Cannot open {} connection for client {}: {}", cluster_name(c), client_addr_,
                    e.what());
      shared_.metrics.failed_connections(c).inc();
      co_return false;
    }
    auto timeout =
        std::chrono::milliseconds(c == Cluster::kOrigin ? config_.origin_connection_timeout_ms
                                                        : config_.target_connection_timeout_ms);
    auto ec = co_await conn->connect(ep, timeout);
    conn->metrics =
        &shared_.metrics.node(c == Cluster::kOrigin ? "origin" : "target", conn->node());
    if (ec) {
      spdlog::error("Failed to open {} connection to {} for client {}: {}", cluster_name(c),
                    conn->node(), client_addr_, ec.message());
      conn->metrics->failed_connections->inc();
      shared_.metrics.failed_connections(c).inc();
      co_return false;
    }
    spdlog::debug("[{}-CONNECTOR] Opened request connection to {} ({}) for client {}",
                  cluster_name(c), cluster_name(c), conn->node(), client_addr_);
    conn->metrics->connections->add();
    (c == Cluster::kOrigin ? origin_ : target_) = std::move(conn);
  }
  for (Connector* k : {origin_.get(), target_.get()}) {
    asio::co_spawn(ioc_, k->read_loop(self), asio::detached);
    asio::co_spawn(
        ioc_,
        [self, k]() -> awaitable<void> {
          auto ec = co_await k->writer().run();
          if (ec) self->on_connector_closed(*k);
        },
        asio::detached);
  }
  co_return true;
}

awaitable<void> ClientSession::run() {
  auto self = shared_from_this();
  spdlog::info("Accepted connection from {}", client_addr_);
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
        while (!self->closed_) {
          boost::system::error_code ec;
          self->sweep_timer_.expires_after(std::chrono::seconds(1));
          co_await self->sweep_timer_.async_wait(nothrow(ec));
          if (!self->closed_) self->sweep_timeouts();
        }
      },
      asio::detached);

  // Until the handshake completes, bodies are small (STYLE rule 3).
  cql::FrameDecoder decoder(256 * 1024);
  std::vector<std::byte> buf(64 * 1024);
  bool corrupt = false;
  while (!closed_ && !draining_) {
    boost::system::error_code ec;
    std::size_t n = co_await client_.async_read_some(asio::buffer(buf), nothrow(ec));
    if (ec) break;
    decoder.feed(BytesView(buf.data(), n));
    cql::Header h;
    Bytes frame;
    for (;;) {
      try {
        if (closed_ || !decoder.next_raw(h, frame)) break;
      } catch (const cql::ProtocolError& e) {
        spdlog::warn("Closing client {}: {}", client_addr_, e.what());
        reply_error(version_ ? version_ : 4, 0, cql::ErrorCode::kProtocolError, e.what());
        corrupt = true;
        break;
      }
      if (h.response) {
        reply_error(version_ ? version_ : 4, h.stream, cql::ErrorCode::kProtocolError,
                    "Invalid frame: the response bit is set on a request");
        corrupt = true;
        break;
      }
      bool blocked = false;
      for (const auto& b : config_.blocked_protocol_versions) {
        std::string u;
        for (char ch : b)
          if (ch != '_') u += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        if (u == blocked_name(h.version) || u == "V" + blocked_name(h.version)) blocked = true;
      }
      if (!supported_version(h.version) || blocked) {
        uint8_t v = (h.version >= 1 && h.version <= 6) || h.version == 0x41 || h.version == 0x42
                        ? h.version
                        : 4;
        reply_error(v, h.stream, cql::ErrorCode::kProtocolError,
                    "Invalid or unsupported protocol version (" + std::to_string(h.version) +
                        "); supported versions are (3/v3, 4/v4)");
        continue;
      }
      if (version_ == 0) {
        version_ = h.version;
      } else if (h.version != version_) {
        reply_error(version_, h.stream, cql::ErrorCode::kProtocolError,
                    "Invalid message version. Got " + std::to_string(h.version) +
                        " but previous messages on this connection had version " +
                        std::to_string(version_));
        corrupt = true;
        break;
      }
      if (!origin_) {
        if (!co_await ensure_connected()) {
          close();
          co_return;
        }
      }
      on_client_frame(h, std::move(frame));
    }
    if (corrupt) break;
    if (ready_) decoder.set_max_body(cql::kMaxBodyLength);
  }
  if (corrupt || (draining_ && !closed_)) {
    // Answer what is in flight, then the writer flushes and closes the session.
    while (!pending_.empty() && !closed_) {
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

void ClientSession::drain() {
  if (draining_ || closed_) return;
  draining_ = true;
  boost::system::error_code ec;
  client_.shutdown(tcp::socket::shutdown_receive, ec);
}

void ClientSession::reply(Bytes frame, int16_t stream) {
  cql::patch_stream(frame.data(), stream);
  client_writer_.push(std::move(frame));
}

void ClientSession::reply_error(uint8_t version, int16_t stream, cql::ErrorCode code,
                                std::string message) {
  client_writer_.push(cql::encode_error(version, stream, code, std::move(message)));
}

void ClientSession::answer_local(const cql::Header& h, LocalTable table,
                                 const cql::StatementInfo& info) {
  auto snap = shared_.origin_cc.snapshot();
  if (!snap) {
    reply_error(h.version, h.stream, cql::ErrorCode::kServerError,
                "ZDM proxy has no ORIGIN topology yet");
    return;
  }
  auto answer = answer_system_select(table, info, *snap, shared_.topology);
  if (auto* rows = std::get_if<cql::RowsResult>(&answer)) {
    cql::ResultMsg msg{std::move(*rows)};
    client_writer_.push(cql::encode_message(h.version, true, h.stream, Opcode::kResult, msg));
  } else {
    client_writer_.push(cql::encode_message(h.version, true, h.stream, Opcode::kError,
                                            std::get<cql::ErrorMsg>(answer)));
  }
}

void ClientSession::on_client_frame(const cql::Header& h, Bytes frame) {
  if (h.stream < 0) {
    reply_error(h.version, h.stream, cql::ErrorCode::kProtocolError,
                "Invalid stream id " + std::to_string(h.stream) +
                    ": client requests must use non-negative stream ids");
    return;
  }
  Decision d;
  PendingRequest p;
  std::optional<Bytes> target_frame;
  try {
    cql::Reader r(frame_body(frame));
    cql::skip_request_prefix(r, h.flags);
    const std::size_t prefix_end = r.position();
    switch (h.opcode) {
      case Opcode::kQuery: {
        std::string query = r.read_long_string();
        auto info = cql::classify(query);
        d = route_statement(info, keyspace_, config_);
        if (d.destination == Destination::kLocal) {
          answer_local(h, d.local, info);
          return;
        }
        break;
      }
      case Opcode::kPrepare: {
        auto prep = cql::PrepareMsg::decode(r, h.version);
        auto info = cql::classify(prep.query);
        p.query = prep.query;
        p.execute_decision = route_statement(info, keyspace_, config_);
        if (p.execute_decision.destination == Destination::kLocal) {
          // Prepared system.local/peers reads are served by origin.
          p.execute_decision =
              Decision{Destination::kOrigin, false, RequestType::kReadsOrigin, LocalTable::kNone};
        }
        d = Decision{Destination::kBoth, false, RequestType::kNone, LocalTable::kNone};
        break;
      }
      case Opcode::kExecute: {
        Bytes id = r.read_short_bytes();
        const std::size_t after_id = r.position();
        auto entry = shared_.prepared.by_origin_id(id);
        if (!entry) {
          shared_.metrics.pscache_miss().inc();
          client_writer_.push(cql::encode_message(
              h.version, true, h.stream, Opcode::kError,
              cql::ErrorMsg::unprepared("Prepared query with ID " + std::to_string(id.size()) +
                                            "-byte id not found in ZDM proxy cache",
                                        id)));
          return;
        }
        d = entry->decision;
        p.origin_prepared_id = id;
        bool target_needed = d.destination == Destination::kTarget ||
                             d.destination == Destination::kBoth ||
                             (d.async_mirror && config_.secondary() == Cluster::kTarget);
        if (target_needed) {
          BytesView body = frame_body(frame);
          Bytes nb(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(prefix_end));
          cql::Writer w(nb);
          w.write_short_bytes(entry->target_id);
          nb.insert(nb.end(), body.begin() + static_cast<std::ptrdiff_t>(after_id), body.end());
          target_frame = with_body(frame, nb);
        }
        break;
      }
      case Opcode::kBatch: {
        auto batch = cql::BatchMsg::decode(r, h.version);
        d = route_opcode(Opcode::kBatch, config_);
        bool any_prepared = false;
        for (auto& child : batch.children) {
          if (!child.prepared) continue;
          auto entry = shared_.prepared.by_origin_id(child.id);
          if (!entry) {
            shared_.metrics.pscache_miss().inc();
            client_writer_.push(cql::encode_message(
                h.version, true, h.stream, Opcode::kError,
                cql::ErrorMsg::unprepared("Prepared query in BATCH not found in ZDM proxy cache",
                                          child.id)));
            return;
          }
          if (p.origin_prepared_id.empty()) p.origin_prepared_id = child.id;
          child.id = entry->target_id;
          any_prepared = true;
        }
        if (any_prepared) {
          BytesView body = frame_body(frame);
          Bytes nb(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(prefix_end));
          cql::Writer w(nb);
          batch.encode(w, h.version);
          target_frame = with_body(frame, nb);
        }
        break;
      }
      case Opcode::kStartup:
        cql::StartupMsg::decode(r);
        d = route_opcode(h.opcode, config_);
        if (config_.read_mode == ReadMode::kDualAsyncOnSecondary) p.query = "startup";
        break;
      case Opcode::kRegister:
        cql::RegisterMsg::decode(r);
        registered_ = true;
        d = route_opcode(h.opcode, config_);
        break;
      default:
        d = route_opcode(h.opcode, config_);
        break;
    }
  } catch (const cql::ProtocolError& e) {
    spdlog::warn("Malformed {} from client {}: {}; closing the connection",
                 cql::opcode_name(h.opcode), client_addr_, e.what());
    reply_error(h.version, h.stream, cql::ErrorCode::kProtocolError, e.what());
    draining_ = true;  // stop reading; the run loop flushes the error and closes
    boost::system::error_code ec;
    client_.shutdown(tcp::socket::shutdown_receive, ec);
    return;
  }
  p.client_stream = h.stream;
  p.opcode = h.opcode;
  p.version = h.version;
  p.decision = d;
  p.start = std::chrono::steady_clock::now();
  if (h.opcode == Opcode::kStartup && config_.read_mode == ReadMode::kDualAsyncOnSecondary &&
      !async_) {
    // The async connector replays the client's handshake on the secondary (reference §2).
    Cluster sec = config_.secondary();
    auto conn = std::make_unique<Connector>(ioc_, Connector::Role::kAsync, sec,
                                            config_.proxy_max_stream_ids);
    Connector* k = conn.get();
    async_ = std::move(conn);
    auto self = shared_from_this();
    Bytes startup = frame;
    asio::co_spawn(
        ioc_,
        [self, k, sec, startup = std::move(startup)]() mutable -> awaitable<void> {
          tcp::endpoint ep;
          try {
            ep = self->shared_.cc(sec).pick_node();
          } catch (const std::exception&) {
            self->async_ready_ = false;
            co_return;
          }
          auto ec = co_await k->connect(
              ep, std::chrono::milliseconds(self->config_.async_handshake_timeout_ms));
          k->metrics = &self->shared_.metrics.node("async", k->node());
          if (ec || self->closed_) {
            k->metrics->failed_connections->inc();
            spdlog::warn(
                "Async connector to {} for client {} failed: {}; async reads disabled for this "
                "connection",
                k->node(), self->client_addr_, ec.message());
            co_return;
          }
          k->metrics->connections->add();
          auto s = k->acquire(kAsyncBit);
          if (!s) co_return;
          cql::patch_stream(startup.data(), *s);
          k->send(std::move(startup));
          self->async_ready_ = true;
          asio::co_spawn(self->ioc_, k->read_loop(self), asio::detached);
          co_await k->writer().run();
        },
        asio::detached);
  }
  dispatch(h, std::move(frame), d, std::move(p), std::move(target_frame));
}

void ClientSession::dispatch(const cql::Header& h, Bytes frame, Decision d, PendingRequest p,
                             std::optional<Bytes> target_frame) {
  if (d.destination == Destination::kDrop) return;
  const uint64_t id = next_request_id_++;
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
    reply_error(h.version, h.stream, cql::ErrorCode::kOverloaded,
                "Shutting down, please retry on next host.");
    return;
  }
  if (d.async_mirror && async_ && async_ready_) {
    Cluster sec = config_.secondary();
    Bytes copy = (sec == Cluster::kTarget && target_frame) ? *target_frame : frame;
    if (auto s = async_->acquire(id | kAsyncBit)) {
      cql::patch_stream(copy.data(), *s);
      async_->send(std::move(copy));
      async_started_[id] = {p.start, d.metric};
      if (async_->metrics) async_->metrics->inflight->add();
    }
  }
  if (to_origin && to_target) {
    Bytes tf = target_frame ? std::move(*target_frame) : frame;
    cql::patch_stream(frame.data(), *so);
    cql::patch_stream(tf.data(), *st);
    origin_->send(std::move(frame));
    target_->send(std::move(tf));
  } else if (to_origin) {
    cql::patch_stream(frame.data(), *so);
    origin_->send(std::move(frame));
  } else {
    Bytes tf = target_frame ? std::move(*target_frame) : std::move(frame);
    cql::patch_stream(tf.data(), *st);
    target_->send(std::move(tf));
  }
  p.expected[0] = to_origin;
  p.expected[1] = to_target;
  if (d.metric != RequestType::kNone) shared_.metrics.inflight(d.metric).add();
  shared_.inflight++;
  pending_.emplace(id, std::move(p));
}

void ClientSession::on_cluster_frame(Connector& from, cql::Header h, Bytes frame) {
  if (h.stream < 0) {
    // Events: only SCHEMA_CHANGE from origin reaches the client (reference §1 "Events").
    if (from.role() != Connector::Role::kOrigin || !registered_ || h.opcode != Opcode::kEvent)
      return;
    try {
      cql::Reader r = response_reader(frame);
      if (r.read_string() == "SCHEMA_CHANGE") client_writer_.push(std::move(frame));
    } catch (const cql::ProtocolError&) {
    }
    return;
  }
  const uint64_t id = from.release(h.stream);
  if (from.role() == Connector::Role::kAsync) {
    auto it = async_started_.find(id & ~kAsyncBit);
    if (it == async_started_.end()) return;
    if (from.metrics) {
      from.metrics->inflight->sub();
      // Only requests the proxy tracks (reads, USE) count; OPTIONS heartbeats do not.
      if (it->second.second != RequestType::kNone) {
        from.metrics->reads->observe(seconds_since(it->second.first));
        if (h.opcode == Opcode::kError)
          from.metrics->requests_failed[error_label(error_code_of(frame))]->inc();
      }
    }
    async_started_.erase(it);
    return;
  }
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // timed out earlier
  PendingRequest& p = it->second;
  const int c = static_cast<int>(from.cluster());
  if (from.metrics && p.decision.metric != RequestType::kNone) {
    double secs = seconds_since(p.start);
    (p.decision.metric == RequestType::kWrites ? from.metrics->writes : from.metrics->reads)
        ->observe(secs);
    if (h.opcode == Opcode::kError)
      from.metrics->requests_failed[error_label(error_code_of(frame))]->inc();
  }
  p.responses[c] = std::move(frame);
  p.received[c] = true;
  if ((p.expected[0] && !p.received[0]) || (p.expected[1] && !p.received[1])) return;
  complete(id, p);
  pending_.erase(it);
  shared_.inflight--;
  if (draining_ && pending_.empty()) drained_.cancel();
}

void ClientSession::complete(uint64_t, PendingRequest& p) {
  const bool both = p.expected[0] && p.expected[1];
  bool err[2] = {p.expected[0] && frame_opcode(p.responses[0]) == Opcode::kError,
                 p.expected[1] && frame_opcode(p.responses[1]) == Opcode::kError};
  Cluster chosen;
  if (both) {
    if (err[0]) {
      chosen = Cluster::kOrigin;  // origin failed (alone or with target): origin's error
    } else if (err[1]) {
      chosen = Cluster::kTarget;
    } else {
      chosen = p.opcode == Opcode::kPrepare ? Cluster::kOrigin : config_.primary_cluster;
    }
    if (p.decision.metric == RequestType::kWrites) {
      if (err[0] && err[1]) {
        shared_.metrics.failed_writes_both().inc();
      } else if (err[0]) {
        shared_.metrics.failed_writes_origin().inc();
      } else if (err[1]) {
        shared_.metrics.failed_writes_target().inc();
      }
    }
  } else {
    chosen = p.expected[0] ? Cluster::kOrigin : Cluster::kTarget;
    if (err[static_cast<int>(chosen)] && p.decision.metric != RequestType::kNone)
      shared_.metrics.failed_reads(chosen).inc();
  }
  Bytes resp = std::move(p.responses[static_cast<int>(chosen)]);
  try {
    if (p.opcode == Opcode::kPrepare && both && !err[0] && !err[1]) {
      cql::Reader ro = response_reader(resp);
      cql::Reader rt = response_reader(p.responses[1]);
      auto ko = ro.read_int(), kt = rt.read_int();
      if (ko == static_cast<int32_t>(cql::ResultKind::kPrepared) &&
          kt == static_cast<int32_t>(cql::ResultKind::kPrepared)) {
        PreparedEntry e;
        e.origin_id = ro.read_short_bytes();
        e.target_id = rt.read_short_bytes();
        e.decision = p.execute_decision;
        e.query = p.query;
        e.keyspace = keyspace_;
        shared_.prepared.put(std::move(e));
        shared_.metrics.pscache_entries().set(static_cast<int64_t>(shared_.prepared.size()));
      }
    }
    if (err[static_cast<int>(chosen)] && chosen == Cluster::kTarget &&
        !p.origin_prepared_id.empty() &&
        error_code_of(resp) == static_cast<int32_t>(cql::ErrorCode::kUnprepared)) {
      // The client only knows origin ids (reference §2 "Prepared ids").
      resp = cql::encode_message(
          p.version, true, 0, Opcode::kError,
          cql::ErrorMsg::unprepared("Prepared statement unknown on TARGET", p.origin_prepared_id));
    }
    if (frame_opcode(resp) == Opcode::kResult) {
      cql::Reader r = response_reader(resp);
      if (r.read_int() == static_cast<int32_t>(cql::ResultKind::kSetKeyspace))
        keyspace_ = r.read_string();
    }
  } catch (const cql::ProtocolError& e) {
    spdlog::warn("Malformed response from {}: {}", cluster_name(chosen), e.what());
  }
  if ((p.opcode == Opcode::kStartup || p.opcode == Opcode::kAuthResponse) &&
      (frame_opcode(resp) == Opcode::kReady || frame_opcode(resp) == Opcode::kAuthSuccess)) {
    if (!ready_) {
      spdlog::info("Handshake successful with client {} (ProtocolVersion OSS {})", client_addr_,
                   p.version);
    }
    ready_ = true;
  }
  if (p.decision.metric != RequestType::kNone) {
    shared_.metrics.request_duration(p.decision.metric).observe(seconds_since(p.start));
    shared_.metrics.inflight(p.decision.metric).sub();
  }
  reply(std::move(resp), p.client_stream);
}

void ClientSession::sweep_timeouts() {
  auto deadline = std::chrono::steady_clock::now() -
                  std::chrono::milliseconds(config_.proxy_request_timeout_ms);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.start < deadline) {
      // ZDM sends nothing for a timed-out request; the driver times out on its own.
      const auto& p = it->second;
      spdlog::warn("Request {} on stream {} from client {} timed out after {} ms",
                   cql::opcode_name(p.opcode), p.client_stream, client_addr_,
                   config_.proxy_request_timeout_ms);
      for (int c = 0; c < 2; ++c) {
        Connector* k = c == 0 ? origin_.get() : target_.get();
        if (p.expected[c] && !p.received[c] && k && k->metrics)
          k->metrics->requests_failed["client_timeout"]->inc();
      }
      if (p.decision.metric != RequestType::kNone)
        shared_.metrics.inflight(p.decision.metric).sub();
      shared_.inflight--;
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = async_started_.begin(); it != async_started_.end();) {
    if (it->second.first < deadline) {
      if (async_ && async_->metrics) {
        async_->metrics->requests_failed["client_timeout"]->inc();
        async_->metrics->inflight->sub();
      }
      it = async_started_.erase(it);
    } else {
      ++it;
    }
  }
  if (draining_ && pending_.empty()) drained_.cancel();
}

void ClientSession::on_connector_closed(Connector& c) {
  if (closed_) return;
  if (c.role() == Connector::Role::kAsync) {
    async_ready_ = false;
    if (c.metrics) c.metrics->connections->sub();
    c.close();
    return;
  }
  if (!draining_) {
    spdlog::warn("[{}-CONNECTOR] Connection to {} closed; closing client connection {}",
                 cluster_name(c.cluster()), c.node(), client_addr_);
  }
  close();
}

void ClientSession::close() {
  if (closed_) return;
  closed_ = true;
  spdlog::info("[CLIENT-CONNECTOR] {} disconnected", client_addr_);
  boost::system::error_code ec;
  client_.shutdown(tcp::socket::shutdown_both, ec);
  client_.close(ec);
  client_writer_.close();
  for (auto* k : {origin_.get(), target_.get(), async_.get()}) {
    if (!k) continue;
    if (k->metrics && (k != async_.get() || async_ready_)) k->metrics->connections->sub();
    k->close();
  }
  for (auto& [id, p] : pending_) {
    if (p.decision.metric != RequestType::kNone) shared_.metrics.inflight(p.decision.metric).sub();
    shared_.inflight--;
  }
  pending_.clear();
  if (async_ && async_->metrics)
    for (std::size_t i = 0; i < async_started_.size(); ++i) async_->metrics->inflight->sub();
  async_started_.clear();
  sweep_timer_.cancel();
  drained_.cancel();
}

}  // namespace zdm::proxy
