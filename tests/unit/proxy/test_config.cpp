#include <doctest/doctest.h>

#include "proxy/config.h"

using namespace zdm::proxy;

namespace {
const std::string kMinimal =
    "origin_contact_points: 127.0.2.1,127.0.2.2\n"
    "target_contact_points: [127.0.3.1, 127.0.3.2]\n";
}

TEST_CASE("configuration from YAML") {
  SUBCASE("defaults are ZDM's") {
    Config c = parse_config_yaml(kMinimal, "zdm.yml");
    CHECK(c.primary_cluster == Cluster::kOrigin);
    CHECK(c.read_mode == ReadMode::kPrimaryOnly);
    CHECK(c.proxy_listen_port == 14002);
    CHECK(c.metrics_port == 14001);
    CHECK(c.proxy_max_stream_ids == 2048);
    CHECK(c.proxy_request_timeout_ms == 10000);
    CHECK(c.heartbeat_interval_ms == 30000);
    CHECK(c.metrics_origin_latency_buckets_ms.size() == 17);
    CHECK(c.origin_contact_points == std::vector<std::string>{"127.0.2.1", "127.0.2.2"});
    CHECK(c.target_contact_points == std::vector<std::string>{"127.0.3.1", "127.0.3.2"});
  }
  SUBCASE("enum values are case-insensitive") {
    Config c = parse_config_yaml(
        kMinimal + "primary_cluster: target\nread_mode: dual_async_on_secondary\n", "z.yml");
    CHECK(c.primary_cluster == Cluster::kTarget);
    CHECK(c.secondary() == Cluster::kOrigin);
    CHECK(c.read_mode == ReadMode::kDualAsyncOnSecondary);
  }
  SUBCASE("a bad value names the file, the line and the key") {
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "read_mode: SOMETIMES\n", "zdm.yml"),
                         "zdm.yml:3: key 'read_mode': expected PRIMARY_ONLY or "
                         "DUAL_ASYNC_ON_SECONDARY, got 'SOMETIMES'",
                         ConfigError);
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "proxy_listen_port: nine\n", "zdm.yml"),
                         "zdm.yml:3: key 'proxy_listen_port': expected an integer, got 'nine'",
                         ConfigError);
  }
  SUBCASE("an unknown key is an error") {
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "\nread_mdoe: PRIMARY_ONLY\n", "zdm.yml"),
                         "zdm.yml:4: unknown key 'read_mdoe'", ConfigError);
  }
  SUBCASE("missing contact points fail validation") {
    CHECK_THROWS_WITH_AS(parse_config_yaml("target_contact_points: a\n", "zdm.yml"),
                         "zdm.yml: key 'origin_contact_points': required, none given", ConfigError);
  }
  SUBCASE("topology index must be within the addresses") {
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(
            kMinimal + "proxy_topology_addresses: 127.0.1.1,127.0.1.2\nproxy_topology_index: 2\n",
            "zdm.yml"),
        "zdm.yml: key 'proxy_topology_index': must be less than the number of "
        "proxy_topology_addresses (2)",
        ConfigError);
  }
  SUBCASE("malformed YAML names the line") {
    CHECK_THROWS_AS(parse_config_yaml("origin_contact_points: [a,\n", "zdm.yml"), ConfigError);
  }
}

TEST_CASE("configuration from ZDM_* environment variables") {
  std::map<std::string, std::string> env = {
      {"ZDM_ORIGIN_CONTACT_POINTS", "10.0.0.1"},
      {"ZDM_TARGET_CONTACT_POINTS", "10.0.0.2"},
      {"ZDM_PRIMARY_CLUSTER", "TARGET"},
      {"ZDM_PROXY_TOPOLOGY_ADDRESSES", "127.0.1.1, 127.0.1.2"},
      {"ZDM_PROXY_TOPOLOGY_INDEX", "1"},
      {"PATH", "/usr/bin"}};
  Config c = load_config_env(env);
  CHECK(c.primary_cluster == Cluster::kTarget);
  CHECK(c.own_topology_address() == "127.0.1.2");
  env["ZDM_METRICS_PORT"] = "port";
  CHECK_THROWS_WITH_AS(
      load_config_env(env),
      "environment variable ZDM_METRICS_PORT: key 'metrics_port': expected an integer, got 'port'",
      ConfigError);
}

TEST_CASE("the configuration log omits passwords") {
  Config c = parse_config_yaml(kMinimal + "origin_username: cassandra\norigin_password: s3cret\n",
                               "z.yml");
  std::string json = c.to_log_json();
  CHECK(json.find("s3cret") == std::string::npos);
  CHECK(json.find("\"OriginUsername\":\"cassandra\"") != std::string::npos);
  CHECK(json.rfind("{\"PrimaryCluster\":\"ORIGIN\",\"ReadMode\":\"PRIMARY_ONLY\"", 0) == 0);
}
