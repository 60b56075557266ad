#include <doctest/doctest.h>

#include "proxy/metrics.h"
#include "proxy/proxy.h"

using namespace zdm::proxy;

TEST_CASE("metrics render in the Prometheus text format with ZDM's names") {
  Config config;
  config.metrics_origin_latency_buckets_ms = {1, 10};
  Registry registry;
  ProxyMetrics m(config, registry);
  m.request_duration(RequestType::kReadsOrigin).observe(0.005);
  m.request_duration(RequestType::kReadsOrigin).observe(0.5);
  m.failed_writes_target().inc();
  m.client_connections().add(3);
  m.node("origin", "127.0.2.1:9042").requests_failed["write_timeout"]->inc();
  std::string text = registry.render();
  CHECK(text.find("# TYPE zdm_proxy_request_duration_seconds histogram\n") != std::string::npos);
  CHECK(text.find(
            "zdm_proxy_request_duration_seconds_bucket{type=\"reads_origin\",le=\"0.001\"} 0\n") !=
        std::string::npos);
  CHECK(text.find(
            "zdm_proxy_request_duration_seconds_bucket{type=\"reads_origin\",le=\"0.01\"} 1\n") !=
        std::string::npos);
  CHECK(text.find(
            "zdm_proxy_request_duration_seconds_bucket{type=\"reads_origin\",le=\"+Inf\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("zdm_proxy_request_duration_seconds_count{type=\"reads_origin\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("zdm_proxy_failed_writes_total{failed_on=\"target\"} 1\n") != std::string::npos);
  CHECK(text.find("zdm_client_connections_total 3\n") != std::string::npos);
  CHECK(text.find("zdm_origin_requests_failed_total{node=\"127.0.2.1:9042\",error=\"write_"
                  "timeout\"} 1\n") != std::string::npos);
  CHECK(text.find("process_resident_memory_bytes ") != std::string::npos);
}

TEST_CASE("readiness JSON matches ZDM's") {
  bool ready = true;
  ReadinessInput in;
  CHECK(readiness_json(in, ready) ==
        R"({"OriginStatus":null,"TargetStatus":null,"Status":"STARTUP"})");
  CHECK_FALSE(ready);
  in.started = true;
  in.origin = {"127.0.2.1:9042", 0, true, ""};
  in.target = {"NOT_CONNECTED", 1, false, ""};
  CHECK(
      readiness_json(in, ready) ==
      R"({"OriginStatus":{"Addr":"127.0.2.1:9042","CurrentFailureCount":0,"FailureCountThreshold":1,"Status":"UP"},)"
      R"("TargetStatus":{"Addr":"NOT_CONNECTED","CurrentFailureCount":1,"FailureCountThreshold":1,"Status":"DOWN"},)"
      R"("Status":"DOWN"})");
  CHECK_FALSE(ready);
  in.target = {"127.0.3.1:9042", 0, true, ""};
  readiness_json(in, ready);
  CHECK(ready);
}

TEST_CASE("the proxy exports its mode, its limits and its readiness") {
  Config config;
  config.read_mode = ReadMode::kDualAsyncOnSecondary;
  config.primary_cluster = Cluster::kTarget;
  config.proxy_max_client_connections = 250;
  Registry registry;
  ProxyMetrics m(config, registry);
  m.ready().set(1);
  std::string text = registry.render();
  CHECK(text.find("# TYPE zdm_proxy_info gauge\n") != std::string::npos);
  CHECK(text.find("zdm_proxy_info{version=\"" ZDM_VERSION
                  "\",read_mode=\"DUAL_ASYNC_ON_SECONDARY\",primary_cluster=\"TARGET\","
                  "target_consistency_level=\"\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("zdm_proxy_max_client_connections 250\n") != std::string::npos);
  CHECK(text.find("zdm_proxy_ready 1\n") != std::string::npos);
}

TEST_CASE("the standard process metrics replace ZDM's Go runtime ones") {
  Config config;
  Registry registry;
  ProxyMetrics m(config, registry);
  std::string text = registry.render();
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                           "process_open_fds ", "process_max_fds ", "process_start_time_seconds "})
    CHECK_MESSAGE(text.find(std::string("\n") + name) != std::string::npos, name);
}

TEST_CASE("the migration guides' metric names are served with the values of ZDM's series") {
  Config config;
  config.metrics_origin_latency_buckets_ms = {1, 10};
  config.metrics_target_latency_buckets_ms = {1, 10};
  Registry registry;
  ProxyMetrics m(config, registry);
  m.request_duration(RequestType::kWrites).observe(0.002);
  m.request_duration(RequestType::kWrites).observe(0.004);
  m.request_duration(RequestType::kReadsOrigin).observe(0.0005);
  m.failed_writes_target().inc(3);
  m.failed_reads(Cluster::kOrigin).inc();
  m.failed_connections(Cluster::kTarget).inc(2);
  m.node("origin", "127.0.2.1:9042").writes->observe(0.001);
  m.node("origin", "127.0.2.2:9042").writes->observe(0.001);
  m.node("origin", "127.0.2.2:9042").reads->observe(0.001);
  m.node("target", "127.0.3.1:9042").writes->observe(0.001);
  m.node("async", "127.0.3.1:9042").reads->observe(0.001);
  std::string text = registry.render();
  auto has = [&](const std::string& line) {
    CHECK_MESSAGE(text.find("\n" + line + "\n") != std::string::npos, line);
  };
  SUBCASE("ZDM's migration guide's names: requests, their latency and errors") {
    has("zdm_proxy_requests_total{type=\"writes\"} 2");
    has("zdm_proxy_requests_total{type=\"reads_origin\"} 1");
    has("zdm_proxy_requests_total{type=\"reads_target\"} 0");
    has("# TYPE zdm_proxy_requests_duration_seconds histogram");
    has("zdm_proxy_requests_duration_seconds_bucket{type=\"writes\",le=\"0.001\"} 0");
    has("zdm_proxy_requests_duration_seconds_bucket{type=\"writes\",le=\"0.01\"} 2");
    has("zdm_proxy_requests_duration_seconds_count{type=\"writes\"} 2");
    has("zdm_proxy_errors_total{type=\"writes\",cluster=\"target\"} 3");
    has("zdm_proxy_errors_total{type=\"reads\",cluster=\"origin\"} 1");
    has("zdm_proxy_errors_total{type=\"connections\",cluster=\"target\"} 2");
  }
  SUBCASE("the guides' names: requests per cluster, summed over nodes, async reads apart") {
    has("zdm_proxy_origin_requests_total{type=\"writes\"} 2");
    has("zdm_proxy_origin_requests_total{type=\"reads\"} 1");
    has("zdm_proxy_target_requests_total{type=\"writes\"} 1");
    has("zdm_proxy_target_requests_total{type=\"reads\"} 0");
    has("zdm_origin_requests_total{type=\"writes\"} 2");
  }
  SUBCASE("every family is declared once") {
    for (const char* family : {"zdm_proxy_requests_total", "zdm_proxy_errors_total",
                               "zdm_proxy_requests_duration_seconds", "zdm_proxy_info"}) {
      std::string decl = std::string("# TYPE ") + family + " ";
      auto first = text.find(decl);
      CHECK(first != std::string::npos);
      CHECK(text.find(decl, first + 1) == std::string::npos);
    }
  }
}
