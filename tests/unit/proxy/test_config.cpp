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
  SUBCASE("an unknown key is a warning naming the closest known key") {
    Config c = parse_config_yaml(kMinimal + "\nread_mdoe: PRIMARY_ONLY\n", "zdm.yml");
    REQUIRE(c.warnings.size() == 1);
    CHECK(c.warnings[0] ==
          "zdm.yml:4: unknown key 'read_mdoe' (did you mean 'read_mode'?), ignored");
  }
  SUBCASE("values out of range name the key") {
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "proxy_request_timeout_ms: 4294967297\n", "zdm.yml"),
        "zdm.yml:3: key 'proxy_request_timeout_ms': 4294967297 is out of range (1 to 86400000)",
        ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "proxy_max_stream_ids: 40000\n", "zdm.yml"),
        "zdm.yml:3: key 'proxy_max_stream_ids': 40000 is out of range (1 to 32768)", ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "metrics_origin_latency_buckets_ms: 1,10,5\n", "zdm.yml"),
        "zdm.yml:3: key 'metrics_origin_latency_buckets_ms': buckets must be in increasing order "
        "(5 after 10)",
        ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "proxy_topology_addresses: 127.0.1.1,proxy2.example\n",
                          "zdm.yml"),
        "zdm.yml:3: key 'proxy_topology_addresses': 'proxy2.example' is not an IP address (the "
        "proxies' addresses must be IP literals, in the same order on every proxy)",
        ConfigError);
    CHECK(parse_config_yaml(kMinimal + "proxy_max_stream_ids: 32768\n", "z").proxy_max_stream_ids ==
          32768);
  }
  SUBCASE("a ZDM key this proxy does not implement is refused unless at its default") {
    CHECK_NOTHROW(parse_config_yaml(kMinimal + "tracing_enabled: false\nread_max_workers: -1\n"
                                               "origin_secure_connect_bundle_path: \"\"\n",
                                    "zdm.yml"));
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "origin_secure_connect_bundle_path: /b.zip\n", "zdm.yml"),
        "zdm.yml:3: key 'origin_secure_connect_bundle_path': not supported by zdm-proxy (Astra "
        "secure connect bundles; use origin_contact_points and origin_tls_*); remove the key",
        ConfigError);
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "read_max_workers: 8\n", "zdm.yml"),
                         "zdm.yml:3: key 'read_max_workers': not supported by zdm-proxy (Go "
                         "worker pools; use proxy_worker_threads); remove the key or set it to -1",
                         ConfigError);
  }
  SUBCASE("keys that take effect") {
    Config c = parse_config_yaml(
        kMinimal +
            "system_queries_mode: target\nforward_client_credentials_to_origin: true\n"
            "target_enable_host_assignment: false\ncontrol_conn_max_protocol_version: 4\n",
        "z.yml");
    CHECK(c.system_queries_mode == Cluster::kTarget);
    CHECK(c.forward_client_credentials_to_origin);
    CHECK(!c.enable_host_assignment(Cluster::kTarget));
    CHECK(c.enable_host_assignment(Cluster::kOrigin));
    CHECK(c.max_control_version() == 4);
    CHECK(parse_config_yaml(kMinimal, "z").max_control_version() == 0x42);
  }
  SUBCASE("TLS settings that go together") {
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "target_tls_client_cert_path: /c.pem\n", "zdm.yml"),
        "zdm.yml: key 'target_tls_server_ca_path': required with "
        "target_tls_client_cert_path/_key_path",
        ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "proxy_tls_require_client_auth: true\n"
                                     "proxy_tls_cert_path: /c\nproxy_tls_key_path: /k\n",
                          "zdm.yml"),
        "zdm.yml: key 'proxy_tls_ca_path': required with proxy_tls_require_client_auth",
        ConfigError);
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
      {"ZDM_READ_MODEE", "PRIMARY_ONLY"},
      {"PATH", "/usr/bin"}};
  Config c = load_config_env(env);
  REQUIRE(c.warnings.size() == 1);
  CHECK(c.warnings[0] ==
        "environment variable ZDM_READ_MODEE: unknown variable ZDM_READ_MODEE (did you mean "
        "'read_mode'?), ignored");
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

