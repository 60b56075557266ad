#include "testcluster/server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <variant>

#include "common/cql/legacy.h"
#include "common/cql/messages.h"
#include "common/cql/segment.h"
#include "common/net/frame_writer.h"
#include "common/net/stream.h"
#include "common/net/tls.h"
#include "testcluster/values.h"

namespace zdm::testcluster {

namespace asio = boost::asio;
using asio::ip::tcp;
using cql::Bytes;
using cql::BytesView;
using cql::ErrorCode;
using cql::Opcode;
using net::nothrow;

namespace {

constexpr auto kTlsHandshakeTimeout = std::chrono::seconds(10);
// Cassandra refuses a first frame over 100 000 bytes before the connection is set up
// (native_transport_max_frame_size applies after).
constexpr uint32_t kMaxStartupBody = 100000;

void log_failure(std::exception_ptr e, const char* what) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("{} failed: {}", what, ex.what());
  }
}

std::string version_name(uint8_t v) {
  switch (v) {
    case 0x41:
      return "65/dse-v1";
    case 0x42:
      return "66/dse-v2";
    default:
      return std::to_string(v) + "/v" + std::to_string(v);
  }
}

const char* authenticator_class(Authenticator a) {
  return a == Authenticator::kDse ? "com.datastax.bdp.cassandra.auth.DseAuthenticator"
                                  : "org.apache.cassandra.auth.PasswordAuthenticator";
}

// v5 is the only version framed in segments (DSE versions keep v4 framing).
bool uses_segments(uint8_t v) {
  return v == 5;
}

// The version to answer a frame of version `v` in: its own when the client can read it.
uint8_t reply_version(uint8_t v, const std::vector<uint8_t>& supported) {
  if (std::find(supported.begin(), supported.end(), v) != supported.end()) return v;
  if (v >= 1 && v <= 5) return v;
  return 4;
}

}  // namespace

std::string unsupported_version_message(uint8_t version, const std::vector<uint8_t>& supported) {
  std::string list;
  for (uint8_t v : supported) list += (list.empty() ? "" : ", ") + version_name(v);
  return "Invalid or unsupported protocol version (" + std::to_string(version) +
         "); supported versions are (" + list + ")";
}

