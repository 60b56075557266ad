// DataStax ZDM automation's inventory and seven vars files, unchanged
// (tests/deployer/fixtures/zdm-automation: their shape and every variable, as an operator has
// them once the cluster settings are filled in).
#include <doctest/doctest.h>

#include <unistd.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "commands.h"
#include "inventory/zdm_vars.h"
#include "template.h"
#include "vars.h"

using namespace zdm::deploy;

namespace {

const std::string kFixture =
    std::string(ZDM_SOURCE_DIR) + "/tests/deployer/fixtures/zdm-automation";
const std::vector<std::string> kProxies = {"172.18.10.137", "172.18.11.25", "172.18.12.41"};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The names the seven files set (not the commented-out ones).
std::set<std::string> names_set_in_files() {
  std::set<std::string> out;
  for (const char* f : {"zdm_proxy_container_config.yml", "zdm_proxy_cluster_config.yml",
                        "zdm_proxy_core_config.yml", "zdm_proxy_advanced_config.yml",
                        "zdm_proxy_custom_tls_config.yml", "zdm_monitoring_config.yml",
                        "zdm_playbook_internal_config.yml"}) {
    Json vars = load_vars_file(kFixture + "/vars/" + f);
    for (auto& [k, v] : vars.items()) out.insert(k);
  }
  return out;
}

}  // namespace

TEST_CASE("ZDM automation's inventory and vars files, unchanged") {
  Inventory inv = load_inventory(kFixture + "/zdm_ansible_inventory");
  Playbook pb = load_playbook(std::string(ZDM_SOURCE_DIR) + "/playbooks/deploy_proxy.yml");
  PlanOptions opts;
  opts.release_id = "20260101T000000Z";
  // What the prepare play sets before it renders: the TLS files uploaded and the admin token.
  opts.extra_vars = {{"zdm_tls_files", Json::object()}, {"proxy_admin_token", "t0ken"}};
  Plan plan = make_plan(inv, pb, opts);

  SUBCASE("the inventory parses: three proxies in topology order, one monitoring host") {
    CHECK(inv.group_hosts("proxies") == kProxies);
    CHECK(inv.group_hosts("monitoring") == std::vector<std::string>{"172.18.100.128"});
    CHECK(inv.host_vars("172.18.11.25")["ansible_connection"] == "ssh");
    CHECK(inv.host_vars("172.18.11.25")["ansible_user"] == "ubuntu");
    CHECK(inv.warnings.empty());
  }
  SUBCASE("every proxy's variables resolve, and its configuration renders") {
    REQUIRE(plan.plays.size() == 4);
    std::string tpl = std::string(ZDM_SOURCE_DIR) + "/playbooks/templates/zdm_proxy_config.yml.j2";
    for (size_t i = 0; i < kProxies.size(); ++i) {
      const std::string& h = kProxies[i];
      CAPTURE(h);
      Json scope = host_scope(plan.plays[0], h);
      auto var = [&](const char* expr) { return render(expr, scope, Source{"test", 1}); };
      CHECK(var("{{ zdm_home }}") == "/home/ubuntu");  // zdm_proxy_home_dir of the internal file
      CHECK(var("{{ zdm_listen_address }}") == h);
      CHECK(var("{{ zdm_topology }}") == "172.18.10.137,172.18.11.25,172.18.12.41");
      CHECK(var("{{ zdm_ready_timeout }}") == "30");
      CHECK(var("{{ pause_between_restarts_in_seconds }}") == "10");
      std::string out = render(slurp(tpl), scope, Source{tpl, 1}, true);
      CHECK(out.find(fmt::format("proxy_topology_index: {}\n", i)) != std::string::npos);
      CHECK(out.find("proxy_listen_address: " + h + "\n") != std::string::npos);
      CHECK(out.find("proxy_listen_port: 9042\n") != std::string::npos);
      CHECK(out.find("metrics_port: 14001\n") != std::string::npos);
      CHECK(out.find("primary_cluster: ORIGIN\n") != std::string::npos);
      CHECK(out.find("read_mode: PRIMARY_ONLY\n") != std::string::npos);
      CHECK(out.find("log_level: INFO\n") != std::string::npos);
      CHECK(out.find("origin_contact_points: \"10.0.1.1,10.0.1.2,10.0.1.3\"\n") !=
            std::string::npos);
      CHECK(out.find("target_contact_points: \"10.0.2.1,10.0.2.2,10.0.2.3\"\n") !=
            std::string::npos);
      CHECK(out.find("origin_password: \"origin-pass\"\n") != std::string::npos);
    }
  }
  SUBCASE("the variable report: each set variable honoured, or 'not supported: NAME'") {
    std::vector<std::string> report = variable_report(plan, pb, opts.extra_vars);
    std::set<std::string> reported;
    for (auto& line : report) {
      std::smatch m;
      static const std::regex re(R"(^not supported: ([a-z_]+) \(vars/[a-z_]+\.yml\): .+$)");
      REQUIRE_MESSAGE(std::regex_match(line, m, re), line);  // no "unknown variable", no error
      reported.insert(m[1].str());
    }
    std::set<std::string> set = names_set_in_files();
    CHECK(set.size() == 55);  // the other 33 of the 88 are commented out, as shipped
    std::set<std::string> expected;
    for (auto& name : set) {
      const KnownVar* k = find_known_variable(name);
      REQUIRE_MESSAGE(k != nullptr, name);
      CHECK_MESSAGE(!k->file.empty(), name);  // one of ZDM's
      if (k->support == VarSupport::NotSupported) expected.insert(name);
    }
    CHECK(reported == expected);
    CHECK(reported.count("zdm_proxy_image"));
    CHECK(reported.count("zdm_proxy_config_mode"));
    CHECK_FALSE(reported.count("origin_contact_points"));
  }
}

TEST_CASE("zdm-deploy deploy --list-hosts on ZDM automation's files (the real binary, no SSH)") {
  std::string cmd = std::string(ZDM_DEPLOY_BINARY) + " deploy -i " + kFixture +
                    "/zdm_ansible_inventory --list-hosts 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int status = ::pclose(p);
  CAPTURE(out);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(
      out.find("[WARNING]: not supported: zdm_proxy_image (vars/zdm_proxy_container_config.yml)") !=
      std::string::npos);
  CHECK(out.find("unknown variable") == std::string::npos);
  CHECK(out.find("ERROR") == std::string::npos);
  CHECK(out.find("  play #3 (proxies): Rolling update of the running proxies\n    pattern: "
                 "['proxies']\n    hosts (3):\n      172.18.10.137\n      172.18.11.25\n      "
                 "172.18.12.41\n") != std::string::npos);
}