TEST_CASE("the configuration log shows bytes that are not UTF-8 as U+FFFD") {
  // Found by fuzz_config (tests/fuzz/corpus/config/crash-e883923f01ba9e4daa6f43a1d9e4a3a116d631b8):
  // json's dump() threw type_error.316 out of main(), which logs the configuration at start.
  Config c = parse_config_yaml(kMinimal + "origin_local_datacenter: caf\xe9\n", "z.yml");
  CHECK(c.to_log_json().find("\"OriginLocalDatacenter\":\"caf\xef\xbf\xbd\"") != std::string::npos);
}

TEST_CASE("YAML structures that are not keys and values are ConfigErrors") {
  // Found by fuzz_config (tests/fuzz/corpus/config/crash-334549de7ea170655a4af0a5751721e67777543e):
  // a mapping or a list as a key, or as a list item, made yaml-cpp throw BadConversion past
  // main(), which catches ConfigError only.
  SUBCASE("the fuzzer's input") {
    CHECK_THROWS_AS(parse_config_yaml("?\n ?\n!\xfc", "zdm.yml"), ConfigError);
  }
  SUBCASE("a list or a mapping as a key") {
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "? [read_mode]\n: PRIMARY_ONLY\n", "zdm.yml"),
                         "zdm.yml:3: expected a key name", ConfigError);
    CHECK_THROWS_WITH_AS(parse_config_yaml("{a: 1}: 2\n", "zdm.yml"),
                         "zdm.yml:1: expected a key name", ConfigError);
  }
  SUBCASE("a list or a mapping as a list item") {
    CHECK_THROWS_WITH_AS(
        parse_config_yaml("origin_contact_points: [127.0.2.1, [127.0.2.2]]\n", "zdm.yml"),
        "zdm.yml:1: key 'origin_contact_points': expected a list of values, item 2 is not one",
        ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "metrics_origin_latency_buckets_ms:\n  - {a: 1}\n", "zdm.yml"),
        "zdm.yml:3: key 'metrics_origin_latency_buckets_ms': expected a list of values, item 1 "
        "is not one",
        ConfigError);
  }
  SUBCASE("a null list item is nothing, as a null value is") {
    Config c =
        parse_config_yaml(kMinimal + "proxy_topology_addresses: [127.0.1.1, ~]\n", "zdm.yml");
    CHECK(c.proxy_topology_addresses == std::vector<std::string>{"127.0.1.1"});
  }
}

