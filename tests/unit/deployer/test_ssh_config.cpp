#include <doctest/doctest.h>

#include "ssh/ssh_config.h"

using namespace zdm::deploy;

TEST_CASE("ssh_config") {
  const char* text =
      "Host bastion\n"
      "  HostName 10.0.0.1\n"
      "  User jump\n"
      "Host 10.1.* !10.1.0.9\n"
      "  User ubuntu\n"
      "  Port 2200\n"
      "  ProxyJump bastion\n"
      "  IdentityFile ~/.ssh/zdm_%h\n"
      "Host *\n"
      "  Port 22\n"
      "  User nobody\n"
      "  IdentityFile ~/.ssh/id_default\n";
  SshConfig cfg = parse_ssh_config(text, "config", "/home/op");

  SUBCASE("the first value obtained wins; IdentityFile accumulates; %h and ~ expand") {
    SshOptions o = cfg.resolve("10.1.0.5", "op", "/home/op");
    CHECK(o.user == "ubuntu");
    CHECK(o.port == 2200);
    CHECK(o.proxy_jump == "bastion");
    CHECK(o.identity_files ==
          std::vector<std::string>{"/home/op/.ssh/zdm_10.1.0.5", "/home/op/.ssh/id_default"});
  }
  SUBCASE("a negated pattern excludes the block") {
    SshOptions o = cfg.resolve("10.1.0.9", "op", "/home/op");
    CHECK(o.user == "nobody");
    CHECK(o.port == 22);
    CHECK_FALSE(o.proxy_jump.has_value());
  }
  SUBCASE("HostName of the jump host") {
    SshOptions o = cfg.resolve("bastion", "op", "/home/op");
    CHECK(o.hostname == "10.0.0.1");
    CHECK(o.user == "jump");
  }
}

TEST_CASE("ansible_ssh_common_args") {
  std::string config_file;
  SshOptions o = parse_ssh_args(
      "-o ProxyJump=ops@bastion:2222 -oPort=2201 -o 'User admin' -i /keys/k -F /etc/zdm_ssh",
      &config_file);
  CHECK(o.proxy_jump == "ops@bastion:2222");
  CHECK(o.port == 2201);
  CHECK(o.user == "admin");
  CHECK(o.identity_files == std::vector<std::string>{"/keys/k"});
  CHECK(config_file == "/etc/zdm_ssh");
  SUBCASE("an option that would run a command is refused by name") {
    CHECK_THROWS_AS(parse_ssh_args("-o ProxyCommand='nc %h %p'", nullptr), SshConfigError);
  }
}

TEST_CASE("ProxyJump hops") {
  auto hops = parse_proxy_jump("ops@b1:2222,b2");
  REQUIRE(hops.size() == 2);
  CHECK(hops[0].host == "b1");
  CHECK(hops[0].user == "ops");
  CHECK(hops[0].port == 2222);
  CHECK(hops[1].host == "b2");
  CHECK_FALSE(hops[1].user.has_value());
  CHECK_THROWS_AS(parse_proxy_jump("ops@"), SshConfigError);
}
