// State shared by every client session of the process.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "proxy/asio.h"
#include "proxy/config.h"
#include "proxy/control_connection.h"
#include "proxy/handshake_budget.h"
#include "proxy/metrics.h"
#include "proxy/prepared_cache.h"
#include "proxy/read_compare.h"
#include "proxy/target_guard.h"
#include "proxy/topology.h"

namespace zdm::proxy {

/// State shared by every session of the process: immutable config, thread-safe parts only.
struct SharedState {
  SharedState(const Config& c, ProxyMetrics& m, PreparedCache& p, ControlConnection& o,
              ControlConnection& t, VirtualTopology topo, std::shared_ptr<ssl::context> tls)
      : config(c),
        metrics(m),
        prepared(p),
        origin_cc(o),
        target_cc(t),
        client_tls(std::move(tls)),
        handshaking(static_cast<std::size_t>(c.max_handshaking_connections())),
        target(c, m, t),
        read_compare(c, m.registry()),
        topology_(std::make_shared<const VirtualTopology>(std::move(topo))) {}

  const Config& config;
  ProxyMetrics& metrics;
  PreparedCache& prepared;
  ControlConnection& origin_cc;
  ControlConnection& target_cc;
  std::shared_ptr<ssl::context> client_tls;  // TLS from clients; null = plaintext
  std::atomic<bool> draining{false};
  std::atomic<int> sessions{0};
  /// Sessions that completed their handshake: what proxy_max_client_connections bounds.
  std::atomic<int> established{0};
  /// Sessions still in their handshake: proxy_max_handshaking_connections, oldest evicted.
  HandshakeBudget handshaking;
  std::atomic<uint64_t> sessions_ended{0};
  std::atomic<int64_t> inflight{0};
  /// The runtime target switch, isolate mode, the write journal (target_guard.h).
  TargetGuard target;
  /// read_compare: mismatches of mirrored reads by table.
  ReadComparisons read_compare;

  ControlConnection& cc(Cluster c) const { return c == Cluster::kOrigin ? origin_cc : target_cc; }
  /// The proxies as virtual nodes, with those leaving (a rolling update in progress) left out.
  std::shared_ptr<const VirtualTopology> topology() const {
    std::lock_guard lock(topology_mu_);
    return topology_;
  }
  void set_topology(std::shared_ptr<const VirtualTopology> t) {
    std::lock_guard lock(topology_mu_);
    topology_ = std::move(t);
  }

 private:
  mutable std::mutex topology_mu_;
  std::shared_ptr<const VirtualTopology> topology_;
};

}  // namespace zdm::proxy