namespace {
// parse_config_yaml's error on `text` as zdm.yml, or "" when it is accepted.
std::string error_of(const std::string& text) {
  try {
    parse_config_yaml(text, "zdm.yml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("a value of the wrong YAML type names the file, the line, the key and the type") {
  // yaml-cpp reads any node; the type a key takes is checked here, at --check-config and at
  // start, not when the value is first used.
  SUBCASE("a string key given a sequence or a mapping; a secret's value is never shown") {
    std::string m = error_of(kMinimal + "origin_username: u\norigin_password: [s3cret, other]\n");
    CHECK(m == "zdm.yml:4: key 'origin_password': expected a string, got a sequence");
    CHECK(m.find("s3cret") == std::string::npos);
    CHECK(m.find("other") == std::string::npos);
    m = error_of(kMinimal + "proxy_admin_token: {t0ken: x}\n");
    CHECK(m == "zdm.yml:3: key 'proxy_admin_token': expected a string, got a mapping");
    CHECK(m.find("t0ken") == std::string::npos);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "origin_local_datacenter:\n  - dc1\n", "zdm.yml"),
        "zdm.yml:3: key 'origin_local_datacenter': expected a string, got a sequence", ConfigError);
  }
  SUBCASE("a number key given a sequence, a mapping or a non-number") {
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "origin_port: [9042]\n", "zdm.yml"),
                         "zdm.yml:3: key 'origin_port': expected an integer, got a sequence",
                         ConfigError);
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "metrics_port: {port: 1}\n", "zdm.yml"),
                         "zdm.yml:3: key 'metrics_port': expected an integer, got a mapping",
                         ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "heartbeat_retry_backoff_factor: [2]\n", "zdm.yml"),
        "zdm.yml:3: key 'heartbeat_retry_backoff_factor': expected a number, got a sequence",
        ConfigError);
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "origin_port: 9042.5\n", "zdm.yml"),
                         "zdm.yml:3: key 'origin_port': expected an integer, got '9042.5'",
                         ConfigError);
  }
  SUBCASE("a boolean key given a sequence or a mapping") {
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "metrics_enabled: [true]\n", "zdm.yml"),
                         "zdm.yml:3: key 'metrics_enabled': expected true or false, got a sequence",
                         ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "origin_tls_verify_hostname: {on: yes}\n", "zdm.yml"),
        "zdm.yml:3: key 'origin_tls_verify_hostname': expected true or false, got a mapping",
        ConfigError);
  }
  SUBCASE("an enumerated key given a sequence names its values") {
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "primary_cluster: [ORIGIN]\n", "zdm.yml"),
                         "zdm.yml:3: key 'primary_cluster': expected ORIGIN or TARGET, got a "
                         "sequence",
                         ConfigError);
  }
  SUBCASE("a list key takes a sequence or a comma-separated string, not a mapping") {
    CHECK_THROWS_WITH_AS(
        parse_config_yaml("origin_contact_points: {127.0.2.1: 9042}\ntarget_contact_points: b\n",
                          "zdm.yml"),
        "zdm.yml:1: key 'origin_contact_points': expected a list or a comma-separated string, "
        "got a mapping",
        ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "metrics_target_latency_buckets_ms:\n  low: 1\n", "zdm.yml"),
        "zdm.yml:3: key 'metrics_target_latency_buckets_ms': expected a list or a "
        "comma-separated string, got a mapping",
        ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "blocked_protocol_versions: {v2: true}\n", "zdm.yml"),
        "zdm.yml:3: key 'blocked_protocol_versions': expected a list or a comma-separated "
        "string, got a mapping",
        ConfigError);
    Config c = parse_config_yaml(kMinimal +
                                     "blocked_protocol_versions: [V2, 3]\n"
                                     "metrics_target_latency_buckets_ms: 1, 5\n"
                                     "proxy_topology_addresses:\n  - 127.0.1.1\n",
                                 "zdm.yml");
    CHECK(c.blocked_protocol_versions == std::vector<std::string>{"V2", "3"});
    CHECK(c.metrics_target_latency_buckets_ms == std::vector<double>{1, 5});
    CHECK(c.proxy_topology_addresses == std::vector<std::string>{"127.0.1.1"});
  }
  SUBCASE("an unknown key is ignored whatever its value") {
    Config c = parse_config_yaml(kMinimal + "read_mdoe: {a: [1]}\n", "zdm.yml");
    REQUIRE(c.warnings.size() == 1);
    CHECK(c.warnings[0] ==
          "zdm.yml:3: unknown key 'read_mdoe' (did you mean 'read_mode'?), ignored");
  }
}

TEST_CASE("a null value (`key:` with nothing) is an empty one") {
  SUBCASE("a string key that may be empty: unset") {
    Config c = parse_config_yaml(kMinimal +
                                     "origin_username:\norigin_password:\n"
                                     "origin_tls_server_ca_path: ~\nproxy_admin_token:\n",
                                 "zdm.yml");
    CHECK(c.origin_username.empty());
    CHECK(c.origin_password.empty());
    CHECK(c.origin_tls_server_ca_path.empty());
    CHECK(c.proxy_admin_token.empty());
  }
  SUBCASE("a string key that must not be empty: refused, as an empty string is") {
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "proxy_listen_address:\n", "zdm.yml"),
                         "zdm.yml:3: key 'proxy_listen_address': must not be empty", ConfigError);
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "metrics_address: \"\"\n", "zdm.yml"),
                         "zdm.yml:3: key 'metrics_address': must not be empty", ConfigError);
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "metrics_prefix: ~\n", "zdm.yml"),
                         "zdm.yml:3: key 'metrics_prefix': must not be empty", ConfigError);
  }
  SUBCASE("a number, boolean or enumerated key: refused") {
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "origin_port:\n", "zdm.yml"),
                         "zdm.yml:3: key 'origin_port': expected an integer, got ''", ConfigError);
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "metrics_enabled:\n", "zdm.yml"),
                         "zdm.yml:3: key 'metrics_enabled': expected true or false, got ''",
                         ConfigError);
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "read_mode:\n", "zdm.yml"),
                         "zdm.yml:3: key 'read_mode': expected PRIMARY_ONLY or "
                         "DUAL_ASYNC_ON_SECONDARY, got ''",
                         ConfigError);
  }
  SUBCASE("a list key: an empty list (contact points are then missing)") {
    CHECK(parse_config_yaml(kMinimal + "proxy_topology_addresses:\n", "zdm.yml")
              .proxy_topology_addresses.empty());
    CHECK_THROWS_WITH_AS(
        parse_config_yaml("origin_contact_points:\ntarget_contact_points: b\n", "zdm.yml"),
        "zdm.yml: key 'origin_contact_points': required, none given", ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "metrics_origin_latency_buckets_ms:\n", "zdm.yml"),
        "zdm.yml:3: key 'metrics_origin_latency_buckets_ms': expected a comma-separated list "
        "of milliseconds",
        ConfigError);
  }
}

