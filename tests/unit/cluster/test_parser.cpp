// zdm-testcluster's CQL parser: the statements migration guides, labs and cqlsh send, and
// Cassandra's syntax error for a migration lab's clean-up DELETE ... LIKE ... ALLOW FILTERING.
#include <doctest/doctest.h>

#include "testcluster/parser.h"

using namespace zdm::testcluster;

TEST_CASE("the migration guides' statements parse") {
  SUBCASE("INSERT ... VALUES (uuid(), ..., toTimestamp(now()))") {
    Statement st = parse_statement(
        "INSERT INTO training.users (user_id, username, email, status, created_at)\n"
        "VALUES (uuid(), 'zdm_test_user', 'zdm@test.com', 'active', toTimestamp(now()));");
    const auto& ins = std::get<Insert>(st.body);
    CHECK(ins.values[0].kind == Term::Kind::kFunction);
    CHECK(ins.values[4].text == "totimestamp");
    CHECK(ins.values[4].elems.at(0).text == "now");
  }
  SUBCASE("SELECT with ALLOW FILTERING, LIMIT, token ranges, functions") {
    auto sel = std::get<Select>(
        parse_statement("SELECT username, email, status FROM training.users WHERE status = "
                        "'active' LIMIT 10 ALLOW FILTERING;")
            .body);
    CHECK(sel.allow_filtering);
    CHECK(sel.limit);
    Statement range = parse_statement(
        "SELECT k, writetime(v), ttl(v) FROM ks.t WHERE token(k) > :start AND token(k) <= :end");
    auto& r = std::get<Select>(range.body);
    CHECK(r.where.at(0).token_of == std::vector<std::string>{"k"});
    CHECK(r.selectors.at(1).name == "writetime");
    CHECK(range.bind_names == std::vector<std::string>{"start", "end"});
  }
  SUBCASE("collection and counter assignments") {
    auto u = std::get<Update>(
        parse_statement("UPDATE t SET c = c + 1, l = [0] + l, s = s - {'a'}, m['k'] = 2, "
                        "n += 3 WHERE k = 1 IF v = 'x'")
            .body);
    REQUIRE(u.assignments.size() == 5);
    CHECK(u.assignments[0].kind == Assignment::Kind::kAdd);
    CHECK(u.assignments[1].kind == Assignment::Kind::kPrepend);
    CHECK(u.assignments[2].kind == Assignment::Kind::kSubtract);
    CHECK(u.assignments[3].kind == Assignment::Kind::kSetElement);
    CHECK(u.assignments[4].kind == Assignment::Kind::kAdd);
    CHECK(u.conditions.at(0).column == "v");
  }
  SUBCASE("DESCRIBE as cqlsh 6 sends it") {
    auto d = std::get<Describe>(parse_statement("DESCRIBE KEYSPACE myapp;").body);
    CHECK(d.what == Describe::What::kKeyspace);
    CHECK(d.keyspace == "myapp");
    CHECK(std::get<Describe>(parse_statement("desc tables").body).what == Describe::What::kTables);
  }
}

TEST_CASE("ALTER TABLE ADD / DROP / WITH") {
  auto add =
      std::get<AlterTable>(parse_statement("ALTER TABLE ks.t ADD (a text, b int static)").body);
  REQUIRE(add.add.size() == 2);
  CHECK(add.add[1].is_static);
  auto drop = std::get<AlterTable>(parse_statement("alter table t drop a").body);
  CHECK(drop.drop == std::vector<std::string>{"a"});
  auto with = std::get<AlterTable>(
      parse_statement("ALTER TABLE t WITH comment = 'x' AND default_time_to_live = 5").body);
  CHECK(with.options.at("default_time_to_live").text == "5");
}

TEST_CASE("syntax errors read as Cassandra's") {
  CHECK_THROWS_WITH_AS(
      parse_statement("DELETE FROM training.users WHERE username LIKE 'zdm_%' ALLOW FILTERING;"),
      "line 1:55 mismatched input 'ALLOW' expecting EOF", SyntaxError);
  CHECK_THROWS_WITH_AS(parse_statement("SELECT * FROM t WHERE\n  k = = 1"),
                       "line 2:6 no viable alternative at input '='", SyntaxError);
}
