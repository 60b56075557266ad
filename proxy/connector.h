// A connection to one cluster node on behalf of one client connection, and the narrow interface
// through which it reports to the session that owns it (the session owns its connectors; a
// connector never calls into the session but through ConnectorListener). Stream ids on it are
// the proxy's own: client stream ids are remapped (native_protocol_v4.spec §2.3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/net/node_connection.h"
#include "proxy/asio.h"
#include "proxy/config.h"
#include "proxy/metrics.h"
#include "proxy/stream_ids.h"

namespace zdm::proxy {

class Connector;

/// What to tell the operator when cluster `c`'s node `node` talks TLS unlike the configuration
/// (`m` not kNone): "TARGET node 127.0.3.1:9042 answered with TLS: set target_tls_server_ca_path
/// (...) in the proxy configuration", or that it does not speak TLS, naming the same keys.
std::string tls_mismatch_advice(Cluster c, const std::string& node, net::TlsMismatch m);

/// What a connector reports, once per frame or event (never per byte).
class ConnectorListener {
 public:
  /// A whole frame `frame` (header `header`, stream id the proxy's own) came from `from`.
  virtual void on_cluster_frame(Connector& from, cql::Header header, cql::Bytes frame) = 0;
  /// `c`'s connection closed: its socket read or write failed, or it sent a corrupt frame.
  virtual void on_connector_closed(Connector& c) = 0;
  /// Backpressure: returns once the client's write queue is under its high watermark (a client
  /// that does not read its responses stops the reading of cluster connections).
  virtual awaitable<void> client_writable() = 0;
  /// True when client_writable() may have to wait: the read loop calls it only then (a
  /// coroutine call costs an allocation, once per read of the socket).
  virtual bool client_full() const { return true; }

 protected:
  ~ConnectorListener() = default;
};

class Connector : public net::NodeConnection {
 public:
  enum class Role : uint8_t { kOrigin, kTarget, kAsync };

  /// `max_stream_ids`: stream ids this connection may have in flight (proxy_max_stream_ids).
  Connector(asio::io_context& ioc, Role role, Cluster cluster, int max_stream_ids);

  /// NodeConnection::open; when it fails because the node does not speak the TLS of `hop`,
  /// `why` says so and names the keys to change (tls_mismatch_advice).
  awaitable<bool> open(const tcp::endpoint& ep, const std::string& host,
                       const net::HopSettings& hop, std::string& why);

  /// Reads frames and hands them to `listener` until the socket closes, then reports the close.
  /// `buffer_size`: read buffer in bytes.
  awaitable<void> read_loop(std::shared_ptr<ConnectorListener> listener, std::size_t buffer_size);

  /// Takes a free stream id for request `request_id`; nullopt if all are in use.
  std::optional<int16_t> acquire(uint64_t request_id);
  /// Frees a stream id and returns the request it belonged to (0 if none).
  uint64_t release(int16_t stream);

  Role role() const { return role_; }
  Cluster cluster() const { return cluster_; }
  std::size_t capacity() const { return ids_.capacity(); }
  NodeMetrics* metrics = nullptr;
  /// Told of a failed write (the read loop reports to the listener it was given).
  std::weak_ptr<ConnectorListener> listener;
  /// Stream ids held by requests that timed out: freed if their answer ever comes.
  std::size_t unanswered = 0;
  /// Called once a second (the session's sweep): whether anything came from the node since the
  /// last call. Readiness evidence that costs a counter per socket read, no clock.
  bool read_since_last_sweep() {
    const bool any = reads_ != reads_at_sweep_;
    reads_at_sweep_ = reads_;
    return any;
  }

 protected:
  void on_write_error(const net::error_code& ec) override;

 private:
  Role role_;
  Cluster cluster_;
  StreamIds ids_;
  uint64_t reads_ = 0;  // socket reads that brought bytes
  uint64_t reads_at_sweep_ = 0;
};

}  // namespace zdm::proxy