TEST_CASE("the budgets of issue 19: handshaking connections, partial frames, memory ceiling") {
  SUBCASE("defaults") {
    Config c = parse_config_yaml(kMinimal, "zdm.yml");
    CHECK(c.proxy_max_handshaking_connections == 0);
    CHECK(c.max_handshaking_connections() == c.proxy_max_client_connections);
    CHECK(c.proxy_partial_frame_timeout_ms == 5000);
    CHECK(c.proxy_idle_timeout_ms == 0);
    CHECK(c.proxy_max_memory_bytes == 0);
  }
  SUBCASE("values take effect, from YAML and from the environment") {
    Config c = parse_config_yaml(kMinimal +
                                     "proxy_max_handshaking_connections: 64\n"
                                     "proxy_partial_frame_timeout_ms: 0\n"
                                     "proxy_max_memory_bytes: 157286400\n",
                                 "zdm.yml");
    CHECK(c.max_handshaking_connections() == 64);
    CHECK(c.proxy_partial_frame_timeout_ms == 0);
    CHECK(c.proxy_max_memory_bytes == 157286400);
    Config e = load_config_env({{"ZDM_ORIGIN_CONTACT_POINTS", "a"},
                                {"ZDM_TARGET_CONTACT_POINTS", "b"},
                                {"ZDM_PROXY_MAX_MEMORY_BYTES", "8589934592"},
                                {"ZDM_PROXY_MAX_HANDSHAKING_CONNECTIONS", "10"},
                                {"ZDM_PROXY_PARTIAL_FRAME_TIMEOUT_MS", "2000"}});
    CHECK(e.proxy_max_memory_bytes == 8589934592LL);  // over 2^31: a 64-bit key
    CHECK(e.max_handshaking_connections() == 10);
    CHECK(e.proxy_partial_frame_timeout_ms == 2000);
    CHECK(e.to_log_json().find("\"ProxyMaxMemoryBytes\":8589934592") != std::string::npos);
  }
  SUBCASE("bad values are refused naming the key") {
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "proxy_max_memory_bytes: 1000000\n", "zdm.yml"),
        "zdm.yml:3: key 'proxy_max_memory_bytes': 1000000 is out of range (0 for the default, or "
        "67108864 to 1125899906842624)",
        ConfigError);
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "proxy_max_memory_bytes: -1\n", "zdm.yml"),
                         "zdm.yml:3: key 'proxy_max_memory_bytes': -1 is out of range (0 for the "
                         "default, or 67108864 to 1125899906842624)",
                         ConfigError);
    CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "proxy_max_memory_bytes: 2GB\n", "zdm.yml"),
                         "zdm.yml:3: key 'proxy_max_memory_bytes': expected an integer, got '2GB'",
                         ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "proxy_max_handshaking_connections: -5\n", "zdm.yml"),
        "zdm.yml:3: key 'proxy_max_handshaking_connections': -5 is out of range (0 to 1000000)",
        ConfigError);
    CHECK_THROWS_WITH_AS(
        parse_config_yaml(kMinimal + "proxy_partial_frame_timeout_ms: [1]\n", "zdm.yml"),
        "zdm.yml:3: key 'proxy_partial_frame_timeout_ms': expected an integer, got a sequence",
        ConfigError);
    CHECK_THROWS_WITH_AS(load_config_env({{"ZDM_ORIGIN_CONTACT_POINTS", "a"},
                                          {"ZDM_TARGET_CONTACT_POINTS", "b"},
                                          {"ZDM_PROXY_PARTIAL_FRAME_TIMEOUT_MS", "soon"}}),
                         "environment variable ZDM_PROXY_PARTIAL_FRAME_TIMEOUT_MS: key "
                         "'proxy_partial_frame_timeout_ms': expected an integer, got 'soon'",
                         ConfigError);
  }
}

