// Control connection to one cluster (reference/zdm-proxy.md §1 "Control connection"): handshake,
// system.local / system.peers, OPTIONS heartbeats every heartbeat_interval_ms, reconnect with
// exponential backoff. Its state feeds /health/readiness and host assignment.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/config.h"
#include "proxy/net.h"
#include "proxy/topology.h"

namespace zdm::proxy {

class ControlConnection {
 public:
  ControlConnection(asio::io_context& ioc, const Config& config, Cluster cluster);

  /// Runs forever (until stop()): connect, refresh, heartbeat, reconnect.
  awaitable<void> run();
  void stop();

  Cluster cluster() const { return cluster_; }
  bool connected() const { return connected_.load(); }
  /// True once the first attempt finished (successfully or not).
  bool attempted() const { return attempted_.load(); }
  int failure_count() const { return failures_.load(); }
  /// "ip:port" of the node in use, or "NOT_CONNECTED".
  std::string address() const;
  /// The last system.local / system.peers read (null before the first success).
  std::shared_ptr<const SystemSnapshot> snapshot() const;
  /// Next node for a client connection: round-robin over the nodes assigned to this proxy
  /// (positions p of the sorted node list with p mod N == index mod N when there are at least
  /// N nodes, else node index mod H).
  tcp::endpoint pick_node();

 private:
  awaitable<bool> open_and_refresh();
  awaitable<bool> heartbeat();
  /// Sends `frame` and waits for the response on the same stream (events skipped).
  awaitable<std::optional<cql::Frame>> request(const cql::Bytes& frame, int16_t stream);

  asio::io_context& ioc_;
  const Config& config_;
  Cluster cluster_;
  tcp::socket socket_;
  cql::FrameDecoder decoder_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> attempted_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<int> failures_{0};
  std::atomic<uint64_t> next_node_{0};
  mutable std::mutex mu_;
  std::string address_ = "NOT_CONNECTED";
  std::shared_ptr<const SystemSnapshot> snapshot_;
  std::vector<tcp::endpoint> assigned_;
  asio::steady_timer sleep_;
};

}  // namespace zdm::proxy
