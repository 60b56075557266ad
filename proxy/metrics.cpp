#include "proxy/metrics.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/cql/messages.h"

namespace zdm::proxy {

const char* error_label(int32_t code) {
  using cql::ErrorCode;
  switch (static_cast<ErrorCode>(code)) {
    case ErrorCode::kReadTimeout:
      return "read_timeout";
    case ErrorCode::kReadFailure:
      return "read_failure";
    case ErrorCode::kWriteTimeout:
      return "write_timeout";
    case ErrorCode::kWriteFailure:
      return "write_failure";
    case ErrorCode::kOverloaded:
      return "overloaded";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kUnprepared:
      return "unprepared";
    default:
      return "other";
  }
}

namespace {
std::vector<double> to_seconds(const std::vector<double>& ms) {
  std::vector<double> s;
  for (double v : ms) s.push_back(v / 1000.0);
  return s;
}
}  // namespace

ProxyMetrics::ProxyMetrics(const Config& config, Registry& registry)
    : config_(config), registry_(registry) {
  const std::string p = config.metrics_prefix + "_";
  auto origin_b = to_seconds(config.metrics_origin_latency_buckets_ms);
  auto target_b = to_seconds(config.metrics_target_latency_buckets_ms);
  const std::string dur = p + "proxy_request_duration_seconds";
  const std::string dur_help = "Histogram that tracks the latency of requests at proxy entry point";
  duration_[0] = &registry.histogram(dur, dur_help, origin_b, "type=\"reads_origin\"");
  duration_[1] = &registry.histogram(dur, dur_help, target_b, "type=\"reads_target\"");
  duration_[2] = &registry.histogram(dur, dur_help, origin_b, "type=\"writes\"");
  const std::string inf = p + "proxy_inflight_requests_total";
  const std::string inf_help = "Number of requests currently in flight in the proxy";
  inflight_[0] = &registry.gauge(inf, inf_help, "type=\"reads_origin\"");
  inflight_[1] = &registry.gauge(inf, inf_help, "type=\"reads_target\"");
  inflight_[2] = &registry.gauge(inf, inf_help, "type=\"writes\"");
  const std::string fr = p + "proxy_failed_reads_total";
  failed_reads_[0] = &registry.counter(fr, "Running total of failed reads", "cluster=\"origin\"");
  failed_reads_[1] = &registry.counter(fr, "Running total of failed reads", "cluster=\"target\"");
  const std::string fw = p + "proxy_failed_writes_total";
  const std::string fw_help = "Running total of failed writes";
  failed_writes_[0] = &registry.counter(fw, fw_help, "failed_on=\"origin\"");
  failed_writes_[1] = &registry.counter(fw, fw_help, "failed_on=\"target\"");
  failed_writes_[2] = &registry.counter(fw, fw_help, "failed_on=\"both\"");
  const std::string fc = p + "proxy_failed_connections_total";
  const std::string fc_help = "Running total of failed requests due to inability to connect";
  failed_connections_[0] = &registry.counter(fc, fc_help, "cluster=\"origin\"");
  failed_connections_[1] = &registry.counter(fc, fc_help, "cluster=\"target\"");
  client_connections_ = &registry.gauge(p + "client_connections_total",
                                        "Number of client connections currently open");
  pscache_entries_ = &registry.gauge(p + "pscache_entries_total",
                                     "Number of entries in the prepared statements cache");
  pscache_miss_ = &registry.counter(p + "pscache_miss_total",
                                    "Running total of prepared statement cache misses");
  pscache_evictions_ = &registry.counter(
      p + "pscache_evictions_total",
      "Running total of statements evicted from the prepared statements cache (least recently "
      "used first)");
  const char* reasons[kClientErrors] = {
      "overloaded",     "server_error",       "protocol_error",    "handshake_timeout",
      "idle_timeout",   "unanswered_streams", "handshake_evicted", "partial_frame_timeout",
      "memory_ceiling", "node_failed"};
  for (std::size_t i = 0; i < kClientErrors; ++i)
    client_errors_[i] =
        &registry.counter(p + "proxy_client_errors_total",
                          "Running total of errors the proxy answered or caused itself, by reason",
                          std::string("reason=\"") + reasons[i] + "\"");
  // Not in ZDM: what the Migration dashboard and the alerts need to know about each proxy.
  registry
      .gauge(p + "proxy_info",
             "Constant 1; the labels are this proxy's version and migration settings",
             fmt::format("version=\"{}\",read_mode=\"{}\",primary_cluster=\"{}\","
                         "target_consistency_level=\"{}\"",
                         ZDM_VERSION,
                         config.read_mode == ReadMode::kPrimaryOnly ? "PRIMARY_ONLY"
                                                                    : "DUAL_ASYNC_ON_SECONDARY",
                         cluster_name(config.primary_cluster),
                         config.target_consistency_level
                             ? cql::consistency_name(
                                   static_cast<cql::Consistency>(*config.target_consistency_level))
                             : ""))
      .set(1);
  registry
      .gauge(p + "proxy_max_client_connections",
             "The configured proxy_max_client_connections: connections beyond it are refused")
      .set(config.proxy_max_client_connections);
  ready_ = &registry.gauge(p + "proxy_ready",
                           "1 while /health/readiness answers 200 (both control connections up and "
                           "not shutting down), else 0");
  registry.add_collector([this](std::string& out) { render_guide_aliases(out); });
}

void ProxyMetrics::render_guide_aliases(std::string& out) {
  const std::string p = config_.metrics_prefix + "_";
  static constexpr const char* kTypes[] = {"reads_origin", "reads_target", "writes"};
  auto family = [&](const std::string& name, const char* type, const std::string& help) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };

