#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/plan.h"
#include "template.h"

using namespace zdm::deploy;
namespace fs = std::filesystem;

namespace {

using Hosts = std::vector<std::string>;
using Batches = std::vector<Hosts>;

// A temporary directory with an inventory and vars files; removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("zdm_plan_test_" + std::to_string(::getpid()));
    fs::create_directories(path / "vars");
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

const char* kInventory = R"([proxies]
proxy1 ansible_host=127.0.1.1 zdm_proxy_home_dir=/srv/p1
proxy2 ansible_host=127.0.1.2 zdm_proxy_home_dir=/srv/p2
proxy3 ansible_host=127.0.1.3 zdm_proxy_home_dir=/srv/p3

[proxies:vars]
origin_contact_points=127.0.2.1,127.0.2.2
target_contact_points=127.0.3.1
read_mode=FROM_INVENTORY
from_inventory=inv
)";

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("batches follow serial") {
  Hosts h3{"a", "b", "c"};
  CHECK(make_batches(h3, nullptr) == Batches{{"a", "b", "c"}});
  CHECK(make_batches(h3, 1) == Batches{{"a"}, {"b"}, {"c"}});
  CHECK(make_batches(h3, 2) == Batches{{"a", "b"}, {"c"}});
  CHECK(make_batches(h3, "50%") == Batches{{"a"}, {"b"}, {"c"}});  // floor(1.5) = 1
  CHECK(make_batches(Hosts{"a", "b", "c", "d"}, "50%") == Batches{{"a", "b"}, {"c", "d"}});
  CHECK(make_batches(h3, "10%") == Batches{{"a"}, {"b"}, {"c"}});  // at least 1
  CHECK(make_batches(h3, "100%") == Batches{{"a", "b", "c"}});
  CHECK(make_batches({}, 1).empty());
}

TEST_CASE("plan of a rolling update") {
  TempDir dir;
  std::string inv_path = dir.write("sandbox.ini", kInventory);
  dir.write("vars/core.yml", "read_mode: PRIMARY_ONLY\nlog_level: INFO\nfrom_file: file\n");
  Inventory inv = load_inventory(inv_path);
  Playbook pb = parse_playbook(R"(- hosts: proxies
  serial: 1
  vars_files: [vars/core.yml]
  vars: {log_level: DEBUG, from_play: play}
  tasks:
    - debug: msg=hi
)",
                               (dir.path / "pb.yml").string());
  PlanOptions opts;
  opts.release_id = "20250101T000000Z";
  opts.extra_vars = {{"from_extra", "extra"}, {"log_level", "TRACE"}};

  SUBCASE("serial 1 gives one batch per proxy in inventory order") {
    Plan plan = make_plan(inv, pb, opts);
    REQUIRE(plan.plays.size() == 1);
    CHECK(plan.plays[0].batches == Batches{{"proxy1"}, {"proxy2"}, {"proxy3"}});
  }
  SUBCASE("--limit narrows the hosts but not the topology") {
    opts.limit = "proxy3:proxy2";
    Plan plan = make_plan(inv, pb, opts);
    CHECK(plan.plays[0].batches == Batches{{"proxy2"}, {"proxy3"}});
    Json scope = host_scope(plan.plays[0], "proxy2");
    CHECK(scope["groups"]["proxies"] == Json::array({"proxy1", "proxy2", "proxy3"}));
  }
  SUBCASE("precedence: vars_files beat inventory, play vars beat files, -e beats all") {
    Plan plan = make_plan(inv, pb, opts);
    Json s = host_scope(plan.plays[0], "proxy1");
    CHECK(s["read_mode"] == "PRIMARY_ONLY");  // vars file over inventory group var
    CHECK(s["log_level"] == "TRACE");         // extra over play vars over file
    CHECK(s["from_inventory"] == "inv");
    CHECK(s["from_file"] == "file");
    CHECK(s["from_play"] == "play");
    CHECK(s["zdm_proxy_home_dir"] == "/srv/p1");
    CHECK(s["inventory_hostname"] == "proxy1");
    CHECK(s["zdm_release_id"] == "20250101T000000Z");
    CHECK(s["hostvars"]["proxy3"]["ansible_host"] == "127.0.1.3");
  }
  SUBCASE("a missing vars file is an error naming it") {
    Playbook bad = parse_playbook("- hosts: proxies\n  vars_files: [vars/nope.yml]\n",
                                  (dir.path / "pb.yml").string());
    CHECK_THROWS_AS(make_plan(inv, bad, opts), VarsError);
  }
}

TEST_CASE("the proxy config rendered for proxy2 of 3") {
  TempDir dir;
  std::string inv_path = dir.write("sandbox.ini", kInventory);
  Inventory inv = load_inventory(inv_path);
  // The real playbook and vars files (inventory/vars is found through playbooks/../inventory).
  Playbook pb = load_playbook(std::string(ZDM_SOURCE_DIR) + "/playbooks/deploy_proxy.yml");
  PlanOptions opts;
  opts.release_id = "20250101T000000Z";
  // What the prepare play sets before it renders: the TLS files uploaded and the admin token.
  opts.extra_vars = {{"read_mode", "DUAL_ASYNC_ON_SECONDARY"},
                     {"heartbeat_interval_ms", 1000},
                     {"zdm_tls_files", Json::object()},
                     {"proxy_admin_token", "t0ken"}};
  Plan plan = make_plan(inv, pb, opts);
  // Prepare (every host at once), start where none runs, roll the running ones, prune.
  REQUIRE(plan.plays.size() == 4);
  CHECK(plan.plays[0].batches == Batches{{"proxy1", "proxy2", "proxy3"}});      // forks, no serial
  CHECK(plan.plays[2].batches == Batches{{"proxy1"}, {"proxy2"}, {"proxy3"}});  // serial: 1
  Json scope = host_scope(plan.plays[0], "proxy2");
  std::string tpl = std::string(ZDM_SOURCE_DIR) + "/playbooks/templates/zdm_proxy_config.yml.j2";
  std::string out = render(slurp(tpl), scope, Source{tpl, 1}, true);
  CHECK(out.find("proxy_topology_index: 1\n") != std::string::npos);
  CHECK(out.find("proxy_topology_addresses: \"127.0.1.1,127.0.1.2,127.0.1.3\"\n") !=
        std::string::npos);
  CHECK(out.find("proxy_listen_address: 127.0.1.2\n") != std::string::npos);
  CHECK(out.find("metrics_address: 127.0.1.2\nmetrics_port: 14001\n") != std::string::npos);
  CHECK(out.find("proxy_listen_port: 9042\n") != std::string::npos);
  CHECK(out.find("read_mode: DUAL_ASYNC_ON_SECONDARY\n") != std::string::npos);
  CHECK(out.find("primary_cluster: ORIGIN\n") != std::string::npos);
  CHECK(out.find("origin_contact_points: \"127.0.2.1,127.0.2.2\"\n") != std::string::npos);
  CHECK(out.find("heartbeat_interval_ms: 1000\n") != std::string::npos);
  CHECK(out.find("proxy_admin_token: \"t0ken\"\n") != std::string::npos);
  CHECK(out.find("origin_username") == std::string::npos);  // only when defined
  CHECK(out.find("proxy_max_client_connections") == std::string::npos);

  SUBCASE("the home directory comes from the host var, else the default") {
    CHECK(render("{{ zdm_home }}", scope, Source{"x", 1}) == "/srv/p2");
  }
}
