#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/plan.h"
#include "engine/playbook.h"
#include "inventory/inventory.h"
#include "inventory/vault.h"

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

TEST_CASE("host ranges expand as Ansible's expand_hostname_range does") {
  // Expected lists from ansible-inventory 2.14 --list on the same lines.
  using Hosts = std::vector<std::string>;
  struct Case {
    const char* pattern;
    Hosts hosts;
  };
  const Case cases[] = {
      {"proxy[1:3].example.com",
       {"proxy1.example.com", "proxy2.example.com", "proxy3.example.com"}},
      {"10.0.0.[1:3]", {"10.0.0.1", "10.0.0.2", "10.0.0.3"}},
      {"db[01:12:5]", {"db01", "db06", "db11"}},  // zero-padded to the begin's width, stride 5
      {"web[1:9:2]", {"web1", "web3", "web5", "web7", "web9"}},
      {"x[a:c]", {"xa", "xb", "xc"}},
      {"y[ab:c]-[1:2]", {"ya-1", "ya-2", "yb-1", "yb-2", "yc-1", "yc-2"}},  // first range outer
      {"z[:2]", {"z0", "z1", "z2"}},                                        // an empty begin is 0
      {"w[c:B:25]", {"wc", "wB"}},  // string.ascii_letters: a-z then A-Z
      {"n[5:1:-2]", {"n5", "n3"}},  // Python's range(5, 2, -2)
      {"m[3:1]", {}},               // range(3, 2): no host, as in Ansible
      {"plain.example.com", {"plain.example.com"}},
  };
  for (const auto& c : cases) CHECK_MESSAGE(expand_host_pattern(c.pattern) == c.hosts, c.pattern);

  SUBCASE("a :PORT suffix is the hosts' port") {
    int port = 0;
    CHECK(expand_host_pattern("b[1:2]:2201", &port) == Hosts{"b1", "b2"});
    CHECK(port == 2201);
    CHECK(expand_host_pattern("[fe80::1]:22", &port) == Hosts{"fe80::1"});
    CHECK(port == 22);
    CHECK(expand_host_pattern("fe80::1", &port) == Hosts{"fe80::1"});
    CHECK(port == 0);
    CHECK(expand_host_pattern("a:b:22", &port) == Hosts{"a:b:22"});  // not name:PORT
    CHECK(port == 0);
    std::string longname(200000, 'a');  // no regex recursion: no stack overflow
    CHECK(expand_host_pattern(longname + ":22", &port) == Hosts{longname});
    CHECK(port == 22);
  }
  SUBCASE("Ansible's errors") {
    const std::pair<const char*, const char*> bad[] = {
        {"a[c:a]", "host range must have begin <= end"},
        {"a[01:3]", "host range must specify equal-length begin and end formats"},
        {"a[1:]", "host range must specify end value"},
        {"a[1:2:3:4]", "host range must be begin:end or begin:end:step"},
        {"a[1:3", "a host range is [begin:end] or [begin:end:step]"},
        {"a[1:3:0]", "host range step must not be zero"},
        {"a[x:3]", "host range [x:3]: bounds are numbers or letters, the step a number"},
        {"a[1:3:x]", "host range [1:3:x]: bounds are numbers or letters, the step a number"},
        {"a[1:100000]", "more than 10000 hosts"},
    };
    for (auto& [pattern, message] : bad)
      CHECK_THROWS_WITH_AS(expand_host_pattern(pattern), message, std::invalid_argument);
  }
}

TEST_CASE("host ranges in INI and YAML inventories") {
  SUBCASE("INI: every host of the range gets the line's vars, in order") {
    Inventory inv =
        parse_inventory_ini("[proxies]\nproxy[01:03] ansible_user=zdm\nb[1:2]:2201\n", "inv.ini");
    CHECK(inv.group_hosts("proxies") ==
          std::vector<std::string>{"proxy01", "proxy02", "proxy03", "b1", "b2"});
    CHECK(inv.host_vars("proxy02")["ansible_user"] == "zdm");
    CHECK(inv.host_vars("b2")["ansible_port"] == 2201);
  }
  SUBCASE("YAML: a host key is a pattern too") {
    Inventory inv = parse_inventory_yaml(
        "all:\n  children:\n    proxies:\n      hosts:\n        10.0.0.[1:3]:\n"
        "          ansible_user: zdm\n",
        "inv.yml");
    CHECK(inv.group_hosts("proxies") ==
          std::vector<std::string>{"10.0.0.1", "10.0.0.2", "10.0.0.3"});
    CHECK(inv.host_vars("10.0.0.3")["ansible_user"] == "zdm");
  }
  SUBCASE("errors name file:line and the pattern") {
    CHECK_THROWS_WITH_AS(parse_inventory_ini("[proxies]\n\nproxy[3:a]\n", "inv.ini"),
                         "inv.ini:3: host 'proxy[3:a]': host range [3:a]: bounds are numbers or "
                         "letters, the step a number",
                         InventoryError);
    CHECK_THROWS_WITH_AS(parse_inventory_yaml("all:\n  hosts:\n    p[c:a]:\n", "inv.yml"),
                         "inv.yml:3: host 'p[c:a]': host range must have begin <= end",
                         InventoryError);
  }
}