  family(p + "proxy_requests_total", "counter",
         "Requests answered by the proxy, by type (ZDM migration guide's name; the count of " + p +
             "proxy_request_duration_seconds)");
  for (int t = 0; t < 3; ++t)
    out += fmt::format("{}proxy_requests_total{{type=\"{}\"}} {}\n", p, kTypes[t],
                       duration_[t]->count());

  const std::string alias = p + "proxy_requests_duration_seconds";
  family(alias, "histogram",
         "Latency of requests at the proxy entry point (ZDM migration guide's name; the same "
         "series as " +
             p + "proxy_request_duration_seconds)");
  for (int t = 0; t < 3; ++t)
    render_histogram(out, alias, fmt::format("type=\"{}\"", kTypes[t]), *duration_[t]);

  family(p + "proxy_errors_total", "counter",
         "Requests that failed at the proxy, by type and cluster (ZDM migration guide's name; the "
         "sum of " +
             p + "proxy_failed_{reads,writes,connections}_total)");
  for (int c = 0; c < 2; ++c) {
    const char* cluster = c == 0 ? "origin" : "target";
    out += fmt::format("{}proxy_errors_total{{type=\"reads\",cluster=\"{}\"}} {}\n", p, cluster,
                       failed_reads_[c]->value());
  }
  for (int c = 0; c < 3; ++c) {
    const char* cluster = c == 0 ? "origin" : c == 1 ? "target" : "both";
    out += fmt::format("{}proxy_errors_total{{type=\"writes\",cluster=\"{}\"}} {}\n", p, cluster,
                       failed_writes_[c]->value());
  }
  for (int c = 0; c < 2; ++c) {
    const char* cluster = c == 0 ? "origin" : "target";
    out += fmt::format("{}proxy_errors_total{{type=\"connections\",cluster=\"{}\"}} {}\n", p,
                       cluster, failed_connections_[c]->value());
  }

  // Requests the proxy sent to each cluster and got an answer to, summed over its nodes.
  uint64_t sent[2][2] = {};  // [origin, target][reads, writes]
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, m] : nodes_) {
      int c = key.rfind("origin|", 0) == 0 ? 0 : key.rfind("target|", 0) == 0 ? 1 : -1;
      if (c < 0) continue;
      sent[c][0] += m->reads->count();
      sent[c][1] += m->writes->count();
    }
  }
  const std::pair<std::string, std::string> cluster_names[] = {
      {p + "proxy_origin_requests_total", "ZDM migration guide's name"},
      {p + "proxy_target_requests_total", "ZDM migration guide's name"},
      {p + "origin_requests_total", "a ZDM migration lab's name"}};
  for (int i = 0; i < 3; ++i) {
    const int c = i == 1 ? 1 : 0;
    const char* cluster = c == 0 ? "origin" : "target";
    family(cluster_names[i].first, "counter",
           fmt::format("Requests sent to {} and answered, by type ({}; the count of {}{}_request_"
                       "duration_seconds summed over nodes)",
                       cluster, cluster_names[i].second, p, cluster));
    out += fmt::format("{}{{type=\"reads\"}} {}\n", cluster_names[i].first, sent[c][0]);
    out += fmt::format("{}{{type=\"writes\"}} {}\n", cluster_names[i].first, sent[c][1]);
  }
}

NodeMetrics& ProxyMetrics::node(const std::string& kind, const std::string& node) {
  std::lock_guard lock(mu_);
  auto& slot = nodes_[kind + "|" + node];
  if (slot) return *slot;
  slot = std::make_unique<NodeMetrics>();
  const std::string p = config_.metrics_prefix + "_" + kind + "_";
  const std::string nl = "node=\"" + node + "\"";
  const auto& ms = kind == "origin"   ? config_.metrics_origin_latency_buckets_ms
                   : kind == "target" ? config_.metrics_target_latency_buckets_ms
                                      : config_.metrics_async_read_latency_buckets_ms;
  auto b = to_seconds(ms);
  const std::string dh = "Histogram that tracks the latency of " + kind + " requests";
  slot->reads = &registry_.histogram(p + "request_duration_seconds", dh, b, nl + ",type=\"reads\"");
  if (kind != "async")
    slot->writes =
        &registry_.histogram(p + "request_duration_seconds", dh, b, nl + ",type=\"writes\"");
  slot->connections =
      &registry_.gauge(p + "connections_total", "Number of connections to " + kind, nl);
  slot->failed_connections = &registry_.counter(
      p + "failed_connections_total", "Running total of failed connection attempts to " + kind, nl);
  slot->used_stream_ids =
      &registry_.gauge(p + "used_stream_ids_total", "Number of used stream ids on " + kind, nl);
  if (kind == "async")
    slot->inflight = &registry_.gauge(config_.metrics_prefix + "_async_inflight_requests_total",
                                      "Number of async requests currently in flight", nl);
  for (const char* e : {"client_timeout", "read_timeout", "read_failure", "write_timeout",
                        "write_failure", "overloaded", "unavailable", "unprepared", "other"}) {
    slot->requests_failed[e] = &registry_.counter(p + "requests_failed_total",
                                                  "Running total of failed requests on " + kind,
                                                  nl + ",error=\"" + e + "\"");
  }
  return *slot;
}

}  // namespace zdm::proxy
