#include <doctest/doctest.h>

#include "inventory.h"

using namespace zdm::deploy;

namespace {

const char* kSandbox = R"(# sandbox
[proxies]
proxy1 ansible_host=127.0.1.1 zdm_proxy_home_dir="/tmp/a b"
proxy2 ansible_host=127.0.1.2   ; inline comment
proxy3 ansible_host=127.0.1.3 ansible_port=2200

[monitoring]
mon1 ansible_host=127.0.1.10

[zdm:children]
proxies
monitoring

[all:vars]
ansible_port=2222
ansible_user=zdm
[zdm:vars]
log_level = "DEBUG"
[proxies:vars]
log_level=INFO
)";

}  // namespace

TEST_CASE("INI inventory") {
  Inventory inv = parse_inventory_ini(kSandbox, "inventory/sandbox.ini");

  SUBCASE("hosts keep file order, which is the proxy topology order") {
    CHECK(inv.group_hosts("proxies") == std::vector<std::string>{"proxy1", "proxy2", "proxy3"});
    CHECK(inv.group_hosts("all") == std::vector<std::string>{"proxy1", "proxy2", "proxy3", "mon1"});
  }
  SUBCASE("children groups contain their children's hosts") {
    CHECK(inv.group_hosts("zdm") == std::vector<std::string>{"proxy1", "proxy2", "proxy3", "mon1"});
  }
  SUBCASE("host vars: quoted values stay strings, ints become ints, defaults are added") {
    Json v = inv.host_vars("proxy1");
    CHECK(v["zdm_proxy_home_dir"] == "/tmp/a b");
    CHECK(v["ansible_host"] == "127.0.1.1");
    CHECK(v["ansible_port"] == 2222);  // from [all:vars]
    CHECK(v["ansible_user"] == "zdm");
    CHECK(inv.host_vars("proxy3")["ansible_port"] == 2200);  // host var beats group var
  }
  SUBCASE("group vars: all < parent group < child group") {
    CHECK(inv.host_vars("proxy2")["log_level"] == "INFO");  // proxies is deeper than zdm
    CHECK(inv.host_vars("mon1")["log_level"] == "DEBUG");
    CHECK(inv.host_groups("proxy1") == std::vector<std::string>{"all", "zdm", "proxies"});
  }
  SUBCASE("ansible_host defaults to the name; ansible_port stays unset (ssh_config's Port)") {
    Inventory bare = parse_inventory_ini("[proxies]\n10.0.0.1\n", "x.ini");
    CHECK(bare.host_vars("10.0.0.1")["ansible_host"] == "10.0.0.1");
    CHECK(!bare.host_vars("10.0.0.1").contains("ansible_port"));
    CHECK(bare.group_hosts("ungrouped").empty());
  }
  SUBCASE("hosts outside any section are ungrouped") {
    Inventory bare = parse_inventory_ini("lonely\n[g]\nh\n", "x.ini");
    CHECK(bare.group_hosts("ungrouped") == std::vector<std::string>{"lonely"});
  }
  SUBCASE("the groups variable lists every group") {
    Json g = inv.groups_json();
    CHECK(g["proxies"] == Json::array({"proxy1", "proxy2", "proxy3"}));
    CHECK(g["all"].size() == 4);
  }
}

