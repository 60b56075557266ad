#include "proxy/failover.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "common/cql/messages.h"
#include "proxy/wire.h"

namespace zdm::proxy {

using cql::Bytes;
using cql::Opcode;

namespace {

constexpr int16_t kHandshakeStream = 0;

std::string refusal(const std::optional<cql::Frame>& r, std::chrono::milliseconds timeout) {
  if (!r) return "no answer within " + std::to_string(timeout.count()) + " ms";
  if (r->header.opcode == Opcode::kError) return cql::error_text(*r);
  return std::string("unexpected ") + cql::opcode_name(r->header.opcode);
}

/// `USE "ks"`: a keyspace name quoted as CQL quotes identifiers ("" for a ").
std::string use_statement(const std::string& keyspace) {
  std::string q = "USE \"";
  for (char ch : keyspace) {
    if (ch == '"') q += '"';
    q += ch;
  }
  return q + "\"";
}

}  // namespace

awaitable<std::string> replay_handshake(Connector& k, const HandshakeReplay& replay,
                                        const std::string& keyspace,
                                        std::chrono::milliseconds timeout) {
  Bytes startup = replay.startup;
  cql::patch_stream(startup.data(), kHandshakeStream);
  auto r = co_await k.exchange(std::move(startup), timeout);
  if (r && r->header.opcode == Opcode::kAuthenticate) {
    cql::Reader rd(r->body);
    const std::string authenticator = cql::AuthenticateMsg::decode(rd).authenticator;
    if (replay.credentials.empty())
      co_return "the node asks for authentication (" + authenticator +
          ") and the client's credentials are not known";
    r = co_await k.authenticate(authenticator, replay.credentials, kHandshakeStream, timeout);
  }
  if (!r || (r->header.opcode != Opcode::kReady && r->header.opcode != Opcode::kAuthSuccess))
    co_return refusal(r, timeout);
  if (keyspace.empty()) co_return "";
  cql::QueryMsg use;
  use.query = use_statement(keyspace);
  Bytes use_frame =
      cql::encode_message(replay.version, false, kHandshakeStream, Opcode::kQuery, use);
  r = co_await k.exchange(std::move(use_frame), timeout);
  if (!r || r->header.opcode != Opcode::kResult) co_return refusal(r, timeout);
  co_return "";
}

awaitable<std::shared_ptr<Connector>> reconnect(asio::io_context& ioc, SharedState& shared,
                                                Cluster c, const std::string& failed,
                                                const HandshakeReplay& replay,
                                                const std::string& keyspace,
                                                std::shared_ptr<ConnectorListener> listener,
                                                std::chrono::milliseconds timeout,
                                                bool assigned_only, std::string& why) {
  auto& cc = shared.cc(c);
  const bool is_origin = c == Cluster::kOrigin;
  // The nodes to try, each once: the assigned ones in turn, then the local datacenter's
  // others (none when `assigned_only`); the failed one last.
  std::vector<tcp::endpoint> nodes, last;
  for (const auto& ep : cc.failover_order()) {
    const std::string name = ep.address().to_string() + ":" + std::to_string(ep.port());
    if (assigned_only && !cc.assigned(name)) continue;
    (name == failed ? last : nodes).push_back(ep);
  }
  nodes.insert(nodes.end(), last.begin(), last.end());
  why.clear();
  auto hop = cc.hop();
  hop.connect_timeout = std::min(hop.connect_timeout, timeout);
  for (const tcp::endpoint& ep : nodes) {
    auto k = std::make_shared<Connector>(
        ioc, is_origin ? Connector::Role::kOrigin : Connector::Role::kTarget, c,
        shared.config.proxy_max_stream_ids);
    k->listener = listener;
    std::string err;
    const std::string host = ep.address().to_string();
    bool ok = co_await k->open(ep, host, hop, err);
    k->metrics = &shared.metrics.node(is_origin ? "origin" : "target", k->node());
    if (ok) {
      k->set_protocol(replay.version, replay.compression);
      err = co_await replay_handshake(*k, replay, keyspace, timeout);
      ok = err.empty();
    }
    if (ok) co_return k;
    k->close();
    k->metrics->failed_connections->inc();
    shared.metrics.failed_connections(c).inc();
    if (!why.empty()) why += "; ";
    why += k->node() + ": " + err;
  }
  if (nodes.empty()) why = std::string("no known ") + cluster_name(c) + " nodes";
  co_return nullptr;
}

}  // namespace zdm::proxy
