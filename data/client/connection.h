// One CQL connection of zdm-data to one node: TCP (+ TLS with the node's name checked), STARTUP
// and SASL PLAIN authentication through net::NodeConnection, then requests multiplexed by
// stream id. Requests wait for their answer (or their deadline) on a timer that the single
// reader coroutine cancels when the answer arrives (one reader and one writer per
// socket). Lives on one io_context's thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/cql/compression.h"
#include "common/cql/frame.h"
#include "common/net/node_connection.h"

namespace zdm::data {

namespace asio = boost::asio;
using net::awaitable;
using tcp = asio::ip::tcp;

/// How to open connections to one cluster's nodes.
struct ConnectSettings {
  net::HopSettings hop;  // TLS context, host-name check, connect timeout
  net::Credentials credentials;
  cql::Compression compression = cql::Compression::kNone;
  std::chrono::milliseconds handshake_timeout{10000};
};

/// Why open() failed: one line, and whether the node refused the protocol version (the caller
/// retries with a lower one).
struct OpenFailure {
  std::string why;
  bool version_refused = false;
  /// Another node would fail the same way (credentials refused, a certificate not trusted).
  bool same_everywhere = false;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  /// Streams in flight at most on one connection (the ids 0..kMaxStreams-1 are used).
  static constexpr int kMaxStreams = 2048;

  /// Connects to `ep` (named `host` for the TLS check), sends STARTUP for `version` and
  /// authenticates when asked. Returns null and fills `failure` on any problem.
  static awaitable<std::shared_ptr<Connection>> open(asio::io_context& ioc, const tcp::endpoint& ep,
                                                     const std::string& host, uint8_t version,
                                                     const ConnectSettings& settings,
                                                     OpenFailure& failure);

  /// Sends `frame` (a request with any stream id: it is replaced) and waits up to `timeout` for
  /// its answer, returned with the body decompressed. nullopt on timeout or a closed connection.
  awaitable<std::optional<cql::Frame>> request(cql::Bytes frame, std::chrono::milliseconds timeout);

  uint8_t version() const { return node_->version(); }
  const std::string& node() const { return node_->node(); }
  bool usable() const { return !closed_; }
  /// Requests waiting for an answer.
  int in_flight() const { return in_flight_; }
  void close();

 private:
  explicit Connection(std::shared_ptr<net::NodeConnection> node);
  awaitable<void> read_loop();
  void fail_all();

  struct Pending {
    asio::steady_timer* timer = nullptr;
    std::optional<cql::Frame>* out = nullptr;
  };
  std::shared_ptr<net::NodeConnection> node_;
  cql::Compression compression_ = cql::Compression::kNone;
  std::vector<Pending> pending_;  // by stream id
  std::vector<bool> orphaned_;    // timed out: the id is free once its late answer arrives
  std::vector<int16_t> free_ids_;
  std::vector<asio::steady_timer*> id_waiters_;  // requests waiting for a free stream id
  int in_flight_ = 0;
  bool closed_ = false;
  std::chrono::steady_clock::time_point last_read_;
};

}  // namespace zdm::data
