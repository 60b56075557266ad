#include "inventory/zdm_vars.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

namespace zdm::deploy {
namespace {

constexpr auto H = VarSupport::Honoured;
constexpr auto N = VarSupport::NotSupported;
constexpr auto O = VarSupport::Ours;
constexpr auto A = VarSupport::Ansible;

const char* kContainers =
    "zdm-deploy runs no containers: it uploads the zdm-proxy binary (zdm_proxy_binary) and "
    "supervises it (zdm_service_manager)";
const char* kAstra =
    "Astra secure connect bundles are not supported by zdm-proxy: set *_contact_points and the "
    "*_tls_* files";
const char* kLayout =
    "zdm-deploy's host layout is zdm_proxy_home_dir/releases/<id>/zdm-proxy.yml "
    "(docs/deployer.md)";
const char* kMonitoringPackages =
    "the monitoring stack runs Debian's prometheus packages under zdm-supervise, not containers "
    "(grafana_version pins Grafana)";

}  // namespace

const std::vector<KnownVar>& known_variables() {
  static const std::vector<KnownVar> vars = {
      // zdm_proxy_container_config.yml (4)
      {"zdm_proxy_image", N, "zdm_proxy_container_config.yml", kContainers},
      {"create_containers", N, "zdm_proxy_container_config.yml", kContainers},
      {"zdm_proxy_container_name", N, "zdm_proxy_container_config.yml", kContainers},
      {"zdm_proxy_config_mode", N, "zdm_proxy_container_config.yml",
       "zdm-deploy always writes the configuration as a YAML file (mode 0600), ZDM's config_file "
       "mode; env_vars is not supported"},
      // zdm_proxy_cluster_config.yml (14)
      {"origin_username", H, "zdm_proxy_cluster_config.yml", "origin_username"},
      {"origin_password", H, "zdm_proxy_cluster_config.yml", "origin_password (secret)"},
      {"origin_astra_secure_connect_bundle_path", N, "zdm_proxy_cluster_config.yml", kAstra},
      {"origin_astra_db_id", N, "zdm_proxy_cluster_config.yml", kAstra},
      {"origin_astra_token", N, "zdm_proxy_cluster_config.yml", kAstra},
      {"origin_contact_points", H, "zdm_proxy_cluster_config.yml", "origin_contact_points"},
      {"origin_port", H, "zdm_proxy_cluster_config.yml", "origin_port"},
      {"target_username", H, "zdm_proxy_cluster_config.yml", "target_username"},
      {"target_password", H, "zdm_proxy_cluster_config.yml", "target_password (secret)"},
      {"target_astra_secure_connect_bundle_path", N, "zdm_proxy_cluster_config.yml", kAstra},
      {"target_astra_db_id", N, "zdm_proxy_cluster_config.yml", kAstra},
      {"target_astra_token", N, "zdm_proxy_cluster_config.yml", kAstra},
      {"target_contact_points", H, "zdm_proxy_cluster_config.yml", "target_contact_points"},
      {"target_port", H, "zdm_proxy_cluster_config.yml", "target_port"},
      // zdm_proxy_core_config.yml (3)
      {"primary_cluster", H, "zdm_proxy_core_config.yml", "primary_cluster"},
      {"read_mode", H, "zdm_proxy_core_config.yml", "read_mode"},
      {"log_level", H, "zdm_proxy_core_config.yml", "log_level"},
      // zdm_proxy_advanced_config.yml (16)
      {"zdm_proxy_max_clients_connections", H, "zdm_proxy_advanced_config.yml",
       "proxy_max_client_connections; also sizes the file descriptor limit"},
      {"zdm_proxy_listen_port", H, "zdm_proxy_advanced_config.yml", "proxy_listen_port"},
      {"blocked_protocol_versions", H, "zdm_proxy_advanced_config.yml",
       "blocked_protocol_versions"},
      {"replace_cql_functions", H, "zdm_proxy_advanced_config.yml", "replace_cql_functions"},
      {"zdm_proxy_request_timeout_ms", H, "zdm_proxy_advanced_config.yml",
       "proxy_request_timeout_ms; also sizes the stop timeout"},
      {"origin_connection_timeout_ms", H, "zdm_proxy_advanced_config.yml",
       "origin_connection_timeout_ms"},
      {"target_connection_timeout_ms", H, "zdm_proxy_advanced_config.yml",
       "target_connection_timeout_ms"},
      {"async_handshake_timeout_ms", H, "zdm_proxy_advanced_config.yml",
       "async_handshake_timeout_ms"},
      {"heartbeat_interval_ms", H, "zdm_proxy_advanced_config.yml", "heartbeat_interval_ms"},
      {"origin_local_datacenter", H, "zdm_proxy_advanced_config.yml", "origin_local_datacenter"},
      {"target_local_datacenter", H, "zdm_proxy_advanced_config.yml", "target_local_datacenter"},
      {"zdm_proxy_max_stream_ids", H, "zdm_proxy_advanced_config.yml", "proxy_max_stream_ids"},
      {"metrics_enabled", H, "zdm_proxy_advanced_config.yml", "metrics_enabled"},
      {"metrics_port", H, "zdm_proxy_advanced_config.yml",
       "metrics_port; also the admin endpoint of the hand-over and the Prometheus target"},
      {"system_queries_mode", H, "zdm_proxy_advanced_config.yml", "system_queries_mode"},
      {"forward_client_credentials_to_origin", H, "zdm_proxy_advanced_config.yml",
       "forward_client_credentials_to_origin"},
      // zdm_proxy_custom_tls_config.yml (13)
      {"origin_tls_user_dir_path", H, "zdm_proxy_custom_tls_config.yml", "uploaded TLS files"},
      {"origin_tls_server_ca_filename", H, "zdm_proxy_custom_tls_config.yml",
       "origin_tls_server_ca_path"},
      {"origin_tls_client_cert_filename", H, "zdm_proxy_custom_tls_config.yml",
       "origin_tls_client_cert_path"},
      {"origin_tls_client_key_filename", H, "zdm_proxy_custom_tls_config.yml",
       "origin_tls_client_key_path"},
      {"target_tls_user_dir_path", H, "zdm_proxy_custom_tls_config.yml", "uploaded TLS files"},
      {"target_tls_server_ca_filename", H, "zdm_proxy_custom_tls_config.yml",
       "target_tls_server_ca_path"},
      {"target_tls_client_cert_filename", H, "zdm_proxy_custom_tls_config.yml",
       "target_tls_client_cert_path"},
      {"target_tls_client_key_filename", H, "zdm_proxy_custom_tls_config.yml",
       "target_tls_client_key_path"},
      {"zdm_proxy_tls_user_dir_path", H, "zdm_proxy_custom_tls_config.yml", "uploaded TLS files"},
      {"zdm_proxy_tls_ca_filename", H, "zdm_proxy_custom_tls_config.yml", "proxy_tls_ca_path"},
      {"zdm_proxy_tls_cert_filename", H, "zdm_proxy_custom_tls_config.yml", "proxy_tls_cert_path"},
      {"zdm_proxy_tls_key_filename", H, "zdm_proxy_custom_tls_config.yml", "proxy_tls_key_path"},
      {"zdm_proxy_tls_require_client_auth", H, "zdm_proxy_custom_tls_config.yml",
       "proxy_tls_require_client_auth"},
      // zdm_monitoring_config.yml (15)
      {"grafana_version", H, "zdm_monitoring_config.yml", "the Grafana package version"},
      {"grafana_admin_user", H, "zdm_monitoring_config.yml", "grafana.ini"},
      {"grafana_admin_password", H, "zdm_monitoring_config.yml", "grafana.ini (secret)"},
      {"prometheus_node_exporter_image", N, "zdm_monitoring_config.yml", kMonitoringPackages},
      {"prometheus_node_exporter_container_name", N, "zdm_monitoring_config.yml",
       kMonitoringPackages},
      {"prometheus_image", N, "zdm_monitoring_config.yml", kMonitoringPackages},
      {"prometheus_container_name", N, "zdm_monitoring_config.yml", kMonitoringPackages},
      {"prometheus_container_storage_volume", N, "zdm_monitoring_config.yml",
       "Prometheus keeps its data in monitoring_home_dir/prometheus/data"},
      {"prometheus_web_listen_address", H, "zdm_monitoring_config.yml", "--web.listen-address"},
      {"prometheus_evaluation_interval", H, "zdm_monitoring_config.yml", "prometheus.yml"},
      {"prometheus_scrape_interval", H, "zdm_monitoring_config.yml", "prometheus.yml"},
      {"prometheus_scrape_timeout", H, "zdm_monitoring_config.yml", "prometheus.yml"},
      {"prometheus_environment_label_prefix", H, "zdm_monitoring_config.yml",
       "the environment label"},
      {"grafana_image", N, "zdm_monitoring_config.yml", kMonitoringPackages},
      {"grafana_container_name", N, "zdm_monitoring_config.yml", kMonitoringPackages},
      // zdm_playbook_internal_config.yml (23)
      {"pause_between_restarts_in_seconds", H, "zdm_playbook_internal_config.yml",
       "the pause after each host of a rolling change (0 is safe: the hand-over waits for the "
       "drivers)"},
      {"zdm_proxy_user_name", H, "zdm_playbook_internal_config.yml",
       "the SSH user's name in zdm_proxy_home_dir's default"},
      {"zdm_proxy_home_dir", H, "zdm_playbook_internal_config.yml",
       "the directory zdm-deploy installs into on each proxy host"},
      {"zdm_proxy_shared_assets_dir_name", N, "zdm_playbook_internal_config.yml", kLayout},
      {"zdm_proxy_config_fragments_dir_name", N, "zdm_playbook_internal_config.yml", kLayout},
      {"zdm_proxy_mutable_config_fragment_file_name", N, "zdm_playbook_internal_config.yml",
       kLayout},
      {"zdm_proxy_immutable_config_fragment_file_name", N, "zdm_playbook_internal_config.yml",
       kLayout},
      {"zdm_proxy_environment_config_file_name", N, "zdm_playbook_internal_config.yml", kLayout},
      {"zdm_proxy_config_file_name", N, "zdm_playbook_internal_config.yml", kLayout},
      {"origin_scb_file_name", N, "zdm_playbook_internal_config.yml", kAstra},
      {"target_scb_file_name", N, "zdm_playbook_internal_config.yml", kAstra},
      {"origin_astra_api_base_url", N, "zdm_playbook_internal_config.yml", kAstra},
      {"target_astra_api_base_url", N, "zdm_playbook_internal_config.yml", kAstra},
      {"origin_tls_dest_dir_name", N, "zdm_playbook_internal_config.yml",
       "TLS files go to zdm_proxy_home_dir/tls/, named by their checksums"},
      {"target_tls_dest_dir_name", N, "zdm_playbook_internal_config.yml",
       "TLS files go to zdm_proxy_home_dir/tls/, named by their checksums"},
      {"zdm_proxy_tls_dest_dir_name", N, "zdm_playbook_internal_config.yml",
       "TLS files go to zdm_proxy_home_dir/tls/, named by their checksums"},
      {"monitoring_user_name", H, "zdm_playbook_internal_config.yml",
       "the SSH user's name in monitoring_home_dir's default"},
      {"monitoring_home_dir", H, "zdm_playbook_internal_config.yml",
       "the directory of the monitoring stack on each host"},
      {"prometheus_config_dir_name", N, "zdm_playbook_internal_config.yml",
       "the monitoring layout is monitoring_home_dir/prometheus/ (docs/monitoring.md)"},
      {"grafana_config_dir_name", N, "zdm_playbook_internal_config.yml",
       "the monitoring layout is monitoring_home_dir/grafana/ (docs/monitoring.md)"},
      {"grafana_dashboards_dir_name", N, "zdm_playbook_internal_config.yml",
       "the monitoring layout is monitoring_home_dir/grafana/dashboards (docs/monitoring.md)"},
      {"archived_log_dir_name", H, "zdm_playbook_internal_config.yml",
       "where collect-logs writes its archive (default ./zdm_proxy_archived_logs)"},
      {"tmp_log_dir_name", N, "zdm_playbook_internal_config.yml",
       "collect-logs assembles its archive in a temporary directory of its own"},
      // zdm-deploy's own
      {"zdm_proxy_binary", O, "", "the zdm-proxy binary on this machine"},
      {"zdm_proxy_default_home_dir", O, "", ""},
      {"zdm_proxy_releases_kept", O, "", ""},
      {"zdm_service_manager", O, "", ""},
      {"zdm_proxy_service_user", O, "", ""},
      {"zdm_proxy_service_name", O, "", ""},
      {"zdm_proxy_listen_address", O, "", ""},
      {"zdm_proxy_admin_token", O, "", ""},
      {"target_consistency_level", O, "", "the proxy's target_consistency_level"},
      {"target_failure_mode", O, "", "the proxy's target_failure_mode (fail or isolate)"},
      {"proxy_journal_dir", O, "",
       "the proxy's write journal directory (default zdm_proxy_home_dir/journal, \"\": none)"},
      {"proxy_journal_max_bytes", O, "", "the proxy's proxy_journal_max_bytes"},
      {"proxy_journal_fsync_interval_ms", O, "", "the proxy's proxy_journal_fsync_interval_ms"},
      {"target_write_timeout_ms", O, "", "the proxy's target_write_timeout_ms (isolate mode)"},
      {"target_circuit_failures", O, "", "the proxy's target_circuit_failures (isolate mode)"},
      {"target_circuit_window_ms", O, "", "the proxy's target_circuit_window_ms (isolate mode)"},
      {"target_circuit_probe_interval_ms", O, "",
       "the proxy's target_circuit_probe_interval_ms (isolate mode)"},
      {"read_compare", O, "", "the proxy's read_compare (DUAL_ASYNC_ON_SECONDARY)"},
      {"read_compare_max_rows", O, "", "the proxy's read_compare_max_rows"},
      {"zdm_proxy_stop_timeout_seconds", O, "", ""},
      {"zdm_handover", O, "", ""},
      {"zdm_handover_drain_timeout_seconds", O, "", ""},
      {"zdm_handover_reconnect_timeout_seconds", O, "", ""},
      {"zdm_teardown_keep_logs", O, "", ""},
      {"zdm_rollback_to", O, "", ""},
      {"readiness_retries", O, "", ""},
      {"readiness_delay_seconds", O, "", ""},
      {"origin_tls_verify_hostname", O, "", ""},
      {"target_tls_verify_hostname", O, "", ""},
      {"monitoring_default_home_dir", O, "", ""},
      {"zdm_monitoring_dir", O, "", ""},
      {"prometheus_retention_time", O, "", ""},
      {"alertmanager_web_listen_address", O, "", ""},
      {"alertmanager_webhook_url", O, "", ""},
      {"node_exporter_port", O, "", ""},
      {"grafana_enabled", O, "", ""},
      {"grafana_port", O, "", ""},
      // Ansible's connection variables
      {"ansible_host", A, "", ""},
      {"ansible_port", A, "", ""},
      {"ansible_user", A, "", ""},
      {"ansible_ssh_user", A, "", ""},
      {"ansible_connection", A, "", ""},
      {"ansible_ssh_private_key_file", A, "", ""},
      {"ansible_private_key_file", A, "", ""},
      {"ansible_ssh_common_args", A, "", ""},
      {"ansible_ssh_extra_args", A, "", ""},
      {"ansible_python_interpreter", A, "", "not needed: zdm-deploy runs no Python on hosts"},
  };
  return vars;
}

const KnownVar* find_known_variable(std::string_view name) {
  for (const auto& v : known_variables())
    if (v.name == name) return &v;
  return nullptr;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

std::vector<std::string> check_variables(const std::vector<DefinedVar>& defined) {
  std::map<std::string, std::string> messages;  // name → message (first definition wins)
  for (const auto& d : defined) {
    if (messages.count(d.name)) continue;
    if (const KnownVar* k = find_known_variable(d.name)) {
      if (k->support != VarSupport::NotSupported) continue;
      // zdm_proxy_config_mode: config_file is what zdm-deploy does.
      if (d.name == "zdm_proxy_config_mode" && d.value == "config_file") continue;
      // create_containers is unused by ZDM automation itself.
      if (d.value.is_null()) continue;
      messages[d.name] = fmt::format("not supported: {} ({}): {}", d.name, d.where, k->note);
      continue;
    }
    if (d.name.rfind("ansible_", 0) == 0) {
      messages[d.name] = fmt::format(
          "not supported: {} ({}): zdm-deploy honours ansible_host, ansible_port, ansible_user, "
          "ansible_connection (ssh, local), ansible_ssh_private_key_file, "
          "ansible_ssh_common_args and ansible_ssh_extra_args (no password authentication, no "
          "become: root or passwordless sudo where needed)",
          d.name, d.where);
      continue;
    }
    // A typo of a known name?
    const KnownVar* best = nullptr;
    size_t best_d = 3;
    for (const auto& k : known_variables()) {
      size_t dist = edit_distance(d.name, k.name);
      size_t allowed = k.name.size() >= 8 ? 2 : 1;
      if (dist <= allowed && dist < best_d) best = &k, best_d = dist;
    }
    if (best)
      messages[d.name] = fmt::format("unknown variable '{}' ({}): did you mean '{}'?", d.name,
                                     d.where, best->name);
  }
  std::vector<std::string> out;
  for (auto& [k, m] : messages) out.push_back(m);
  return out;
}

}  // namespace zdm::deploy