/// One client connection: the reader decodes and answers frames in order of arrival,
/// the FrameWriter alone writes. State machine of Cassandra's ServerConnection: UNINITIALIZED
/// (OPTIONS, STARTUP) → AUTHENTICATION (AUTH_RESPONSE) → READY.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  /// Answers queued for the client above which no more of its requests are taken, and the
  /// level they must drain to first (bytes).
  static constexpr std::size_t kHighWatermark = 4 << 20, kLowWatermark = 1 << 20;
  Connection(Server& server, tcp::socket socket, std::size_t node)
      : server_(server),
        stream_(std::move(socket)),
        writer_(stream_),
        node_(node),
        drain_timer_(stream_.socket().get_executor()) {
    writer_.set_watermarks(kHighWatermark, kLowWatermark, [this] { drain_timer_.cancel(); });
    net::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
      if (ep.address().is_v4()) {
        auto b = ep.address().to_v4().to_bytes();
        for (auto x : b) peer_address_.push_back(static_cast<std::byte>(x));
      } else {
        auto b = ep.address().to_v6().to_bytes();
        for (auto x : b) peer_address_.push_back(static_cast<std::byte>(x));
      }
    }
  }

  void start() {
    server_.add(this);
    auto self = shared_from_this();
    asio::co_spawn(stream_.socket().get_executor(), self->run(),
                   [self](std::exception_ptr e) { log_failure(e, "connection"); });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (requests_ > 0)
      spdlog::info("{}: closed after {} requests ({} compressed)", peer_, requests_, compressed_);
    server_.remove(this);
    for (const auto& t : delayed_) t->cancel();  // late answers die with the connection
    drain_timer_.cancel();
    delayed_.clear();
    stream_.close();
    writer_.close();
  }

  void deliver(Bytes frame) {
    if (!closed_) send(std::move(frame));
  }

  bool registered_for_schema() const { return registered_schema_; }
  uint8_t version() const { return session_.version; }
  std::size_t node() const { return node_; }

 private:
  enum class State { kUninitialized, kAuthentication, kReady };

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    if (const auto& tls = server_.options().tls) {
      stream_.use_tls(*tls);
      auto ec = co_await stream_.handshake(
          asio::ssl::stream_base::server,
          std::chrono::duration_cast<std::chrono::milliseconds>(kTlsHandshakeTimeout));
      if (ec) {
        spdlog::warn("{}: TLS handshake failed: {}", peer_, ec.message());
        close();
        co_return;
      }
    }
    asio::co_spawn(
        stream_.socket().get_executor(),
        [self]() -> asio::awaitable<void> {
          co_await self->writer_.run();
          self->close();
        },
        [self](std::exception_ptr e) { log_failure(e, "connection writer"); });
    co_await reader();
  }

  asio::awaitable<void> reader() {
    std::array<std::byte, 64 * 1024> buf;
    bool first = true;
    while (!closed_) {
      net::error_code ec;
      std::size_t n = co_await stream_.read_some(asio::buffer(buf), ec);
      if (ec) {
        if (ec != asio::error::eof && ec != asio::error::operation_aborted &&
            ec != asio::error::connection_reset)
          spdlog::debug("{}: read: {}", peer_, ec.message());
        break;
      }
      if (first && (std::to_integer<uint8_t>(buf[0]) & 0x7f) < 3) {
        // A v1/v2 header is 8 bytes with a one-byte stream id: answered in kind at once.
        uint8_t v = std::to_integer<uint8_t>(buf[0]) & 0x7f;
        int8_t stream = n > 2 ? static_cast<int8_t>(buf[2]) : 0;
        writer_.push(cql::encode_legacy_protocol_error(
            v, stream, unsupported_version_message(v, server_.options().versions)));
        writer_.close();
        co_return;
      }
      first = false;
      std::vector<cql::SchemaChange> events;
      try {
        frames_.feed(BytesView(buf.data(), n));
        cql::Header h;
        Bytes frame;
        while (!close_after_flush_ && frames_.next_raw(h, frame)) {
          handle(h, frame, events);
          if (writer_.full()) {
            // Answers pile up unread: like Cassandra's native transport, which stops reading a
            // channel whose outbound buffer is over its high watermark, no more requests are
            // taken from this connection until they drain. A client that pipelines requests
            // and reads nothing costs a bounded amount of work, not every answer it asked for.
            if (!bench_out_.empty()) writer_.push(std::exchange(bench_out_, Bytes()));
            co_await drained();
            if (closed_) co_return;
          }
        }
        if (!bench_out_.empty()) writer_.push(std::exchange(bench_out_, Bytes()));
      } catch (const cql::ProtocolError& e) {
        spdlog::warn("{}: corrupt frame, closing: {}", peer_, e.what());
        send(cql::encode_error(session_.version, 0, ErrorCode::kProtocolError, e.what()));
        close_after_flush_ = true;
      }
      for (const auto& ev : events) server_.broadcast(ev);
      if (close_after_flush_) {
        writer_.close();  // the writer flushes what was answered, then the connection closes
        co_return;
      }
    }
    close();
  }

  /// Returns once the writer is back under its low watermark (or the connection closed).
  asio::awaitable<void> drained() {
    while (writer_.full() && !closed_) {
      drain_timer_.expires_after(std::chrono::seconds(1));
      net::error_code ec;
      co_await drain_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  void send(Bytes frame) {
    // v3/v4 with compression negotiated: every response body after the STARTUP answer is
    // compressed, as Cassandra does, so clients (and the proxy) must decompress.
    if (compress_responses_ && frame.size() > cql::kHeaderSize) {
      BytesView body(frame.data() + cql::kHeaderSize, frame.size() - cql::kHeaderSize);
      Bytes packed = cql::compress_body(compression_, body);
      cql::Header h = cql::decode_header(BytesView(frame.data(), cql::kHeaderSize));
      h.flags |= cql::flag::kCompression;
      frame = cql::encode_frame(h, packed);
    }
    writer_.push(std::move(frame));
  }

  void send_error(const cql::Header& h, ErrorCode code, std::string message) {
    send(cql::encode_error(session_.version, h.stream, code, std::move(message)));
  }

  // Answers one request frame (errors become ERROR frames on the same stream).
  void handle(const cql::Header& h, const Bytes& frame, std::vector<cql::SchemaChange>& events) {
    const auto& opts = server_.options();
    if (std::find(opts.versions.begin(), opts.versions.end(), h.version) == opts.versions.end()) {
      // Answered at once, then the connection closes: the driver retries with a lower version.
      send(cql::encode_error(reply_version(h.version, opts.versions), h.stream,
                             ErrorCode::kProtocolError,
                             unsupported_version_message(h.version, opts.versions)));
      close_after_flush_ = true;
      return;
    }
    if (state_ == State::kUninitialized && !version_set_) {
      session_.version = h.version;
      version_set_ = true;
    } else if (h.version != session_.version) {
      send_error(h, ErrorCode::kProtocolError,
                 "Invalid message version. Got " + std::to_string(h.version) +
                     " but previous messages on this connection had version " +
                     std::to_string(session_.version));
      close_after_flush_ = true;
      return;
    }
    if (h.response) {
      send_error(h, ErrorCode::kProtocolError,
                 "Invalid frame: response direction bit set on a request");
      return;
    }
    BytesView body(frame.data() + cql::kHeaderSize, frame.size() - cql::kHeaderSize);
    Bytes inflated;
    ++requests_;
    if (h.flags & cql::flag::kCompression ||
        (frames_.segmented() && compression_ != cql::Compression::kNone))
      ++compressed_;
    if (h.flags & cql::flag::kCompression) {
      if (compression_ == cql::Compression::kNone || frames_.segmented()) {
        send_error(h, ErrorCode::kProtocolError,
                   "Received frame with compression flag set, but no compressor is configured");
        return;
      }
      inflated = cql::decompress_body(compression_, body, cql::kMaxBodyLength);
      body = inflated;
    }
    BenchBackend* bench = server_.options().bench.get();
    if (bench && state_ == State::kReady && h.opcode == Opcode::kExecute &&
        !(h.flags & (cql::flag::kTracing | cql::flag::kCustomPayload))) {
      // v3/v4: the answers of one read go out as one buffer (pushed by reader()); v5 segments
      // are made by the writer, one frame at a time.
      if (!frames_.segmented()) {
        if (bench->execute(session_.version, h.stream, body, bench_out_,
                           compress_responses_ ? compression_ : cql::Compression::kNone))
          return;
      } else {
        Bytes answer;
        if (bench->execute(session_.version, h.stream, body, answer))
          return send(std::move(answer));
      }
    }
    try {
      cql::Reader r(body);
      cql::skip_request_prefix(r, h.flags);
      dispatch(h, r, events);
    } catch (const cql::ProtocolError& e) {
      send_error(h, ErrorCode::kProtocolError, e.what());
    } catch (const std::exception& e) {
      spdlog::error("{}: {} failed: {}", peer_, cql::opcode_name(h.opcode), e.what());
      send_error(h, ErrorCode::kServerError, e.what());
    }
  }

  void dispatch(const cql::Header& h, cql::Reader& r, std::vector<cql::SchemaChange>& events) {
    const uint8_t v = session_.version;
    switch (state_) {
      case State::kUninitialized:
        if (h.opcode == Opcode::kOptions) return send(supported(h));
        if (h.opcode == Opcode::kStartup) return startup(h, r);
        return send_error(
            h, ErrorCode::kProtocolError,
            "Unexpected message " + cql::opcode_name(h.opcode) + ", expecting STARTUP or OPTIONS");
      case State::kAuthentication:
        if (h.opcode == Opcode::kAuthResponse) return auth_response(h, r);
        return send_error(
            h, ErrorCode::kProtocolError,
            "Unexpected message " + cql::opcode_name(h.opcode) + ", expecting SASL_RESPONSE");
      case State::kReady:
        break;
    }
    switch (h.opcode) {
      case Opcode::kOptions:
        return send(supported(h));
      case Opcode::kRegister: {
        auto m = cql::RegisterMsg::decode(r);
        for (const auto& e : m.events)
          if (e == "SCHEMA_CHANGE") registered_schema_ = true;
        return send(cql::encode_empty(v, true, h.stream, Opcode::kReady));
      }
      case Opcode::kQuery:
      case Opcode::kPrepare:
      case Opcode::kExecute:
      case Opcode::kBatch:
        return request(h, r, events);
      case Opcode::kStartup:
        return send_error(h, ErrorCode::kProtocolError,
                          "Unexpected message STARTUP, the connection is already initialized");
      default:
        return send_error(h, ErrorCode::kProtocolError,
                          "Invalid or unsupported request opcode " + cql::opcode_name(h.opcode));
    }
  }

  // A decoded QUERY, PREPARE, EXECUTE or BATCH.
  using Request = std::variant<cql::QueryMsg, cql::PrepareMsg, cql::ExecuteMsg, cql::BatchMsg>;

  Request decode_request(const cql::Header& h, cql::Reader& r) {
    const uint8_t v = session_.version;
    switch (h.opcode) {
      case Opcode::kQuery:
        return cql::QueryMsg::decode(r, v);
      case Opcode::kPrepare:
        return cql::PrepareMsg::decode(r, v);
      case Opcode::kExecute:
        return cql::ExecuteMsg::decode(r, v);
      default:
        return cql::BatchMsg::decode(r, v);
    }
  }

  // What the fault admin's filters need to know about a request.
  RequestInfo request_info(const cql::Header& h, const Request& req) {
    RequestInfo info;
    info.opcode = h.opcode;
    info.version = session_.version;
    auto classify = [&](const std::string& query) {
      cql::StatementInfo si = cql::classify(query);
      info.kind = si.kind;
      info.system = cql::is_system_keyspace(si.keyspace.empty() ? session_.keyspace : si.keyspace);
    };
    if (const auto* q = std::get_if<cql::QueryMsg>(&req)) {
      classify(q->query);
      info.consistency = q->params.consistency;
    } else if (const auto* p = std::get_if<cql::PrepareMsg>(&req)) {
      classify(p->query);
    } else if (const auto* e = std::get_if<cql::ExecuteMsg>(&req)) {
      if (auto si = server_.store().prepared_info(node_, e->id)) {
        info.kind = si->kind;
        info.system = cql::is_system_keyspace(si->keyspace);
      }
      info.consistency = e->params.consistency;
    } else if (const auto* b = std::get_if<cql::BatchMsg>(&req)) {
      info.kind = cql::StatementKind::kBatch;
      info.consistency = b->consistency;
      info.batch_type = b->type;
    }
    return info;
  }

  // Sends `frame` now, or after `delay_ms` (added latency) unless the connection closed first.
  void send_later(Bytes frame, int delay_ms) {
    if (delay_ms <= 0) return send(std::move(frame));
    auto timer = std::make_shared<asio::steady_timer>(stream_.socket().get_executor(),
                                                      std::chrono::milliseconds(delay_ms));
    delayed_.insert(timer);
    timer->async_wait([self = shared_from_this(), timer,
                       frame = std::move(frame)](const net::error_code& ec) mutable {
      self->delayed_.erase(timer);
      if (!ec) self->deliver(std::move(frame));
    });
  }

  // Answers a QUERY/PREPARE/EXECUTE/BATCH, as the node's faults say.
  void request(const cql::Header& h, cql::Reader& r, std::vector<cql::SchemaChange>& events) {
    const uint8_t v = session_.version;
    Request req = decode_request(h, r);
    if (const auto* q = std::get_if<cql::QueryMsg>(&req))
      server_.count_consistency(node_, h.opcode, q->params.consistency);
    else if (const auto* e = std::get_if<cql::ExecuteMsg>(&req))
      server_.count_consistency(node_, h.opcode, e->params.consistency);
    else if (const auto* b = std::get_if<cql::BatchMsg>(&req))
      server_.count_consistency(node_, h.opcode, b->consistency);
    Decision d;
    const NodeFaults& faults = server_.faults(node_);
    RequestInfo info;
    if (!faults.empty()) {
      info = request_info(h, req);
      d = decide(faults, info, server_.rng());
    }
    switch (d.action) {
      case Decision::Action::kDrop:
        spdlog::info("{}: connection dropped by the fault admin", peer_);
        close_after_flush_ = true;
        return;
      case Decision::Action::kSilence:
        return;
      case Decision::Action::kGarbage:
        return send_later(garbage_frame(*faults.garbage, v, h.stream), d.delay_ms);
      case Decision::Action::kError:
        return send_later(cql::encode_message(v, true, h.stream, Opcode::kError,
                                              fault_error(*faults.error, info)),
                          d.delay_ms);
      case Decision::Action::kAnswer:
        break;
    }
    const bool traced = (h.flags & cql::flag::kTracing) != 0;
    const auto started = std::chrono::steady_clock::now();
    const int64_t started_ms = now_ms();
    Store& store = server_.store();
    Outcome out = std::visit(
        [&](const auto& m) -> Outcome {
          using T = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<T, cql::QueryMsg>) return store.query(node_, session_, m);
          if constexpr (std::is_same_v<T, cql::PrepareMsg>)
            return store.prepare(node_, session_, m);
          if constexpr (std::is_same_v<T, cql::ExecuteMsg>)
            return store.execute(node_, session_, m);
          if constexpr (std::is_same_v<T, cql::BatchMsg>) return store.batch(node_, session_, m);
        },
        req);
    if (out.event) events.push_back(*out.event);
    if (BenchBackend* bench = server_.options().bench.get()) {
      const auto* prepare = std::get_if<cql::PrepareMsg>(&req);
      const auto* result = std::get_if<cql::ResultMsg>(&out.response);
      if (prepare && result) bench->learn(prepare->query, *result, v);
    }
    Bytes frame;
    if (auto* e = std::get_if<cql::ErrorMsg>(&out.response)) {
      frame = cql::encode_message(v, true, h.stream, Opcode::kError, *e);
    } else {
      frame = cql::encode_message(v, true, h.stream, Opcode::kResult,
                                  std::get<cql::ResultMsg>(out.response));
    }
    if (traced) frame = trace(req, frame, started, started_ms);
    send_later(std::move(frame), d.delay_ms);
  }

  // Records a traced request in system_traces and puts its session id in front of the response
  // body, with the tracing flag set (native_protocol_v4.spec §2.2).
  Bytes trace(const Request& req, const Bytes& frame, std::chrono::steady_clock::time_point started,
              int64_t started_ms) {
    Trace t;
    t.session_id = timeuuid_now();
    t.node = node_;
    t.client = peer_address_;
    t.started_at_ms = started_ms;
    t.duration_us = static_cast<int32_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                             std::chrono::steady_clock::now() - started)
                                             .count());
    std::string query;
    cql::Consistency cl = cql::Consistency::kOne;
    int32_t page_size = -1;
    if (const auto* q = std::get_if<cql::QueryMsg>(&req)) {
      t.command = "QUERY";
      t.request = "Execute CQL3 query";
      query = q->query;
      cl = q->params.consistency;
      page_size = q->params.page_size;
    } else if (const auto* p = std::get_if<cql::PrepareMsg>(&req)) {
      t.command = "QUERY";
      t.request = "Preparing CQL3 query";
      query = p->query;
    } else if (const auto* e = std::get_if<cql::ExecuteMsg>(&req)) {
      t.command = "QUERY";
      t.request = "Execute CQL3 prepared query";
      cl = e->params.consistency;
      page_size = e->params.page_size;
    } else {
      t.command = "QUERY";
      t.request = "Execute batch of CQL3 queries";
      cl = std::get<cql::BatchMsg>(req).consistency;
    }
    t.parameters.emplace_back("consistency_level", cql::consistency_name(cl));
    if (page_size > 0) t.parameters.emplace_back("page_size", std::to_string(page_size));
    if (!query.empty()) t.parameters.emplace_back("query", query);
    t.parameters.emplace_back("serial_consistency_level", "SERIAL");
    int32_t half = t.duration_us / 2;
    if (!query.empty()) t.events.emplace_back("Parsing " + query, std::min(half, 20));
    t.events.emplace_back("Preparing statement", std::min(half, 40));
    t.events.emplace_back("Executing on " + server_.store().info().nodes[node_].address, half);
    t.events.emplace_back("Request complete", t.duration_us);
    server_.store().record_trace(t);

    cql::Header rh = cql::decode_header(BytesView(frame.data(), cql::kHeaderSize));
    rh.flags |= cql::flag::kTracing;
    Bytes body = t.session_id;
    body.insert(body.end(), frame.begin() + cql::kHeaderSize, frame.end());
    return cql::encode_frame(rh, body);
  }

  Bytes supported(const cql::Header& h) {
    const auto& opts = server_.options();
    std::vector<std::string> algos, versions;
    for (auto c : opts.compression) algos.emplace_back(cql::compression_name(c));
    for (auto ver : opts.versions) versions.push_back(version_name(ver));
    return cql::encode_message(
        session_.version, true, h.stream, Opcode::kSupported,
        cql::SupportedMsg{{{"CQL_VERSION", {server_.store().info().cql_version}},
                           {"COMPRESSION", algos},
                           {"PROTOCOL_VERSIONS", versions}}});
  }

  void startup(const cql::Header& h, cql::Reader& r) {
    const auto& opts = server_.options();
    auto m = cql::StartupMsg::decode(r);
    if (auto it = m.options.find("COMPRESSION"); it != m.options.end() && !it->second.empty()) {
      auto c = cql::parse_compression(it->second);
      if (!c ||
          std::find(opts.compression.begin(), opts.compression.end(), *c) == opts.compression.end())
        return send_error(h, ErrorCode::kProtocolError,
                          "Unknown compression algorithm: " + it->second);
      if (uses_segments(h.version) && *c != cql::Compression::kLz4)
        return send_error(h, ErrorCode::kProtocolError,
                          "Unsupported compression algorithm for protocol v5: " + it->second);
      compression_ = *c;
    }
    spdlog::info(
        "{}: STARTUP protocol {}, compression {}", peer_, version_name(h.version),
        compression_ == cql::Compression::kNone ? "none" : cql::compression_name(compression_));
    frames_.set_max_body(cql::kMaxBodyLength);
    if (opts.authenticator != Authenticator::kNone) {
      state_ = State::kAuthentication;
      send(cql::encode_message(session_.version, true, h.stream, Opcode::kAuthenticate,
                               cql::AuthenticateMsg{authenticator_class(opts.authenticator)}));
    } else {
      state_ = State::kReady;
      send(cql::encode_empty(session_.version, true, h.stream, Opcode::kReady));
    }
    switch_framing();
  }

  // After READY or AUTHENTICATE: v5 moves to segments in both directions (v5 spec §2.2); v3/v4
  // with compression compress every later response body.
  void switch_framing() {
    if (uses_segments(session_.version)) {
      frames_.enable_segments(compression_);
      writer_.enable_segments(compression_);
    } else if (compression_ != cql::Compression::kNone) {
      compress_responses_ = true;
    }
  }

  void auth_response(const cql::Header& h, cql::Reader& r) {
    const auto& opts = server_.options();
    auto token = r.read_bytes();
    std::string t = token ? cql::to_string(*token) : "";
    if (opts.authenticator == Authenticator::kDse && !sasl_started_ &&
        t.find('\0') == std::string::npos) {
      if (t != "PLAIN") return auth_failed(h, "Unsupported authentication mechanism: " + t);
      sasl_started_ = true;
      cql::Bytes challenge = cql::to_bytes("PLAIN-START");
      Bytes body;
      cql::Writer w(body);
      w.write_bytes(challenge);
      return send(cql::encode_frame(
          cql::Header{session_.version, true, 0, h.stream, Opcode::kAuthChallenge, 0}, body));
    }
    // SASL PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd.
    auto first = t.find('\0');
    auto second = first == std::string::npos ? first : t.find('\0', first + 1);
    if (second == std::string::npos) return auth_failed(h, "Password must not be null");
    std::string user = t.substr(first + 1, second - first - 1);
    std::string password = t.substr(second + 1);
    if (user.empty()) return auth_failed(h, "Authentication ID must not be null");
    auto it = opts.users.find(user);
    if (it == opts.users.end() || it->second != password)
      return auth_failed(h, "Provided username " + user + " and/or password are incorrect");
    state_ = State::kReady;
    Bytes body;
    cql::Writer w(body);
    w.write_null_bytes();
    send(cql::encode_frame(
        cql::Header{session_.version, true, 0, h.stream, Opcode::kAuthSuccess, 0}, body));
  }

  void auth_failed(const cql::Header& h, const std::string& why) {
    spdlog::info("{}: authentication failed: {}", peer_, why);
    send_error(h, ErrorCode::kAuthenticationError, why);
  }

  Server& server_;
  net::Stream stream_;
  net::FrameWriter writer_;
  cql::FrameStream frames_{kMaxStartupBody};
  std::size_t node_;
  asio::steady_timer drain_timer_;  // drained() waits on it; the writer's low watermark ends it
  std::string peer_ = "?";
  Bytes peer_address_;
  std::set<std::shared_ptr<asio::steady_timer>> delayed_;  // answers held back by latency
  Session session_;
  State state_ = State::kUninitialized;
  cql::Compression compression_ = cql::Compression::kNone;
  bool version_set_ = false;
  uint64_t requests_ = 0, compressed_ = 0;  // frames received, and of those compressed
  bool compress_responses_ = false;
  bool sasl_started_ = false;
  bool registered_schema_ = false;
  bool closed_ = false;
  bool close_after_flush_ = false;
  Bytes bench_out_;  // --bench-backend answers of the frames of one read
};

