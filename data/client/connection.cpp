#include "data/client/connection.h"

#include "common/cql/messages.h"
#include "common/cql/version.h"

namespace zdm::data {

namespace {

std::string error_text(const cql::Frame& f, cql::ErrorCode* code = nullptr) {
  try {
    cql::Reader r(f.body);
    cql::skip_response_prefix(r, f.header.flags);
    auto e = cql::ErrorMsg::decode(r);
    if (code) *code = e.code;
    return e.message;
  } catch (const cql::ProtocolError& e) {
    return std::string("unreadable ERROR: ") + e.what();
  }
}

}  // namespace

Connection::Connection(std::shared_ptr<net::NodeConnection> node)
    : node_(std::move(node)),
      compression_(node_->compression()),
      pending_(kMaxStreams),
      orphaned_(kMaxStreams, false),
      last_read_(std::chrono::steady_clock::now()) {
  free_ids_.reserve(kMaxStreams);
  for (int i = kMaxStreams - 1; i >= 0; --i) free_ids_.push_back(static_cast<int16_t>(i));
}

awaitable<std::shared_ptr<Connection>> Connection::open(asio::io_context& ioc,
                                                        const tcp::endpoint& ep,
                                                        const std::string& host, uint8_t version,
                                                        const ConnectSettings& settings,
                                                        OpenFailure& failure) {
  auto node = std::make_shared<net::NodeConnection>(ioc);
  std::string why;
  if (!co_await node->open(ep, host, settings.hop, why)) {
    failure.why = why;
    failure.same_everywhere = why.starts_with("TLS handshake");
    co_return nullptr;
  }
  // v5 compresses segments with LZ4 only (native_protocol_v5.spec §2.4.1): Snappy is v4's.
  cql::Compression compression = settings.compression;
  if (cql::uses_segments(version) && compression == cql::Compression::kSnappy)
    compression = cql::Compression::kNone;
  node->set_protocol(version, compression);
  cql::StartupMsg startup{
      {{"CQL_VERSION", "3.0.0"}, {"DRIVER_NAME", "zdm-data"}, {"DRIVER_VERSION", ZDM_VERSION}}};
  if (compression != cql::Compression::kNone)
    startup.options["COMPRESSION"] = std::string(cql::compression_name(compression));
  const auto sent = std::chrono::steady_clock::now();
  auto resp = co_await node->exchange(
      cql::encode_message(version, false, 0, cql::Opcode::kStartup, startup),
      settings.handshake_timeout);
  auto fail = [&](std::string w) {
    failure.why = std::move(w);
    node->close();
  };
  if (!resp) {
    if (std::chrono::steady_clock::now() - sent < settings.handshake_timeout)
      fail(std::string("the node closed the connection after STARTUP") +
           (settings.hop.tls ? "" : " (does it expect TLS?)"));
    else
      fail("no answer to STARTUP within " + std::to_string(settings.handshake_timeout.count()) +
           " ms");
    co_return nullptr;
  }
  if (resp->header.opcode == cql::Opcode::kError) {
    cql::ErrorCode code = cql::ErrorCode::kServerError;
    std::string msg = error_text(*resp, &code);
    failure.version_refused = code == cql::ErrorCode::kProtocolError;
    fail("STARTUP refused: " + msg);
    co_return nullptr;
  }
  if (resp->header.opcode == cql::Opcode::kAuthenticate) {
    cql::Reader r(resp->body);
    std::string authenticator = cql::AuthenticateMsg::decode(r).authenticator;
    if (settings.credentials.empty()) {
      failure.same_everywhere = true;
      fail("the node requires authentication (" + authenticator +
           ") but no username/password was given");
      co_return nullptr;
    }
    auto done = co_await node->authenticate(authenticator, settings.credentials, 0,
                                            settings.handshake_timeout);
    if (!done || done->header.opcode != cql::Opcode::kAuthSuccess) {
      failure.same_everywhere = done.has_value();
      fail("the credentials of user '" + settings.credentials.username +
           "' were refused: " + (done ? error_text(*done) : "no answer"));
      co_return nullptr;
    }
  } else if (resp->header.opcode != cql::Opcode::kReady) {
    fail("unexpected answer to STARTUP: " + cql::opcode_name(resp->header.opcode));
    co_return nullptr;
  }
  std::shared_ptr<Connection> conn(new Connection(node));
  asio::co_spawn(ioc, conn->read_loop(), asio::detached);
  co_return conn;
}

awaitable<void> Connection::read_loop() {
  auto self = shared_from_this();
  net::error_code ec;
  while (!closed_) {
    auto data = co_await node_->stream().receive(ec);
    if (ec) break;
    last_read_ = std::chrono::steady_clock::now();
    node_->frames().feed(data);
    cql::Header h;
    cql::Bytes raw;
    bool corrupt = false;
    try {
      while (node_->frames().next_raw(h, raw)) {
        if (h.stream < 0 || h.stream >= kMaxStreams) continue;  // events (stream -1)
        const auto id = static_cast<std::size_t>(h.stream);
        if (orphaned_[id]) {  // the late answer to a request that timed out: the id is free
          orphaned_[id] = false;
          free_ids_.push_back(h.stream);
          if (!id_waiters_.empty()) id_waiters_.front()->cancel();
          continue;
        }
        Pending p = pending_[id];
        if (!p.timer) continue;
        cql::Bytes scratch;
        cql::BytesView body = net::frame_body(raw, compression_, scratch);
        cql::Frame f{h, cql::Bytes(body.begin(), body.end())};
        f.header.flags &= static_cast<uint8_t>(~cql::flag::kCompression);
        f.header.length = static_cast<uint32_t>(f.body.size());
        *p.out = std::move(f);
        pending_[id] = {};
        free_ids_.push_back(h.stream);
        if (!id_waiters_.empty()) id_waiters_.front()->cancel();
        p.timer->cancel();
      }
    } catch (const cql::ProtocolError&) {
      corrupt = true;
    }
    if (corrupt) break;
    node_->frames().release_if_idle();
  }
  close();
}

awaitable<std::optional<cql::Frame>> Connection::request(cql::Bytes frame,
                                                         std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  auto ex = co_await asio::this_coro::executor;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (free_ids_.empty() && !closed_) {
    asio::steady_timer wait(ex);
    wait.expires_at(deadline);
    id_waiters_.push_back(&wait);
    net::error_code ec;
    co_await wait.async_wait(net::nothrow(ec));
    std::erase(id_waiters_, &wait);
    if (std::chrono::steady_clock::now() >= deadline) co_return std::nullopt;
  }
  if (closed_) co_return std::nullopt;
  const int16_t id = free_ids_.back();
  free_ids_.pop_back();
  cql::patch_stream(frame.data(), id);
  if (compression_ != cql::Compression::kNone && cql::uses_body_compression_flag(version())) {
    cql::Header h = cql::decode_header(frame);
    h.flags |= cql::flag::kCompression;
    frame = cql::encode_frame(
        h, cql::compress_body(compression_, cql::BytesView(frame).subspan(cql::kHeaderSize)));
  }
  asio::steady_timer timer(ex);
  timer.expires_at(deadline);
  std::optional<cql::Frame> out;
  pending_[static_cast<std::size_t>(id)] = {&timer, &out};
  ++in_flight_;
  node_->send(std::move(frame));
  net::error_code ec;
  co_await timer.async_wait(net::nothrow(ec));
  --in_flight_;
  if (out) co_return out;
  auto& p = pending_[static_cast<std::size_t>(id)];
  if (p.timer == &timer) {
    p = {};
    if (!closed_) orphaned_[static_cast<std::size_t>(id)] = true;
  }
  // Nothing at all came back within the deadline: the node is gone or silent.
  if (!closed_ && std::chrono::steady_clock::now() - last_read_ >= timeout) close();
  co_return std::nullopt;
}

void Connection::fail_all() {
  for (auto& p : pending_) {
    if (p.timer) p.timer->cancel();
    p = {};
  }
  for (auto* w : id_waiters_) w->cancel();
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  node_->close();
  fail_all();
}

}  // namespace zdm::data
