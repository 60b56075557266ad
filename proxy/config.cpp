#include "proxy/config.h"
#include "common/cql/notation.h"
#include "common/util/strings.h"

#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace zdm::proxy {

using util::trim;

const char* cluster_name(Cluster c) {
  return c == Cluster::kOrigin ? "ORIGIN" : "TARGET";
}

namespace {

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> split_csv(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Raised by setters; the caller adds source and key.
struct BadValue {
  std::string why;
};

long long to_integer(const std::string& v) {
  try {
    std::size_t used = 0;
    long long n = std::stoll(v, &used);
    if (used != v.size()) throw BadValue{"expected an integer, got '" + v + "'"};
    return n;
  } catch (const std::out_of_range&) {
    throw BadValue{"'" + v + "' is out of range"};
  } catch (const std::logic_error&) {
    throw BadValue{"expected an integer, got '" + v + "'"};
  }
}

int to_int(const std::string& v, long long min, long long max) {
  long long n = to_integer(v);
  if (n < min || n > max)
    throw BadValue{v + " is out of range (" + std::to_string(min) + " to " + std::to_string(max) +
                   ")"};
  return static_cast<int>(n);
}

double to_double(const std::string& v) {
  try {
    std::size_t used = 0;
    double d = std::stod(v, &used);
    if (used != v.size() || !std::isfinite(d)) throw BadValue{"expected a number, got '" + v + "'"};
    return d;
  } catch (const std::logic_error&) {
    throw BadValue{"expected a number, got '" + v + "'"};
  }
}

bool to_bool(const std::string& v) {
  std::string u = upper(v);
  if (u == "TRUE" || u == "YES" || u == "1") return true;
  if (u == "FALSE" || u == "NO" || u == "0") return false;
  throw BadValue{"expected true or false, got '" + v + "'"};
}

Cluster to_cluster(const std::string& v) {
  std::string u = upper(v);
  if (u == "ORIGIN") return Cluster::kOrigin;
  if (u == "TARGET") return Cluster::kTarget;
  throw BadValue{"expected ORIGIN or TARGET, got '" + v + "'"};
}

bool is_ip_literal(const std::string& s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

constexpr long long kMaxMs = 24LL * 3600 * 1000;  // a day: the bound of every duration key
constexpr long long kIntMax = std::numeric_limits<int>::max();
// proxy_max_memory_bytes: under 64 MiB the proxy's own baseline (code, prepared cache, control
// connections) would leave nothing to shed; 1 PiB is beyond any machine.
constexpr long long kMinMemoryCeiling = 64LL << 20;
constexpr long long kMaxMemoryCeiling = 1LL << 50;

using Setter = std::function<void(Config&, const std::string&)>;

// A key: what its value must be, for the error when YAML gives a sequence or a mapping instead
// ("expected a string, got a sequence"; the value itself is never shown, a secret's included),
// whether a YAML sequence is taken (its items joined with commas), and how the value is set.
struct Key {
  std::string expected;
  bool list;
  Setter set;
};

const char* const kList = "a list or a comma-separated string";

const std::map<std::string, Key>& setters() {
  static const std::map<std::string, Key> table = [] {
    std::map<std::string, Key> t;
    auto scalar = [&](const std::string& key, std::string expected, Setter set) {
      t[key] = Key{std::move(expected), false, std::move(set)};
    };
    auto listed = [&](const std::string& key, Setter set) {
      t[key] = Key{kList, true, std::move(set)};
    };
    auto str = [&](const char* key, std::string Config::*m) {
      scalar(key, "a string", [m](Config& c, const std::string& v) { c.*m = v; });
    };
    // A string whose empty value would be silently wrong (a null value, `key:`, is an empty one).
    auto nonempty = [&](const char* key, std::string Config::*m) {
      scalar(key, "a string", [m](Config& c, const std::string& v) {
        if (trim(v).empty()) throw BadValue{"must not be empty"};
        c.*m = v;
      });
    };
    auto num = [&](const char* key, int Config::*m, long long min, long long max) {
      scalar(key, "an integer",
             [m, min, max](Config& c, const std::string& v) { c.*m = to_int(v, min, max); });
    };
    auto flag = [&](const char* key, bool Config::*m) {
      scalar(key, "true or false", [m](Config& c, const std::string& v) { c.*m = to_bool(v); });
    };
    auto list = [&](const char* key, std::vector<std::string> Config::*m) {
      listed(key, [m](Config& c, const std::string& v) { c.*m = split_csv(v); });
    };
    auto buckets = [&](const char* key, std::vector<double> Config::*m) {
      listed(key, [m](Config& c, const std::string& v) {
        std::vector<double> out;
        for (const auto& s : split_csv(v)) {
          double ms = to_double(s);
          if (ms <= 0) throw BadValue{"bucket " + s + " must be a positive number of milliseconds"};
          if (!out.empty() && ms <= out.back())
            throw BadValue{"buckets must be in increasing order (" + s + " after " +
                           split_csv(v)[out.size() - 1] + ")"};
          out.push_back(ms);
        }
        if (out.empty()) throw BadValue{"expected a comma-separated list of milliseconds"};
        c.*m = out;
      });
    };
    // A ZDM key whose other values this proxy does not implement: its default is accepted (ZDM
    // configuration files list every key), anything else is refused at start.
    auto only_default = [&](const char* key, std::string dflt, std::string why) {
      scalar(key, dflt.empty() ? "a string" : dflt, [dflt, why](Config&, const std::string& v) {
        if (upper(trim(v)) != upper(dflt))
          throw BadValue{"not supported by zdm-proxy (" + why + "); remove the key" +
                         (dflt.empty() ? "" : " or set it to " + dflt)};
      });
    };
    scalar("primary_cluster", "ORIGIN or TARGET",
           [](Config& c, const std::string& v) { c.primary_cluster = to_cluster(v); });
    scalar("system_queries_mode", "ORIGIN or TARGET",
           [](Config& c, const std::string& v) { c.system_queries_mode = to_cluster(v); });
    scalar("read_mode", "PRIMARY_ONLY or DUAL_ASYNC_ON_SECONDARY",
           [](Config& c, const std::string& v) {
             std::string u = upper(v);
             if (u == "PRIMARY_ONLY") {
               c.read_mode = ReadMode::kPrimaryOnly;
             } else if (u == "DUAL_ASYNC_ON_SECONDARY") {
               c.read_mode = ReadMode::kDualAsyncOnSecondary;
             } else {
               throw BadValue{"expected PRIMARY_ONLY or DUAL_ASYNC_ON_SECONDARY, got '" + v + "'"};
             }
           });
    scalar(
        "log_level", "one of panic, fatal, error, warn, info, debug, trace",
        [](Config& c, const std::string& v) {
          static const std::vector<std::string> ok = {"PANIC",   "FATAL", "ERROR", "WARN",
                                                      "WARNING", "INFO",  "DEBUG", "TRACE"};
          std::string u = upper(v);
          if (std::find(ok.begin(), ok.end(), u) == ok.end())
            throw BadValue{"expected one of panic, fatal, error, warn, info, debug, trace, got '" +
                           v + "'"};
          c.log_level = u;
        });
    scalar("control_conn_max_protocol_version", "3, 4, 5, DseV1 or DseV2",
           [](Config& c, const std::string& v) {
             static const std::vector<std::string> ok = {"3", "4", "5", "DSEV1", "DSEV2"};
             if (v == "2")
               throw BadValue{
                   "not supported by zdm-proxy (protocol v2 is not spoken; 3 is the lowest)"};
             if (std::find(ok.begin(), ok.end(), upper(v)) == ok.end())
               throw BadValue{"expected 3, 4, 5, DseV1 or DseV2, got '" + v + "'"};
             c.control_conn_max_protocol_version = v;
           });
    listed("blocked_protocol_versions", [](Config& c, const std::string& v) {
      static const std::vector<std::string> ok = {"2", "V2", "3",     "V3",     "4",     "V4",
                                                  "5", "V5", "DSEV1", "DSE_V1", "DSEV2", "DSE_V2"};
      c.blocked_protocol_versions.clear();
      for (const auto& item : split_csv(v)) {
        if (std::find(ok.begin(), ok.end(), upper(item)) == ok.end())
          throw BadValue{"unknown protocol version '" + item + "'"};
        c.blocked_protocol_versions.push_back(item);
      }
    });
    listed("proxy_topology_addresses", [](Config& c, const std::string& v) {
      auto list = split_csv(v);
      for (const auto& a : list)
        if (!is_ip_literal(a))
          throw BadValue{"'" + a +
                         "' is not an IP address (the proxies' addresses must be IP "
                         "literals, in the same order on every proxy)"};
      c.proxy_topology_addresses = list;
    });
    scalar("heartbeat_retry_backoff_factor", "a number", [](Config& c, const std::string& v) {
      double f = to_double(v);
      if (f < 1 || f > 100) throw BadValue{v + " is out of range (1 to 100)"};
      c.heartbeat_retry_backoff_factor = f;
    });
    flag("replace_cql_functions", &Config::replace_cql_functions);
    scalar("target_consistency_level",
           "empty, or ANY, ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM or LOCAL_ONE",
           [](Config& c, const std::string& v) {
             const std::string u = upper(trim(v));
             if (u.empty()) {
               c.target_consistency_level.reset();
               return;
             }
             if (u == "SERIAL" || u == "LOCAL_SERIAL")
               throw BadValue{u +
                              " is a serial consistency, which the proxy leaves as the client "
                              "set it; expected ANY, ONE, TWO, THREE, QUORUM, ALL, "
                              "LOCAL_QUORUM, EACH_QUORUM or LOCAL_ONE"};
             for (uint16_t code = 0; code <= 0x0A; ++code)
               if (code != 0x08 && code != 0x09 &&
                   cql::consistency_name(static_cast<cql::Consistency>(code)) == u) {
                 c.target_consistency_level = code;
                 return;
               }
             throw BadValue{
                 "expected ANY, ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, "
                 "EACH_QUORUM or LOCAL_ONE, got '" +
                 v + "'"};
           });
    scalar("target_failure_mode", "fail or isolate", [](Config& c, const std::string& v) {
      const std::string u = upper(trim(v));
      if (u == "FAIL") {
        c.target_failure_mode = TargetFailureMode::kFail;
      } else if (u == "ISOLATE") {
        c.target_failure_mode = TargetFailureMode::kIsolate;
      } else {
        throw BadValue{"expected fail or isolate, got '" + v + "'"};
      }
    });
    str("proxy_journal_dir", &Config::proxy_journal_dir);
    scalar("proxy_journal_max_bytes", "an integer", [](Config& c, const std::string& v) {
      const long long n = to_integer(v);
      if (n < (1LL << 20) || n > (1LL << 50))
        throw BadValue{v + " is out of range (1048576 to 2^50)"};
      c.proxy_journal_max_bytes = n;
    });
    num("proxy_journal_fsync_interval_ms", &Config::proxy_journal_fsync_interval_ms, 0, kMaxMs);
    num("target_write_timeout_ms", &Config::target_write_timeout_ms, 1, kMaxMs);
    num("target_circuit_failures", &Config::target_circuit_failures, 1, 1000000);
    num("target_circuit_window_ms", &Config::target_circuit_window_ms, 1, kMaxMs);
    num("target_circuit_probe_interval_ms", &Config::target_circuit_probe_interval_ms, 1, kMaxMs);
    flag("read_compare", &Config::read_compare);
    num("read_compare_max_rows", &Config::read_compare_max_rows, 1, 1000000);
    num("async_handshake_timeout_ms", &Config::async_handshake_timeout_ms, 1, kMaxMs);
    num("proxy_topology_index", &Config::proxy_topology_index, 0, 1000);
    num("proxy_topology_num_tokens", &Config::proxy_topology_num_tokens, 1, 256);
    list("origin_contact_points", &Config::origin_contact_points);
    num("origin_port", &Config::origin_port, 1, 65535);
    str("origin_username", &Config::origin_username);
    str("origin_password", &Config::origin_password);
    str("origin_local_datacenter", &Config::origin_local_datacenter);
    num("origin_connection_timeout_ms", &Config::origin_connection_timeout_ms, 1, kMaxMs);
    str("origin_tls_server_ca_path", &Config::origin_tls_server_ca_path);
    str("origin_tls_client_cert_path", &Config::origin_tls_client_cert_path);
    str("origin_tls_client_key_path", &Config::origin_tls_client_key_path);
    flag("origin_tls_verify_hostname", &Config::origin_tls_verify_hostname);
    flag("origin_enable_host_assignment", &Config::origin_enable_host_assignment);
    list("target_contact_points", &Config::target_contact_points);
    num("target_port", &Config::target_port, 1, 65535);
    str("target_username", &Config::target_username);
    str("target_password", &Config::target_password);
    str("target_local_datacenter", &Config::target_local_datacenter);
    num("target_connection_timeout_ms", &Config::target_connection_timeout_ms, 1, kMaxMs);
    str("target_tls_server_ca_path", &Config::target_tls_server_ca_path);
    str("target_tls_client_cert_path", &Config::target_tls_client_cert_path);
    str("target_tls_client_key_path", &Config::target_tls_client_key_path);
    flag("target_tls_verify_hostname", &Config::target_tls_verify_hostname);
    flag("target_enable_host_assignment", &Config::target_enable_host_assignment);
    str("proxy_tls_ca_path", &Config::proxy_tls_ca_path);
    str("proxy_tls_cert_path", &Config::proxy_tls_cert_path);
    str("proxy_tls_key_path", &Config::proxy_tls_key_path);
    flag("proxy_tls_require_client_auth", &Config::proxy_tls_require_client_auth);
    flag("forward_client_credentials_to_origin", &Config::forward_client_credentials_to_origin);
    nonempty("proxy_listen_address", &Config::proxy_listen_address);
    num("proxy_listen_port", &Config::proxy_listen_port, 1, 65535);
    num("proxy_request_timeout_ms", &Config::proxy_request_timeout_ms, 1, kMaxMs);
    num("proxy_handshake_timeout_ms", &Config::proxy_handshake_timeout_ms, 1, kMaxMs);
    num("proxy_idle_timeout_ms", &Config::proxy_idle_timeout_ms, 0, kMaxMs);
    num("proxy_partial_frame_timeout_ms", &Config::proxy_partial_frame_timeout_ms, 0, kMaxMs);
    num("proxy_max_client_connections", &Config::proxy_max_client_connections, 1, 1000000);
    num("proxy_max_handshaking_connections", &Config::proxy_max_handshaking_connections, 0,
        1000000);
    scalar("proxy_max_memory_bytes", "an integer", [](Config& c, const std::string& v) {
      const long long n = to_integer(v);
      if (n != 0 && (n < kMinMemoryCeiling || n > kMaxMemoryCeiling))
        throw BadValue{v + " is out of range (0 for the default, or " +
                       std::to_string(kMinMemoryCeiling) + " to " +
                       std::to_string(kMaxMemoryCeiling) + ")"};
      c.proxy_max_memory_bytes = n;
    });
    // Cassandra allows 32768 stream ids per connection from v3 on (spec §2.3).
    num("proxy_max_stream_ids", &Config::proxy_max_stream_ids, 1, 32768);
    num("proxy_prepared_cache_size", &Config::proxy_prepared_cache_size, 1, 10000000);
    num("proxy_max_frame_size_bytes", &Config::proxy_max_frame_size_bytes, 1024, 256 << 20);
    num("proxy_max_inflight_frame_bytes", &Config::proxy_max_inflight_frame_bytes, 1 << 20,
        kIntMax);
    flag("metrics_enabled", &Config::metrics_enabled);
    str("proxy_admin_token", &Config::proxy_admin_token);
    nonempty("metrics_address", &Config::metrics_address);
    num("metrics_port", &Config::metrics_port, 1, 65535);
    nonempty("metrics_prefix", &Config::metrics_prefix);
    buckets("metrics_origin_latency_buckets_ms", &Config::metrics_origin_latency_buckets_ms);
    buckets("metrics_target_latency_buckets_ms", &Config::metrics_target_latency_buckets_ms);
    buckets("metrics_async_read_latency_buckets_ms",
            &Config::metrics_async_read_latency_buckets_ms);
    num("heartbeat_interval_ms", &Config::heartbeat_interval_ms, 1, kMaxMs);
    num("heartbeat_retry_interval_min_ms", &Config::heartbeat_retry_interval_min_ms, 1, kMaxMs);
    num("heartbeat_retry_interval_max_ms", &Config::heartbeat_retry_interval_max_ms, 1, kMaxMs);
    num("heartbeat_failure_threshold", &Config::heartbeat_failure_threshold, 1, 1000);
    num("proxy_worker_threads", &Config::proxy_worker_threads, 0, 1024);
    num("request_read_buffer_size_bytes", &Config::request_read_buffer_size_bytes, 1024, 64 << 20);
    num("response_read_buffer_size_bytes", &Config::response_read_buffer_size_bytes, 1024,
        64 << 20);
    num("async_connector_write_queue_size_frames", &Config::async_connector_write_queue_size_frames,
        1, kIntMax);
    only_default("origin_secure_connect_bundle_path", "",
                 "Astra secure connect bundles; use origin_contact_points and origin_tls_*");
    only_default("target_secure_connect_bundle_path", "",
                 "Astra secure connect bundles; use target_contact_points and target_tls_*");
    only_default("tracing_enabled", "false", "request-id tracing");
    only_default("tracing_rate_limit", "0", "request-id tracing");
    only_default("tracing_request_id_key", "request-id", "request-id tracing");
    // The Go proxy's goroutine pools and per-socket buffers have no counterpart here: writes are
    // gathered per socket as they come.
    only_default("request_write_queue_size_frames", "128", "Go write queues");
    only_default("request_write_buffer_size_bytes", "4096", "Go write coalescer");
    only_default("response_write_queue_size_frames", "128", "Go write queues");
    only_default("response_write_buffer_size_bytes", "8192", "Go write coalescer");
    only_default("async_connector_write_buffer_size_bytes", "4096", "Go write coalescer");
    only_default("event_queue_size_frames", "12", "Go event queue");
    for (const char* k : {"request_response_max_workers", "write_max_workers", "read_max_workers",
                          "listener_max_workers"})
      only_default(k, "-1", "Go worker pools; use proxy_worker_threads");
    return t;
  }();
  return table;
}

// Levenshtein distance, for "did you mean".
std::size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_key(const std::string& key) {
  std::string best;
  std::size_t best_d = std::string::npos;
  for (const auto& [k, _] : setters()) {
    std::size_t d = distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

void apply(Config& c, const std::string& key, const std::string& value, const std::string& where,
           const std::string& name) {
  const auto& table = setters();
  auto it = table.find(key);
  if (it == table.end()) {
    c.warnings.push_back(where + ": unknown " + name + " (did you mean '" + closest_key(key) +
                         "'?), ignored");
    return;
  }
  try {
    it->second.set(c, value);
  } catch (const BadValue& e) {
    throw ConfigError(where + ": key '" + key + "': " + e.why);
  }
}

}  // namespace

std::string Config::own_topology_address() const {
  if (proxy_topology_index >= 0 &&
      static_cast<std::size_t>(proxy_topology_index) < proxy_topology_addresses.size())
    return proxy_topology_addresses[static_cast<std::size_t>(proxy_topology_index)];
  if (proxy_listen_address == "localhost" || proxy_listen_address.empty() ||
      proxy_listen_address == "0.0.0.0")
    return "127.0.0.1";
  return proxy_listen_address;
}

void validate(const Config& c, const std::string& source) {
  auto fail = [&](const std::string& key, const std::string& why) {
    throw ConfigError(source + ": key '" + key + "': " + why);
  };
  if (c.origin_contact_points.empty()) fail("origin_contact_points", "required, none given");
  if (c.target_contact_points.empty()) fail("target_contact_points", "required, none given");
  auto port_ok = [](int p) { return p > 0 && p < 65536; };
  if (!port_ok(c.origin_port)) fail("origin_port", "not a TCP port");
  if (!port_ok(c.target_port)) fail("target_port", "not a TCP port");
  if (!port_ok(c.proxy_listen_port)) fail("proxy_listen_port", "not a TCP port");
  if (!port_ok(c.metrics_port)) fail("metrics_port", "not a TCP port");
  if (c.proxy_topology_num_tokens < 1 || c.proxy_topology_num_tokens > 256)
    fail("proxy_topology_num_tokens", "must be between 1 and 256");
  if (!c.proxy_topology_addresses.empty() &&
      (c.proxy_topology_index < 0 ||
       static_cast<std::size_t>(c.proxy_topology_index) >= c.proxy_topology_addresses.size()))
    fail("proxy_topology_index", "must be less than the number of proxy_topology_addresses (" +
                                     std::to_string(c.proxy_topology_addresses.size()) + ")");
  if (c.proxy_max_stream_ids < 1) fail("proxy_max_stream_ids", "must be positive");
  if (c.proxy_request_timeout_ms < 1) fail("proxy_request_timeout_ms", "must be positive");
  if (c.heartbeat_interval_ms < 1) fail("heartbeat_interval_ms", "must be positive");
  if (c.heartbeat_failure_threshold < 1) fail("heartbeat_failure_threshold", "must be positive");
  if (c.proxy_max_client_connections < 1) fail("proxy_max_client_connections", "must be positive");
  if (c.heartbeat_retry_interval_min_ms > c.heartbeat_retry_interval_max_ms)
    fail("heartbeat_retry_interval_min_ms", "must not exceed heartbeat_retry_interval_max_ms (" +
                                                std::to_string(c.heartbeat_retry_interval_max_ms) +
                                                ")");
  for (Cluster k : {Cluster::kOrigin, Cluster::kTarget}) {
    std::string p = k == Cluster::kOrigin ? "origin" : "target";
    const auto& ca =
        k == Cluster::kOrigin ? c.origin_tls_server_ca_path : c.target_tls_server_ca_path;
    const auto& cert =
        k == Cluster::kOrigin ? c.origin_tls_client_cert_path : c.target_tls_client_cert_path;
    const auto& key =
        k == Cluster::kOrigin ? c.origin_tls_client_key_path : c.target_tls_client_key_path;
    if (ca.empty() && !(cert.empty() && key.empty()))
      fail(p + "_tls_server_ca_path", "required with " + p + "_tls_client_cert_path/_key_path");
    if (cert.empty() != key.empty())
      fail(cert.empty() ? p + "_tls_client_cert_path" : p + "_tls_client_key_path",
           "client certificate and key go together");
    if (c.username(k).empty() != c.password(k).empty())
      fail(c.username(k).empty() ? p + "_username" : p + "_password",
           "username and password go together");
  }
  bool any_proxy_tls = !c.proxy_tls_ca_path.empty() || !c.proxy_tls_cert_path.empty() ||
                       !c.proxy_tls_key_path.empty() || c.proxy_tls_require_client_auth;
  if (any_proxy_tls && c.proxy_tls_cert_path.empty())
    fail("proxy_tls_cert_path", "required for TLS from clients");
  if (any_proxy_tls && c.proxy_tls_key_path.empty())
    fail("proxy_tls_key_path", "required for TLS from clients");
  if (c.proxy_tls_require_client_auth && c.proxy_tls_ca_path.empty())
    fail("proxy_tls_ca_path", "required with proxy_tls_require_client_auth");
  if (c.read_compare && c.read_mode != ReadMode::kDualAsyncOnSecondary)
    fail("read_compare", "compares mirrored reads: needs read_mode DUAL_ASYNC_ON_SECONDARY");
  if (c.target_failure_mode == TargetFailureMode::kIsolate && c.proxy_journal_dir.empty())
    fail("target_failure_mode",
         "isolate needs proxy_journal_dir: the writes target misses are kept there for replay");
  if (c.target_failure_mode == TargetFailureMode::kIsolate &&
      c.target_write_timeout_ms >= c.proxy_request_timeout_ms)
    fail("target_write_timeout_ms", "must be less than proxy_request_timeout_ms (" +
                                        std::to_string(c.proxy_request_timeout_ms) + ")");
}

uint8_t Config::max_control_version() const {
  std::string u = upper(control_conn_max_protocol_version);
  if (u == "DSEV1") return 0x41;
  if (u == "DSEV2") return 0x42;
  return static_cast<uint8_t>(u[0] - '0');
}

Config parse_config_yaml(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  Config c;
  if (root.IsNull()) {
    validate(c, source);
    return c;
  }
  if (!root.IsMap()) throw ConfigError(source + ":1: expected a mapping of configuration keys");
  for (const auto& kv : root) {
    std::string where = source + ":" + std::to_string(kv.first.Mark().line + 1);
    // YAML allows a mapping or a list as a key ("? [a]"); as<std::string>() would throw
    // YAML::BadConversion past every caller.
    if (!kv.first.IsScalar()) throw ConfigError(where + ": expected a key name");
    std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    auto known = setters().find(key);
    if (known == setters().end()) {  // a warning, whatever the value
      apply(c, key, "", where, "key '" + key + "'");
      continue;
    }
    if (v.IsMap() || (v.IsSequence() && !known->second.list))
      throw ConfigError(where + ": key '" + key + "': expected " + known->second.expected +
                        ", got " + (v.IsMap() ? "a mapping" : "a sequence"));
    // A null value (`key:`) is an empty one: unset for a string or a list, refused where empty
    // is not a value (numbers, booleans, enumerations, nonempty()).
    std::string value;
    if (v.IsSequence()) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i].IsNull()) continue;  // as a null value: nothing
        if (!v[i].IsScalar())
          throw ConfigError(where + ": key '" + key + "': expected a list of values, item " +
                            std::to_string(i + 1) + " is not one");
        if (!value.empty()) value += ",";
        value += v[i].as<std::string>();
      }
    } else if (v.IsScalar()) {
      value = v.as<std::string>();
    }
    apply(c, key, value, where, "key '" + key + "'");
  }
  validate(c, source);
  return c;
}