TEST_CASE("INI inventory errors name file:line and the key") {
  CHECK_THROWS_WITH_AS(
      parse_inventory_ini("[proxies]\n\n\nproxy1 ansible_port=abc\n", "inventory/sandbox.ini"),
      "inventory/sandbox.ini:4: host 'proxy1': bad key=value 'ansible_port' (expected integer)",
      InventoryError);
  CHECK_THROWS_WITH_AS(
      parse_inventory_ini("[proxies]\nproxy1 ansible_host\n", "inv.ini"),
      "inv.ini:2: host 'proxy1': bad key=value 'ansible_host' (expected key=value)",
      InventoryError);
  CHECK_THROWS_WITH_AS(parse_inventory_ini("[proxies\n", "inv.ini"),
                       "inv.ini:1: bad section header '[proxies'", InventoryError);
  CHECK_THROWS_WITH_AS(parse_inventory_ini("[g:bogus]\n", "inv.ini"),
                       "inv.ini:1: bad section header '[g:bogus]' (expected :vars or :children)",
                       InventoryError);
  CHECK_THROWS_WITH_AS(parse_inventory_ini("[all:vars]\nansible_port=70000\n", "inv.ini"),
                       "inv.ini:2: group 'all': bad key=value 'ansible_port' (expected integer)",
                       InventoryError);
  CHECK_THROWS_WITH_AS(parse_inventory_ini("[g]\nh x='unterminated\n", "inv.ini"),
                       "inv.ini:2: unterminated quote in 'h x='unterminated'", InventoryError);
}

TEST_CASE("YAML inventory") {
  const char* yaml = R"(all:
  vars:
    ansible_user: zdm
  children:
    proxies:
      hosts:
        proxy1: {ansible_host: 127.0.1.1}
        proxy2:
          ansible_host: 127.0.1.2
          ansible_port: 2222
    monitoring:
      hosts:
        mon1:
)";
  Inventory inv = parse_inventory_yaml(yaml, "inv.yml");
  CHECK(inv.group_hosts("proxies") == std::vector<std::string>{"proxy1", "proxy2"});
  CHECK(inv.host_vars("proxy2")["ansible_port"] == 2222);
  CHECK(inv.host_vars("proxy1")["ansible_user"] == "zdm");
  CHECK(inv.host_vars("mon1")["ansible_host"] == "mon1");
  CHECK_THROWS_WITH_AS(
      parse_inventory_yaml("all:\n  hosts:\n    p1:\n      ansible_port: twenty\n", "inv.yml"),
      "inv.yml:4: host 'p1': bad key=value 'ansible_port' (expected integer)", InventoryError);
}

TEST_CASE("YAML inventory: a list or a mapping as a name is an InventoryError") {
  // Found by fuzz_inventory_yaml
  // (tests/fuzz/corpus/inventory_yaml/crash-d4c68569902d526deb0f317bcd31979556c357b2): yaml-cpp's
  // BadConversion escaped parse_inventory_yaml, without file or line.
  CHECK_THROWS_WITH_AS(parse_inventory_yaml("? {x: 1}\n: {}\n", "inv.yml"),
                       "inv.yml:1: a name must be a scalar, not a mapping", InventoryError);
  CHECK_THROWS_WITH_AS(parse_inventory_yaml("all:\n  hosts:\n    ? [a, b]\n", "inv.yml"),
                       "inv.yml:3: a name must be a scalar, not a sequence", InventoryError);
  CHECK_THROWS_WITH_AS(parse_inventory_yaml("all:\n  vars:\n    ? [k]\n    : v\n", "inv.yml"),
                       "inv.yml:3: a variable name must be a scalar, not a sequence",
                       InventoryError);
  CHECK_THROWS_WITH_AS(
      parse_inventory_yaml("g:\n  hosts:\n    h:\n      ? {a: 1}\n      : 2\n", "inv.yml"),
      "inv.yml:4: a name must be a scalar, not a mapping", InventoryError);
}

TEST_CASE("host patterns") {
  Inventory inv = parse_inventory_ini(kSandbox, "inv.ini");
  CHECK(match_hosts(inv, "proxy3:proxy1") == std::vector<std::string>{"proxy1", "proxy3"});
  CHECK(match_hosts(inv, "proxies,!proxy2") == std::vector<std::string>{"proxy1", "proxy3"});
  CHECK(match_hosts(inv, "all").size() == 4);
  CHECK_THROWS_WITH_AS(match_hosts(inv, "proxy9"), "inv.ini: no host or group matches 'proxy9'",
                       InventoryError);
}
