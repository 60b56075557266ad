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

TEST_CASE("numbers beyond a double stay text, as integers beyond 64 bits do") {
  // Found by fuzz_vars (tests/fuzz/corpus/vars/crash-658a6a9dc1cd456c59393e3b07789ae53866200a):
  // std::stod threw std::out_of_range past parse_yaml.
  CHECK(parse_yaml(": .07E6676", "v.yml").begin().value() == ".07E6676");
  Json j = parse_yaml("a: 1.0e999\nb: 1.5e-999\nc: 99999999999999999999\n", "v.yml");
  CHECK(j["a"] == "1.0e999");
  CHECK(j["b"] == "1.5e-999");
  CHECK(j["c"] == "99999999999999999999");
}

TEST_CASE("a list or a mapping as a variable name is a VarsError naming the line") {
  CHECK_THROWS_WITH_AS(parse_yaml("a: 1\n? [b, c]\n: 2\n", "vars.yml"),
                       "vars.yml:2: a variable name must be a scalar, not a sequence", VarsError);
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
