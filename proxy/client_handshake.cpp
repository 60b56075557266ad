#include "proxy/client_handshake.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/cql/messages.h"
#include "common/cql/version.h"
#include "common/net/node_connection.h"
#include "proxy/wire.h"

namespace zdm::proxy {

using cql::Bytes;
using cql::BytesView;
using cql::Opcode;

namespace {

// Handshake exchanges on a fresh cluster connection use this stream id: nothing else is in
// flight on it yet.
constexpr int16_t kHandshakeStream = 0;

std::vector<std::string> common(const std::vector<std::string>& a,
                                const std::vector<std::string>& b) {
  std::vector<std::string> out;
  for (const auto& x : a)
    if (std::find(b.begin(), b.end(), x) != b.end()) out.push_back(x);
  return out;
}

}  // namespace

Bytes supported_frame(const SharedState& shared, const cql::Header& h) {
  const Cluster primary = shared.config.primary_cluster;
  ClusterFacts p = shared.cc(primary).facts();
  ClusterFacts s = shared.cc(other(primary)).facts();
  cql::SupportedMsg msg{p.supported};
  msg.options["COMPRESSION"] = common(p.supported["COMPRESSION"], s.supported["COMPRESSION"]);
  if (p.supported.count("PROTOCOL_VERSIONS") && s.supported.count("PROTOCOL_VERSIONS"))
    msg.options["PROTOCOL_VERSIONS"] =
        common(p.supported["PROTOCOL_VERSIONS"], s.supported["PROTOCOL_VERSIONS"]);
  return cql::encode_message(h.version, true, h.stream, Opcode::kSupported, msg);
}

awaitable<ClientHandshake::Next> ClientHandshake::on_frame(
    const cql::Header& h, Bytes frame, std::shared_ptr<ConnectorListener> listener) {
  HandshakeStep step = handshake_.step(h.opcode, h.stream);
  switch (step.action) {
    case HandshakeAction::kSupported:
      client_.writer.push(supported_frame(shared_, h));
      co_return Next::kContinue;
    case HandshakeAction::kStartup:
      co_return co_await on_startup(h, std::move(frame), std::move(listener));
    case HandshakeAction::kAuthResponse:
      co_return co_await on_auth_response(h, std::move(frame));
    case HandshakeAction::kRefuse:
    case HandshakeAction::kRequest:  // not before READY
      break;
  }
  reply_error(h, cql::ErrorCode::kProtocolError, std::move(step.error));
  co_return Next::kContinue;
}

awaitable<bool> ClientHandshake::connect_clusters(const cql::Header& h,
                                                  std::shared_ptr<ConnectorListener> listener) {
  for (Cluster c : {Cluster::kOrigin, Cluster::kTarget}) {
    const bool is_origin = c == Cluster::kOrigin;
    auto& cc = shared_.cc(c);
    std::shared_ptr<Connector> conn;
    std::string why;
    const std::size_t tries = std::max<std::size_t>(1, cc.assigned_count());
    for (std::size_t attempt = 0; attempt < tries && !conn && !closed_(); ++attempt) {
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
      k->listener = listener;
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
                   client_.addr, err);
      cc.check_now();
    }
    if (!conn) {
      const std::string refusal = start_without(c);
      if (refusal.empty()) {
        // Reads need only the primary: the client connects, requests that need `c` fail at
        // once, and the session keeps trying to connect `c` (failover.h).
        spdlog::warn(
            "No {} node reachable for client {} ({}); the connection starts without {}: its "
            "requests that need {} fail until a node is reachable",
            cluster_name(c), client_.addr, why, cluster_name(c), cluster_name(c));
        clusters_.slot(c) = std::make_shared<Connector>(
            ioc_, is_origin ? Connector::Role::kOrigin : Connector::Role::kTarget, c,
            config_.proxy_max_stream_ids);
        clusters_.set(c, Link::kDown);
        continue;
      }
      spdlog::error("Cannot open {} connection for client {}: {}", cluster_name(c), client_.addr,
                    why);
      reply_error(
          h, cql::ErrorCode::kServerError,
          std::string("ZDM proxy could not connect to ") + cluster_name(c) + ": " + why + refusal);
      co_return false;
    }
    spdlog::debug("[{}-CONNECTOR] Opened request connection to {} ({}) for client {}",
                  cluster_name(c), cluster_name(c), conn->node(), client_.addr);
    conn->metrics->connections->add();
    conn->set_protocol(client_.version, client_.compression);
    (is_origin ? clusters_.origin : clusters_.target) = std::move(conn);
  }
  co_return true;
}