Config load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot read configuration file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config_yaml(ss.str(), path);
}

Config load_config_env(const std::map<std::string, std::string>& env) {
  Config c;
  for (const auto& [name, value] : env) {
    if (name.rfind("ZDM_", 0) != 0) continue;
    std::string key = name.substr(4);
    for (auto& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    apply(c, key, value, "environment variable " + name, "variable " + name);
  }
  validate(c, "environment");
  return c;
}

std::string Config::to_log_json() const {
  auto csv = [](const std::vector<std::string>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
    return out;
  };
  nlohmann::ordered_json j;
  j["PrimaryCluster"] = cluster_name(primary_cluster);
  j["ReadMode"] = read_mode == ReadMode::kPrimaryOnly ? "PRIMARY_ONLY" : "DUAL_ASYNC_ON_SECONDARY";
  j["ReplaceCqlFunctions"] = replace_cql_functions;
  j["TargetConsistencyLevel"] =
      target_consistency_level
          ? cql::consistency_name(static_cast<cql::Consistency>(*target_consistency_level))
          : "";
  j["AsyncHandshakeTimeoutMs"] = async_handshake_timeout_ms;
  j["LogLevel"] = log_level;
  j["ControlConnMaxProtocolVersion"] = control_conn_max_protocol_version;
  j["BlockedProtocolVersions"] = csv(blocked_protocol_versions);
  j["ProxyTopologyIndex"] = proxy_topology_index;
  j["ProxyTopologyAddresses"] = csv(proxy_topology_addresses);
  j["ProxyTopologyNumTokens"] = proxy_topology_num_tokens;
  j["OriginContactPoints"] = csv(origin_contact_points);
  j["OriginPort"] = origin_port;
  j["OriginUsername"] = origin_username;
  j["OriginLocalDatacenter"] = origin_local_datacenter;
  j["OriginConnectionTimeoutMs"] = origin_connection_timeout_ms;
  j["TargetContactPoints"] = csv(target_contact_points);
  j["TargetPort"] = target_port;
  j["TargetUsername"] = target_username;
  j["TargetLocalDatacenter"] = target_local_datacenter;
  j["TargetConnectionTimeoutMs"] = target_connection_timeout_ms;
  j["OriginTlsServerCaPath"] = origin_tls_server_ca_path;
  j["OriginTlsClientCertPath"] = origin_tls_client_cert_path;
  j["OriginTlsClientKeyPath"] = origin_tls_client_key_path;
  j["OriginTlsVerifyHostname"] = origin_tls_verify_hostname;
  j["TargetTlsServerCaPath"] = target_tls_server_ca_path;
  j["TargetTlsClientCertPath"] = target_tls_client_cert_path;
  j["TargetTlsClientKeyPath"] = target_tls_client_key_path;
  j["TargetTlsVerifyHostname"] = target_tls_verify_hostname;
  j["ProxyTlsCaPath"] = proxy_tls_ca_path;
  j["ProxyTlsCertPath"] = proxy_tls_cert_path;
  j["ProxyTlsKeyPath"] = proxy_tls_key_path;
  j["ProxyTlsRequireClientAuth"] = proxy_tls_require_client_auth;
  j["ForwardClientCredentialsToOrigin"] = forward_client_credentials_to_origin;
  j["SystemQueriesMode"] = cluster_name(system_queries_mode);
  j["OriginEnableHostAssignment"] = origin_enable_host_assignment;
  j["TargetEnableHostAssignment"] = target_enable_host_assignment;
  j["ProxyListenAddress"] = proxy_listen_address;
  j["ProxyListenPort"] = proxy_listen_port;
  j["ProxyRequestTimeoutMs"] = proxy_request_timeout_ms;
  j["ProxyHandshakeTimeoutMs"] = proxy_handshake_timeout_ms;
  j["ProxyIdleTimeoutMs"] = proxy_idle_timeout_ms;
  j["ProxyPartialFrameTimeoutMs"] = proxy_partial_frame_timeout_ms;
  j["ProxyMaxClientConnections"] = proxy_max_client_connections;
  j["ProxyMaxHandshakingConnections"] = proxy_max_handshaking_connections;
  j["ProxyMaxMemoryBytes"] = proxy_max_memory_bytes;
  j["ProxyMaxStreamIds"] = proxy_max_stream_ids;
  j["ProxyPreparedCacheSize"] = proxy_prepared_cache_size;
  j["ProxyMaxFrameSizeBytes"] = proxy_max_frame_size_bytes;
  j["ProxyMaxInflightFrameBytes"] = proxy_max_inflight_frame_bytes;
  j["ProxyAdminTokenSet"] = !proxy_admin_token.empty();
  j["TargetFailureMode"] = target_failure_mode == TargetFailureMode::kFail ? "fail" : "isolate";
  j["ProxyJournalDir"] = proxy_journal_dir;
  j["ProxyJournalMaxBytes"] = proxy_journal_max_bytes;
  j["ProxyJournalFsyncIntervalMs"] = proxy_journal_fsync_interval_ms;
  j["TargetWriteTimeoutMs"] = target_write_timeout_ms;
  j["TargetCircuitFailures"] = target_circuit_failures;
  j["TargetCircuitWindowMs"] = target_circuit_window_ms;
  j["TargetCircuitProbeIntervalMs"] = target_circuit_probe_interval_ms;
  j["ReadCompare"] = read_compare;
  j["ReadCompareMaxRows"] = read_compare_max_rows;
  j["MetricsEnabled"] = metrics_enabled;
  j["MetricsAddress"] = metrics_address;
  j["MetricsPort"] = metrics_port;
  j["MetricsPrefix"] = metrics_prefix;
  j["MetricsOriginLatencyBucketsMs"] = metrics_origin_latency_buckets_ms;
  j["MetricsTargetLatencyBucketsMs"] = metrics_target_latency_buckets_ms;
  j["MetricsAsyncReadLatencyBucketsMs"] = metrics_async_read_latency_buckets_ms;
  j["HeartbeatIntervalMs"] = heartbeat_interval_ms;
  j["HeartbeatRetryIntervalMinMs"] = heartbeat_retry_interval_min_ms;
  j["HeartbeatRetryIntervalMaxMs"] = heartbeat_retry_interval_max_ms;
  j["HeartbeatRetryBackoffFactor"] = heartbeat_retry_backoff_factor;
  j["HeartbeatFailureThreshold"] = heartbeat_failure_threshold;
  j["ProxyWorkerThreads"] = proxy_worker_threads;
  j["RequestReadBufferSizeBytes"] = request_read_buffer_size_bytes;
  j["ResponseReadBufferSizeBytes"] = response_read_buffer_size_bytes;
  j["AsyncConnectorWriteQueueSizeFrames"] = async_connector_write_queue_size_frames;
  // Values need not be UTF-8 (YAML requires it, yaml-cpp does not check); dump() would throw.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace zdm::proxy
