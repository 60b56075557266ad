#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/executor.h"
#include "engine/plan.h"
#include "template.h"

using namespace zdm::deploy;
namespace fs = std::filesystem;

TEST_CASE("playbooks/migrate_data.yml: zdm-data on the monitoring host") {
  fs::path dir =
      fs::temp_directory_path() / ("zdm_migrate_data_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "inv.ini") << R"([proxies]
proxy1 ansible_host=127.0.1.1
proxy2 ansible_host=127.0.1.2

[monitoring]
mon ansible_host=127.0.1.10 zdm_proxy_home_dir=/srv/mon

[proxies:vars]
origin_contact_points=127.0.2.1,127.0.2.2
origin_username=o_user
origin_password=o secret
target_contact_points=127.0.3.1
target_port=9043
target_tls_user_dir_path=/pki
target_tls_server_ca_filename=ca.pem
)";
  Inventory inv = load_inventory((dir / "inv.ini").string());
  Playbook pb = load_playbook(std::string(ZDM_SOURCE_DIR) + "/playbooks/migrate_data.yml");
  PlanOptions opts;
  opts.release_id = "20250101T000000Z";
  opts.limit = "monitoring";  // what `zdm-deploy migrate-data` sets
  opts.extra_vars = {{"zdm_data_keyspace", "shop"}, {"zdm_data_tables", "orders,users"}};
  Plan plan = make_plan(inv, pb, opts);
  REQUIRE(plan.plays.size() == 1);
  CHECK(plan.plays[0].hosts == std::vector<std::string>{"mon"});
  Json scope = host_scope(plan.plays[0], "mon");
  auto r = [&](const char* expr) { return render(expr, scope, Source{"test", 1}); };

  SUBCASE("the clusters' settings come from the proxies' variables") {
    CHECK(r("{{ zdm_data_home }}") == "/srv/mon/zdm-data");
    CHECK(r("{{ zdm_data_cmd_args }}")
              .find("--origin 127.0.2.1,127.0.2.2 --origin-port 9042 "
                    "--target 127.0.3.1 --target-port 9043") == 0);
    CHECK(r("{{ zdm_data_cmd_args }}").find("--origin-username o_user") != std::string::npos);
    CHECK(
        r("{{ zdm_data_cmd_args }}").find("--target-tls-ca /srv/mon/zdm-data/tls/target_ca.pem") !=
        std::string::npos);
    CHECK(r("{{ zdm_data_cmd_args }}").find("--origin-tls-ca") == std::string::npos);
    CHECK(r("{{ zdm_data_cmd_args }}").find("-k shop -t orders,users") != std::string::npos);
  }
  SUBCASE("passwords never appear on a command line") {
    CHECK(r("{{ zdm_data_cmd_args }}").find("secret") == std::string::npos);
    CHECK(r("{{ zdm_data_env }}").find("secret") == std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE(
    "playbooks/migrate_data.yml run with the real zdm-data: a cluster that cannot be reached") {
  fs::path dir = fs::temp_directory_path() / ("zdm_migrate_data_run_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // Nothing listens on 127.33.250.x: zdm-data's connection is refused at once.
  std::ofstream(dir / "inv.ini") << "[proxies]\np1 ansible_connection=local\n\n[monitoring]\n"
                                 << "mon ansible_connection=local zdm_proxy_home_dir="
                                 << (dir / "home").string()
                                 << "\n\n[proxies:vars]\norigin_contact_points=127.33.250.1\n"
                                    "origin_username=o_user\norigin_password=o secret\n"
                                    "target_contact_points=127.33.250.2\n";
  Inventory inv = load_inventory((dir / "inv.ini").string());
  Playbook pb = load_playbook(std::string(ZDM_SOURCE_DIR) + "/playbooks/migrate_data.yml");
  fs::path home = dir / "home" / "zdm-data";
  auto run = [&](const std::string& binary, std::string& text) {
    PlanOptions po;
    po.release_id = "R";
    po.limit = "monitoring";
    po.defaults = {{"zdm_data_binary", binary}};
    po.extra_vars = {{"zdm_data_keyspace", "shop"}, {"zdm_data_args", "--connect-timeout-ms 2000"}};
    Plan plan = make_plan(inv, pb, po);
    std::ostringstream out;
    Executor ex(pb, plan, ExecOptions{}, out);
    int rc = ex.run();
    text = out.str();
    return rc;
  };
  std::string text;
  // An upload that fails leaves no password on the host (written only right before zdm-data).
  CHECK(run((dir / "no-such-zdm-data").string(), text) == kExitHostFailed);
  CHECK(text.find("cannot read local file") != std::string::npos);
  CHECK(!fs::exists(home / "credentials"));
  int rc = run(ZDM_DATA_BINARY, text);
  INFO(text);
  CHECK(rc == kExitHostFailed);
  CHECK(fs::exists(home / "zdm-data"));      // uploaded
  CHECK(!fs::exists(home / "credentials"));  // removed even though the backfill failed
  CHECK(text.find("zdm-data backfill exited 3") != std::string::npos);
  CHECK(text.find("origin: no contact point answered (127.33.250.1:9042") != std::string::npos);
  CHECK(text.find("zdm-data validate:") == std::string::npos);  // not run after a failed backfill
  CHECK(text.find("secret") == std::string::npos);
  fs::remove_all(dir);
}
