// zdm-proxy configuration: ZDM's keys and defaults (datastax/zdm-proxy proxy/pkg/config/config.go),
// read from a YAML file (--config) or from ZDM_* environment variables (never merged, as in ZDM).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace zdm::proxy {

enum class Cluster : uint8_t { kOrigin = 0, kTarget = 1 };
const char* cluster_name(Cluster c);  // "ORIGIN" / "TARGET"
inline Cluster other(Cluster c) {
  return c == Cluster::kOrigin ? Cluster::kTarget : Cluster::kOrigin;
}

enum class ReadMode : uint8_t { kPrimaryOnly, kDualAsyncOnSecondary };
/// What a write that origin acknowledged and target failed gets (docs/target-protection.md):
/// kFail: the client gets target's error, as ZDM does; kIsolate: the client gets origin's
/// success and the write goes to the journal for `zdm-data replay`.
enum class TargetFailureMode : uint8_t { kFail, kIsolate };

/// A bad configuration value. what() names the source (file:line or env var) and the key.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Config {
  Cluster primary_cluster = Cluster::kOrigin;
  ReadMode read_mode = ReadMode::kPrimaryOnly;
  /// Prepared writes: now(), uuid() and friends become bind markers the proxy fills with one
  /// value for both clusters. (Simple statements always get literals: that cannot change
  /// their meaning.)
  bool replace_cql_functions = false;
  /// The [consistency] code (native_protocol_v4.spec §3) every QUERY, EXECUTE and BATCH sent to
  /// target carries instead of the client's; nullopt (the key empty): the client's level.
  /// Origin always gets the client's level; serial consistency is never changed.
  std::optional<uint16_t> target_consistency_level;

  // Target protection (docs/target-protection.md; not ZDM keys).
  TargetFailureMode target_failure_mode = TargetFailureMode::kFail;
  /// Directory of the write journal (journal.h); empty: no journal (then target cannot be
  /// disabled at runtime and target_failure_mode isolate is refused).
  std::string proxy_journal_dir;
  /// Bytes the journal may take on disk; when full, writes fall back to target_failure_mode
  /// fail (counted, alerted).
  long long proxy_journal_max_bytes = 1LL << 30;
  /// fdatasync(2) of the journal at most this often while writes come in, ms; 0: before every
  /// batch of writes goes out (group commit). Without fsync the journal survives a proxy crash
  /// (the page cache), not a host crash.
  int proxy_journal_fsync_interval_ms = 1000;
  /// isolate: how long a client waits for target once origin acknowledged its write, ms.
  int target_write_timeout_ms = 2000;
  /// isolate: this many target write failures within target_circuit_window_ms open the circuit:
  /// writes are journaled without going to target until a probe finds it answering.
  int target_circuit_failures = 20;
  int target_circuit_window_ms = 10000;
  /// isolate: while the circuit is open, target is tried again this often, ms.
  int target_circuit_probe_interval_ms = 5000;
  /// DUAL_ASYNC_ON_SECONDARY: the secondary's answer to each mirrored read is compared with the
  /// primary's, over the first page's first read_compare_max_rows rows (read_compare.h).
  bool read_compare = false;
  int read_compare_max_rows = 100;
  int async_handshake_timeout_ms = 4000;
  std::string log_level = "INFO";
  std::string control_conn_max_protocol_version = "DseV2";
  std::vector<std::string> blocked_protocol_versions;

  int proxy_topology_index = 0;
  std::vector<std::string> proxy_topology_addresses;
  int proxy_topology_num_tokens = 8;

  std::vector<std::string> origin_contact_points;
  int origin_port = 9042;
  std::string origin_username, origin_password;
  std::string origin_local_datacenter;
  int origin_connection_timeout_ms = 30000;
  std::vector<std::string> target_contact_points;
  int target_port = 9042;
  std::string target_username, target_password;
  std::string target_local_datacenter;
  int target_connection_timeout_ms = 30000;

  // TLS to each cluster (reference §1 "TLS"): CA only = one-way, CA + cert + key = mutual.
  // verify_hostname (not a ZDM key; ZDM checks no name): the node's certificate must name the
  // address or host name the proxy dialled.
  std::string origin_tls_server_ca_path, origin_tls_client_cert_path, origin_tls_client_key_path;
  bool origin_tls_verify_hostname = true;
  std::string target_tls_server_ca_path, target_tls_client_cert_path, target_tls_client_key_path;
  bool target_tls_verify_hostname = true;
  // TLS from clients to the proxy.
  std::string proxy_tls_ca_path, proxy_tls_cert_path, proxy_tls_key_path;
  bool proxy_tls_require_client_auth = false;

  /// With authentication on both clusters: the client's credentials are origin's (true) or
  /// target's (false, ZDM's default).
  bool forward_client_credentials_to_origin = false;
  /// Where system-keyspace reads go and whose topology system.local/peers show.
  Cluster system_queries_mode = Cluster::kOrigin;
  /// Spread client connections over the nodes assigned to this proxy (true), or use the node of
  /// the control connection only (false).
  bool origin_enable_host_assignment = true;
  bool target_enable_host_assignment = true;

  /// Read buffer sizes in bytes: of each client connection, of each cluster connection.
  int request_read_buffer_size_bytes = 32768;
  int response_read_buffer_size_bytes = 32768;
  /// Mirrored reads in flight per client connection before further ones are dropped (counted).
  int async_connector_write_queue_size_frames = 2048;

  std::string proxy_listen_address = "localhost";
  int proxy_listen_port = 14002;
  int proxy_request_timeout_ms = 10000;
  /// A client connection that has not completed its handshake (STARTUP … READY) by then is
  /// closed (not a ZDM key).
  int proxy_handshake_timeout_ms = 10000;
  /// A client connection with nothing in flight that sends nothing for this long is closed;
  /// 0 = never, as Cassandra's native_transport_idle_timeout (not a ZDM key). Off by default:
  /// drivers send a heartbeat every 30 s and connections are bounded by
  /// proxy_max_client_connections anyway (docs/security.md, "Connections").
  int proxy_idle_timeout_ms = 0;
  /// A frame whose first byte arrived this long ago and that is still incomplete (while the
  /// proxy was reading) closes its connection: a slowloris holds no buffer for long; 0 = never
  /// (not a ZDM key).
  int proxy_partial_frame_timeout_ms = 5000;
  /// Connections that completed their handshake (STARTUP … READY): a new one is refused while
  /// this many are open.
  int proxy_max_client_connections = 1000;
  /// Connections still in their handshake (TLS, STARTUP, authentication) have their own budget:
  /// when it is full, the oldest of them is closed to admit the new one, so sockets that never
  /// send STARTUP cannot lock new clients out. 0 = proxy_max_client_connections (not a ZDM key).
  int proxy_max_handshaking_connections = 0;
  /// Resident memory the proxy keeps under by closing the client connections that hold the most
  /// buffered bytes first (memory_guard.h); 0 = 75 % of the memory limit of the process's cgroup
  /// or, without one, of physical memory (not a ZDM key).
  long long proxy_max_memory_bytes = 0;
  int proxy_max_stream_ids = 2048;
  /// Largest frame body accepted from a client, bytes (Cassandra's
  /// native_transport_max_frame_size; not a ZDM key).
  int proxy_max_frame_size_bytes = 256 << 20;
  /// Bytes of large frames (over 1 MiB) a worker thread receives at once: a client whose next
  /// frame does not fit waits until others' are passed on, so many large frames cannot exhaust
  /// memory (not a ZDM key).
  int proxy_max_inflight_frame_bytes = 256 << 20;
  /// Prepared statements the proxy remembers (least recently used evicted; not a ZDM key).
  int proxy_prepared_cache_size = 10000;

  /// Bearer token of the /admin/* endpoints on the metrics port (a rolling update's hand-over,
  /// docs/rolling-updates.md); empty: they are off. Not a ZDM key.
  std::string proxy_admin_token;

  bool metrics_enabled = true;
  std::string metrics_address = "localhost";
  int metrics_port = 14001;
  std::string metrics_prefix = "zdm";
  std::vector<double> metrics_origin_latency_buckets_ms = default_buckets_ms();
  std::vector<double> metrics_target_latency_buckets_ms = default_buckets_ms();
  std::vector<double> metrics_async_read_latency_buckets_ms = default_buckets_ms();

  int heartbeat_interval_ms = 30000;
  int heartbeat_retry_interval_min_ms = 250;
  int heartbeat_retry_interval_max_ms = 30000;
  double heartbeat_retry_backoff_factor = 2;
  int heartbeat_failure_threshold = 1;

  /// Worker threads (one io_context each); 0 = one per CPU the process may use (affinity mask,
  /// cgroup CPU quota: proxy/cpus.h). Not a ZDM key.
  int proxy_worker_threads = 0;

  /// Unknown keys and other things worth a WARN line at start ("zdm.yml:4: unknown key
  /// 'read_mdoe' (did you mean 'read_mode'?), ignored").
  std::vector<std::string> warnings;

  static std::vector<double> default_buckets_ms() {
    return {1, 4, 7, 10, 25, 40, 60, 80, 100, 150, 250, 500, 1000, 2500, 5000, 10000, 15000};
  }

  /// The secondary cluster (the one that is not primary).
  Cluster secondary() const { return other(primary_cluster); }
  const std::vector<std::string>& contact_points(Cluster c) const {
    return c == Cluster::kOrigin ? origin_contact_points : target_contact_points;
  }
  int port(Cluster c) const { return c == Cluster::kOrigin ? origin_port : target_port; }
  const std::string& username(Cluster c) const {
    return c == Cluster::kOrigin ? origin_username : target_username;
  }
  const std::string& password(Cluster c) const {
    return c == Cluster::kOrigin ? origin_password : target_password;
  }
  const std::string& local_datacenter(Cluster c) const {
    return c == Cluster::kOrigin ? origin_local_datacenter : target_local_datacenter;
  }
  int connection_timeout_ms(Cluster c) const {
    return c == Cluster::kOrigin ? origin_connection_timeout_ms : target_connection_timeout_ms;
  }
  bool enable_host_assignment(Cluster c) const {
    return c == Cluster::kOrigin ? origin_enable_host_assignment : target_enable_host_assignment;
  }
  /// TLS to cluster `c` is on when its CA is set.
  bool tls_enabled(Cluster c) const {
    return !(c == Cluster::kOrigin ? origin_tls_server_ca_path : target_tls_server_ca_path).empty();
  }
  bool tls_verify_hostname(Cluster c) const {
    return c == Cluster::kOrigin ? origin_tls_verify_hostname : target_tls_verify_hostname;
  }
  /// proxy_max_handshaking_connections, its default (0) resolved.
  int max_handshaking_connections() const {
    return proxy_max_handshaking_connections > 0 ? proxy_max_handshaking_connections
                                                 : proxy_max_client_connections;
  }
  /// control_conn_max_protocol_version as a header version byte (2-5, 0x41, 0x42).
  uint8_t max_control_version() const;
  /// This proxy's own address in the topology (proxy_topology_addresses[index], else the
  /// listen address, else 127.0.0.1).
  std::string own_topology_address() const;

  /// JSON of the parsed configuration with ZDM's Go field names, passwords omitted.
  std::string to_log_json() const;
};

/// Parses YAML text; `source` names the file in errors ("zdm.yml:4: key 'read_mode': ...").
/// Throws ConfigError on bad values, values out of range, values of the wrong YAML type ("key
/// 'origin_port': expected an integer, got a sequence"; only list keys take a sequence, no key a
/// mapping; the value is not shown), keys set to something this proxy does not support ("not
/// supported by zdm-proxy") and failed validation. Unknown keys are not errors, whatever their
/// value: each adds a line to Config::warnings naming the closest known key.
Config parse_config_yaml(const std::string& text, const std::string& source);
/// Reads and parses a YAML file. Throws ConfigError (also when the file cannot be read).
Config load_config_file(const std::string& path);
/// Reads ZDM_* variables from `env` ("ZDM_READ_MODE" -> read_mode). Throws ConfigError; unknown
/// ZDM_* variables become warnings, as unknown YAML keys do.
Config load_config_env(const std::map<std::string, std::string>& env);
/// Checks required keys and the relations between keys. Throws ConfigError.
void validate(const Config& c, const std::string& source);

}  // namespace zdm::proxy