Server::Server(asio::io_context& ioc, Store& store, ServerOptions options)
    : ioc_(ioc), store_(store), options_(std::move(options)) {
  faults_.resize(store_.info().nodes.size());
  consistency_.resize(store_.info().nodes.size());
}

void Server::count_consistency(std::size_t node, cql::Opcode op, cql::Consistency cl) {
  const auto level = static_cast<std::size_t>(cl);
  const std::size_t kind = op == cql::Opcode::kQuery ? 0 : op == cql::Opcode::kExecute ? 1 : 2;
  if (level < 11) ++consistency_.at(node)[kind][level];
}

nlohmann::json Server::consistency_seen(std::size_t node) const {
  static constexpr const char* kOpcodes[] = {"QUERY", "EXECUTE", "BATCH"};
  nlohmann::json out = nlohmann::json::object();
  for (std::size_t kind = 0; kind < 3; ++kind)
    for (std::size_t level = 0; level < 11; ++level)
      if (uint64_t n = consistency_.at(node)[kind][level])
        out[kOpcodes[kind]][cql::consistency_name(static_cast<cql::Consistency>(level))] = n;
  return out;
}

void Server::start() {
  acceptors_.resize(store_.info().nodes.size());
  for (std::size_t i = 0; i < acceptors_.size(); ++i) listen(i);
}

