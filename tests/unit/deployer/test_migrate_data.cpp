#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "plan.h"
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
