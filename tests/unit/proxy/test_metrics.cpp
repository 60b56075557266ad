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
  in.origin = {"127.0.2.1:9042", 0, true};
  in.target = {"NOT_CONNECTED", 1, false};
  CHECK(
      readiness_json(in, ready) ==
      R"({"OriginStatus":{"Addr":"127.0.2.1:9042","CurrentFailureCount":0,"FailureCountThreshold":1,"Status":"UP"},)"
      R"("TargetStatus":{"Addr":"NOT_CONNECTED","CurrentFailureCount":1,"FailureCountThreshold":1,"Status":"DOWN"},)"
      R"("Status":"DOWN"})");
  CHECK_FALSE(ready);
  in.target = {"127.0.3.1:9042", 0, true};
  readiness_json(in, ready);
  CHECK(ready);
}