void Server::listen(std::size_t i) {
  const auto& node = store_.info().nodes.at(i);
  tcp::endpoint ep(asio::ip::make_address(node.address), options_.port);
  auto acc = std::make_unique<tcp::acceptor>(ioc_);
  acc->open(ep.protocol());
  acc->set_option(tcp::acceptor::reuse_address(true));
  acc->bind(ep);
  acc->listen();
  spdlog::info("node {} of cluster '{}' listening on {}:{}{}", i + 1, store_.info().name,
               node.address, options_.port, options_.tls ? " (TLS)" : "");
  tcp::acceptor* a = acc.get();
  acceptors_[i] = std::move(acc);
  asio::co_spawn(
      ioc_,
      [this, a, i]() -> asio::awaitable<void> {
        for (;;) {
          net::error_code ec;
          tcp::socket socket = co_await a->async_accept(nothrow(ec));
          if (ec) {
            if (ec == asio::error::operation_aborted || stopping_ || !a->is_open()) co_return;
            spdlog::warn("accept on {}: {}", store_.info().nodes[i].address, ec.message());
            continue;
          }
          socket.set_option(tcp::no_delay(true), ec);
          std::make_shared<Connection>(*this, std::move(socket), i)->start();
        }
      },
      [](std::exception_ptr e) { log_failure(e, "accept loop"); });
}