awaitable<ClientHandshake::Next> ClientHandshake::on_startup(
    const cql::Header& h, Bytes frame, std::shared_ptr<ConnectorListener> listener) {
  // Who authenticates the client, with which credentials.
  handshake_.started(shared_.origin_cc.facts().auth_required,
                     shared_.target_cc.facts().auth_required, config_, frame);
  cql::StartupMsg startup;
  try {
    cql::Reader r(BytesView(frame.data() + cql::kHeaderSize, frame.size() - cql::kHeaderSize));
    cql::skip_request_prefix(r, h.flags);
    startup = cql::StartupMsg::decode(r);
  } catch (const cql::ProtocolError& e) {
    reply_error(h, cql::ErrorCode::kProtocolError, e.what());
    co_return Next::kClose;
  }
  if (auto it = startup.options.find("COMPRESSION");
      it != startup.options.end() && !it->second.empty()) {
    auto c = cql::parse_compression(it->second);
    if (!c) {
      reply_error(h, cql::ErrorCode::kProtocolError,
                  "Unknown compression algorithm: " + it->second);
      co_return Next::kClose;
    }
    client_.compression = *c;
  }
  const Cluster primary = handshake_.auth().primary, secondary = other(primary);
  const bool connected = co_await connect_clusters(h, std::move(listener));
  if (!connected) co_return Next::kClose;
  const auto timeout = std::chrono::milliseconds(config_.proxy_request_timeout_ms);
  for (Cluster c : {Cluster::kOrigin, Cluster::kTarget}) {
    if (clusters_.state(c) != Link::kUp) continue;
    Bytes f = frame;
    cql::patch_stream(f.data(), kHandshakeStream);
    clusters_.of(c).send(std::move(f));
  }
  std::optional<cql::Frame> r_origin, r_target;
  if (clusters_.state(Cluster::kOrigin) == Link::kUp)
    r_origin = co_await clusters_.origin->receive(kHandshakeStream, timeout);
  if (clusters_.state(Cluster::kTarget) == Link::kUp)
    r_target = co_await clusters_.target->receive(kHandshakeStream, timeout);
  if (closed_()) co_return Next::kClose;
  std::optional<cql::Frame>* resp[2] = {&r_origin, &r_target};
  for (Cluster c : {primary, secondary}) {
    auto& r = *resp[static_cast<int>(c)];
    if (clusters_.state(c) == Link::kDown) continue;  // started without it (start_without)
    if (!r) {
      reply_error(h, cql::ErrorCode::kServerError,
                  std::string("No answer to STARTUP from ") + cluster_name(c) + " within " +
                      std::to_string(config_.proxy_request_timeout_ms) + " ms");
      co_return Next::kClose;
    }
    if (r->header.opcode == Opcode::kError) {
      // E.g. a PROTOCOL_ERROR for a version this cluster does not speak: forwarded, so the
      // driver downgrades on a new connection. On the request's stream (python-driver and the
      // Node.js driver match it there) and, once, on stream 0 (gocql only believes a version
      // error there: CASSGO-97, ZDM's behaviour); nothing else is in flight on the connection.
      spdlog::info("{} refused the STARTUP of client {} (protocol {}): {}", cluster_name(c),
                   client_.addr, client_.version, cql::error_text(*r));
      client_.writer.push(client_frame(*r, h.stream));
      if (h.stream != 0 && error_code_of(client_frame(*r, 0), cql::Compression::kNone) ==
                               static_cast<int32_t>(cql::ErrorCode::kProtocolError))
        client_.writer.push(client_frame(*r, 0));
      co_return Next::kClose;
    }
  }
  if (const auto& secondary_resp = *resp[static_cast<int>(secondary)];
      secondary_resp && secondary_resp->header.opcode == Opcode::kAuthenticate) {
    cql::Reader r(secondary_resp->body);
    handshake_.secondary_authenticator = cql::AuthenticateMsg::decode(r).authenticator;
  }
  const cql::Frame& primary_resp = **resp[static_cast<int>(primary)];
  if (primary_resp.header.opcode == Opcode::kAuthenticate) {
    handshake_.authenticating();
    client_.writer.push(client_frame(primary_resp, h.stream));
    switch_to_segments();
    co_return Next::kContinue;
  }
  co_return co_await finish(h, primary_resp);
}