TEST_CASE("target_consistency_level: a regular level for target, or empty for the client's") {
  CHECK(!parse_config_yaml(kMinimal, "z.yml").target_consistency_level);
  CHECK(!parse_config_yaml(kMinimal + "target_consistency_level:\n", "z.yml")
             .target_consistency_level);
  CHECK(parse_config_yaml(kMinimal + "target_consistency_level: ONE\n", "z.yml")
            .target_consistency_level == uint16_t{0x0001});
  CHECK(parse_config_yaml(kMinimal + "target_consistency_level: local_quorum\n", "z.yml")
            .target_consistency_level == uint16_t{0x0006});
  CHECK(parse_config_yaml(kMinimal + "target_consistency_level: LOCAL_ONE\n", "z.yml")
            .target_consistency_level == uint16_t{0x000A});
  CHECK_THROWS_WITH_AS(
      parse_config_yaml(kMinimal + "target_consistency_level: SERIAL\n", "z.yml"),
      "z.yml:3: key 'target_consistency_level': SERIAL is a serial consistency, which the proxy "
      "leaves as the client set it; expected ANY, ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, "
      "EACH_QUORUM or LOCAL_ONE",
      ConfigError);
  CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "target_consistency_level: MOST\n", "z.yml"),
                       "z.yml:3: key 'target_consistency_level': expected ANY, ONE, TWO, THREE, "
                       "QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM or LOCAL_ONE, got 'MOST'",
                       ConfigError);
  std::map<std::string, std::string> env = {{"ZDM_ORIGIN_CONTACT_POINTS", "10.0.0.1"},
                                            {"ZDM_TARGET_CONTACT_POINTS", "10.0.0.2"},
                                            {"ZDM_TARGET_CONSISTENCY_LEVEL", "ONE"}};
  CHECK(load_config_env(env).target_consistency_level == uint16_t{0x0001});
  CHECK(parse_config_yaml(kMinimal + "target_consistency_level: ONE\n", "z.yml")
            .to_log_json()
            .find("\"TargetConsistencyLevel\":\"ONE\"") != std::string::npos);
}

TEST_CASE(
    "target protection keys: isolate needs a journal and a target timeout under the request's") {
  const Config c = parse_config_yaml(kMinimal, "z.yml");
  CHECK(c.target_failure_mode == TargetFailureMode::kFail);
  CHECK(c.proxy_journal_dir.empty());
  const std::string iso = kMinimal + "target_failure_mode: isolate\n";
  CHECK_THROWS_WITH_AS(
      parse_config_yaml(iso, "z.yml"),
      doctest::Contains("key 'target_failure_mode': isolate needs proxy_journal_dir"), ConfigError);
  const Config ok = parse_config_yaml(iso + "proxy_journal_dir: /var/lib/zdm/journal\n", "z.yml");
  CHECK(ok.target_failure_mode == TargetFailureMode::kIsolate);
  CHECK(ok.to_log_json().find("\"TargetFailureMode\":\"isolate\"") != std::string::npos);
  CHECK_THROWS_WITH_AS(
      parse_config_yaml(iso + "proxy_journal_dir: /j\ntarget_write_timeout_ms: 20000\n", "z.yml"),
      doctest::Contains(
          "key 'target_write_timeout_ms': must be less than proxy_request_timeout_ms"),
      ConfigError);
  CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "target_failure_mode: drop\n", "z.yml"),
                       doctest::Contains("expected fail or isolate, got 'drop'"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_config_yaml(kMinimal + "proxy_journal_max_bytes: 10\n", "z.yml"),
                       doctest::Contains("key 'proxy_journal_max_bytes'"), ConfigError);
  std::map<std::string, std::string> env = {{"ZDM_ORIGIN_CONTACT_POINTS", "10.0.0.1"},
                                            {"ZDM_TARGET_CONTACT_POINTS", "10.0.0.2"},
                                            {"ZDM_TARGET_FAILURE_MODE", "isolate"},
                                            {"ZDM_PROXY_JOURNAL_DIR", "/j"}};
  CHECK(load_config_env(env).target_failure_mode == TargetFailureMode::kIsolate);
}