void Server::stop_node(std::size_t node) {
  auto& a = acceptors_.at(node);
  if (!a) return;
  net::error_code ec;
  a->close(ec);
  // The accept loop still refers to the acceptor until it sees operation_aborted.
  asio::post(ioc_, [old = std::shared_ptr<tcp::acceptor>(std::move(a))] {});
  store_.set_node_up(node, false);
  std::size_t closed = drop_connections(node);
  spdlog::warn("node {} ({}) stopped by the fault admin ({} connections closed)", node + 1,
               store_.info().nodes[node].address, closed);
}

void Server::start_node(std::size_t node) {
  if (acceptors_.at(node)) return;
  store_.forget_prepared(node);  // a restarted node knows no prepared statement
  listen(node);
  store_.set_node_up(node, true);
  spdlog::warn("node {} ({}) started by the fault admin", node + 1,
               store_.info().nodes[node].address);
}

std::size_t Server::drop_connections(std::size_t node) {
  std::vector<Connection*> conns;
  for (Connection* c : connections_)
    if (c->node() == node) conns.push_back(c);
  for (Connection* c : conns) c->close();
  return conns.size();
}

std::size_t Server::connection_count(std::size_t node) const {
  return static_cast<std::size_t>(std::count_if(connections_.begin(), connections_.end(),
                                                [&](Connection* c) { return c->node() == node; }));
}

void Server::stop() {
  stopping_ = true;
  for (auto& a : acceptors_) {
    net::error_code ec;
    if (a) a->close(ec);
  }
  auto conns = connections_;
  for (Connection* c : conns) c->close();
}

void Server::broadcast(const cql::SchemaChange& change) {
  cql::EventMsg ev;
  ev.type = "SCHEMA_CHANGE";
  ev.schema_change = change;
  for (Connection* c : connections_)
    if (c->registered_for_schema())
      c->deliver(cql::encode_message(c->version(), true, -1, Opcode::kEvent, ev));
}

}  // namespace zdm::testcluster
