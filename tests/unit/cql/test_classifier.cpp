#include <doctest/doctest.h>

#include "common/cql/classifier.h"

using namespace zdm::cql;

namespace {

struct Case {
  const char* cql;
  StatementKind kind;
  const char* keyspace;
  const char* table;
  std::vector<std::string> selectors = {};
};

void check_cases(std::initializer_list<Case> cases) {
  for (const auto& c : cases) {
    CAPTURE(c.cql);
    StatementInfo info = classify(c.cql);
    CHECK(statement_kind_name(info.kind) == std::string(statement_kind_name(c.kind)));
    CHECK(info.keyspace == c.keyspace);
    CHECK(info.table == c.table);
    CHECK(info.selectors == c.selectors);
  }
}

}  // namespace

TEST_CASE("statement classifier") {
  using K = StatementKind;
  SUBCASE("SELECT: keyspace, table and selectors") {
    check_cases({
        {"SELECT * FROM ks.t", K::kSelect, "ks", "t", {"*"}},
        {"SELECT * FROM t WHERE k = 1", K::kSelect, "", "t", {"*"}},
        {"select a, b FROM ks.t LIMIT 1", K::kSelect, "ks", "t", {"a", "b"}},
        {"SELECT count(*) FROM system.peers", K::kSelect, "system", "peers", {"count(*)"}},
        {"select peer, rpc_address as r from system.peers where peer = '10.0.0.1'",
         K::kSelect,
         "system",
         "peers",
         {"peer", "rpc_address as r"}},
        {"SELECT token(k), writetime(v) FROM ks.t",
         K::kSelect,
         "ks",
         "t",
         {"token(k)", "writetime(v)"}},
        {"SELECT JSON a, b FROM ks.t", K::kSelect, "ks", "t", {"a", "b"}},
        {"SELECT DISTINCT k FROM ks.t", K::kSelect, "ks", "t", {"k"}},
        {"SELECT\n  a,\n  b\nFROM\n  ks.t;", K::kSelect, "ks", "t", {"a", "b"}},
        {"SELECT \"a,b\", c FROM ks.t", K::kSelect, "ks", "t", {"\"a,b\"", "c"}},
        {"SELECT \"x(\", 'p,q', f('r,s') FROM ks.t",
         K::kSelect,
         "ks",
         "t",
         {"\"x(\"", "'p,q'", "f('r,s')"}},
        {"SELECT a FROM", K::kSelect, "", "", {"a"}},
        {"SELECT a", K::kSelect, "", ""},
    });
  }
  SUBCASE("quoted identifiers keep their case, unquoted ones are lower-cased") {
    check_cases({
        {"SELECT * FROM \"MyKs\".\"T\"", K::kSelect, "MyKs", "T", {"*"}},
        {"SELECT * FROM MyKs.T", K::kSelect, "myks", "t", {"*"}},
        {"SELECT * FROM \"MyKs\".t", K::kSelect, "MyKs", "t", {"*"}},
        {"SELECT * FROM \"with \"\"quote\"\"\".t", K::kSelect, "with \"quote\"", "t", {"*"}},
        {"INSERT INTO \"Ks\".\"Tab\" (k) VALUES (1)", K::kInsert, "Ks", "Tab"},
    });
  }
  SUBCASE("comments and whitespace before the statement are skipped") {
    check_cases({
        {"-- a line comment\nSELECT * FROM ks.t", K::kSelect, "ks", "t", {"*"}},
        {"// another\n  /* block\n comment */ SELECT * FROM ks.t", K::kSelect, "ks", "t", {"*"}},
        {"/* c */ INSERT /* c */ INTO /* c */ ks.t (k) VALUES (1)", K::kInsert, "ks", "t"},
        {"\n\t  UPDATE ks.t SET v = 1 WHERE k = 1", K::kUpdate, "ks", "t"},
    });
  }
  SUBCASE("writes") {
    check_cases({
        {"INSERT INTO ks.t (k, v) VALUES (?, ?)", K::kInsert, "ks", "t"},
        {"insert into t (k) values (1) IF NOT EXISTS", K::kInsert, "", "t"},
        {"UPDATE ks.t USING TTL 10 SET v = 1 WHERE k = 1", K::kUpdate, "ks", "t"},
        {"DELETE FROM ks.t WHERE k = 1", K::kDelete, "ks", "t"},
        {"DELETE v, w FROM ks.t WHERE k = 1", K::kDelete, "ks", "t"},
        {"DELETE m['k'], l[0] FROM ks.t WHERE k = 1", K::kDelete, "ks", "t"},
        {"DELETE m['from'] FROM ks.t WHERE k = 1", K::kDelete, "ks", "t"},
        {"BEGIN BATCH INSERT INTO ks.t (k) VALUES (1); APPLY BATCH", K::kBatch, "", ""},
        {"BEGIN UNLOGGED BATCH UPDATE ks.t SET v = 1 WHERE k = 1 APPLY BATCH", K::kBatch, "", ""},
    });
    for (const char* cql : {"INSERT INTO t (k) VALUES (1)", "UPDATE t SET v = 1 WHERE k = 1",
                            "DELETE FROM t WHERE k = 1", "BEGIN BATCH APPLY BATCH"}) {
      CAPTURE(cql);
      CHECK(classify(cql).is_write());
    }
    for (const char* cql : {"SELECT * FROM t", "USE ks", "CREATE TABLE t (k int PRIMARY KEY)",
                            "GRANT SELECT ON ks.t TO r", ""}) {
      CAPTURE(cql);
      CHECK_FALSE(classify(cql).is_write());
    }
  }
  SUBCASE("USE") {
    check_cases({
        {"USE ks", K::kUse, "ks", ""},
        {"USE \"Ks\"", K::kUse, "Ks", ""},
        {"use MyKs;", K::kUse, "myks", ""},
    });
  }
  SUBCASE("DDL") {
    check_cases({
        {"CREATE TABLE IF NOT EXISTS ks.t (k int PRIMARY KEY)", K::kDdl, "ks", "t"},
        {"CREATE INDEX IF NOT EXISTS by_v ON ks.t (v)", K::kDdl, "ks", "t"},
        {"CREATE CUSTOM INDEX ON t (v) USING 'StorageAttachedIndex'", K::kDdl, "", "t"},
        {"DROP INDEX ks.by_v", K::kDdl, "ks", "by_v"},
        {"CREATE TABLE ks.t(k int PRIMARY KEY)", K::kDdl, "ks", "t"},
        {"CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy'}", K::kDdl, "ks", ""},
        {"CREATE KEYSPACE IF NOT EXISTS \"Ks\" WITH replication = {}", K::kDdl, "Ks", ""},
        {"CREATE SCHEMA ks WITH replication = {}", K::kDdl, "ks", ""},
        {"ALTER TABLE ks.t ADD v text", K::kDdl, "ks", "t"},
        {"ALTER KEYSPACE ks WITH durable_writes = false", K::kDdl, "ks", ""},
        {"DROP TABLE IF EXISTS ks.t", K::kDdl, "ks", "t"},
        {"DROP KEYSPACE ks", K::kDdl, "ks", ""},
        {"DROP KEYSPACE IF EXISTS ks", K::kDdl, "ks", ""},
        {"CREATE TYPE ks.address (street text)", K::kDdl, "ks", "address"},
        {"CREATE MATERIALIZED VIEW ks.mv AS SELECT * FROM ks.t", K::kDdl, "ks", "mv"},
        {"TRUNCATE ks.t", K::kDdl, "ks", "t"},
        {"TRUNCATE TABLE ks.t", K::kDdl, "ks", "t"},
        {"truncate t", K::kDdl, "", "t"},
        {"CREATE ROLE r", K::kDdl, "", ""},
    });
  }
  SUBCASE("anything else is other") {
    check_cases({
        {"GRANT SELECT ON ks.t TO r", K::kOther, "", ""},
        {"LIST ROLES", K::kOther, "", ""},
        {"REVOKE ALL ON KEYSPACE ks FROM r", K::kOther, "", ""},
        {"hello world", K::kOther, "", ""},
        {"!!!", K::kOther, "", ""},
        {"'SELECT * FROM ks.t'", K::kOther, "", ""},
        {"\"select\" * from t", K::kOther, "", ""},
        {"", K::kOther, "", ""},
        {"   \n\t", K::kOther, "", ""},
        {"-- only a comment", K::kOther, "", ""},
        {"/* unterminated", K::kOther, "", ""},
    });
  }
}

TEST_CASE("statement kind names") {
  using K = StatementKind;
  struct NameCase {
    K kind;
    const char* name;
  };
  const NameCase cases[] = {{K::kSelect, "select"}, {K::kInsert, "insert"}, {K::kUpdate, "update"},
                            {K::kDelete, "delete"}, {K::kBatch, "batch"},   {K::kUse, "use"},
                            {K::kDdl, "ddl"},       {K::kOther, "other"}};
  for (const auto& c : cases) CHECK(statement_kind_name(c.kind) == std::string(c.name));
}

TEST_CASE("system keyspaces") {
  struct KsCase {
    const char* keyspace;
    bool system;
  };
  const KsCase cases[] = {
      {"system", true},        {"system_schema", true},
      {"system_auth", true},   {"system_distributed", true},
      {"system_traces", true}, {"dse_insights", true},
      {"dse_system", true},    {"systemx", false},
      {"ks", false},           {"", false},
      {"my_system", false},    {"System", false},
      {"dse", false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.keyspace);
    CHECK(is_system_keyspace(c.keyspace) == c.system);
  }
}
