// Prometheus metrics with ZDM's names and labels (datastax/zdm-proxy proxy/pkg/metrics), rendered
// in the Prometheus text exposition format 0.0.4. Updates are lock-free atomics; series creation
// (lazy per node) and rendering take a mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/metrics/registry.h"
#include "proxy/config.h"

namespace zdm::proxy {

using metrics::Counter;
using metrics::Gauge;
using metrics::Histogram;
using metrics::Registry;
using metrics::render_histogram;

/// Request types of zdm_proxy_request_duration_seconds / zdm_proxy_inflight_requests_total.
enum class RequestType : uint8_t { kReadsOrigin = 0, kReadsTarget = 1, kWrites = 2, kNone = 3 };

/// The per-node series of one connector kind (origin, target or async).
struct NodeMetrics {
  Histogram* reads = nullptr;   // {node, type="reads"}
  Histogram* writes = nullptr;  // {node, type="writes"}
  Gauge* connections = nullptr;
  Counter* failed_connections = nullptr;
  Gauge* used_stream_ids = nullptr;
  Gauge* inflight = nullptr;                        // async only: zdm_async_inflight_requests_total
  std::map<std::string, Counter*> requests_failed;  // by error label
};

/// Error labels of zdm_*_requests_failed_total{error}.
const char* error_label(int32_t error_code);

/// Every metric the proxy exports, created at start-up (node series lazily).
class ProxyMetrics {
 public:
  ProxyMetrics(const Config& config, Registry& registry);

  Histogram& request_duration(RequestType t) { return *duration_[static_cast<int>(t)]; }
  Gauge& inflight(RequestType t) { return *inflight_[static_cast<int>(t)]; }
  Counter& failed_reads(Cluster c) { return *failed_reads_[static_cast<int>(c)]; }
  Counter& failed_writes_origin() { return *failed_writes_[0]; }
  Counter& failed_writes_target() { return *failed_writes_[1]; }
  Counter& failed_writes_both() { return *failed_writes_[2]; }
  Counter& failed_connections(Cluster c) { return *failed_connections_[static_cast<int>(c)]; }
  Gauge& client_connections() { return *client_connections_; }
  Gauge& pscache_entries() { return *pscache_entries_; }
  Counter& pscache_miss() { return *pscache_miss_; }
  /// 1 while /health/readiness would answer 200, else 0 (set before each scrape).
  Gauge& ready() { return *ready_; }
  /// Statements evicted from the bounded prepared cache (zdm_pscache_evictions_total).
  Counter& pscache_evictions() { return *pscache_evictions_; }
  /// Errors the proxy answered or caused itself (not forwarded from a cluster), by reason:
  /// zdm_proxy_client_errors_total{reason="overloaded"|"server_error"|"protocol_error"|
  /// "handshake_timeout"|"idle_timeout"|"unanswered_streams"|"handshake_evicted"|
  /// "partial_frame_timeout"|"memory_ceiling"}.
  enum class ClientError : uint8_t {
    kOverloaded,
    kServerError,
    kProtocolError,
    kHandshakeTimeout,
    kIdleTimeout,
    kUnansweredStreams,
    /// Closed while in its handshake to admit a newer connection: proxy_max_handshaking_connections
    /// were handshaking.
    kHandshakeEvicted,
    /// A frame started and not completed within proxy_partial_frame_timeout_ms.
    kPartialFrameTimeout,
    /// Closed, heaviest first, while the proxy's memory was over proxy_max_memory_bytes.
    kMemoryCeiling,
    /// A request neither read nor write (PREPARE, USE, ...) answered with an error because the
    /// node it was sent to failed or no node of a cluster was reachable (reads and writes are
    /// counted in failed_reads / failed_writes instead).
    kNodeFailed,
  };
  static constexpr std::size_t kClientErrors = 10;
  Counter& client_errors(ClientError e) { return *client_errors_[static_cast<int>(e)]; }
  /// kind: "origin", "target" or "async"; node: "ip:port". Thread-safe; cached per caller.
  NodeMetrics& node(const std::string& kind, const std::string& node);

  Registry& registry() { return registry_; }

 private:
  /// The names the migration guides tell operators to watch (a migration lab and ZDM's migration
  /// guide), computed from ZDM's series at each scrape: zdm_proxy_requests_total,
  /// zdm_proxy_requests_duration_seconds, zdm_proxy_errors_total,
  /// zdm_proxy_{origin,target}_requests_total, zdm_origin_requests_total.
  void render_guide_aliases(std::string& out);

  const Config& config_;
  Registry& registry_;
  std::array<Histogram*, 3> duration_{};
  std::array<Gauge*, 3> inflight_{};
  std::array<Counter*, 2> failed_reads_{};
  std::array<Counter*, 3> failed_writes_{};
  std::array<Counter*, 2> failed_connections_{};
  Gauge* client_connections_ = nullptr;
  Gauge* pscache_entries_ = nullptr;
  Counter* pscache_miss_ = nullptr;
  Gauge* ready_ = nullptr;
  Counter* pscache_evictions_ = nullptr;
  std::array<Counter*, kClientErrors> client_errors_{};
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<NodeMetrics>> nodes_;
};

}  // namespace zdm::proxy
