#include "proxy/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

namespace zdm::proxy {

const char* cluster_name(Cluster c) {
  return c == Cluster::kOrigin ? "ORIGIN" : "TARGET";
}

namespace {

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r\n");
  auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
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

int to_int(const std::string& v) {
  try {
    std::size_t used = 0;
    long n = std::stol(v, &used);
    if (used != v.size()) throw BadValue{"expected an integer, got '" + v + "'"};
    return static_cast<int>(n);
  } catch (const std::logic_error&) {
    throw BadValue{"expected an integer, got '" + v + "'"};
  }
}

double to_double(const std::string& v) {
  try {
    std::size_t used = 0;
    double d = std::stod(v, &used);
    if (used != v.size()) throw BadValue{"expected a number, got '" + v + "'"};
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

using Setter = std::function<void(Config&, const std::string&)>;

const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> table = [] {
    std::map<std::string, Setter> t;
    auto str = [&](const char* key, std::string Config::*m) {
      t[key] = [m](Config& c, const std::string& v) { c.*m = v; };
    };
    auto num = [&](const char* key, int Config::*m) {
      t[key] = [m](Config& c, const std::string& v) { c.*m = to_int(v); };
    };
    auto flag = [&](const char* key, bool Config::*m) {
      t[key] = [m](Config& c, const std::string& v) { c.*m = to_bool(v); };
    };
    auto list = [&](const char* key, std::vector<std::string> Config::*m) {
      t[key] = [m](Config& c, const std::string& v) { c.*m = split_csv(v); };
    };
    auto buckets = [&](const char* key, std::vector<double> Config::*m) {
      t[key] = [m](Config& c, const std::string& v) {
        std::vector<double> out;
        for (const auto& s : split_csv(v)) out.push_back(to_double(s));
        if (out.empty()) throw BadValue{"expected a comma-separated list of milliseconds"};
        c.*m = out;
      };
    };
    t["primary_cluster"] = [](Config& c, const std::string& v) {
      std::string u = upper(v);
      if (u == "ORIGIN") {
        c.primary_cluster = Cluster::kOrigin;
      } else if (u == "TARGET") {
        c.primary_cluster = Cluster::kTarget;
      } else {
        throw BadValue{"expected ORIGIN or TARGET, got '" + v + "'"};
      }
    };
    t["read_mode"] = [](Config& c, const std::string& v) {
      std::string u = upper(v);
      if (u == "PRIMARY_ONLY") {
        c.read_mode = ReadMode::kPrimaryOnly;
      } else if (u == "DUAL_ASYNC_ON_SECONDARY") {
        c.read_mode = ReadMode::kDualAsyncOnSecondary;
      } else {
        throw BadValue{"expected PRIMARY_ONLY or DUAL_ASYNC_ON_SECONDARY, got '" + v + "'"};
      }
    };
    t["log_level"] = [](Config& c, const std::string& v) {
      static const std::vector<std::string> ok = {"PANIC",   "FATAL", "ERROR", "WARN",
                                                  "WARNING", "INFO",  "DEBUG", "TRACE"};
      std::string u = upper(v);
      if (std::find(ok.begin(), ok.end(), u) == ok.end())
        throw BadValue{"expected one of panic, fatal, error, warn, info, debug, trace, got '" + v +
                       "'"};
      c.log_level = u;
    };
    t["control_conn_max_protocol_version"] = [](Config& c, const std::string& v) {
      static const std::vector<std::string> ok = {"2", "3", "4", "5", "DseV1", "DseV2"};
      if (std::find(ok.begin(), ok.end(), v) == ok.end())
        throw BadValue{"expected 2, 3, 4, 5, DseV1 or DseV2, got '" + v + "'"};
      c.control_conn_max_protocol_version = v;
    };
    t["blocked_protocol_versions"] = [](Config& c, const std::string& v) {
      static const std::vector<std::string> ok = {"2", "V2", "3",     "V3",     "4",     "V4",
                                                  "5", "V5", "DSEV1", "DSE_V1", "DSEV2", "DSE_V2"};
      c.blocked_protocol_versions.clear();
      for (const auto& item : split_csv(v)) {
        if (std::find(ok.begin(), ok.end(), upper(item)) == ok.end())
          throw BadValue{"unknown protocol version '" + item + "'"};
        c.blocked_protocol_versions.push_back(item);
      }
    };
    flag("replace_cql_functions", &Config::replace_cql_functions);
    num("async_handshake_timeout_ms", &Config::async_handshake_timeout_ms);
    num("proxy_topology_index", &Config::proxy_topology_index);
    list("proxy_topology_addresses", &Config::proxy_topology_addresses);
    num("proxy_topology_num_tokens", &Config::proxy_topology_num_tokens);
    list("origin_contact_points", &Config::origin_contact_points);
    num("origin_port", &Config::origin_port);
    str("origin_username", &Config::origin_username);
    str("origin_password", &Config::origin_password);
    str("origin_local_datacenter", &Config::origin_local_datacenter);
    num("origin_connection_timeout_ms", &Config::origin_connection_timeout_ms);
    list("target_contact_points", &Config::target_contact_points);
    num("target_port", &Config::target_port);
    str("target_username", &Config::target_username);
    str("target_password", &Config::target_password);
    str("target_local_datacenter", &Config::target_local_datacenter);
    num("target_connection_timeout_ms", &Config::target_connection_timeout_ms);
    str("proxy_listen_address", &Config::proxy_listen_address);
    num("proxy_listen_port", &Config::proxy_listen_port);
    num("proxy_request_timeout_ms", &Config::proxy_request_timeout_ms);
    num("proxy_max_client_connections", &Config::proxy_max_client_connections);
    num("proxy_max_stream_ids", &Config::proxy_max_stream_ids);
    flag("metrics_enabled", &Config::metrics_enabled);
    str("metrics_address", &Config::metrics_address);
    num("metrics_port", &Config::metrics_port);
    str("metrics_prefix", &Config::metrics_prefix);
    buckets("metrics_origin_latency_buckets_ms", &Config::metrics_origin_latency_buckets_ms);
    buckets("metrics_target_latency_buckets_ms", &Config::metrics_target_latency_buckets_ms);
    buckets("metrics_async_read_latency_buckets_ms",
            &Config::metrics_async_read_latency_buckets_ms);
    num("heartbeat_interval_ms", &Config::heartbeat_interval_ms);
    num("heartbeat_retry_interval_min_ms", &Config::heartbeat_retry_interval_min_ms);
    num("heartbeat_retry_interval_max_ms", &Config::heartbeat_retry_interval_max_ms);
    t["heartbeat_retry_backoff_factor"] = [](Config& c, const std::string& v) {
      c.heartbeat_retry_backoff_factor = to_double(v);
    };
    num("heartbeat_failure_threshold", &Config::heartbeat_failure_threshold);
    num("proxy_worker_threads", &Config::proxy_worker_threads);
    // Keys ZDM accepts that this proxy reads but does not act on yet: accepted, so a ZDM
    // configuration file loads unchanged.
    for (const char* k : {"tracing_enabled",
                          "tracing_rate_limit",
                          "tracing_request_id_key",
                          "system_queries_mode",
                          "forward_client_credentials_to_origin",
                          "origin_enable_host_assignment",
                          "target_enable_host_assignment",
                          "origin_secure_connect_bundle_path",
                          "target_secure_connect_bundle_path",
                          "origin_tls_server_ca_path",
                          "origin_tls_client_cert_path",
                          "origin_tls_client_key_path",
                          "target_tls_server_ca_path",
                          "target_tls_client_cert_path",
                          "target_tls_client_key_path",
                          "proxy_tls_ca_path",
                          "proxy_tls_cert_path",
                          "proxy_tls_key_path",
                          "proxy_tls_require_client_auth",
                          "request_write_queue_size_frames",
                          "request_write_buffer_size_bytes",
                          "request_read_buffer_size_bytes",
                          "response_write_queue_size_frames",
                          "response_write_buffer_size_bytes",
                          "response_read_buffer_size_bytes",
                          "request_response_max_workers",
                          "write_max_workers",
                          "read_max_workers",
                          "listener_max_workers",
                          "event_queue_size_frames",
                          "async_connector_write_queue_size_frames",
                          "async_connector_write_buffer_size_bytes"}) {
      t[k] = [](Config&, const std::string&) {};
    }
    return t;
  }();
  return table;
}

void apply(Config& c, const std::string& key, const std::string& value, const std::string& where) {
  const auto& table = setters();
  auto it = table.find(key);
  if (it == table.end()) throw ConfigError(where + ": unknown key '" + key + "'");
  try {
    it->second(c, value);
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
    std::string key = kv.first.as<std::string>();
    std::string where = source + ":" + std::to_string(kv.first.Mark().line + 1);
    const YAML::Node& v = kv.second;
    std::string value;
    if (v.IsSequence()) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) value += ",";
        value += v[i].as<std::string>();
      }
    } else if (v.IsScalar()) {
      value = v.as<std::string>();
    } else if (v.IsNull()) {
      value = "";
    } else {
      throw ConfigError(where + ": key '" + key + "': expected a scalar or a list");
    }
    apply(c, key, value, where);
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
    if (!setters().count(key)) continue;  // other ZDM_* variables are not ours to judge
    apply(c, key, value, "environment variable " + name);
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
  j["ProxyListenAddress"] = proxy_listen_address;
  j["ProxyListenPort"] = proxy_listen_port;
  j["ProxyRequestTimeoutMs"] = proxy_request_timeout_ms;
  j["ProxyMaxClientConnections"] = proxy_max_client_connections;
  j["ProxyMaxStreamIds"] = proxy_max_stream_ids;
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
  return j.dump();
}

}  // namespace zdm::proxy
