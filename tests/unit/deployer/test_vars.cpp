#include <doctest/doctest.h>

#include "vars.h"

using namespace zdm::deploy;

TEST_CASE("YAML vars are typed like Ansible's YAML 1.1") {
  Json j =
      parse_yaml("a: 1\nb: '1'\nc: yes\nd: \"no\"\ne: ~\nf: 1.5\ng: 0755\nh: [x, 2]\n", "v.yml");
  CHECK(j["a"] == 1);
  CHECK(j["b"] == "1");
  CHECK(j["c"] == true);
  CHECK(j["d"] == "no");
  CHECK(j["e"].is_null());
  CHECK(j["f"] == 1.5);
  CHECK(j["g"] == "0755");
  CHECK(j["h"] == Json::array({"x", 2}));
}

TEST_CASE("YAML parse errors name file:line") {
  CHECK_THROWS_WITH_AS(parse_yaml("a: 1\nb: [unclosed\n", "vars/x.yml"),
                       "vars/x.yml:3: end of sequence flow not found", VarsError);
}

TEST_CASE("extra vars") {
  SUBCASE("k=v pairs, quoted values keep spaces, values stay strings") {
    Json j = parse_extra_vars("read_mode=DUAL_ASYNC_ON_SECONDARY msg='a b' n=5");
    CHECK(j["read_mode"] == "DUAL_ASYNC_ON_SECONDARY");
    CHECK(j["msg"] == "a b");
    CHECK(j["n"] == "5");
  }
  SUBCASE("a JSON mapping keeps types") {
    Json j = parse_extra_vars(R"({"json": 1, "l": [1, 2]})");
    CHECK(j["json"] == 1);
    CHECK(j["l"].size() == 2);
  }
  SUBCASE("bad pairs are rejected") {
    CHECK_THROWS_WITH_AS(parse_extra_vars("novalue"), "-e: bad key=value 'novalue'", VarsError);
  }
}

TEST_CASE(
    "variable precedence follows Ansible: inventory < vars_files < play vars < facts < extra") {
  VarLayers l;
  l.inventory = {{"x", "inventory"}, {"only_inv", 1}};
  CHECK(l.merged()["x"] == "inventory");
  l.vars_files = {{"x", "vars_files"}};
  CHECK(l.merged()["x"] == "vars_files");
  l.play_vars = {{"x", "play"}};
  CHECK(l.merged()["x"] == "play");
  l.facts = {{"x", "fact"}};
  CHECK(l.merged()["x"] == "fact");
  l.extra = {{"x", "extra"}};
  CHECK(l.merged()["x"] == "extra");
  CHECK(l.merged()["only_inv"] == 1);
}
