// The monitoring templates rendered for the example inventory as deploy_monitoring.yml renders
// them, then checked by the tools that read them: promtool (Prometheus 2.42, with the alert
// rules) and amtool (Alertmanager 0.25), from Debian's packages.
#include <doctest/doctest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/plan.h"
#include "template.h"

using namespace zdm::deploy;
namespace fs = std::filesystem;

namespace {

const std::string kSource = ZDM_SOURCE_DIR;

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The scope of the monitoring play's host (the second play) with the home on `home`.
Json monitoring_scope(const fs::path& home) {
  Inventory inv = load_inventory(kSource + "/inventory/example.ini");
  Playbook pb = load_playbook(kSource + "/playbooks/deploy_monitoring.yml");
  PlanOptions po;
  po.extra_vars = {{"monitoring_home_dir", home.string()}};
  Plan plan = make_plan(inv, pb, po);
  REQUIRE(plan.plays.size() == 2);
  REQUIRE(plan.plays[1].hosts == std::vector<std::string>{"monitor1"});
  return host_scope(plan.plays[1], "monitor1");
}

std::string render_file(const std::string& rel, const Json& scope) {
  std::string path = kSource + "/" + rel;
  return render(read(path), scope, Source{rel, 1}, /*trim_blocks=*/true);
}

int run(const std::string& cmd) {
  int rc = std::system((cmd + " > /dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

TEST_CASE("prometheus.yml.j2 for the example inventory: the jobs ZDM's dashboards need") {
  fs::path home = fs::temp_directory_path() / ("zdm_monitoring_test_" + std::to_string(::getpid()));
  fs::create_directories(home / "prometheus" / "rules");
  Json scope = monitoring_scope(home);
  std::string text = render_file("monitoring/prometheus.yml.j2", scope);
  YAML::Node y = YAML::Load(text);

  CHECK(y["global"]["scrape_interval"].as<std::string>() == "15s");
  CHECK(y["global"]["evaluation_interval"].as<std::string>() == "15s");
  CHECK(y["global"]["scrape_timeout"].as<std::string>() == "10s");
  CHECK(y["global"]["external_labels"]["environment"].as<std::string>() ==
        "zdm-monitoring-monitor1");
  CHECK(y["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0].as<std::string>() ==
        "172.18.100.128:9093");
  std::map<std::string, std::vector<std::string>> jobs;
  for (const auto& job : y["scrape_configs"])
    for (const auto& sc : job["static_configs"])
      jobs[job["job_name"].as<std::string>()].push_back(sc["targets"][0].as<std::string>() + " " +
                                                        sc["labels"]["host"].as<std::string>());
  CHECK(jobs["zdm_proxy"] == std::vector<std::string>{"172.18.10.137:14001 proxy1",
                                                      "172.18.11.25:14001 proxy2",
                                                      "172.18.12.41:14001 proxy3"});
  CHECK(jobs["node"] == std::vector<std::string>{"172.18.10.137:9100 proxy1",
                                                 "172.18.11.25:9100 proxy2",
                                                 "172.18.12.41:9100 proxy3"});
  CHECK(jobs["prometheus"] == std::vector<std::string>{"172.18.100.128:9090 monitor1"});
  CHECK(jobs["alertmanager"] == std::vector<std::string>{"172.18.100.128:9093 monitor1"});

  SUBCASE("promtool check config accepts it, with the alert rules it loads") {
    std::ofstream(home / "prometheus" / "prometheus.yml") << text;
    fs::copy_file(kSource + "/monitoring/alerts/zdm_proxy.rules.yml",
                  home / "prometheus" / "rules" / "zdm_proxy.rules.yml");
    CHECK(run("promtool check config " + (home / "prometheus" / "prometheus.yml").string()) == 0);
    // ...and would refuse a broken rule file.
    std::ofstream(home / "prometheus" / "rules" / "broken.rules.yml")
        << "groups: [{name: x, rules: [{alert: X, expr: 'rate(x[1m]'}]}]\n";
    CHECK(run("promtool check config " + (home / "prometheus" / "prometheus.yml").string()) != 0);
  }
  fs::remove_all(home);
}

TEST_CASE("alertmanager.yml.j2: amtool accepts it with and without a webhook") {
  fs::path home = fs::temp_directory_path() / ("zdm_monitoring_am_" + std::to_string(::getpid()));
  fs::create_directories(home);
  Json scope = monitoring_scope(home);
  for (bool webhook : {false, true}) {
    CAPTURE(webhook);
    if (webhook) scope["alertmanager_webhook_url"] = "http://127.0.0.1:9/hook";
    std::string text = render_file("monitoring/alertmanager.yml.j2", scope);
    CHECK((text.find("webhook_configs") != std::string::npos) == webhook);
    std::ofstream(home / "alertmanager.yml") << text;
    CHECK(run("amtool check-config " + (home / "alertmanager.yml").string()) == 0);
  }
  fs::remove_all(home);
}

TEST_CASE("Grafana provisioning: the datasource the dashboards name, the dashboards' folder") {
  fs::path home = fs::temp_directory_path() / "zdm-mon";
  Json scope = monitoring_scope(home);
  YAML::Node ds = YAML::Load(
      render_file("monitoring/grafana/provisioning/datasources/prometheus.yml.j2", scope));
  CHECK(ds["datasources"][0]["uid"].as<std::string>() == "zdm-prometheus");
  CHECK(ds["datasources"][0]["url"].as<std::string>() == "http://172.18.100.128:9090");
  CHECK(ds["datasources"][0]["jsonData"]["timeInterval"].as<std::string>() == "15s");
  YAML::Node pr =
      YAML::Load(render_file("monitoring/grafana/provisioning/dashboards/zdm.yml.j2", scope));
  CHECK(pr["providers"][0]["options"]["path"].as<std::string>() ==
        (home / "grafana" / "dashboards").string());
  for (const auto& e : fs::directory_iterator(kSource + "/monitoring/grafana/dashboards"))
    CHECK_MESSAGE(read(e.path()).find("\"uid\": \"zdm-prometheus\"") != std::string::npos,
                  e.path().string());
}