namespace {

// A directory tree for the group_vars/host_vars tests; removed at the end.
struct Tree {
  std::filesystem::path root;
  explicit Tree(const std::string& name) {
    root = std::filesystem::temp_directory_path() /
           ("zdm_inventory_test_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(root);
  }
  ~Tree() { std::filesystem::remove_all(root); }
  std::string write(const std::string& rel, const std::string& text) const {
    auto p = root / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
};

const char* kLayered = R"([proxies]
p[1:2]
p1 e=inv_host

[monitoring]
mon

[zdm:children]
proxies
monitoring

[all:vars]
a=inv_all
b=inv_all
[zdm:vars]
b=inv_zdm
c=inv_zdm
[proxies:vars]
c=inv_proxies
d=inv_proxies
)";

// Writes the layered tree: the inventory's directory inv/ and a playbook's directory pb/.
void write_layered(const Tree& t) {
  t.write("inv/hosts.ini", kLayered);
  t.write("inv/group_vars/all.yml", "a: gv_all\nb: gv_all\n");
  t.write("inv/group_vars/zdm/10-first.yml", "f: zdm_first\ng: zdm_first\n");
  t.write("inv/group_vars/zdm/20-second", "g: zdm_second\n");  // no extension: read
  t.write("inv/group_vars/zdm/30~", "g: backup\n");            // a backup: skipped
  t.write("inv/group_vars/zdm/.hidden.yml", "g: hidden\n");    // hidden: skipped
  t.write("inv/group_vars/zdm/notes.txt", "g: txt\n");         // other extension: skipped
  t.write("inv/group_vars/proxies.yml", "d: gv_proxies\nh: gv_proxies\n");
  t.write("inv/group_vars/proxies.json", "{\"h\": \"json\"}\n");  // proxies.yml is read first
  t.write("inv/group_vars/proxy.yml", "d: typo\n");               // no such group
  t.write("inv/host_vars/p1.yaml", "e: hv_p1\ni: hv_p1\n");
  t.write("inv/host_vars/p2/x.yml", "i: hv_p2\n");
  t.write("pb/group_vars/all.yml", "a: pb_all\n");
  t.write("pb/group_vars/proxies.yml", "h: pb_proxies\n");
  t.write("pb/host_vars/p1.yml", "i: pb_p1\n");
}

}  // namespace

TEST_CASE("group_vars/ and host_vars/ beside the inventory and the playbook") {
  Tree t("layered");
  write_layered(t);
  Inventory inv = load_inventory((t.root / "inv/hosts.ini").string());
  load_vars_dirs(inv, (t.root / "pb").string(), true);

  auto strip = [](Json v) {
    v.erase("ansible_host");
    return v;
  };
  SUBCASE("precedence as ansible-inventory --playbook-dir pb --host prints it") {
    // Expected values: ansible-inventory 2.14 on the same tree.
    CHECK(strip(inv.host_vars("p1")) == Json{{"a", "pb_all"},
                                             {"b", "gv_all"},
                                             {"c", "inv_proxies"},
                                             {"d", "gv_proxies"},
                                             {"e", "hv_p1"},
                                             {"f", "zdm_first"},
                                             {"g", "zdm_second"},
                                             {"h", "pb_proxies"},
                                             {"i", "pb_p1"}});
    CHECK(strip(inv.host_vars("p2")) == Json{{"a", "pb_all"},
                                             {"b", "gv_all"},
                                             {"c", "inv_proxies"},
                                             {"d", "gv_proxies"},
                                             {"f", "zdm_first"},
                                             {"g", "zdm_second"},
                                             {"h", "pb_proxies"},
                                             {"i", "hv_p2"}});
    CHECK(strip(inv.host_vars("mon")) == Json{{"a", "pb_all"},
                                              {"b", "gv_all"},
                                              {"c", "inv_zdm"},
                                              {"f", "zdm_first"},
                                              {"g", "zdm_second"}});
  }
  SUBCASE("the files read are kept with their paths, in load order") {
    auto& zdm = inv.groups.at("zdm").dir_vars.inventory_adjacent;
    REQUIRE(zdm.size() == 2);
    CHECK(zdm[0].path == (t.root / "inv/group_vars/zdm/10-first.yml").string());
    CHECK(zdm[1].path == (t.root / "inv/group_vars/zdm/20-second").string());
  }
  SUBCASE("what Ansible skips without a word is said") {
    std::string gv = (t.root / "inv/group_vars/").string();
    CHECK(inv.warnings == std::vector<std::string>{
                              gv + "proxies.json: not read: " + gv +
                                  "proxies.yml is (Ansible reads only the first of proxies, "
                                  "proxies.yml, proxies.yaml, proxies.json)",
                              gv + "proxy.yml: not read: the inventory has no group 'proxy' (did "
                                   "you mean 'proxies'?)"});
  }
}

TEST_CASE("ansible_group_priority orders groups of the same depth") {
  Inventory inv = parse_inventory_ini(
      "[a]\nh\n[b]\nh\n[a:vars]\nx=a\nansible_group_priority=10\n[b:vars]\nx=b\n", "inv.ini");
  CHECK(inv.host_groups("h") == std::vector<std::string>{"all", "b", "a"});
  CHECK(inv.host_vars("h")["x"] == "a");
}

TEST_CASE("group_vars/ and host_vars/ errors name the file, the line and the key") {
  Tree t("errors");
  t.write("hosts.ini", "[proxies]\np1\n");
  SUBCASE("a bad ansible_port") {
    t.write("host_vars/p1.yml", "# p1\nansible_user: zdm\nansible_port: twenty\n");
    CHECK_THROWS_WITH_AS(load_inventory((t.root / "hosts.ini").string()),
                         ((t.root / "host_vars/p1.yml").string() +
                          ":3: host 'p1': bad key=value 'ansible_port' (expected integer)")
                             .c_str(),
                         InventoryError);
  }
  SUBCASE("a list instead of a mapping") {
    t.write("group_vars/proxies.yml", "- a\n- b\n");
    CHECK_THROWS_WITH_AS(load_inventory((t.root / "hosts.ini").string()),
                         ((t.root / "group_vars/proxies.yml").string() +
                          ":1: group 'proxies': a vars file must be a mapping, not a list")
                             .c_str(),
                         InventoryError);
  }
  SUBCASE("bad YAML") {
    t.write("group_vars/all", "a: 1\nb: [unclosed\n");
    CHECK_THROWS_AS(load_inventory((t.root / "hosts.ini").string()), InventoryError);
    try {
      load_inventory((t.root / "hosts.ini").string());
    } catch (const InventoryError& e) {
      CHECK(std::string(e.what()).rfind((t.root / "group_vars/all").string() + ":", 0) == 0);
    }
  }
}

TEST_CASE("vault-encrypted group_vars/ and host_vars/ decrypt with the vault password") {
  Tree t("vault");
  t.write("hosts.ini", "[proxies]\np1\n");
  t.write("group_vars/proxies.yml",
          vault_encrypt("origin_password: s3cret\n", "pw", std::string(32, 's')));
  std::string value = vault_encrypt("t0ken", "pw", std::string(32, 't'));
  std::string indented;
  for (size_t b = 0, e; b < value.size(); b = e + 1) {
    e = value.find('\n', b);
    if (e == std::string::npos) e = value.size();
    indented += "  " + value.substr(b, e - b) + "\n";
  }
  t.write("host_vars/p1.yml", "target_password: !vault |\n" + indented);
  std::string inv_path = (t.root / "hosts.ini").string();

  SUBCASE("with the password") {
    set_vault_password("pw");
    Inventory inv = load_inventory(inv_path);
    CHECK(inv.host_vars("p1")["origin_password"] == "s3cret");
    CHECK(inv.host_vars("p1")["target_password"] == "t0ken");
  }
  SUBCASE("without it, the file is named") {
    set_vault_password(std::nullopt);
    CHECK_THROWS_WITH_AS(load_inventory(inv_path),
                         ((t.root / "group_vars/proxies.yml").string() +
                          ": encrypted with Ansible Vault: run with --vault-password-file FILE "
                          "(or decrypt it with ansible-vault decrypt)")
                             .c_str(),
                         InventoryError);
  }
  SUBCASE("a wrong password names the file, the line and the key of a !vault value") {
    t.write("group_vars/proxies.yml", "origin_password: plain\n");
    set_vault_password("wrong");
    CHECK_THROWS_WITH_AS(load_inventory(inv_path),
                         ((t.root / "host_vars/p1.yml").string() +
                          ":1: host 'p1': 'target_password': vault: wrong password (or the file "
                          "was changed)")
                             .c_str(),
                         InventoryError);
  }
  set_vault_password(std::nullopt);
}

TEST_CASE("make_plan reads group_vars/ and host_vars/ beside the playbook") {
  Tree t("plan");
  write_layered(t);
  t.write("pb/play.yml", "- hosts: proxies\n  tasks:\n    - debug: msg=x\n");
  Inventory inv = load_inventory((t.root / "inv/hosts.ini").string());
  CHECK(inv.host_vars("p1")["i"] == "hv_p1");  // the inventory's own
  Plan plan = make_plan(inv, load_playbook((t.root / "pb/play.yml").string()), PlanOptions{});
  Json scope = host_scope(plan.plays.at(0), "p1");
  CHECK(scope["i"] == "pb_p1");
  CHECK(scope["h"] == "pb_proxies");
  CHECK(scope["hostvars"]["p2"]["h"] == "pb_proxies");
  CHECK(plan.inventory.groups.at("all").dir_vars.playbook_adjacent.size() == 1);
}