awaitable<ClientHandshake::Next> ClientHandshake::on_auth_response(const cql::Header& h,
                                                                   Bytes frame) {
  const auto timeout = std::chrono::milliseconds(config_.proxy_request_timeout_ms);
  std::optional<Bytes> token;
  try {
    cql::Reader r(net::frame_body(frame, client_.compression, scratch_, kMaxBody));
    cql::skip_request_prefix(r, h.flags);
    token = r.read_bytes();
  } catch (const cql::ProtocolError& e) {
    reply_error(h, cql::ErrorCode::kProtocolError, e.what());
    co_return Next::kClose;
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
  auto resp = co_await clusters_.of(primary).exchange(std::move(out), timeout);
  if (closed_()) co_return Next::kClose;
  if (!resp) {
    reply_error(h, cql::ErrorCode::kServerError,
                std::string("No answer to AUTH_RESPONSE from ") + cluster_name(primary));
    co_return Next::kClose;
  }
  switch (sasl_answer(resp->header.opcode)) {
    case SaslAnswer::kFinish:
      co_return co_await finish(h, *resp);
    case SaslAnswer::kForward:
      client_.writer.push(client_frame(*resp, h.stream));
      co_return Next::kContinue;
    case SaslAnswer::kFail:
      client_.writer.push(client_frame(*resp, h.stream));
      spdlog::info("Client {} failed to authenticate with {}: {}", client_.addr,
                   cluster_name(primary), cql::error_text(*resp));
      co_return Next::kClose;
  }
  co_return Next::kClose;
}

awaitable<ClientHandshake::Next> ClientHandshake::finish(const cql::Header& h,
                                                         const cql::Frame& final_resp) {
  const Cluster secondary = other(handshake_.auth().primary);
  if (!handshake_.secondary_authenticator.empty()) {
    if (handshake_.auth().secondary.empty()) {
      const std::string p = secondary == Cluster::kOrigin ? "origin" : "target";
      reply_error(h, cql::ErrorCode::kAuthenticationError,
                  std::string(cluster_name(secondary)) + " requires authentication but " + p +
                      "_username/" + p + "_password are not set in the ZDM proxy configuration");
      co_return Next::kClose;
    }
    auto r = co_await clusters_.of(secondary).authenticate(
        handshake_.secondary_authenticator, handshake_.auth().secondary, kHandshakeStream,
        std::chrono::milliseconds(config_.proxy_request_timeout_ms));
    if (closed_()) co_return Next::kClose;
    if (!r || r->header.opcode != Opcode::kAuthSuccess) {
      spdlog::warn("Secondary ({}) handshake for client {} failed: {}", cluster_name(secondary),
                   client_.addr, r ? cql::error_text(*r) : "no answer");
      if (r && r->header.opcode == Opcode::kError) {
        client_.writer.push(client_frame(*r, h.stream));
      } else {
        reply_error(h, cql::ErrorCode::kServerError,
                    std::string("No answer to authentication from ") + cluster_name(secondary));
      }
      co_return Next::kClose;
    }
  }
  client_.writer.push(client_frame(final_resp, h.stream));
  if (final_resp.header.opcode == Opcode::kReady) switch_to_segments();
  handshake_.completed();
  spdlog::info("Handshake successful with client {} (ProtocolVersion {}, Compression: {})",
               client_.addr, version_name(client_.version),
               cql::compression_name(client_.compression));
  co_return Next::kReady;
}

std::string ClientHandshake::start_without(Cluster c) const {
  const AuthPlan& auth = handshake_.auth();
  if (c == config_.primary_cluster)
    return std::string("; ") + cluster_name(c) + " is the primary cluster (primary_cluster)";
  if (c == auth.primary)
    return std::string("; ") + cluster_name(c) + " authenticates the client's handshake";
  if (c == auth.client && shared_.cc(c).facts().auth_required)
    return std::string("; the client's credentials are ") + cluster_name(c) +
           "'s and only it can check them (forward_client_credentials_to_origin: " +
           (config_.forward_client_credentials_to_origin ? "true" : "false") + ")";
  return "";
}

Bytes ClientHandshake::client_frame(const cql::Frame& f, int16_t stream) const {
  cql::Header h = f.header;
  h.version = client_.version;
  h.response = true;
  h.stream = stream;
  h.flags &= static_cast<uint8_t>(~cql::flag::kCompression);
  return cql::encode_frame(h, f.body);
}

void ClientHandshake::reply_error(const cql::Header& h, cql::ErrorCode code, std::string message) {
  client_.writer.push(cql::encode_error(h.version, h.stream, code, std::move(message)));
}

void ClientHandshake::switch_to_segments() {
  if (!cql::uses_segments(client_.version)) return;
  client_.frames.enable_segments(client_.compression);
  client_.writer.enable_segments(client_.compression);
}

}  // namespace zdm::proxy
